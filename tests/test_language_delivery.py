"""One occurrence to people in five languages, over email (a real SMTP server on loopback,
aiosmtpd), Slack (the loopback Slack Web API, tests/slack_server.py) and the inbox: each
person receives their own text, once per channel, and each delivery records the language and
version it sent. Composing a batch asks the database the same few questions however many
people and languages it holds."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulletin import conf
from bulletin.dispatch import ledger, translations
from bulletin.dispatch.compose import BatchContent
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Announcement, Delivery, DeliveryState, Employee, InboxItem
from tests import factories
from tests.harness import SmtpSink
from tests.slack_server import SlackServer

pytestmark = pytest.mark.django_db

# Who reads what: their own tag → the text they get (exact, base, kin, default).
PEOPLE = {
    "nora@example.com": ("", "en"),  # no language of her own: the organisation's
    "hans@example.com": ("de", "de"),
    "chloe@example.com": ("fr-CA", "fr"),  # Canadian French reads the French text
    "joao@example.com": ("pt", "pt-BR"),  # Portuguese: the Brazilian text, not English
    "yuki@example.com": ("ja", "ja"),
    "sofia@example.com": ("es", "en"),  # no Spanish text: the default
}
TEXTS = {
    "de": ("Büro am Freitag geschlossen", "Hallo {{ first_name }}, das Büro ist zu."),
    "fr": ("Bureau fermé vendredi", "Bonjour {{ first_name }}, le bureau est fermé."),
    "pt-BR": ("Escritório fechado na sexta", "Olá {{ first_name }}, o escritório fecha."),
    "ja": ("金曜日は休業です", "{{ name }}さん、金曜日はオフィスが休みです。"),
}
ENGLISH = ("Office closed Friday", "Hello {{ first_name }}, the office is closed.")
TITLES = {"en": ENGLISH[0], **{tag: title for tag, (title, _) in TEXTS.items()}}


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[SlackServer]:
    users = {email: f"U0{email.split('@')[0].upper()}" for email in PEOPLE}
    with SlackServer(users=users) as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", server.token)
        monkeypatch.delenv("SLACK_BOT_TOKEN_FILE", raising=False)
        settings.BULLETIN = replace(
            conf.load({}),
            slack_api_url=server.url,
            slack_timeout=5.0,
            slack_per_minute=60000.0,
            slack_lookups_per_minute=60000.0,
        )
        yield server


def people() -> None:
    for email, (tag, _) in PEOPLE.items():
        name = email.split("@")[0].title() + " Example"
        Employee.objects.create(email=email, name=name, language=tag)


def announced(author: Any, channels: tuple[str, ...]) -> Announcement:
    """An English announcement with four translations, made two minutes ago, then fired."""
    start = (timezone.now() - timedelta(minutes=2)).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(
            now=start, channels=channels, title=ENGLISH[0], body=ENGLISH[1], requires_ack=True
        )
        for tag, (title, body) in TEXTS.items():
            translations.save_text(item, tag, title, body, author)
    factories.tick_after(item)
    return item


def dispatch_all() -> None:
    deadline = time.monotonic() + 30
    waiting = [DeliveryState.PENDING, DeliveryState.CLAIMED, DeliveryState.SENDING]
    while Delivery.objects.filter(state__in=waiting).exists():
        assert time.monotonic() < deadline, "deliveries were still waiting after 30 s"
        if not Dispatcher().run_until_idle():
            time.sleep(0.05)  # a paced delivery's slot is a moment away


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_five_languages_over_email_slack_and_the_inbox_each_person_gets_their_own_text_once(
    ann: Any, smtp_settings: SmtpSink, slack: SlackServer
) -> None:
    people()
    announced(ann, ("email", "slack", "inapp"))
    dispatch_all()
    assert Counter(Delivery.objects.values_list("state", flat=True)) == {"sent": 18}

    emails = {r.recipients[0]: r.message for r in smtp_settings.received}
    assert len(smtp_settings.received) == len(emails) == 6  # each person once
    posts = slack.calls("chat.postMessage")
    assert len(posts) == 6
    inbox = {i.employee.email: i for i in InboxItem.objects.select_related("employee")}
    assert len(inbox) == InboxItem.objects.count() == 6

    for email, (_, reads) in PEOPLE.items():
        title, first = TITLES[reads], email.split("@")[0].title()
        assert str(emails[email]["Subject"]) == title, email
        assert first in text_of(emails[email])
        assert inbox[email].title == title
        # The loopback Slack opens "D…" for member "U…": the DM is the person's own.
        dm = f"D0{email.split('@')[0].upper()}"
        theirs = [call for call in posts if call.params.get("channel") == dm]
        assert len(theirs) == 1, email
        assert str(theirs[0].params.get("text", "")).startswith(title), email
        assert first in str(theirs[0].blocks), email

    # Each delivery records the language and version it sent, on every channel.
    recorded = Delivery.objects.values_list("employee__email", "channel", "language")
    assert {(e, c, lang) for e, c, lang in recorded} == {
        (email, channel, reads)
        for email, (_, reads) in PEOPLE.items()
        for channel in ("email", "slack", "inapp")
    }
    assert set(Delivery.objects.values_list("version_number", flat=True)) == {1}


def test_a_second_version_of_one_language_is_what_its_readers_get_next_and_is_recorded(
    ann: Any, smtp_settings: SmtpSink
) -> None:
    people()
    start = (timezone.now() - timedelta(minutes=3)).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, channels=("email",), title=ENGLISH[0])
        translations.save_text(item, "de", "Büro zu", "Zu.", ann)
        translations.save_text(item, "de", "Büro Freitag zu", "Freitag zu.", ann)
    factories.tick_after(item)
    dispatch_all()
    hans = Delivery.objects.get(employee__email="hans@example.com")
    assert (hans.language, hans.version_number) == ("de", 2)
    nora = Delivery.objects.get(employee__email="nora@example.com")
    assert (nora.language, nora.version_number) == ("en", 1)
    subjects = {r.recipients[0]: str(r.message["Subject"]) for r in smtp_settings.received}
    assert subjects["hans@example.com"] == "Büro Freitag zu"


def test_composing_a_batch_asks_the_same_queries_for_six_people_as_for_sixty(
    ann: Any, settings: Any
) -> None:
    """The claim brings each row's language; the batch loads its occurrences' texts once."""
    settings.BULLETIN = replace(conf.load({}), site_url="https://bulletin.example.com")
    people()
    announced(ann, ("inapp",))

    def queries_to_compose(limit: int) -> int:
        now = datetime.now(UTC)
        rows = ledger.claim_rows(ledger.new_token(), limit, now, timedelta(minutes=1))
        assert len(rows) == limit and all(row.language for row in rows)
        with CaptureQueriesContext(connection) as captured:
            content = BatchContent(rows, {})
            messages = [content.message(row) for row in rows]
        assert {m.language for m in messages} <= set(TITLES)
        for message, row in zip(messages, rows, strict=True):
            assert message.title == TITLES[row.language]
            assert message.language == row.language
        return len(captured.captured_queries)

    few = queries_to_compose(3)
    for n in range(54):
        Employee.objects.create(email=f"more{n}@example.com", name=f"More {n}", language="ja")
    announced(ann, ("inapp",))
    many = queries_to_compose(Delivery.objects.filter(state="pending").count())
    assert few == many <= 3


def test_the_announcement_page_and_the_acknowledgement_page_show_the_text_the_person_was_sent(
    ann: Any, smtp_settings: SmtpSink, client: Any
) -> None:
    from urllib.parse import urlsplit

    from bulletin.dispatch import signed_links
    from bulletin.domain.models import Occurrence

    people()
    hans = Employee.objects.get(email="hans@example.com")
    hans.user = factories.person("hans", "Employee")
    hans.save()
    announced(ann, ("email",))
    dispatch_all()
    occurrence = Occurrence.objects.get()
    client.force_login(hans.user)
    page = client.get(f"/announcements/{occurrence.pk}/")
    assert page.status_code == 200
    assert TITLES["de"] in page.content.decode() and ENGLISH[0] not in page.content.decode()
    client.logout()
    link = signed_links.acknowledge_url(hans.pk, occurrence.pk, "email")
    page = client.get(urlsplit(link).path)
    assert page.status_code == 200
    assert TITLES["de"] in page.content.decode()
