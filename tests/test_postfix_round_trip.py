"""The bounce round trip through a real MTA: Debian's Postfix, started on loopback by the tests
(tests/postfix.py), bounces a message to a mailbox that does not exist with a real DSN (RFC
3464) to the VERP return path, into a Maildir that ``bulletin fetch_bounces`` reads.

Bulletin runs as it does in production, through its command line in subprocesses (the
``installation`` fixture): import, announce, tick, dispatch over SMTP to Postfix, fetch_bounces.
Waits are on conditions (the Maildir filling), never fixed sleeps."""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Iterator

import pytest

from tests.harness import Installation
from tests.postfix import LOCAL_DOMAIN, MAILBOX_DOMAIN, Postfix, running_postfix
from tests.processes import tick_one_occurrence_due_now

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


HEALTHY = f"healthy@{MAILBOX_DOMAIN}"
GONE = f"gone@{LOCAL_DOMAIN}"  # accepted by Postfix, then no such local user: a DSN


def deliveries(site: Installation, title: str) -> dict[str, tuple[str, str]]:
    rows = site.sql(
        "SELECT e.email, d.state, d.last_error FROM bulletin_delivery d"
        " JOIN bulletin_employee e ON e.id = d.employee_id"
        " JOIN bulletin_occurrence o ON o.id = d.occurrence_id"
        " JOIN bulletin_announcement a ON a.id = o.announcement_id WHERE a.title = ?",
        (title,),
    )
    return {address: (state, error) for address, state, error in rows}


def send(site: Installation, title: str) -> None:
    """Announce ``title`` every minute, pause every other announcement, plan and fan out the
    minute just gone, and send it."""
    body = site.directory / "body.md"
    body.write_text("Hello {{ name }}, the canteen reopens on Monday.")
    site.run(
        "announce",
        "--title",
        title,
        "--body-file",
        str(body),
        "--cron",
        "* * * * *",
        "--tz",
        "UTC",
    )
    others = (
        "UPDATE bulletin_announcement SET status = 'paused', next_fire_at = NULL WHERE title != ?"
    )
    site.sql(others, (title,))
    tick_one_occurrence_due_now(site)
    site.run("dispatch")


def test_a_missing_mailbox_bounces_through_postfix_and_the_next_announcement_skips_it(
    postfix: Postfix, installation: Installation
) -> None:
    site = installation
    site.env.update(
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(postfix.port),
        DEFAULT_FROM_EMAIL=f"People Team <hr@{MAILBOX_DOMAIN}>",
        BULLETIN_BOUNCE_ADDRESS=f"bounces@{MAILBOX_DOMAIN}",
    )
    staff = site.directory / "staff.csv"
    staff.write_text(
        "email,name,department,location,timezone\n"
        f"{HEALTHY},Hana Healthy,Ops,Leeds,UTC\n{GONE},Gil Gone,Ops,Leeds,UTC\n"
    )
    site.run("import_employees", str(staff))

    send(site, "Canteen")
    assert deliveries(site, "Canteen") == {HEALTHY: ("sent", ""), GONE: ("sent", "")}
    postfix.wait_for_mail("healthy")
    (dsn,) = postfix.wait_for_mail("bounces")
    assert email.message_from_bytes(dsn.read_bytes())["Delivered-To"].startswith("bounces+")

    site.run("fetch_bounces", "--maildir", str(postfix.maildir("bounces")))

    after = deliveries(site, "Canteen")
    assert after[HEALTHY] == ("sent", "")
    state, reason = after[GONE]
    assert state == "bounced" and "5.1.1" in reason and 'unknown user: "gone"' in reason
    suppressed = site.sql("SELECT address FROM bulletin_suppression WHERE lifted_at IS NULL")
    assert suppressed == [(GONE,)]
    assert not list((postfix.maildir("bounces") / "new").iterdir()), "the DSN was processed"

    send(site, "Parking")
    state, reason = deliveries(site, "Parking")[GONE]
    assert state == "skipped" and "suppressed" in reason
    assert deliveries(site, "Parking")[HEALTHY] == ("sent", "")
    assert len(postfix.wait_for_mail("healthy", count=2)) == 2
