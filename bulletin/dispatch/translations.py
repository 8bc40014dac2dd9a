"""An announcement in several languages: its translations, which text each person gets, and
what a material edit of one language asks of those who acknowledged it.

An announcement is written in its own language (``Announcement.language``: title and body,
the default versions). A translation is a title and body in another language, versioned on its
own (``AnnouncementVersion.language``; numbers count per language). Withdrawing one writes a
version marked ``removed``: history stays, and its readers fall back.

**Which text a person gets** (``pick``): their language exactly; else its base language
("pt-BR" → "pt"); else another text of the same base language, the first by tag ("pt" or
"pt-PT" → "pt-BR" when that is the only Portuguese: a Portuguese reader is better served by
Brazilian Portuguese than by the default); else the announcement's default. A person without a
language reads the organisation's (``BULLETIN_DEFAULT_LANGUAGE``), with the same fallback.
Fan-out asks the same question in SQL (``language_case``): one CASE per statement, not Python
per person.

**Approval** (when required) covers the latest version of every language at that moment; a
later edit of any language, or withdrawing one, needs approval again (``unapproved``).

**Asking again**: saving a language with ``ask_again`` (HR's "ask everyone who acknowledged it
in this language to acknowledge again") marks the edit *material*. Once the text is in force
(saved when no approval is needed, else approved), each sent occurrence's acknowledgements of
an older text of that language stop counting (``acknowledged_at`` cleared; the language and
version they acknowledged are kept) and a reminder-like occurrence (``reminder_key``
"again-<language>-v<n>") brings the new text to exactly those people, on their inbox (and
email, if the occurrence used it): their inbox shows the Acknowledge button again, and
acknowledging it records the new version. An edit saved without it (a typo) asks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, CharField, F, IntegerField, Q, Subquery, Value, When
from django.utils import timezone

from bulletin.dispatch import announcements
from bulletin.domain.engagement import Engagement
from bulletin.domain.languages import UnknownLanguage, base_of, canonical, default_language
from bulletin.domain.models import (
    PERSON_CHANNELS,
    Announcement,
    AnnouncementStatus,
    AnnouncementVersion,
    Delivery,
    Employee,
    InboxItem,
    Occurrence,
    OccurrenceState,
    validate_single_line,
)
from bulletin.domain.records import MAX_BODY_CHARS, Approval, AuditAction

log = logging.getLogger(__name__)

# The key prefix of an occurrence that asks people to acknowledge a changed text again.
AGAIN = "again-"


# --- which text a person gets ----------------------------------------------------------------


def pick(tag: str, languages: Iterable[str], default: str) -> str:
    """The language of the text someone whose language is ``tag`` gets, among ``languages``
    (the texts there are) and ``default`` (the announcement's own)."""
    offered = set(languages) | {default}
    if tag in offered:
        return tag
    base = base_of(tag)
    if base in offered:
        return base
    kin = sorted(language for language in offered if base_of(language) == base)
    return kin[0] if kin else default


def _cases(languages: Sequence[str], default: str) -> list[tuple[Q, str]]:
    """``pick`` as conditions on Employee.language, in order: the first true one wins."""
    offered = sorted(set(languages) | {default})
    exact = [(Q(language=tag), tag) for tag in offered]
    # "pt-BR" (and "pt-BR-x-…") reads "pt", when there is one.
    based = [(Q(language__startswith=f"{tag}-"), tag) for tag in offered if "-" not in tag]
    kin: list[tuple[Q, str]] = []
    for base in sorted({base_of(tag) for tag in offered}):
        first = pick(base, offered, default)
        kin.append((Q(language=base) | Q(language__startswith=f"{base}-"), first))
    unset = pick(default_language(), offered, default)
    return [(Q(language=""), unset), *exact, *based, *kin]


def language_case(languages: Sequence[str], default: str) -> Case:
    """Each person's text language, as one SQL CASE over Employee.language."""
    text: CharField[str, str] = CharField()
    whens = [When(condition, then=Value(tag)) for condition, tag in _cases(languages, default)]
    return Case(*whens, default=Value(default), output_field=text)


def version_case(ids: dict[str, int], default: str) -> Case:
    """Each person's text's version number (``ids``: language → the version's id), as a
    CASE whose branches are uncorrelated subqueries: the database looks each number up once,
    and fan-out asks nothing of its own."""
    number: IntegerField[int, int] = IntegerField()
    whens = [
        When(condition, then=_number(ids[tag])) for condition, tag in _cases(list(ids), default)
    ]
    return Case(*whens, default=_number(ids.get(default)), output_field=number)


def _number(version_id: int | None) -> Subquery | Value:
    number: IntegerField[int, int] = IntegerField()
    if version_id is None:
        return Value(None, output_field=number)
    found = AnnouncementVersion.objects.filter(pk=version_id).values("number")[:1]
    return Subquery(found, output_field=number)


def sent_ids(occurrence: Occurrence) -> dict[str, int]:
    """The versions an occurrence sends, {language: id}, the default's included; read from
    the occurrence alone (no query). Occurrences planned before languages: the default."""
    if occurrence.translations:
        return dict(occurrence.translations)
    if occurrence.version_id is None:
        return {}
    return {occurrence.announcement.language: occurrence.version_id}


def default_of(occurrence: Occurrence) -> str:
    """The language of an occurrence's default text (frozen with it: the one whose version
    is ``occurrence.version``)."""
    for tag, pk in (occurrence.translations or {}).items():
        if pk == occurrence.version_id:
            return str(tag)
    return occurrence.announcement.language


def text_columns(occurrence: Occurrence) -> tuple[Case | Value, Case | Subquery | Value]:
    """Fan-out's two columns: each person's text language and its version number."""
    ids = sent_ids(occurrence)
    default = default_of(occurrence)
    text: CharField[str, str] = CharField()
    if not ids:  # nothing versioned (a raw row): the language alone
        return Value(default, output_field=text), Value(None, output_field=IntegerField())
    if len(ids) == 1:  # one text: everybody reads it, no CASE to evaluate
        return Value(default, output_field=text), _number(ids.get(default))
    return language_case(list(ids), default), version_case(ids, default)


# --- the texts there are ---------------------------------------------------------------------


def available(announcement: Announcement) -> dict[str, AnnouncementVersion]:
    """The latest version of each language it has a text in, the default's included."""
    latest = announcements.latest_versions(announcement)
    return {tag: version for tag, version in latest.items() if not version.removed}


def frozen(announcement: Announcement) -> dict[str, int]:
    """What an occurrence planned now sends: {language: the version's id}, the default's
    included, frozen on the occurrence (Occurrence.translations)."""
    return {tag: version.pk for tag, version in available(announcement).items()}


# Where ``load_texts`` leaves an occurrence's texts on it, for a sender's later batches.
_TEXTS = "_bulletin_texts"


def load_texts(occurrences: Iterable[Occurrence]) -> None:
    """Load the translations these occurrences send, in one query for all of them, onto
    each (``texts_of`` then asks nothing): what composing a batch does once."""
    chosen = list(occurrences)
    ids = {pk for occurrence in chosen for pk in sent_ids(occurrence).values()}
    found = AnnouncementVersion.objects.in_bulk(ids) if ids else {}
    for occurrence in chosen:
        setattr(occurrence, _TEXTS, _texts(occurrence, found))


def _texts(
    occurrence: Occurrence, found: dict[int, AnnouncementVersion]
) -> dict[str, AnnouncementVersion]:
    return {tag: found[pk] for tag, pk in sent_ids(occurrence).items() if pk in found}


def texts_of(occurrence: Occurrence) -> dict[str, AnnouncementVersion]:
    """The versions an occurrence sends, by language, the default's included (one query,
    none after ``load_texts``)."""
    loaded: dict[str, AnnouncementVersion] | None = getattr(occurrence, _TEXTS, None)
    if loaded is None:
        load_texts([occurrence])
        loaded = getattr(occurrence, _TEXTS)
    return loaded


def text_for(occurrence: Occurrence, tag: str) -> AnnouncementVersion | None:
    """The version a person whose language is ``tag`` ("": the default) gets of it: what the
    inbox and the announcement's page show them."""
    texts = texts_of(occurrence)
    default = default_of(occurrence)
    if not texts:
        return None
    chosen = pick(tag or default_language(), texts, default)
    return texts.get(chosen) or texts.get(default)


def sent_text(occurrence: Occurrence, employee_id: int) -> AnnouncementVersion | Announcement:
    """What a person's pages show of an occurrence (its page, the acknowledgement page): the
    text they were sent (their delivery records its language), else what fan-out would pick
    for them now; the announcement itself for occurrences from before versions."""
    sent = Delivery.objects.filter(occurrence=occurrence, employee_id=employee_id)
    tag = sent.exclude(language="").values_list("language", flat=True).first()
    if tag is None:
        tag = Employee.objects.filter(pk=employee_id).values_list("language", flat=True).first()
    texts = texts_of(occurrence)
    if tag in texts:
        return texts[tag]
    return text_for(occurrence, tag or "") or occurrence.version or occurrence.announcement


# --- writing and withdrawing a language ------------------------------------------------------


def _language(value: str) -> str:
    try:
        tag = canonical(value)
    except UnknownLanguage as exc:
        raise ValidationError({"language": str(exc)}) from None
    if not tag:
        raise ValidationError({"language": "choose a language"})
    return tag


def _check_text(title: str, body: str) -> None:
    problems: dict[str, str] = {}
    if not title.strip() or len(title) > 200:
        problems["title"] = "a title of 1 to 200 characters"
    else:
        try:
            validate_single_line(title)
        except ValidationError as exc:
            problems["title"] = exc.messages[0]
    if not body.strip() or len(body) > MAX_BODY_CHARS:
        problems["body"] = f"a body of 1 to {MAX_BODY_CHARS:,} characters"
    if problems:
        raise ValidationError(problems)


def _editable(announcement: Announcement) -> None:
    """As any edit (lifecycle.EDITABLE); a finished one too when no approval is needed, so a
    sent text can be corrected and its readers asked again."""
    from bulletin.conf import options
    from bulletin.dispatch.lifecycle import EDITABLE

    finished = announcement.status == AnnouncementStatus.FINISHED
    if announcement.status in EDITABLE or (finished and not options().require_approval):
        return
    raise ValidationError(
        f"a {announcement.get_status_display().lower()} announcement cannot be edited"
    )


def save_text(
    announcement: Announcement,
    language: str,
    title: str,
    body: str,
    by: Any,
    *,
    ask_again: bool = False,
) -> AnnouncementVersion:
    """A new version of ``language``'s text (the default language's too), audited; unchanged
    text keeps its version. ``ask_again``: a material edit (see the module's doc)."""
    from bulletin.dispatch import lifecycle

    lifecycle.require(by, "change_announcement")
    tag = _language(language)
    _check_text(title, body)
    _editable(announcement)
    with transaction.atomic():
        version = _new_version(announcement, tag, title, body, by, ask_again)
        if version is None:  # the same text again
            return available(announcement)[tag]
        lifecycle.audit(
            by, AuditAction.EDITED, announcement, language=tag, version=version.number,
            fields=["title", "body"], ask_again=ask_again,
        )  # fmt: skip
        _in_force(announcement, by)
    return version


def _new_version(
    announcement: Announcement, tag: str, title: str, body: str, by: Any, ask_again: bool
) -> AnnouncementVersion | None:
    latest = announcements.latest_versions(announcement).get(tag)
    if latest and not latest.removed and (latest.title, latest.body) == (title, body):
        return None
    if tag == announcement.language:
        Announcement.objects.filter(pk=announcement.pk).update(title=title, body=body)
        announcement.title, announcement.body = title, body
    return AnnouncementVersion.objects.create(
        announcement=announcement,
        language=tag,
        number=latest.number + 1 if latest else 1,
        title=title,
        body=body,
        asks_again=ask_again,
        created_by=by if getattr(by, "pk", None) else None,
    )


def remove_text(announcement: Announcement, language: str, by: Any) -> AnnouncementVersion:
    """Withdraw a translation: its readers get the fallback from the next occurrence on."""
    from bulletin.dispatch import lifecycle

    lifecycle.require(by, "change_announcement")
    tag = _language(language)
    if tag == announcement.language:
        raise ValidationError({"language": "the announcement's own language cannot be removed"})
    _editable(announcement)
    latest = available(announcement).get(tag)
    if latest is None:
        raise ValidationError({"language": f"there is no {tag!r} text to remove"})
    with transaction.atomic():
        marker = AnnouncementVersion.objects.create(
            announcement=announcement, language=tag, number=latest.number + 1,
            title=latest.title, body=latest.body, removed=True,
            created_by=by if getattr(by, "pk", None) else None,
        )  # fmt: skip
        lifecycle.audit(by, AuditAction.EDITED, announcement, language=tag, removed=True)
        _in_force(announcement, by)
    return marker


def _in_force(announcement: Announcement, by: Any) -> None:
    """After an edit: approval again where needed, else the text is in force now."""
    from bulletin.conf import options
    from bulletin.dispatch import lifecycle

    lifecycle._after_edit(announcement, by)
    if not options().require_approval:
        ask_again(announcement)


# --- approval --------------------------------------------------------------------------------


def unapproved(announcement: Announcement) -> list[AnnouncementVersion]:
    """The latest versions (one per language) no approval covers yet."""
    latest = list(announcements.latest_versions(announcement).values())
    approved = set(Approval.objects.filter(version__in=latest).values_list("version_id", flat=True))
    return [version for version in latest if version.pk not in approved]


def approved_version_ids(announcement: Announcement) -> set[int]:
    """The ids of its versions an approval covers."""
    approvals = Approval.objects.filter(announcement=announcement)
    return set(approvals.values_list("version_id", flat=True))


def approve_all(announcement: Announcement, by: Any) -> list[AnnouncementVersion]:
    """Approve every language's latest version (what lifecycle.approve approves)."""
    waiting = unapproved(announcement)
    Approval.objects.bulk_create(
        [Approval(announcement=announcement, version=v, approved_by=by) for v in waiting]
    )
    return waiting


# --- who reads which language ----------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """``people`` active people in the audience read ``language``; ``has_text``: it has a text
    in it; ``gets``: the language of the text they get."""

    language: str
    people: int
    has_text: bool
    gets: str


def coverage(announcement: Announcement) -> list[Coverage]:
    """How many active people of its audience read each language, and which text they get:
    one grouped query. Largest groups first."""
    from django.db.models import Count
    from django.db.models.functions import Coalesce, NullIf

    from bulletin.dispatch.audience import audience_of

    texts = available(announcement)
    default = announcement.language
    own = Coalesce(NullIf(F("language"), Value("")), Value(default_language()))
    groups = (
        audience_of(announcement)
        .order_by()
        .annotate(reads=own)
        .values("reads")
        .annotate(people=Count("id"))
    )
    rows = [
        Coverage(row["reads"], row["people"], row["reads"] in texts,
                 pick(row["reads"], texts, default))
        for row in groups
    ]  # fmt: skip
    return sorted(rows, key=lambda row: (-row.people, row.language))


# --- asking again after a material edit ------------------------------------------------------


def ask_again(announcement: Announcement) -> int:
    """Carry out what material edits in force asked: returns how many occurrences now ask
    someone again. Idempotent: one per (occurrence, language, version), by its key."""
    asking = [
        version
        for version in announcements.latest_versions(announcement).values()
        if version.asks_again and not version.removed
    ]
    roots = Occurrence.objects.filter(
        announcement=announcement, reminder_of__isnull=True, state=OccurrenceState.FANNED_OUT
    ).select_related("announcement", "version")
    return sum(_ask(root, version) for version in asking for root in roots)


def _ask(root: Occurrence, version: AnnouncementVersion) -> int:
    earlier = Engagement.objects.filter(
        occurrence=root,
        language=version.language,
        version_number__lt=version.number,
        acknowledged_at__isnull=False,
    )
    if not earlier.exists():
        return 0
    key = f"{AGAIN}{version.language}-v{version.number}"
    try:
        with transaction.atomic():
            again = _again_occurrence(root, key)
    except IntegrityError:  # asked already (a repeated save or approval)
        return 0
    people = list(earlier.values_list("employee_id", flat=True))
    earlier.update(acknowledged_at=None, acknowledged_via="")
    InboxItem.objects.filter(
        Q(delivery__occurrence=root) | Q(delivery__occurrence__reminder_of=root),
        employee_id__in=people,
    ).update(acknowledged_at=None)
    log.info(
        "acknowledgements asked again",
        extra={"occurrence_id": root.pk, "asking_occurrence_id": again.pk,
               "language": version.language, "version": version.number, "people": len(people)},
    )  # fmt: skip
    return 1


def _again_occurrence(root: Occurrence, key: str) -> Occurrence:
    channels = [c for c in (root.channels or root.announcement.channels) if c in PERSON_CHANNELS]
    announcement = root.announcement
    return Occurrence.objects.create(
        announcement=announcement,
        zone=root.zone,
        fire_at=timezone.now(),
        version=announcements.latest_version(announcement) or root.version,
        translations=frozen(announcement),
        state=OccurrenceState.PLANNED,
        reminder_of=root,
        reminder_key=key,
        channels=sorted(set(channels) | {"inapp"}),
        note=f"asks again: occurrence {root.pk}'s text changed",
    )


def asked_again(occurrence: Occurrence) -> str:
    """The language an occurrence asks to acknowledge again ("": it does not)."""
    key = occurrence.reminder_key
    return key.removeprefix(AGAIN).rsplit("-v", 1)[0] if key.startswith(AGAIN) else ""


def people_asked_again(occurrence: Occurrence) -> Any:
    """Who such an occurrence goes to: whoever acknowledged an earlier text of its language
    and has not acknowledged again (a set, for fan-out)."""
    language = asked_again(occurrence)
    number = int(occurrence.reminder_key.rsplit("-v", 1)[1])
    asked = Engagement.objects.filter(
        occurrence=occurrence.reminder_of,
        language=language,
        version_number__lt=number,
        acknowledged_at__isnull=True,
    ).values("employee_id")
    return Employee.objects.filter(active=True, pk__in=asked)
