"""Everything around an announcement's text speaks its reader's language: the email's footer
and buttons (HTML and text parts, as they arrive at a real SMTP server), Slack's and Teams'
"Read the whole announcement", the inbox, the preferences, unsubscribe, acknowledgement and
sign-in-link pages, with dates written as the reader's language writes them, on their clock.

The employee's own language wins over what their browser asks for; a page that cannot know
whose it is (a refused link) follows the browser.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from bulletin.channels import email_layout, locale_text
from bulletin.channels.base import Footer, Message
from bulletin.channels.slack_blocks import slack_message
from bulletin.channels.teams_card import teams_card
from bulletin.dispatch import signed_links, translations
from bulletin.dispatch.sender import Dispatcher
from bulletin.dispatch.unsubscribe import unsubscribe_url
from bulletin.domain.models import Delivery, DeliveryState, Employee
from bulletin.domain.roles import ANNOUNCER
from tests import factories
from tests.harness import SmtpSink

pytestmark = pytest.mark.django_db

JAN_15 = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)  # a Thursday, 14:00 UTC


def html_of(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def reader(
    language: str, zone: str = "Europe/Berlin", username: str = ""
) -> tuple[Client, Employee]:
    """A signed-in employee who reads ``language``, and their browser (asking for English)."""
    user = get_user_model().objects.create_user(username=username or f"reader-{language}")
    employee = Employee.objects.create(
        email=f"{user.username}@example.com",
        name="Reader",
        timezone=zone,
        language=language,
        user=user,
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    client.force_login(user)
    return client, employee


# --- dates and directions, as tables -----------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "zone", "style", "written"),
    [
        ("en", "America/New_York", "medium", "15 Jan 2026, 09:00 EST"),
        ("en", "America/New_York", "long", "Thursday, 15 January 2026, 09:00 EST"),
        ("de", "Europe/Berlin", "medium", "15. Jan. 2026, 15:00 CET"),
        ("de", "Europe/Berlin", "long", "Donnerstag, 15. Januar 2026, 15:00 CET"),
        ("fr", "Europe/Paris", "medium", "15 janv. 2026, 15:00 CET"),
        ("es", "Europe/Madrid", "long", "jueves, 15 de enero de 2026, 15:00 CET"),
        ("pt-BR", "America/Sao_Paulo", "medium", "15 de jan. de 2026 11:00 -03"),
        ("ja", "Asia/Tokyo", "medium", "2026年1月15日 23:00 JST"),
        ("ja", "Asia/Tokyo", "long", "2026年1月15日木曜日 23:00 JST"),
    ],
)
def test_a_moment_is_written_in_the_readers_language_on_their_clock(
    tag: str, zone: str, style: locale_text.Style, written: str
) -> None:
    assert locale_text.when(JAN_15, ZoneInfo(zone), tag, style) == written


@pytest.mark.parametrize(
    ("tag", "way"),
    [
        ("ar", "rtl"),
        ("ar-EG", "rtl"),
        ("he", "rtl"),
        ("fa", "rtl"),
        ("ur", "rtl"),
        ("yi", "rtl"),
        ("dv", "rtl"),
        ("az-Arab", "rtl"),
        ("az", "ltr"),
        ("en", "ltr"),
        ("de", "ltr"),
        ("ja", "ltr"),
        ("zh-Hant", "ltr"),
        ("", "ltr"),
    ],
)
def test_right_to_left_languages_are_told_apart_by_their_script(tag: str, way: str) -> None:
    assert locale_text.direction(tag) == way


@pytest.mark.parametrize(
    ("tag", "words"),
    [("de", "de"), ("pt-BR", "pt-BR"), ("ja", "ja"), ("ar", "en"), ("he", "en"), ("", "en")],
)
def test_the_words_follow_the_text_where_a_catalog_ships_else_the_default(
    tag: str, words: str
) -> None:
    assert locale_text.words_language(tag) == words


# --- email ---------------------------------------------------------------------------------


def test_one_send_emails_each_person_the_footer_and_buttons_in_their_own_language(
    smtp_settings: SmtpSink,
) -> None:
    ann = factories.person("ann", ANNOUNCER)
    for tag in ("de", "ja", "fr", ""):
        factories.employees(1, prefix=f"reader-{tag or 'default'}-", language=tag)
    # Written when it was scheduled: an edit of a scheduled announcement plans on from then.
    start = (timezone.now() - timedelta(minutes=2)).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, title="Canteen reopens", requires_ack=True)
        translations.save_text(item, "de", "Kantine öffnet wieder", "Am Montag.", ann)
        translations.save_text(item, "ja", "食堂の再開", "月曜日から。", ann)
        translations.save_text(item, "fr", "La cantine rouvre", "Lundi.", ann)
    factories.tick_after(item)
    Dispatcher().run_until_idle()
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    parts = {
        received.message["To"].split("-")[1]: (
            received.message.get_body(("html",)).get_content(),
            received.message.get_body(("plain",)).get_content(),
        )
        for received in smtp_settings.received
    }
    expected = {
        "de": ('lang="de"', "Bestätigen</a>", "In Bulletin öffnen</a>", "In Bulletin öffnen: http"),
        "ja": ('lang="ja"', "確認しました</a>", "Bulletin で開く</a>", "確認する: http"),
        "fr": (
            'lang="fr"',
            "Confirmer la lecture</a>",
            "Gérer vos préférences</a>",
            "Ouvrir dans Bulletin : http",
        ),
        "default": (
            'lang="en"',
            "Acknowledge</a>",
            "Open in Bulletin</a>",
            "Manage preferences: http",
        ),
    }
    # Why they got it, in the same words (compose writes it per occurrence and language).
    why = {
        "de": "Sie erhalten diese Nachricht, weil sie an alle gesendet wurde.",
        "ja": "このメッセージは全員宛てに送信されたため、お届けしています。",
        "fr": "Vous recevez ce message parce qu\N{RIGHT SINGLE QUOTATION MARK}il a été envoyé "
        "à tout le monde.",
        "default": "You are receiving this because it was sent to everyone.",
    }
    assert parts.keys() == expected.keys()
    for who, (html_part, text_part) in parts.items():
        *in_html, in_text = expected[who]
        assert all(words in html_part for words in in_html), (who, html_part)
        assert in_text in text_part, (who, text_part)
        assert why[who] in text_part, (who, text_part)


def message(language: str, **fields: Any) -> Message:
    footer = Footer(reason="Sent to everyone.", open_url="https://b.example/e/1/")
    fields.setdefault("footer", footer)
    return Message(
        idempotency_key="k", title="T", text="Text", html="<p>Text</p>", language=language, **fields
    )


def test_the_email_layout_is_inlined_once_per_language_not_once_per_message() -> None:
    email_layout._html_skeleton.cache_clear()
    for language in ("de", "ja", "de", "ja", "de", ""):
        email_layout.html_part(message(language))
    assert email_layout._html_skeleton.cache_info().misses == 3


def test_a_mandatory_email_says_so_in_its_readers_language() -> None:
    html = email_layout.html_part(message("es", mandatory=True))
    text = email_layout.text_part(message("es", mandatory=True))
    assert "Este comunicado es obligatorio: no es posible darse de baja." in html
    assert "Este comunicado es obligatorio: no es posible darse de baja." in text
    optional = email_layout.text_part(message("pt", unsubscribe_url="https://b.example/u/1/"))
    assert "Cancelar inscrição: https://b.example/u/1/" in optional


@pytest.mark.parametrize(
    ("kind", "names", "language", "reason"),
    [
        ("department", ["Vertrieb"], "de", "Sie erhalten diese Nachricht, weil sie an die "
         "Abteilung Vertrieb gesendet wurde."),
        ("department", ["Ventes", "Support", "Juridique"], "fr", "Vous recevez ce message "
         "parce qu\u2019il a été envoyé aux services Ventes, Support et Juridique."),
        ("location", ["東京", "大阪"], "ja", "このメッセージは 東京、大阪 の皆さん宛てに送信された"
         "ため、お届けしています。"),
        ("list", [], "es", "Recibe este mensaje porque figura entre los destinatarios elegidos."),
        ("all", [], "pt-BR", "Você está recebendo esta mensagem porque ela foi enviada a todos."),
        ("all", [], "ar", "You are receiving this because it was sent to everyone."),
    ],
)  # fmt: skip
def test_the_footer_says_why_in_the_readers_language(
    kind: str, names: list[str], language: str, reason: str
) -> None:
    assert locale_text.audience_reason(kind, names, language) == reason


def test_a_reminders_title_is_introduced_in_the_readers_language() -> None:
    assert locale_text.reminder_title("Fire drill", "") == "Reminder: Fire drill"
    assert locale_text.reminder_title("Feueralarmübung", "de") == "Erinnerung: Feueralarmübung"
    assert locale_text.reminder_title("避難訓練", "ja") == "リマインダー\uff1a避難訓練"


# --- Slack and Teams -----------------------------------------------------------------------

LONG = "\n\n".join(["Paragraph " + "word " * 200] * 60)  # past Slack's and Teams' limits


def all_text(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


@pytest.mark.parametrize(
    ("language", "link"),
    [
        ("de", "Die ganze Mitteilung lesen"),
        ("ja", "お知らせの全文を読む"),
        ("fr", "Lire l\u2019annonce en entier"),
        ("", "Read the whole announcement"),
    ],
)
def test_slack_and_teams_link_to_the_rest_in_the_readers_language(language: str, link: str) -> None:
    cut = message(language, body=LONG, web_url="https://b.example/announcements/1/")
    slack = slack_message(cut)
    assert slack.cut and slack.blocks[-1]["elements"][0]["elements"][0]["text"] == link
    card = teams_card(cut)
    assert card.cut and card.payload["attachments"][0]["content"]["actions"][0]["title"] == link


def test_a_teams_card_in_arabic_or_hebrew_is_laid_out_right_to_left() -> None:
    for language, rtl in (("ar", True), ("he", True), ("de", None), ("", None)):
        card = teams_card(message(language, body="Text")).payload["attachments"][0]["content"]
        assert card.get("rtl") is rtl, language


def test_without_a_web_address_slack_and_teams_say_where_to_read_the_rest() -> None:
    cut = message("es", body=LONG)
    assert "Lea el comunicado completo en Bulletin." in all_text(slack_message(cut).blocks)
    assert "Lea el comunicado completo en Bulletin." in all_text(teams_card(cut).payload)


# --- the employee's pages --------------------------------------------------------------------


def test_the_inbox_is_in_japanese_with_japanese_dates_on_the_readers_clock() -> None:
    client, employee = reader("ja", zone="Asia/Tokyo")
    item = factories.inbox_item(employee, title="食堂の再開", at=JAN_15, requires_ack=True)
    html = html_of(client.get("/inbox/"))
    assert '<html lang="ja" dir="ltr">' in html
    for words in ("あなたへのお知らせ", "未読 <strong>1</strong> 件", "すべて既読にする", "要対応"):
        assert words in html
    assert "2026年1月15日 23:00 JST" in html
    page = html_of(client.get(f"/inbox/{item.pk}/"))
    assert "← 受信箱に戻る" in page and "確認しました</button>" in page
    assert "2026年1月15日木曜日 23:00 JST</time>に送信" in page


def test_the_inbox_is_in_german_whatever_language_the_browser_asks_for() -> None:
    client, employee = reader("de")
    factories.inbox_item(employee, at=JAN_15)
    html = html_of(client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert '<html lang="de" dir="ltr">' in html
    assert "Ihre Mitteilungen" in html and "Zum Inhalt springen" in html
    assert "15. Jan. 2026, 15:00 CET" in html
    response = client.post("/inbox/read/", follow=True)
    assert "1 Mitteilung als gelesen markiert." in html_of(response)


def test_someone_reading_a_language_without_a_catalog_gets_the_default_words() -> None:
    client, employee = reader("ar")
    factories.inbox_item(employee, at=JAN_15)
    html = html_of(client.get("/inbox/"))
    assert '<html lang="en" dir="ltr">' in html and "Your announcements" in html


def test_the_preferences_page_and_its_confirmation_are_in_french() -> None:
    client, _employee = reader("fr")
    html = html_of(client.get("/preferences/"))
    assert "Vos préférences" in html and "Ne plus recevoir par e-mail" in html
    saved = html_of(client.post("/preferences/", {"opt_out": ["email"]}, follow=True))
    assert "Vos préférences sont enregistrées." in saved


def test_the_preferences_link_from_an_email_opens_in_the_persons_language() -> None:
    _client, employee = reader("es")
    path = signed_links.preferences_url(employee.pk).split("://", 1)[1].split("/", 1)[1]
    html = html_of(Client().get(f"/{path}"))
    assert "Sus preferencias" in html and "Guardar preferencias" in html


def test_unsubscribing_is_in_portuguese_for_a_portuguese_reader() -> None:
    _client, employee = reader("pt-BR")
    item = factories.inbox_item(employee)
    path = "/" + unsubscribe_url(employee.pk, item.announcement_id).split("/", 3)[3]
    browser = Client(HTTP_ACCEPT_LANGUAGE="de")
    asked = html_of(browser.get(path))
    assert '<html lang="pt-BR" dir="ltr">' in asked or '<html lang="pt-br" dir="ltr">' in asked
    assert "Deixar de receber comunicados por e-mail?" in asked
    done = html_of(browser.post(path, {"List-Unsubscribe": "One-Click"}))
    assert "Sua inscrição foi cancelada" in done


def test_a_refused_unsubscribe_link_answers_in_the_browsers_language() -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9").get("/unsubscribe/forged/")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Este enlace para darse de baja no es válido." in html
    assert "No se ha cambiado nada" in html


def test_the_acknowledgement_page_from_an_email_is_in_japanese_with_japanese_dates() -> None:
    _client, employee = reader("ja", zone="Asia/Tokyo")
    item = factories.inbox_item(employee, at=JAN_15, requires_ack=True)
    url = signed_links.acknowledge_url(employee.pk, item.delivery.occurrence_id, "email")
    path = "/" + url.split("/", 3)[3]
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    asked = html_of(browser.get(path))
    assert "確認しました</button>" in asked
    assert "2026年1月15日木曜日 23:00 JST</time>に送信" in asked
    assert browser.post(path).status_code == 302
    done = html_of(browser.get(path))
    assert "に確認済みです。ありがとうございました。" in done


def test_a_refused_sign_in_link_answers_in_the_browsers_language() -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5").get("/e/forged/")
    assert response.status_code == 400
    html = response.content.decode()
    assert '<html lang="de" dir="ltr">' in html
    assert "Es wurde nichts geändert" in html and "Dieser Anmeldelink ist ungültig." in html
    assert "melden Sie sich an</a>" in html


def test_hr_screens_stay_english_for_a_browser_asking_for_german() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="de")
    client.force_login(factories.person("ann", ANNOUNCER))
    html = html_of(client.get("/hr/"))
    assert '<html lang="en-gb" dir="ltr">' in html and "Skip to content" in html
