"""The announcement email's layout (bulletin.channels.email_layout) and how the email channel
uses it: a whole HTML document, its CSS inlined, a footer that says why the person got it and
carries their links, the same footer in the text part, and the From chosen per announcement."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core import mail

from bulletin import conf
from bulletin.channels import email_layout
from bulletin.channels.base import Footer, Message, PermanentError, Recipient
from bulletin.channels.email import EmailTransport
from bulletin.channels.email_layout import html_part, on_color, text_part
from bulletin.channels.render import render_html, render_text

ANA = Recipient(email="ana@example.com", name="Ana Lee", timezone="Europe/London")
BODY = "Hello {{ first_name }},\n\nThe office is **closed** on Friday.\n\n![Map](https://x.example/m.png)"
LINKS = Footer(
    reason="You are in Sales.",
    open_url="https://bulletin.example.com/s/open?t=1&u=2",
    preferences_url="https://bulletin.example.com/p/abc",
    acknowledge_url="https://bulletin.example.com/ack/abc",
)
UNSUBSCRIBE = "https://bulletin.example.com/unsubscribe/tok"


def message(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "idempotency_key": "bulletin-key-1",
        "title": "Office closed Friday",
        "text": render_text(BODY, ANA),
        "html": render_html(BODY, ANA),
        "recipient": ANA,
        "footer": LINKS,
        "unsubscribe_url": UNSUBSCRIBE,
    }
    return Message(**(values | fields))


class Parsed(HTMLParser):
    """Each start tag with its attributes, the doctype, and the <style> blocks' text."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.doctype = ""
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in_style = False
        self.feed(document)

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def by_class(self, name: str) -> dict[str, str]:
        found = [attrs for _, attrs in self.tags if name in attrs.get("class", "").split()]
        assert len(found) == 1, f"{len(found)} elements of class {name}"
        return found[0]

    def hrefs(self) -> list[str]:
        return [attrs["href"] for attrs in self.all("a")]

    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture
def branded(settings: Any) -> Iterator[conf.Options]:
    settings.BULLETIN = replace(
        conf.load(
            {
                "BULLETIN_ORG_NAME": "Acme <b>& Co</b>",
                "BULLETIN_LOGO_URL": "https://cdn.example.com/logo.png",
                "BULLETIN_BRAND_COLOR": "#ffd60a",
                "BULLETIN_EMAIL_FOOTER": "Acme Ltd\n<i>1 Main St</i>",
                "BULLETIN_SENDERS": "People Team <people@example.com>, it@example.com",
            }
        )
    )
    yield settings.BULLETIN


def test_the_html_part_is_a_whole_document_made_for_phones_and_dark_mode() -> None:
    page = Parsed(html_part(message()))
    assert page.doctype.lower() == "doctype html"
    assert page.all("html")[0]["lang"]
    metas = {attrs.get("name"): attrs.get("content") for attrs in page.all("meta")}
    assert metas["viewport"] == "width=device-width, initial-scale=1"
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert page.by_class("sheet")["width"] == "600"
    assert "max-width: 600px" in page.by_class("sheet")["style"]


def test_the_html_part_has_no_script_and_no_external_stylesheet(branded: conf.Options) -> None:
    body = (
        BODY + '\n\n<script>alert(1)</script><link rel="stylesheet" href="https://x.example/a.css">'
    )
    page = Parsed(html_part(message(html=render_html(body, ANA))))
    assert not page.all("script")
    assert not page.all("link")


def test_the_css_is_inlined_and_only_the_media_rules_stay_in_a_style_block() -> None:
    page = Parsed(html_part(message()))
    assert "font-size: 24px" in page.by_class("title")["style"]
    assert "color: #1d4ed8" in page.all("a")[-1]["style"]
    paragraphs = page.all("p")
    assert all("margin" in attrs.get("style", "") for attrs in paragraphs)
    kept = " ".join(page.styles)
    assert "@media (max-width: 600px)" in kept and "prefers-color-scheme: dark" in kept
    assert ".title {" not in kept.split("@media")[0], "plain rules belong inline"


def test_every_image_has_alt_text_and_the_logo_its_size(branded: conf.Options) -> None:
    images = Parsed(html_part(message())).all("img")
    assert len(images) == 2  # the logo and the announcement's map
    assert all(attrs.get("alt") for attrs in images)
    logo = images[0]
    assert logo["src"] == "https://cdn.example.com/logo.png"
    assert logo["alt"] == "Acme <b>& Co</b>"  # the org name, as text
    assert (logo["width"], logo["height"]) == ("160", "40")


def test_html_in_the_org_name_and_footer_is_shown_as_text(branded: conf.Options) -> None:
    document = html_part(message())
    assert "<b>& Co</b>" not in document and "<i>1 Main St</i>" not in document
    words = Parsed(document).words()
    assert "Acme <b>& Co</b>" in words and "Acme Ltd <i>1 Main St</i>" in words


def test_the_brand_colour_paints_the_header_with_text_that_reads_on_it(
    branded: conf.Options,
) -> None:
    bar = Parsed(html_part(message())).by_class("brand-bar")
    assert bar["bgcolor"] == "#ffd60a" and "color: #111827" in bar["style"]  # dark on yellow
    assert on_color("#1f4e8c") == "#ffffff"


def test_an_optional_announcement_footer_has_its_links_and_an_unsubscribe() -> None:
    page = Parsed(html_part(message(footer=replace(LINKS, acknowledge_url=""))))
    assert "You are in Sales." in page.words()
    assert page.hrefs()[-3:] == [LINKS.open_url, LINKS.preferences_url, UNSUBSCRIBE]
    assert "Open in Bulletin" in page.words() and "Manage preferences" in page.words()
    assert "Acknowledge" not in page.words()
    assert "mandatory" not in page.words()


def test_a_mandatory_announcement_says_so_and_offers_no_unsubscribe() -> None:
    page = Parsed(html_part(message(mandatory=True)))
    assert "This announcement is mandatory: it cannot be opted out of." in page.words()
    assert UNSUBSCRIBE not in page.hrefs()
    assert LINKS.preferences_url in page.hrefs()


def test_an_announcement_asking_for_acknowledgement_shows_its_button() -> None:
    page = Parsed(html_part(message(requires_ack=True)))
    button = page.by_class("button")
    assert button["href"] == LINKS.acknowledge_url and button["id"] == "acknowledge"
    assert "Acknowledge" in page.words()


def test_a_footer_without_links_shows_none_and_no_empty_link() -> None:
    page = Parsed(html_part(message(footer=Footer(reason=""), unsubscribe_url="")))
    for words in ("Open in Bulletin", "Manage preferences", "Acknowledge", "Unsubscribe"):
        assert words not in page.words()
    assert all(page.hrefs())


def test_links_are_escaped_in_their_attributes() -> None:
    document = html_part(message())
    assert 'href="https://bulletin.example.com/s/open?t=1&amp;u=2"' in document


def test_the_text_part_is_the_prose_then_the_same_footer_with_its_links(
    branded: conf.Options,
) -> None:
    text = text_part(message(requires_ack=True))
    prose, _, footer = text.partition("\n-- \n")
    assert prose.startswith("Hello Ana,") and "closed" in prose
    assert footer.splitlines() == [
        "You are in Sales.",
        f"Open in Bulletin: {LINKS.open_url}",
        f"Acknowledge: {LINKS.acknowledge_url}",
        f"Manage preferences: {LINKS.preferences_url}",
        f"Unsubscribe: {UNSUBSCRIBE}",
        "",
        "Acme Ltd",
        "<i>1 Main St</i>",
    ]
    mandatory = text_part(message(mandatory=True)).partition("\n-- \n")[2]
    assert "it cannot be opted out of" in mandatory and UNSUBSCRIBE not in mandatory


def test_the_layout_is_inlined_once_per_footer_shape_not_once_per_person() -> None:
    email_layout._html_skeleton.cache_clear()
    for number in range(50):
        person = replace(ANA, name=f"Person {number}", email=f"p{number}@example.com")
        html_part(message(recipient=person, html=render_html(BODY, person)))
    html_part(message(mandatory=True))
    assert email_layout._html_skeleton.cache_info().misses == 2


def wire(transport: EmailTransport, sent: Message) -> tuple[str, EmailMessage]:
    envelope = transport._envelope(sent)
    parsed = email.message_from_bytes(envelope.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return envelope.sender, parsed


def test_an_allowed_sender_is_the_from_and_the_envelope_sender(branded: conf.Options) -> None:
    sender, parsed = wire(EmailTransport(), message(sender="people@example.com"))
    assert parsed["From"] == "People Team <people@example.com>"
    assert sender == "people@example.com"
    html = parsed.get_body(("html",))
    assert html is not None
    assert html.get_content().splitlines() == html_part(message()).splitlines()


def test_no_sender_chosen_is_the_default_from(branded: conf.Options, settings: Any) -> None:
    sender, parsed = wire(EmailTransport(), message())
    assert parsed["From"] == settings.DEFAULT_FROM_EMAIL
    assert sender == email.utils.parseaddr(settings.DEFAULT_FROM_EMAIL)[1]


def test_a_sender_not_allowed_fails_permanently_naming_it(branded: conf.Options) -> None:
    with pytest.raises(PermanentError, match=re.escape("ceo@example.com")):
        EmailTransport()._envelope(message(sender="ceo@example.com"))
    with pytest.raises(PermanentError, match=re.escape("ceo@example.com")):
        EmailTransport()._email(message(sender="ceo@example.com"))


def test_djangos_backends_get_the_same_layout_footer_and_sender(
    branded: conf.Options, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    sent = message(sender="it@example.com", requires_ack=True)
    with EmailTransport() as transport:
        transport.send(sent)
    (outbox,) = mail.outbox
    assert outbox.from_email == "it@example.com"
    assert outbox.body == text_part(sent)
    assert outbox.alternatives[0][0] == html_part(sent)  # type: ignore[attr-defined]
