"""The bounce round trip through a real MTA: Debian's Postfix, started on loopback by the tests
(tests/postfix.py), bounces a message to a mailbox that does not exist with a real DSN (RFC
3464) to the VERP return path, into a Maildir that ``bulletin fetch_bounces`` reads."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Iterator

import pytest

from tests.postfix import LOCAL_DOMAIN, MAILBOX_DOMAIN, Postfix, running_postfix

pytestmark = pytest.mark.slow


@pytest.fixture
def postfix() -> Iterator[Postfix]:
    with running_postfix(("bounces", "healthy")) as server:
        yield server


def test_postfix_writes_a_dsn_to_the_verp_address_for_a_missing_mailbox(postfix: Postfix) -> None:
    return_path = f"bounces+k3y@{MAILBOX_DOMAIN}"
    message = (
        f"From: hr@{MAILBOX_DOMAIN}\r\nTo: gone@{LOCAL_DOMAIN}\r\nSubject: Canteen\r\n"
        f"Message-ID: <fixture-1@{MAILBOX_DOMAIN}>\r\n\r\nReopens Monday.\r\n"
    ).encode()
    recipients = [f"gone@{LOCAL_DOMAIN}", f"healthy@{MAILBOX_DOMAIN}"]
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as client:
        refused = client.sendmail(return_path, recipients, message)
    assert refused == {}, "smtpd accepts both: the missing mailbox bounces afterwards"

    assert len(postfix.wait_for_mail("healthy")) == 1
    (dsn_file,) = postfix.wait_for_mail("bounces")
    dsn = email.message_from_bytes(dsn_file.read_bytes(), policy=email.policy.default)
    assert dsn["Delivered-To"] == return_path
    assert dsn.get_content_type() == "multipart/report"
    status = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    fields = str(status)
    assert f"Final-Recipient: rfc822; gone@{LOCAL_DOMAIN}" in fields
    assert "Status: 5.1.1" in fields
    assert f"<fixture-1@{MAILBOX_DOMAIN}>" in dsn_file.read_text()
