"""What a delivery says: its announcement rendered for its recipient, person or place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bulletin.channels.base import Destination, Footer, Message
from bulletin.channels.locale_text import audience_reason, reminder_title
from bulletin.channels.render import render_parts
from bulletin.conf import secret, site_link
from bulletin.dispatch import signed_links, translations
from bulletin.dispatch.ledger import Claimed
from bulletin.dispatch.unsubscribe import unsubscribe_url
from bulletin.domain.models import (
    Announcement,
    Channel,
    Occurrence,
    Place,
    delivery_key,
)


def announcement_page(occurrence_id: int) -> str:
    """The occurrence's web page, where a message cut to fit its channel links to the rest."""
    return site_link(f"/announcements/{occurrence_id}/")


def place_secret(value: str) -> str:
    """A stored secret, or ``env:NAME`` to read it from NAME or the file NAME_FILE names."""
    return secret(value.removeprefix("env:")) if value.startswith("env:") else value


def destination(place: Place) -> Destination:
    stored = (place.secret, place.previous_secret)
    secrets = tuple(filter(None, (place_secret(value) for value in stored if value)))
    return Destination(name=place.name, target=place.target, secrets=secrets)


def audience_in_words(announcement: Announcement, language: str = "") -> str:
    """Why a person got it, for the email's footer: the audience as HR chose it, in the words
    of a text in ``language`` (locale_text.audience_reason)."""
    values = [str(name) for name in announcement.audience_values]
    return audience_reason(announcement.audience_kind, values, language)


def _footer(row: Claimed, occurrence: Occurrence, reason: str) -> Footer | None:
    """An email's footer: why (``reason``), and the person's own signed links."""
    if row.channel != Channel.EMAIL or not row.employee_id or row.recipient is None:
        return None
    ask = occurrence.announcement.requires_ack
    return Footer(
        reason=reason,
        open_url=signed_links.sign_in_url(row.employee_id, row.recipient.email, occurrence.pk),
        preferences_url=signed_links.preferences_url(row.employee_id),
        acknowledge_url=(
            signed_links.acknowledge_url(row.employee_id, occurrence.pk, row.channel) if ask else ""
        ),
    )


def _unsubscribe(row: Claimed, announcement: Announcement) -> str:
    """An optional email's one-click link; none for mandatory ones or other channels."""
    if row.channel != Channel.EMAIL or announcement.mandatory or not row.employee_id:
        return ""
    return unsubscribe_url(row.employee_id, announcement.pk)


def _content(row: Claimed, occurrence: Occurrence) -> tuple[str, Any]:
    """The row's language and text: its own language's version, else the default's (a row
    from before languages, or a place), else the announcement as it stands."""
    texts = translations.texts_of(occurrence)
    default = translations.default_of(occurrence)
    if row.language in texts:
        return row.language, texts[row.language]
    return default, texts.get(default) or occurrence.announcement


class BatchContent:
    """What a claimed batch's messages are made of, each loaded once for the whole batch:
    its occurrences (with their announcement and the version they send) and places; its
    people come with the claim itself.

    A batch is typically one occurrence to a hundred people: at most two queries, not five
    joins per delivery turned into five model objects each.
    """

    def __init__(self, rows: Sequence[Claimed], known: dict[int, Occurrence]) -> None:
        """``known``: occurrences this drain's earlier batches loaded, shared and added to (one
        occurrence goes out in many batches; the version it sends never changes)."""
        missing = {row.occurrence_id for row in rows} - known.keys()
        if missing:
            loaded = Occurrence.objects.select_related("announcement", "version").in_bulk(missing)
            translations.load_texts(loaded.values())  # one query for all their translations
            known |= loaded
        self.occurrences = known
        places = {row.place_id for row in rows if row.place_id}
        self.places = Place.objects.in_bulk(places) if places else {}
        self._pages: dict[int, str] = {}  # each occurrence's page, worked out once
        # Each (occurrence, language)'s title and footer reason, worked out once: translated
        # words cost a catalog switch and Babel's list formatting.
        self._words: dict[tuple[int, str], tuple[str, str]] = {}

    def message(self, row: Claimed, reads_parts: bool = True) -> Message:
        """The row's message; raises (KeyError, a missing secret…) if it cannot be made.
        ``reads_parts``: whether its transport reads the rendered text and HTML (see
        Transport.reads_parts); rendering is most of what composing costs."""
        occurrence = self.occurrences[row.occurrence_id]
        announcement = occurrence.announcement
        # What this occurrence was planned to say, even if the announcement was edited since,
        # in the language fan-out chose for the row (recorded on it).
        language, content = _content(row, occurrence)
        recipient = row.recipient
        if row.employee_id and recipient is None:
            raise LookupError(f"employee {row.employee_id} is gone")
        place = destination(self.places[row.place_id]) if row.place_id else None
        text, html = render_parts(content.body, recipient) if reads_parts else ("", "")
        title, reason = self._titled(occurrence, language, content.title)
        return Message(
            idempotency_key=delivery_key(
                occurrence.key_space, row.occurrence_id, row.employee_id, row.place_id, row.channel
            ),
            title=title,
            text=text,
            html=html,
            body=content.body,
            web_url=self._page_link(row, occurrence),
            recipient=recipient,
            place=place,
            announcement_id=announcement.pk,
            fire_at=occurrence.fire_at,
            requires_ack=announcement.requires_ack,
            delivery_id=row.id,
            mandatory=announcement.mandatory,
            unsubscribe_url=_unsubscribe(row, announcement),
            sender=announcement.sender if row.channel == Channel.EMAIL else "",
            footer=_footer(row, occurrence, reason),
            language=language,
        )

    def _titled(self, occurrence: Occurrence, language: str, title: str) -> tuple[str, str]:
        """The message's title (a reminder's introduced as one) and its footer's reason, in
        the words of a text in ``language``."""
        key = (occurrence.pk, language)
        if key not in self._words:
            reminding = occurrence.reminder_of_id is not None
            shown = reminder_title(title, language) if reminding else title
            self._words[key] = (shown, audience_in_words(occurrence.announcement, language))
        return self._words[key]

    def _page_link(self, row: Claimed, occurrence: Occurrence) -> str:
        """Where "Read the whole announcement" goes: for a Slack message to one person, their
        own sign-in link (no password from any message); a channel's members share the page."""
        person, who = row.employee_id, row.recipient
        if row.channel == Channel.SLACK and person and who is not None and not row.place_id:
            return signed_links.sign_in_url(person, who.email, occurrence.pk)
        if occurrence.pk not in self._pages:
            self._pages[occurrence.pk] = announcement_page(occurrence.pk)
        return self._pages[occurrence.pk]
