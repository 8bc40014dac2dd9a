"""One-click unsubscribe (RFC 8058), from the email a real SMTP server received to the opt-out.

The link is always taken from the received email's ``List-Unsubscribe`` header and POSTed with
the body a mailbox provider sends (``List-Unsubscribe=One-Click``), without login or CSRF token.
"""

from __future__ import annotations

import logging
import re
import urllib.request
from dataclasses import replace
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import mail, signing
from django.test import Client

from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import (
    Announcement,
    AuditEvent,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Employee,
)
from bulletin.domain.records import AuditAction
from bulletin.interfaces.management.commands.run import Command as RunCommand
from tests import factories
from tests.harness import Received, SmtpSink
from tests.test_mail_headers import assert_within_limits, strictly_parsed

pytestmark = pytest.mark.django_db

SITE = "https://bulletin.example.com"
ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def site(settings: Any, smtp_settings: SmtpSink) -> SmtpSink:
    settings.BULLETIN = replace(settings.BULLETIN, site_url=SITE)
    return smtp_settings


def sent(count: int = 3, **fields: Any) -> Announcement:
    if not Employee.objects.exists():
        factories.employees(count)
    item = factories.fired(title="Canteen reopens", **fields)
    Dispatcher().run_until_idle()
    return item


def link_of(received: Received) -> str:
    header = str(received.message["List-Unsubscribe"])
    found = re.fullmatch(r"<(https://[^>\s]+)>", header)
    assert found, header
    return found.group(1)


def to(received: Received) -> str:
    (address,) = received.recipients
    return address


def one_click(url: str, body: str = ONE_CLICK, client: Client | None = None) -> Any:
    """POST as a mailbox provider does: the form body, no cookie, no CSRF token."""
    assert url.startswith(f"{SITE}/")
    client = client or Client(enforce_csrf_checks=True)
    return client.post(urlsplit(url).path, data=body, content_type=FORM)


def opted_out() -> set[str]:
    return set(ChannelOptOut.objects.values_list("employee__email", flat=True))


def unsubscribed_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.UNSUBSCRIBED))


def test_an_optional_announcements_emails_carry_one_click_unsubscribe_for_each_person(
    site: SmtpSink,
) -> None:
    sent()
    assert len(site.received) == 3
    links = set()
    for received in site.received:
        parsed = strictly_parsed(received.data)
        assert_within_limits(received.data)
        assert parsed["List-Unsubscribe-Post"] == ONE_CLICK
        assert parsed["Auto-Submitted"] == "auto-generated"
        assert parsed["List-Id"] == "Announcements <announcements.bulletin.example.com>"
        assert parsed["Date"].endswith("+0000")
        assert parsed["Message-ID"].endswith("@bulletin.example.com>")
        links.add(link_of(received))
    assert len(links) == 3, "one link per person"


def test_a_mandatory_announcements_emails_carry_no_unsubscribe(site: SmtpSink) -> None:
    sent(mandatory=True)
    assert len(site.received) == 3
    for received in site.received:
        parsed = strictly_parsed(received.data)
        assert parsed["List-Unsubscribe"] is None and parsed["List-Unsubscribe-Post"] is None
        assert parsed["Auto-Submitted"] == "auto-generated" and parsed["List-Id"]


def test_posting_the_link_from_the_email_opts_out_exactly_that_person_audited_once(
    site: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    first = sent()
    chosen = site.received[1]
    caplog.set_level(logging.INFO, logger="bulletin.dispatch.unsubscribe")
    response = one_click(link_of(chosen))
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    assert opted_out() == {to(chosen)}
    (event,) = unsubscribed_events()
    employee = Employee.objects.get(email=to(chosen))
    assert event.announcement == first and event.actor is None
    assert event.detail == {"employee_id": employee.pk, "channel": "email", "via": "one-click"}
    (record,) = [r for r in caplog.records if "unsubscribed" in r.getMessage()]
    assert record.employee_id == employee.pk and to(chosen) not in record.getMessage()  # type: ignore[attr-defined]
    again = one_click(link_of(chosen))
    assert again.status_code == 200 and opted_out() == {to(chosen)}
    assert len(unsubscribed_events()) == 1, "a repeated POST changes nothing"


def test_the_next_optional_announcement_skips_their_email_and_a_mandatory_one_does_not(
    site: SmtpSink,
) -> None:
    sent()
    chosen = site.received[0]
    assert one_click(link_of(chosen)).status_code == 200
    optional = sent()
    states = dict(
        Delivery.objects.filter(occurrence__announcement=optional).values_list(
            "employee__email", "state"
        )
    )
    assert states.pop(to(chosen)) == DeliveryState.SKIPPED
    assert set(states.values()) == {DeliveryState.SENT}
    mandatory = sent(mandatory=True)
    mandatory_states = Delivery.objects.filter(occurrence__announcement=mandatory)
    assert set(mandatory_states.values_list("state", flat=True)) == {DeliveryState.SENT}


def test_a_get_shows_the_confirmation_and_changes_nothing(site: SmtpSink) -> None:
    sent()
    url = urlsplit(link_of(site.received[0])).path
    for method in ("get", "head"):
        response = getattr(Client(), method)(url)
        assert response.status_code == 200
    page = Client().get(url).content.decode()
    assert "Stop announcements by email?" in page
    assert f'<form method="post" action="{url}">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert to(site.received[0]) not in page, "the page shows nothing about the person"
    assert opted_out() == set() and unsubscribed_events() == []


def test_the_confirmation_pages_button_unsubscribes(site: SmtpSink) -> None:
    sent()
    url = link_of(site.received[2])
    client = Client(enforce_csrf_checks=True)
    page = client.get(urlsplit(url).path).content.decode()
    action = re.search(r'<form method="post" action="([^"]+)">', page)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page))
    assert action and fields == {"List-Unsubscribe": "One-Click"}
    response = client.post(action.group(1), fields)
    assert response.status_code == 200 and opted_out() == {to(site.received[2])}
    assert "You are unsubscribed" in client.get(urlsplit(url).path).content.decode()


def tampered(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


def other_person(token: str) -> str:
    value, signature = token.rsplit(":", 1)
    employee, announcement = value.split(".")
    return f"{int(employee) + 1}.{announcement}:{signature}"


def another_installations(token: str) -> str:
    value = token.rsplit(":", 1)[0]
    return signing.Signer(key="another-secret", salt="bulletin.unsubscribe").sign(value)


@pytest.mark.parametrize(
    "forge",
    [
        tampered,
        other_person,
        another_installations,
        lambda token: "garbage",
        lambda token: token.rsplit(":", 1)[0],
        lambda token: "x.y:" + token.rsplit(":", 1)[1],
    ],
    ids=["tampered", "other-person", "another-key", "garbage", "unsigned", "not-ids"],
)
def test_a_forged_link_is_refused_with_a_clear_page_and_changes_nothing(
    site: SmtpSink, forge: Any
) -> None:
    sent()
    path = urlsplit(link_of(site.received[0])).path
    token = path.removeprefix("/unsubscribe/").rstrip("/")
    forged = f"{SITE}/unsubscribe/{forge(token)}/"
    for response in (one_click(forged), Client().get(urlsplit(forged).path)):
        assert response.status_code == 400
        assert b"This unsubscribe link is not valid" in response.content
    assert opted_out() == set() and unsubscribed_events() == []


def test_a_link_for_someone_no_longer_employed_is_refused(site: SmtpSink) -> None:
    sent()
    chosen = site.received[0]
    factories.forget(Delivery.objects.filter(employee__email=to(chosen)))
    Employee.objects.filter(email=to(chosen)).delete()
    assert one_click(link_of(chosen)).status_code == 400
    assert opted_out() == set()


@pytest.mark.parametrize("body", ["", "List-Unsubscribe=Yes", "other=1"])
def test_a_post_without_the_one_click_body_is_refused(site: SmtpSink, body: str) -> None:
    sent()
    response = one_click(link_of(site.received[0]), body=body)
    assert response.status_code == 400 and b"List-Unsubscribe=One-Click" in response.content
    assert opted_out() == set()


def test_a_multipart_one_click_post_works_too(site: SmtpSink) -> None:
    """RFC 8058 section 3.2 allows multipart/form-data as well."""
    sent()
    path = urlsplit(link_of(site.received[0])).path
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and opted_out() == {to(site.received[0])}


def test_the_console_and_file_backends_carry_the_same_headers(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.BULLETIN = replace(settings.BULLETIN, site_url=SITE)
    factories.employees(1)
    sent()
    sent(mandatory=True)
    by_kind = {m.extra_headers.get("List-Unsubscribe-Post"): m.message() for m in mail.outbox}
    with_link, without = by_kind[ONE_CLICK], by_kind[None]
    assert str(with_link["List-Unsubscribe"]).startswith(f"<{SITE}/unsubscribe/")
    assert without["List-Unsubscribe"] is None
    for message in (with_link, without):
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["List-Id"] == "Announcements <announcements.bulletin.example.com>"
        assert str(message["Date"]).endswith("+0000")


def test_without_a_site_url_links_point_at_the_local_default_and_run_warns(
    settings: Any, smtp_settings: SmtpSink
) -> None:
    sent(1)
    header = str(smtp_settings.received[0].message["List-Unsubscribe"])
    assert header.startswith("<http://127.0.0.1:8000/unsubscribe/")
    errors = StringIO()
    RunCommand(stdout=StringIO(), stderr=errors)._warn_without_site_url()
    assert "BULLETIN_SITE_URL is not set" in errors.getvalue()
    settings.BULLETIN = replace(settings.BULLETIN, site_url="http://bulletin.example.com")
    plain = StringIO()
    RunCommand(stdout=StringIO(), stderr=plain)._warn_without_site_url()
    assert "BULLETIN_SITE_URL is not https" in plain.getvalue()
    settings.BULLETIN = replace(settings.BULLETIN, site_url=SITE)
    quiet = StringIO()
    RunCommand(stdout=StringIO(), stderr=quiet)._warn_without_site_url()
    assert quiet.getvalue() == ""


@pytest.mark.django_db(transaction=True)
def test_a_mailbox_providers_one_click_post_over_http_unsubscribes(
    live_server: Any, settings: Any, smtp_settings: SmtpSink
) -> None:
    """The request RFC 8058 section 3.2 shows, over a real socket: no cookie, no redirect."""
    settings.BULLETIN = replace(settings.BULLETIN, site_url=live_server.url)
    sent(2)
    chosen = smtp_settings.received[0]
    url = str(chosen.message["List-Unsubscribe"]).strip("<>")
    assert url.startswith(f"{live_server.url}/unsubscribe/")
    request = urllib.request.Request(
        url, data=ONE_CLICK.encode(), headers={"Content-Type": FORM}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and response.url == url  # answered, not redirected
    assert opted_out() == {to(chosen)}
