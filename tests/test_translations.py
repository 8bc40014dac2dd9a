"""Translations: which text each person gets (the fallback table, in Python and in SQL), each
language versioned on its own, approval covering every language, and a material edit asking
those who acknowledged the old text to acknowledge again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulletin.dispatch import lifecycle, translations
from bulletin.dispatch.fanout import fan_out, fan_out_planned
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain import engagement
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AnnouncementVersion,
    Approval,
    Delivery,
    Employee,
    Engagement,
    InboxItem,
    Occurrence,
)
from tests import factories

# --- the fallback, as a table ---------------------------------------------------------------

OFFERED = ["en", "de", "fr", "pt-BR", "zh-Hant", "sr-Latn"]


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("de", "de"),  # exact
        ("en", "en"),  # the default itself
        ("pt-BR", "pt-BR"),  # exact, with a region
        ("de-CH", "de"),  # region → base language
        ("de-AT-1996", "de"),  # region and variant → base language
        ("fr-CA", "fr"),
        ("pt", "pt-BR"),  # no "pt": its only regional text, rather than the default
        ("pt-PT", "pt-BR"),  # another region of the same language, rather than the default
        ("zh", "zh-Hant"),
        ("zh-Hans", "zh-Hant"),  # a written Chinese beats English for a Chinese reader
        ("sr-Cyrl", "sr-Latn"),
        ("es", "en"),  # nothing in Spanish: the default
        ("ja", "en"),
        ("en-GB", "en"),
        ("english", "en"),  # never matches by prefix: "en" is not "english"'s base
    ],
)
def test_a_person_gets_the_exact_tag_then_its_base_then_kin_then_the_default(
    tag: str, expected: str
) -> None:
    assert translations.pick(tag, OFFERED, "en") == expected


def test_the_default_wins_over_a_sibling_when_no_text_of_the_base_exists() -> None:
    # Two regional texts of one language: the first by tag, never the default.
    assert translations.pick("pt", ["en", "pt-PT", "pt-BR"], "en") == "pt-BR"
    assert translations.pick("es-MX", ["de"], "de") == "de"


@pytest.mark.django_db
@pytest.mark.parametrize("default", ["en", "fr"])
def test_the_database_picks_the_same_text_as_pick_for_every_person(
    settings: Any, default: str
) -> None:
    from dataclasses import replace

    from bulletin import conf

    settings.BULLETIN = replace(conf.load({}), default_language=default)
    tags = ["", "de", "en", "pt-BR", "pt", "pt-PT", "de-CH", "fr-CA", "zh-Hans", "es", "ja"]
    for n, tag in enumerate(tags):
        Employee.objects.create(email=f"p{n}@example.com", name=f"P {n}", language=tag)
    chosen = Employee.objects.annotate(reads=translations.language_case(OFFERED, "en")).values_list(
        "language", "reads"
    )
    expected = {tag: translations.pick(tag or default, OFFERED, "en") for tag in tags}
    assert dict(chosen) == expected
    assert expected[""] == default  # a person without a language reads the organisation's


# --- tags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tag"), [("pt-br", "pt-BR"), ("pt_BR", "pt-BR"), ("DE", "de"), ("zh-hant", "zh-Hant")]
)
def test_tags_are_kept_in_canonical_form(raw: str, tag: str) -> None:
    from bulletin.domain.languages import canonical

    assert canonical(raw) == tag


@pytest.mark.parametrize("raw", ["klingon", "x", "en--US", "de-", "a" * 40, "12"])
def test_an_unknown_tag_is_refused_naming_it(raw: str) -> None:
    from bulletin.domain.languages import UnknownLanguage, canonical

    with pytest.raises(UnknownLanguage, match=repr(raw).replace("[", r"\[")):
        canonical(raw)


# --- versions ---------------------------------------------------------------------------------


def drafted(author: Any, **fields: Any) -> Announcement:
    item = Announcement(
        title="Office closed Friday",
        body="The office is closed on Friday.",
        channels=["inapp"],
        schedule_kind="cron",
        cron="0 9 * * 1",
        timezone="UTC",
        **fields,
    )
    return lifecycle.create(item, author)


@pytest.mark.django_db
def test_each_language_is_versioned_on_its_own(ann: Any) -> None:
    item = drafted(ann)
    de1 = translations.save_text(item, "de", "Büro Freitag zu", "Das Büro ist zu.", ann)
    de2 = translations.save_text(item, "de", "Büro Freitag geschlossen", "Das Büro ist zu.", ann)
    same = translations.save_text(item, "de", "Büro Freitag geschlossen", "Das Büro ist zu.", ann)
    fr1 = translations.save_text(item, "fr-fr", "Bureau fermé", "Le bureau est fermé.", ann)
    assert (de1.number, de2.number, same.pk, fr1.number) == (1, 2, de2.pk, 1)
    assert fr1.language == "fr-FR"  # kept canonical
    found = translations.available(item)
    assert {tag: v.number for tag, v in found.items()} == {"en": 1, "de": 2, "fr-FR": 1}
    assert found["de"].title == "Büro Freitag geschlossen"


@pytest.mark.django_db
def test_editing_the_default_language_through_save_text_edits_the_announcement(ann: Any) -> None:
    item = drafted(ann)
    version = translations.save_text(item, "en", "Office shut Friday", "Shut.", ann)
    item.refresh_from_db()
    assert (version.number, item.title, item.body) == (2, "Office shut Friday", "Shut.")
    assert lifecycle.announcements.latest_version(item) == version


@pytest.mark.django_db
def test_a_removed_translation_falls_back_and_keeps_its_history(ann: Any) -> None:
    item = drafted(ann)
    translations.save_text(item, "de", "Büro zu", "Zu.", ann)
    marker = translations.remove_text(item, "de", ann)
    assert marker.removed and marker.number == 2
    assert set(translations.available(item)) == {"en"}
    assert AnnouncementVersion.objects.filter(announcement=item, language="de").count() == 2
    again = translations.save_text(item, "de", "Büro zu", "Zu.", ann)  # back, as version 3
    assert again.number == 3 and set(translations.available(item)) == {"en", "de"}


@pytest.mark.django_db
def test_bad_texts_and_tags_are_refused_naming_the_field_and_write_nothing(ann: Any) -> None:
    item = drafted(ann)
    before = AnnouncementVersion.objects.count()
    with pytest.raises(ValidationError) as raised:
        translations.save_text(item, "klingon", "T", "B", ann)
    assert "'klingon'" in raised.value.message_dict["language"][0]
    with pytest.raises(ValidationError) as raised:
        translations.save_text(item, "de", "Zwei\nZeilen", "", ann)
    assert set(raised.value.message_dict) == {"title", "body"}
    with pytest.raises(ValidationError, match="cannot be removed"):
        translations.remove_text(item, "en", ann)
    with pytest.raises(ValidationError, match="no 'fr' text"):
        translations.remove_text(item, "fr", ann)
    assert AnnouncementVersion.objects.count() == before


@pytest.mark.django_db
def test_someone_who_may_not_edit_cannot_write_a_translation(ann: Any, april: Any) -> None:
    item = drafted(ann)
    with pytest.raises(PermissionDenied):
        translations.save_text(item, "de", "Büro zu", "Zu.", april)


# --- approval ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("approval_required")
def test_approval_covers_every_language_and_any_later_edit_needs_it_again(
    ann: Any, april: Any
) -> None:
    item = drafted(ann)
    translations.save_text(item, "de", "Büro zu", "Zu.", ann)
    lifecycle.submit(item, ann)
    assert item.status == AnnouncementStatus.PENDING_APPROVAL
    lifecycle.approve(item, april)
    approved = set(Approval.objects.values_list("version__language", "version__number"))
    assert approved == {("en", 1), ("de", 1)}
    assert item.status == AnnouncementStatus.SCHEDULED
    translations.save_text(item, "de", "Büro Freitag zu", "Zu.", ann)  # a translation only
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL
    assert [v.language for v in translations.unapproved(item)] == ["de"]
    lifecycle.approve(item, april)
    translations.remove_text(item, "de", ann)  # withdrawing one is an edit too
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL


@pytest.mark.django_db
@pytest.mark.usefixtures("approval_required")
def test_the_translator_cannot_approve_their_own_translation(ann: Any, april: Any) -> None:
    from tests.factories import person

    item = drafted(ann)
    translator = person("tom", "Announcer", "Approver")
    translations.save_text(item, "de", "Büro zu", "Zu.", translator)
    lifecycle.submit(item, ann)
    with pytest.raises(PermissionDenied):
        lifecycle.approve(item, translator)
    lifecycle.approve(item, april)
    assert item.status == AnnouncementStatus.SCHEDULED


# --- coverage ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_coverage_counts_who_reads_what_and_which_text_they_get(ann: Any) -> None:
    for n, tag in enumerate(["de"] * 3 + ["es"] * 2 + ["", "pt-BR"]):
        Employee.objects.create(email=f"c{n}@example.com", name=f"C {n}", language=tag)
    Employee.objects.create(email="gone@example.com", name="Gone", language="de", active=False)
    item = drafted(ann)
    translations.save_text(item, "pt", "Escritório fechado", "Fechado.", ann)
    rows = translations.coverage(item)
    assert rows == [
        translations.Coverage("de", 3, False, "en"),
        translations.Coverage("es", 2, False, "en"),
        translations.Coverage("en", 1, True, "en"),
        translations.Coverage("pt-BR", 1, False, "pt"),
    ]


# --- acknowledging, and asking again ---------------------------------------------------------


def translated(author: Any, texts: dict[str, tuple[str, str]], **fields: Any) -> Announcement:
    """factories.created_earlier, with its translations written at the moment it was made
    (an edit of a scheduled announcement plans on from the moment of the edit)."""
    start = (timezone.now() - timedelta(minutes=2)).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, **fields)
        for tag, (title, body) in texts.items():
            translations.save_text(item, tag, title, body, author)
    return item


def fire_with_german(author: Any) -> Occurrence:
    """An announcement asking for acknowledgement, in English and German, fired once."""
    german = {"de": ("Neuigkeiten", "Hallo {{ first_name }}.")}
    item = translated(author, german, channels=("inapp",), requires_ack=True)
    factories.tick_after(item)
    assert Dispatcher().run_until_idle() > 0
    return Occurrence.objects.get(announcement=item)


def inbox_of(email: str) -> list[InboxItem]:
    return list(InboxItem.objects.filter(employee__email=email).order_by("pk"))


@pytest.mark.django_db
def test_an_acknowledgement_records_the_language_and_version_the_person_saw(ann: Any) -> None:
    hans = Employee.objects.create(email="hans@example.com", name="Hans", language="de-AT")
    nora = Employee.objects.create(email="nora@example.com", name="Nora")
    occurrence = fire_with_german(ann)
    now = datetime.now(UTC)
    for person in (hans, nora):
        assert engagement.acknowledged(occurrence.pk, person.pk, "inapp", now)
    rows = Engagement.objects.order_by("employee__email")
    assert list(rows.values_list("employee__email", "language", "version_number")) == [
        ("hans@example.com", "de", 1),
        ("nora@example.com", "en", 1),
    ]


@pytest.mark.django_db
def test_a_material_edit_asks_those_who_acknowledged_that_language_to_acknowledge_again(
    ann: Any,
) -> None:
    hans = Employee.objects.create(email="hans@example.com", name="Hans", language="de")
    nora = Employee.objects.create(email="nora@example.com", name="Nora")
    Employee.objects.create(email="lena@example.com", name="Lena", language="de")  # never acked
    occurrence = fire_with_german(ann)
    now = datetime.now(UTC)
    for person in (hans, nora):
        engagement.acknowledged(occurrence.pk, person.pk, "inapp", now)

    item = occurrence.announcement
    translations.save_text(item, "de", "Neuigkeiten", "Hallo {{ first_name }}. Typo.", ann)
    assert Engagement.objects.filter(acknowledged_at__isnull=False).count() == 2  # not material

    translations.save_text(item, "de", "Neuigkeiten!", "Alles anders.", ann, ask_again=True)
    # Hans's acknowledgement no longer counts; Nora's (English) does.
    acked = Engagement.objects.filter(acknowledged_at__isnull=False)
    assert list(acked.values_list("employee__email", flat=True)) == ["nora@example.com"]
    fan_out_planned(datetime.now(UTC))  # what the next tick does, without planning more
    Dispatcher().run_until_idle()
    items = inbox_of("hans@example.com")
    assert [(i.title, i.acknowledged_at is None) for i in items] == [
        ("Neuigkeiten", True),  # the old one shows the Acknowledge button again
        ("Erinnerung: Neuigkeiten!", True),  # the new text, asking, in its words
    ]
    assert "Alles anders." in items[1].html
    assert len(inbox_of("lena@example.com")) == 1  # she never acknowledged: not asked again
    assert len(inbox_of("nora@example.com")) == 1
    again = Delivery.objects.get(employee=hans, occurrence__reminder_of=occurrence)
    assert (again.language, again.version_number) == ("de", 3)

    engagement.acknowledged(again.occurrence_id, hans.pk, "inapp", datetime.now(UTC))
    row = Engagement.objects.get(employee=hans)
    assert (row.occurrence_id, row.language, row.version_number) == (occurrence.pk, "de", 3)
    # Saving it again, or approving it again, asks nobody twice.
    assert translations.ask_again(item) == 0


# --- fan-out stays set-based ------------------------------------------------------------------


@pytest.mark.django_db
def test_fan_out_in_five_languages_costs_the_same_queries_for_ten_people_as_for_a_thousand(
    ann: Any,
) -> None:
    from bulletin.domain.models import OccurrenceState

    texts = {tag: (f"T {tag}", f"B {tag}") for tag in ("de", "fr", "pt-BR", "ja")}
    item = translated(ann, texts, channels=("email", "slack", "inapp"))
    factories.tick_after(item)
    occurrence = Occurrence.objects.select_related("announcement").get(announcement=item)
    tags = ["", "de", "fr-CA", "pt", "ja", "es"]

    def queries_for(people: int) -> int:
        factories.employees(people - Employee.objects.count(), prefix=f"n{people}-")
        ids = list(Employee.objects.order_by("pk").values_list("pk", flat=True))
        for n, tag in enumerate(tags):
            Employee.objects.filter(pk__in=ids[n :: len(tags)]).update(language=tag)
        factories.forget(Delivery.objects)
        Occurrence.objects.filter(pk=occurrence.pk).update(state=OccurrenceState.PLANNED)
        with CaptureQueriesContext(connection) as captured:
            assert fan_out(occurrence, datetime.now(UTC)) == 3 * people
        sqls = [query["sql"] for query in captured.captured_queries]
        inserts = [sql for sql in sqls if sql.startswith("INSERT INTO bulletin_delivery (")]
        # Per channel: those who stay, then those skipped for each reason (email: opt-outs,
        # then suppressions; Slack: opt-outs); the inbox one: no more.
        # (On PostgreSQL the ledger runs its statements prepared, on the driver's own cursor,
        # where Django does not capture them; the count of the rest must still not grow.)
        if connection.vendor == "sqlite":
            assert len(inserts) == 6 and all("CASE WHEN" in sql for sql in inserts)
        return len(captured.captured_queries)

    assert queries_for(10) == queries_for(1000)
    languages = Delivery.objects.filter(channel="email").values_list(
        "employee__language", "language"
    )
    assert dict(languages) == {
        "": "en",
        "de": "de",
        "fr-CA": "fr",
        "pt": "pt-BR",
        "ja": "ja",
        "es": "en",
    }


# --- the API ----------------------------------------------------------------------------------


def api_client(user: Any) -> Any:
    from django.test import Client

    from bulletin.domain.models import ApiToken
    from bulletin.interfaces.api.auth import SCOPES

    raw = ApiToken.issue(user, "tests", list(SCOPES))[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def send(client: Any, method: str, path: str, body: Any = None) -> Any:
    import json

    data = json.dumps(body) if body is not None else None
    kwargs = {"data": data, "content_type": "application/json"} if data else {}
    return getattr(client, method)(f"/api/v1{path}", **kwargs)


GERMAN = {"language": "de", "title": "Büro zu", "body": "Das Büro ist zu."}


@pytest.mark.django_db
def test_the_api_takes_and_returns_the_default_language_and_translations(ann: Any) -> None:
    client = api_client(ann)
    body = factories.api_announcement(
        language="en-gb", translations=[GERMAN, {**GERMAN, "language": "pt-br"}]
    )
    created = send(client, "post", "/announcements", body)
    assert created.status_code == 201, created.content
    made = created.json()
    assert made["language"] == "en-GB"
    assert [(t["language"], t["version"], t["approved"]) for t in made["translations"]] == [
        ("de", 1, False),
        ("pt-BR", 1, False),
    ]
    pk = made["id"]
    changes = {
        "translations": [{**GERMAN, "title": "Büro Freitag zu"}],
        "remove_translations": ["pt-BR"],
    }
    edited = send(client, "patch", f"/announcements/{pk}", changes)
    assert edited.status_code == 200, edited.content
    texts = edited.json()["translations"]
    assert [(t["language"], t["title"], t["version"]) for t in texts] == [
        ("de", "Büro Freitag zu", 2)
    ]
    assert edited.json()["version"] == 1  # the default text did not change


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("translations", "message"),
    [
        ([{**GERMAN, "language": "klingon"}], "unknown language tag 'klingon'"),
        ([GERMAN, GERMAN], "'de' is given twice"),
        ([{**GERMAN, "language": "en"}], "'en' is the announcement's own language"),
        ([{**GERMAN, "body": "   "}], "body: a body of 1 to"),
    ],
)
def test_the_api_refuses_a_bad_translation_naming_its_index_and_writes_nothing(
    ann: Any, translations: list[dict[str, Any]], message: str
) -> None:
    reply = send(
        api_client(ann),
        "post",
        "/announcements",
        factories.api_announcement(translations=translations),
    )
    assert reply.status_code == 422, reply.content
    problems = reply.json()["detail"]
    assert any(p["field"] == "translations" and message in p["message"] for p in problems)
    assert not Announcement.objects.exists()


@pytest.mark.django_db
def test_the_api_refuses_an_unknown_default_language_naming_it(ann: Any) -> None:
    reply = send(
        api_client(ann), "post", "/announcements", factories.api_announcement(language="xx-")
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["field"] == "language"
    assert "'xx-'" in reply.json()["detail"][0]["message"]
    assert not Announcement.objects.exists()


# --- settings ---------------------------------------------------------------------------------


def test_the_language_settings_are_kept_canonical_with_the_default_first() -> None:
    from bulletin import conf

    chosen = conf.load({"BULLETIN_DEFAULT_LANGUAGE": "PT_br", "BULLETIN_LANGUAGES": "de, fr,de"})
    assert chosen.default_language == "pt-BR"
    assert chosen.language_list() == ("pt-BR", "de", "fr")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("BULLETIN_DEFAULT_LANGUAGE", "klingon"), ("BULLETIN_LANGUAGES", "de,xx-")],
)
def test_an_unknown_language_setting_stops_startup_naming_the_variable_and_value(
    variable: str, value: str
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from bulletin import conf

    with pytest.raises(ImproperlyConfigured, match=f"^{variable}: unknown language tag"):
        conf.load({variable: value})


@pytest.mark.django_db
def test_asking_again_waits_for_the_approval_of_the_new_text(
    ann: Any, april: Any, settings: Any
) -> None:
    from dataclasses import replace

    from bulletin import conf

    hans = Employee.objects.create(email="hans@example.com", name="Hans", language="de")
    occurrence = fire_with_german(ann)
    engagement.acknowledged(occurrence.pk, hans.pk, "inapp", datetime.now(UTC))
    settings.BULLETIN = replace(conf.load({}), require_approval=True)
    item = Announcement.objects.get()
    lifecycle.pause(item, ann)  # no more occurrences of the every-minute schedule meanwhile
    translations.save_text(item, "de", "Neu", "Alles anders.", ann, ask_again=True)
    # Not approved yet: nobody is asked to acknowledge a text that may not be sent.
    assert Engagement.objects.get(employee=hans).acknowledged_at is not None
    assert not Occurrence.objects.filter(reminder_of=occurrence).exists()
    lifecycle.resume(item, ann)  # edited while paused: the new text waits for approval
    assert item.status == AnnouncementStatus.PENDING_APPROVAL
    assert Engagement.objects.get(employee=hans).acknowledged_at is not None
    lifecycle.approve(item, april)
    assert Engagement.objects.get(employee=hans).acknowledged_at is None
    again = Occurrence.objects.get(reminder_of=occurrence)
    assert again.reminder_key == "again-de-v2" and again.state == "planned"


@pytest.mark.django_db
def test_a_sent_one_off_can_be_corrected_and_its_readers_asked_again(ann: Any) -> None:
    hans = Employee.objects.create(email="hans@example.com", name="Hans", language="de")
    start = (timezone.now() - timedelta(minutes=2)).replace(second=1, microsecond=0)
    at = (start + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    with time_machine.travel(start, tick=False):
        item = factories.announcement(
            now=start, at=at, zone="UTC", channels=("inapp",), requires_ack=True
        )
        translations.save_text(item, "de", "Neuigkeiten", "Hallo.", ann)
    factories.tick_after(item)
    Dispatcher().run_until_idle()
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.FINISHED
    occurrence = Occurrence.objects.get()
    engagement.acknowledged(occurrence.pk, hans.pk, "inapp", datetime.now(UTC))
    translations.save_text(item, "de", "Neuigkeiten", "Korrigiert.", ann, ask_again=True)
    fan_out_planned(datetime.now(UTC))
    Dispatcher().run_until_idle()
    newest = inbox_of("hans@example.com")[-1]
    assert "Korrigiert." in newest.html and newest.acknowledged_at is None
