"""HR's translations through Django's test client: the list of an announcement's languages, the
side-by-side editor (saving, errors in one pass, right to left, removing), approval again after
an approved text changes, who reads what before sending, and the detail page's figures by the
language each person was sent. The roles' answers for each URL are in test_authorisation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from bulletin import conf
from bulletin.dispatch import lifecycle, translations
from bulletin.domain.engagement import Engagement
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AuditEvent,
    Delivery,
    DeliveryState,
    Employee,
    Occurrence,
    ScheduleKind,
)
from bulletin.domain.records import AnnouncementVersion
from bulletin.domain.roles import ANNOUNCER, APPROVER
from bulletin.interfaces.hr import engagement, engagement_views
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ann() -> Any:
    return factories.person("ann", ANNOUNCER)


@pytest.fixture
def hr(ann: Any) -> Client:
    client = Client()
    client.force_login(ann)
    return client


def draft(by: Any, **fields: Any) -> Announcement:
    item = Announcement(
        title="Canteen reopens",
        body="The canteen reopens on **Monday**.",
        channels=["email", "inapp"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * 1",
        timezone="Europe/London",
        **fields,
    )
    return lifecycle.create(item, by)


def page(response: Any) -> str:
    return str(response.content.decode())


def part(html: str, start: str, end: str) -> str:
    """The page from ``start`` up to the next ``end``."""
    at = html.index(start)
    return html[at : html.index(end, at)]


def languages(item: Announcement) -> dict[str, AnnouncementVersion]:
    return translations.available(item)


# --- the list -------------------------------------------------------------------------------


def test_the_list_shows_the_default_first_then_each_translation_with_its_version(
    hr: Client, ann: Any
) -> None:
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am **Montag**.", ann)
    translations.save_text(item, "de", "Die Kantine öffnet", "Am **Montag**.", ann)
    translations.save_text(item, "fr", "La cantine rouvre", "Lundi.", ann)

    html = page(hr.get(f"/hr/{item.pk}/translations/"))

    english, german, french = (html.index(f'data-language="{tag}"') for tag in ("en", "de", "fr"))
    assert english < french < german  # the default, then by name: French, German
    row = html[german : html.index("</tr>", german)]
    assert "Version 2" in row and "Die Kantine öffnet" in row
    assert "no approval needed" in row  # approval is off by default


def test_add_a_translation_offers_only_the_offered_languages_not_yet_written(
    hr: Client, ann: Any
) -> None:
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)

    html = page(hr.get(f"/hr/{item.pk}/translations/"))

    offered = html[html.index('id="id_add"') : html.index("</select>")]
    assert 'value="fr"' in offered and 'value="ja"' in offered and "Japanese" in offered
    assert 'value="de"' not in offered and 'value="en"' not in offered
    response = hr.get(f"/hr/{item.pk}/translations/?add=fr")
    assert response.status_code == 302
    assert response["Location"] == f"/hr/{item.pk}/translations/fr/"


def test_adding_a_language_not_offered_or_already_written_says_why_and_adds_nothing(
    hr: Client, ann: Any
) -> None:
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)

    unknown = hr.get(f"/hr/{item.pk}/translations/?add=xx-nope")
    written = hr.get(f"/hr/{item.pk}/translations/?add=de")

    assert unknown.status_code == 400
    assert "“xx-nope” is not one of the languages Bulletin offers" in page(unknown)
    assert written.status_code == 400
    assert "There is already a German text" in page(written)
    assert set(languages(item)) == {"en", "de"}


# --- the editor -----------------------------------------------------------------------------


def test_the_editor_shows_the_default_read_only_beside_the_translation_and_its_preview(
    hr: Client, ann: Any
) -> None:
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am **Montag**, {{ first_name }}.", ann)

    html = page(hr.get(f"/hr/{item.pk}/translations/de/"))

    source = html[html.index('id="source-body"') : html.index("</textarea>")]
    assert "readonly" in source and "The canteen reopens on **Monday**." in source
    assert 'id="source-title" value="Canteen reopens" readonly' in html
    assert 'name="title" id="id_title" value="Kantine öffnet"' in html
    assert 'lang="de" dir="ltr"' in html
    assert 'data-preview-url="/hr/preview/"' in html  # the compose page's own preview
    assert "<strong>Montag</strong>" in html  # the server's first rendering, personalised
    assert "bulletin/translations.js" in html


def test_saving_makes_a_new_version_of_that_language_only_and_audits_it(
    hr: Client, ann: Any
) -> None:
    item = draft(ann)
    audited = AuditEvent.objects.count()

    response = hr.post(
        f"/hr/{item.pk}/translations/de/", {"title": "Kantine öffnet", "body": "Am Montag."}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/hr/{item.pk}/translations/"
    german = languages(item)["de"]
    assert (german.number, german.title, german.body) == (1, "Kantine öffnet", "Am Montag.")
    assert german.created_by == ann
    assert languages(item)["en"].number == 1  # the default's text is untouched
    event = AuditEvent.objects.order_by("-id").first()
    assert AuditEvent.objects.count() == audited + 1
    assert event is not None and event.detail["language"] == "de"
    followed = page(hr.get(response["Location"]))
    assert "Saved the German text (version 1)." in followed


def test_saving_the_same_text_again_makes_no_version(hr: Client, ann: Any) -> None:
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)

    response = hr.post(
        f"/hr/{item.pk}/translations/de/",
        {"title": "Kantine öffnet", "body": "Am Montag."},
        follow=True,
    )

    assert "Nothing changed." in page(response)
    assert languages(item)["de"].number == 1


def test_a_missing_title_and_a_missing_body_are_said_together_and_nothing_is_saved(
    hr: Client, ann: Any
) -> None:
    item = draft(ann)
    versions = AnnouncementVersion.objects.count()

    response = hr.post(f"/hr/{item.pk}/translations/de/", {"title": "  ", "body": "   "})

    assert response.status_code == 400
    html = page(response)
    title = html[html.index('name="title"') : html.index('name="body"')]
    body = html[html.index('name="body"') : html.index("</textarea>", html.index('name="body"'))]
    body_errors = html[html.index('name="body"') : html.index('class="form-actions"')]
    assert "A title of 1 to 200 characters." in title
    assert 'aria-invalid="true"' in title and 'aria-invalid="true"' in body
    assert "A body of 1 to 100,000 characters." in body_errors
    assert "Nothing was saved." in html
    assert AnnouncementVersion.objects.count() == versions


def test_a_title_on_two_lines_is_refused_on_the_title(hr: Client, ann: Any) -> None:
    item = draft(ann)

    response = hr.post(
        f"/hr/{item.pk}/translations/de/", {"title": "Kantine\nöffnet", "body": "Am Montag."}
    )

    assert response.status_code == 400
    html = page(response)
    assert "field-error" in html[html.index('name="title"') : html.index('name="body"')]
    assert "de" not in languages(item)


def test_a_right_to_left_language_is_edited_and_previewed_right_to_left(
    hr: Client, ann: Any, settings: Any
) -> None:
    settings.BULLETIN = replace(conf.load({}), languages="en,de,ar,he")
    item = draft(ann)

    html = page(hr.get(f"/hr/{item.pk}/translations/ar/"))

    title = html[html.index('name="title"') : html.index(">", html.index('name="title"'))]
    body = html[html.index('name="body"') : html.index(">", html.index('name="body"'))]
    assert 'dir="rtl"' in title and 'lang="ar"' in title
    assert 'dir="rtl"' in body
    preview = html[html.index('id="preview"') : html.index(">", html.index('id="preview"'))]
    assert 'dir="rtl"' in preview
    assert 'id="source-body"' in html and 'lang="en" dir="ltr"' in html  # the default stays LTR


def test_the_default_language_is_edited_on_the_edit_page(hr: Client, ann: Any) -> None:
    item = draft(ann)

    response = hr.get(f"/hr/{item.pk}/translations/en/")

    assert response.status_code == 302 and response["Location"] == f"/hr/{item.pk}/edit/"


def test_a_language_neither_offered_nor_written_is_not_found(hr: Client, ann: Any) -> None:
    item = draft(ann)

    assert hr.get(f"/hr/{item.pk}/translations/xx/").status_code == 404
    assert (
        hr.post(f"/hr/{item.pk}/translations/xx/", {"title": "t", "body": "b"}).status_code == 404
    )
    assert "xx" not in languages(item)


def test_removing_a_translation_sends_its_readers_the_fallback(hr: Client, ann: Any) -> None:
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)

    response = hr.post(f"/hr/{item.pk}/translations/de/remove/", {"confirm": "yes"}, follow=True)

    assert "de" not in languages(item)
    html = page(response)
    assert "Removed the German text: people who read German get English from now on." in html
    assert 'data-language="de"' not in html[html.index('id="language-list"') :]
    assert AnnouncementVersion.objects.filter(announcement=item, language="de").count() == 2


def test_removing_without_confirming_removes_nothing(hr: Client, ann: Any) -> None:
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)

    hr.post(f"/hr/{item.pk}/translations/de/remove/")

    assert "de" in languages(item)


def test_a_cancelled_announcements_texts_cannot_change(hr: Client, ann: Any) -> None:
    item = draft(ann)
    lifecycle.cancel(item, ann)

    shown = hr.get(f"/hr/{item.pk}/translations/de/", follow=True)
    posted = hr.post(f"/hr/{item.pk}/translations/de/", {"title": "Kantine", "body": "Montag."})

    assert "A cancelled announcement cannot be edited." in page(shown)
    assert posted.status_code == 302
    assert "de" not in languages(item)
    listed = page(hr.get(f"/hr/{item.pk}/translations/"))
    assert "Add a translation" not in listed
    assert "A cancelled announcement cannot be edited." in part(listed, 'id="cannot-write"', "</p>")


# --- approval -------------------------------------------------------------------------------


def test_changing_a_translation_of_an_approved_announcement_needs_approval_again(
    hr: Client, ann: Any, approval_required: None
) -> None:
    april = factories.person("april", APPROVER)
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)
    lifecycle.submit(item, ann)
    lifecycle.approve(item, april)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.SCHEDULED
    listed = page(hr.get(f"/hr/{item.pk}/translations/"))
    german = listed.index('data-language="de"')
    assert "approval-approved" in listed[german : listed.index("</tr>", german)]
    editor = page(hr.get(f"/hr/{item.pk}/translations/de/"))
    assert "needs approval again" in editor  # said before saving

    response = hr.post(
        f"/hr/{item.pk}/translations/de/",
        {"title": "Die Kantine öffnet", "body": "Am Montag."},
        follow=True,
    )

    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL
    html = page(response)
    assert "Because it changed, the announcement needs approval again" in html
    german = html.index('data-language="de"')
    row = html[german : html.index("</tr>", german)]
    assert "Version 2" in row and "needs approval" in row and "approval-needs" in row
    assert 'id="needs-approval"' in html


# --- who reads what -------------------------------------------------------------------------


def test_coverage_says_how_many_read_each_language_and_which_text_they_get(
    hr: Client, ann: Any
) -> None:
    factories.employees(148, prefix="de", language="de")
    factories.employees(3, prefix="fr", language="fr")
    factories.employees(2, prefix="pt", language="pt-BR")
    factories.employees(1, prefix="en", language="")  # the organisation's default: English
    Employee.objects.create(email="gone@example.com", name="Gone", language="de", active=False)
    item = draft(ann)
    translations.save_text(item, "fr", "La cantine rouvre", "Lundi.", ann)

    html = page(hr.get(f"/hr/{item.pk}/translations/"))

    coverage = html[html.index('id="coverage"') :]
    assert "148 people read German: no German text, they get English." in coverage
    assert "3 people read French: they get the French text." in coverage
    assert "2 people read Portuguese (Brazil): no Portuguese (Brazil) text, they get English." in (
        coverage
    )
    assert "1 person reads English: they get the English text." in coverage
    assert coverage.index("German") < coverage.index("French")  # largest first
    assert 'coverage-missing" data-language="de"' in coverage
    editor = page(hr.get(f"/hr/{item.pk}/translations/de/"))
    assert "148 people read German: no German text, they get English." in editor


def test_the_detail_page_names_its_languages_and_who_reads_what(hr: Client, ann: Any) -> None:
    factories.employees(6, prefix="de", language="de")
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)

    html = page(hr.get(f"/hr/{item.pk}/"))

    summary = html[
        html.index('id="languages-summary"') : html.index(
            "</dd>", html.index('id="languages-summary"')
        )
    ]
    assert "English" in summary and "default, version 1" in summary
    assert 'data-language="de"' in summary and "German" in summary
    assert f'href="/hr/{item.pk}/translations/"' in html
    assert "6 people read German: they get the German text." in html


# --- the detail page's figures by language ---------------------------------------------------


def sent_to(occurrence: Occurrence, people: list[Employee], language: str, *channels: str) -> None:
    for person in people:
        for channel in channels:
            Delivery.objects.create(
                occurrence=occurrence,
                employee=person,
                channel=channel,
                due_at=timezone.now(),
                state=DeliveryState.SENT,
                language=language,
                version_number=1,
            )


def read_by(occurrence: Occurrence, people: list[Employee], *, acknowledged: bool) -> None:
    now = timezone.now()
    for person in people:
        Engagement.objects.create(
            occurrence=occurrence,
            employee=person,
            opened_at=now,
            acknowledged_at=now if acknowledged else None,
        )


def test_the_detail_page_counts_deliveries_and_engagement_by_the_language_sent(
    hr: Client, ann: Any
) -> None:
    germans = factories.employees(6, prefix="de", language="de")
    english = factories.employees(2, prefix="en")
    item = draft(ann, requires_ack=True)
    occurrence = Occurrence.objects.create(
        announcement=item, zone="Europe/London", fire_at=timezone.now(), state="fanned_out"
    )
    sent_to(occurrence, germans, "de", "email", "inapp")  # 12 messages to 6 people
    sent_to(occurrence, english, "", "email")  # before languages were recorded: the default
    read_by(occurrence, germans[:4], acknowledged=False)
    read_by(occurrence, germans[4:], acknowledged=True)

    html = page(hr.get(f"/hr/{item.pk}/"))

    table = html[
        html.index('id="engagement-by-language"') : html.index(
            "</table>", html.index('id="engagement-by-language"')
        )
    ]
    german = table[
        table.index('data-language="de"') : table.index("</tr>", table.index('data-language="de"'))
    ]
    cells = [cell.split(">", 1)[1].split("<", 1)[0].strip() for cell in german.split("<td")[1:]]
    assert cells[:4] == ["12", "6", "6", "2"]  # sent, reached, opened, acknowledged
    english_row = table[table.index('data-language="en"') :]
    assert "fewer than 5" in english_row and '<td class="sent-cell">2</td>' in english_row


def test_the_breakdown_by_language_merges_unrecorded_deliveries_into_the_default(ann: Any) -> None:
    people = factories.employees(6, prefix="en")
    item = draft(ann)
    occurrence = Occurrence.objects.create(
        announcement=item, zone="Europe/London", fire_at=timezone.now(), state="fanned_out"
    )
    sent_to(occurrence, people[:3], "", "email")
    sent_to(occurrence, people[3:], "en", "email")

    groups = engagement.groups(item, engagement.BY_LANGUAGE)

    assert [(g.name, g.reached) for g in groups] == [("en", 6)]
    assert engagement.sent_by_language(item) == {"en": 6}


def test_the_breakdown_by_language_reads_the_ledger_and_engagement_by_index(ann: Any) -> None:
    item = draft(ann)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        cursor.execute(
            explain + engagement.groups_sql(engagement.BY_LANGUAGE),
            engagement.pair_parameters(item, None),
        )
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    for table in ("bulletin_delivery", "bulletin_engagement"):
        assert f"SCAN {table} " not in f"{plan} ", plan  # SQLite's words
        assert f"Seq Scan on {table} " not in f"{plan} ", plan  # PostgreSQL's


def test_past_the_detail_pages_limit_the_breakdown_by_language_is_on_the_full_figures_page(
    hr: Client, ann: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    germans = factories.employees(6, prefix="de", language="de")
    item = draft(ann)
    occurrence = Occurrence.objects.create(
        announcement=item, zone="Europe/London", fire_at=timezone.now(), state="fanned_out"
    )
    sent_to(occurrence, germans, "de", "email")
    monkeypatch.setattr(engagement_views, "DETAIL_SENT_UP_TO", 5)  # 6 sent: past it

    detail = page(hr.get(f"/hr/{item.pk}/"))
    full = page(hr.get(f"/hr/{item.pk}/engagement/"))

    assert 'id="engagement-by-language"' not in detail
    assert "breakdown by department, location and language" in detail
    german = part(full, 'data-language="de"', "</tr>")
    assert "<td>6</td>" in german


def test_an_approver_reads_every_languages_text_but_cannot_write_one(
    ann: Any, approval_required: None
) -> None:
    april = factories.person("april", APPROVER)
    item = draft(ann)
    translations.save_text(item, "de", "Kantine öffnet", "Am **Montag**.", ann)
    lifecycle.submit(item, ann)
    approver = Client()
    approver.force_login(april)

    detail = page(approver.get(f"/hr/{item.pk}/"))
    listed = page(approver.get(f"/hr/{item.pk}/translations/"))

    assert 'id="approve-translations"' in detail  # the approval box points at the translations
    german = part(listed, 'data-language="de"', "</tr>")
    assert "<strong>Montag</strong>" in german and "needs approval" in german
    assert "Edit side by side" not in listed and "Add a translation" not in listed
    assert "Your role can see translations but not write them." in listed
    assert approver.get(f"/hr/{item.pk}/translations/de/").status_code == 403


def test_a_material_change_asks_those_who_acknowledged_that_language_again(
    hr: Client, ann: Any
) -> None:
    item = draft(ann, requires_ack=True)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", ann)
    assert "This changes what it says" in page(hr.get(f"/hr/{item.pk}/translations/de/"))

    hr.post(
        f"/hr/{item.pk}/translations/de/",
        {"title": "Kantine öffnet", "body": "Am Dienstag.", "ask_again": "on"},
    )
    hr.post(f"/hr/{item.pk}/translations/de/", {"title": "Kantine öffnet", "body": "Am Dienstag!"})

    versions = AnnouncementVersion.objects.filter(announcement=item, language="de")
    asked = dict(versions.values_list("number", "asks_again"))
    assert asked == {1: False, 2: True, 3: False}  # only the one ticked as material
