"""Request bodies, which reject members they do not know (422 naming them), and error bodies.

Their schema states the rules the server enforces where JSON Schema can say them (a fuzzer
generating from it should meet few refusals): non-blank text, no NUL, single-line titles, the
members each schedule kind needs. The service still checks everything and names the field.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import ConfigDict, StrictBool, StrictInt, field_validator
from pydantic.config import JsonDict

from bulletin.dispatch.reminders import MAX_REMIND_AFTER_DAYS, MAX_REMIND_TIMES
from bulletin.domain.languages import LONGEST_TAG
from bulletin.domain.models import AudienceKind, ScheduleKind
from bulletin.domain.records import MAX_BODY_CHARS
from bulletin.interfaces.api.common import LARGEST, SMALLEST

EmployeeId = Annotated[StrictInt, Field(ge=SMALLEST, le=LARGEST)]
# A place as "channel:name" (slack:#general); which places exist, the server knows.
PlaceName = Annotated[str, Field(min_length=3, pattern=r"^(slack|teams|webhook):\S")]
# 0 or 1, as a JSON number: `false` is not a fold (lax validation took it for 0).
Fold = Annotated[StrictInt, Field(ge=0, le=1)]

A_YEAR = 365 * 24 * 60


# JSON Schema patterns (ECMA-262, unanchored unless they say so).
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
# A title: something besides spaces, and after the spaces around it are dropped, one line.
TITLE = r"^\s*[^\r\n\x00]*[^\s\x00][^\r\n\x00]*\s*$"
# A roster cell: no control character at all (the roster refuses them after trimming).
CELL = r"^[^\x00-\x1f\x7f-\x9f]*$"
NAME = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
CRON = r"^\s*\S+(\s+\S+){4}\s*$"
LOCAL_TIME = r"^\s*\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?\s*$"


def _text_refuses_nul(schema: dict[str, Any]) -> None:
    """Every text member without a pattern of its own says it refuses NUL (as no_nul does)."""
    for member in schema.get("properties", {}).values():
        for branch in [member, member.get("items", {}), *member.get("anyOf", [])]:
            if (
                branch.get("type") == "string"
                and "pattern" not in branch
                and "format" not in branch
            ):
                branch["pattern"] = NO_NUL


class Strict(Schema):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_text_refuses_nul)

    @field_validator("*", mode="after")
    @classmethod
    def no_nul(cls, value: object) -> object:
        # PostgreSQL cannot store NUL in text; refuse it here, by name, not with a 500 there.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\0" in text for text in texts):
            raise ValueError("must not contain NUL characters")
        return value


def trimmed(value: object) -> object:
    """A title's surrounding spaces are dropped (as the HR form does), so "  " is blank."""
    return value.strip() if isinstance(value, str) else value


def _not_nullable(schema: dict[str, Any]) -> None:
    """A patch's members default to None only to tell "left out" apart: ``null`` itself is
    refused, so the schema must not offer it."""
    for member in schema.get("properties", {}).values():
        choices = [choice for choice in member.pop("anyOf", []) if choice != {"type": "null"}]
        if len(choices) == 1:  # the member's own rules (a title's pattern) win over the type's
            member.update({key: value for key, value in choices[0].items() if key not in member})
        elif choices:
            member["anyOf"] = choices
        if "default" in member and member["default"] is None:
            del member["default"]
    _text_refuses_nul(schema)


class Patch(Strict):
    """Members left out are left alone; ``null`` is refused rather than guessed at."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_nullable)

    @field_validator("*", mode="before")
    @classmethod
    def not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null; leave the member out to keep its value")
        return value


class Detail(Schema):
    detail: str


class Problem(Schema):
    field: str | None
    message: str
    index: int | None = None


class ProblemList(Schema):
    detail: list[Problem]


def replies(ok: dict[int, Any], *codes: int) -> dict[int, Any]:
    """A route's documented responses: its own, every route's 401/403/422, and ``codes``
    (a route that reads a body, 400, also answers 413 for one too large)."""
    errors = {code: Detail for code in (401, 403, *codes, *((413,) if 400 in codes else ()))}
    return {**ok, **errors, 422: ProblemList}


# --- announcements in -------------------------------------------------------------------------


# Each becomes one parameter of an IN (...) query, and PostgreSQL takes at most 65,535: a larger
# audience is a department or location one, not a list.
MAX_PEOPLE = 10_000
MAX_NAMES = 1_000


def _audience_rules(schema: dict[str, Any]) -> None:
    """Names only for a department or location audience, people only for a list (at least one
    of either); everyone (the default kind) takes neither."""
    _text_refuses_nul(schema)
    none: dict[str, Any] = {"type": "array", "maxItems": 0}
    some: dict[str, Any] = {"type": "array", "minItems": 1}
    names = {**some, "items": {"type": "string", "maxLength": 100, "pattern": NOT_BLANK}}
    schema["oneOf"] = [
        {"properties": {"kind": {"const": "all"}, "values": none, "employee_ids": none}},
        {
            "properties": {
                "kind": {"enum": ["department", "location"]},
                "values": names,
                "employee_ids": none,
            },
            "required": ["kind", "values"],
        },
        {
            "properties": {"kind": {"const": "list"}, "values": none, "employee_ids": some},
            "required": ["kind", "employee_ids"],
        },
    ]


REMIND_AFTER = (
    "for an announcement that asks to be acknowledged: remind whoever has not, this many days "
    "after each send (null: no automatic reminders)"
)
REMIND_TIMES = "at most this many automatic reminders per send"
ALLOW_EMPTY = (
    "a department or location name that no active employee has is refused (422, naming the "
    "closest that exist) unless this is true: a team still to be filled"
)


class AudienceIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_audience_rules)

    kind: AudienceKind = AudienceKind.ALL
    values: list[str] = Field(
        default_factory=list,
        description="the departments or locations, for those kinds: anyone in any of them when "
        "it is sent (later joiners too)",
        examples=[["Sales", "Support"]],
        max_length=MAX_NAMES,
    )
    employee_ids: list[EmployeeId] = Field(
        default_factory=list, description="for kind 'list'", max_length=MAX_PEOPLE
    )
    allow_empty: StrictBool = Field(default=False, description=ALLOW_EMPTY)


WORKING_HOURS = (
    "deliver to each person within their working hours (their location's working week, "
    "public holidays and their leave): outside them it is held until their next working "
    "window; mandatory announcements are never held"
)
FOLD = (
    "for an at_local that happens twice because clocks go back that day: 0 the first time, "
    "1 the second"
)


def _schedule_rules(schema: dict[str, Any]) -> None:
    """What each kind needs, and a zone unless each recipient's own is used."""
    _text_refuses_nul(schema)
    needs_cron = {"cron": {"type": "string", "minLength": 9, "pattern": CRON}}
    needs_time = {"at_local": {"type": "string", "pattern": LOCAL_TIME}}
    schema["oneOf"] = [
        {"properties": {"kind": {"const": "cron"}, **needs_cron}, "required": ["kind", "cron"]},
        {"properties": {"kind": {"const": "once"}, **needs_time}, "required": ["kind", "at_local"]},
    ]
    zone = {"timezone": {"type": "string", "minLength": 1, "pattern": NOT_BLANK}}
    schema["anyOf"] = [
        {"properties": {"per_recipient_zone": {"const": True}}, "required": ["per_recipient_zone"]},
        {"properties": zone, "required": ["timezone"]},
    ]


class ScheduleIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_schedule_rules)

    kind: ScheduleKind
    cron: str = Field(default="", description="5-field cron expression, for kind 'cron'")
    at_local: str = Field(default="", description="local YYYY-MM-DDTHH:MM, for kind 'once'")
    at_fold: Fold | None = Field(default=None, description=FOLD)
    timezone: str = Field(default="", description="IANA zone, unless per_recipient_zone")
    per_recipient_zone: StrictBool = False


TITLE_RULES: JsonDict = {"minLength": 1, "maxLength": 200, "pattern": TITLE}
BODY = "Markdown; {{ name }} and {{ first_name }} are personalised"
BODY_RULES: JsonDict = {"minLength": 1, "pattern": NO_NUL}


SENDER = (
    "the email's From: an address of BULLETIN_SENDERS (sent as that entry writes it), "
    "or empty for DEFAULT_FROM_EMAIL"
)


# More languages than any organisation writes one announcement in; bounds one request.
MAX_TRANSLATIONS = 50
LANGUAGE = "BCP 47 tag (e.g. de, pt-BR), kept in canonical form"
LANGUAGE_RULES: JsonDict = {"minLength": 1, "maxLength": LONGEST_TAG, "examples": ["en"]}
DEFAULT_LANGUAGE = (
    "the language of title and body (BCP 47); left out: BULLETIN_DEFAULT_LANGUAGE. Whoever "
    "has no text in their own language (exact tag, then its base language) reads this one"
)
TRANSLATIONS = (
    "the title and body in other languages, each versioned on its own; on an edit, each "
    "given is saved (a new version where it changed), the others are left alone"
)


class TranslationIn(Strict):
    language: str = Field(description=LANGUAGE, json_schema_extra=LANGUAGE_RULES)
    title: str = Field(json_schema_extra=TITLE_RULES, description="one line; spaces around dropped")
    body: str = Field(description=BODY, max_length=MAX_BODY_CHARS, json_schema_extra=BODY_RULES)
    ask_again: StrictBool = Field(
        default=False,
        description="a material edit: everyone who acknowledged an earlier text in this "
        "language is asked to acknowledge again, once the text is in force (approved, where "
        "approval is required)",
    )

    _trim_title = field_validator("title", mode="before")(trimmed)


class AnnouncementIn(Strict):
    title: str = Field(json_schema_extra=TITLE_RULES, description="one line; spaces around dropped")
    body: str = Field(description=BODY, max_length=MAX_BODY_CHARS, json_schema_extra=BODY_RULES)
    audience: AudienceIn = AudienceIn()
    channels: list[str] = Field(default_factory=list, examples=[["email", "inapp"]])
    places: list[PlaceName] = Field(default_factory=list, examples=[["slack:#general"]])
    schedule: ScheduleIn
    misfire_grace_minutes: StrictInt | None = Field(default=None, ge=0, le=A_YEAR)
    send_late: StrictBool = False
    mandatory: StrictBool = False
    requires_ack: StrictBool = False
    remind_after_days: StrictInt | None = Field(
        default=None, ge=1, le=MAX_REMIND_AFTER_DAYS, description=REMIND_AFTER
    )
    remind_times: StrictInt = Field(default=0, ge=0, le=MAX_REMIND_TIMES, description=REMIND_TIMES)
    working_hours: StrictBool = Field(default=False, description=WORKING_HOURS)
    sender: str = Field(default="", max_length=254, description=SENDER, examples=[""])
    language: str | None = Field(
        default=None, description=DEFAULT_LANGUAGE, json_schema_extra=LANGUAGE_RULES
    )
    translations: list[TranslationIn] = Field(
        default_factory=list, max_length=MAX_TRANSLATIONS, description=TRANSLATIONS
    )

    _trim_title = field_validator("title", mode="before")(trimmed)


class AudiencePatch(Patch):
    kind: AudienceKind | None = None
    values: list[str] | None = Field(default=None, max_length=MAX_NAMES)
    employee_ids: list[EmployeeId] | None = Field(default=None, max_length=MAX_PEOPLE)
    allow_empty: StrictBool | None = Field(default=None, description=ALLOW_EMPTY)


class SchedulePatch(Patch):
    kind: ScheduleKind | None = None
    cron: str | None = None
    at_local: str | None = None
    at_fold: Fold | None = Field(default=None, description=FOLD)
    timezone: str | None = None
    per_recipient_zone: StrictBool | None = None


class AnnouncementPatch(Patch):
    title: str | None = Field(default=None, json_schema_extra=TITLE_RULES)
    body: str | None = Field(
        default=None, description=BODY, max_length=MAX_BODY_CHARS, json_schema_extra=BODY_RULES
    )
    audience: AudiencePatch | None = None
    channels: list[str] | None = None
    places: list[PlaceName] | None = None
    schedule: SchedulePatch | None = None
    misfire_grace_minutes: StrictInt | None = Field(default=None, ge=0, le=A_YEAR)
    send_late: StrictBool | None = None
    mandatory: StrictBool | None = None
    requires_ack: StrictBool | None = None
    remind_after_days: StrictInt | None = Field(
        default=None, ge=1, le=MAX_REMIND_AFTER_DAYS, description=REMIND_AFTER
    )
    remind_times: StrictInt | None = Field(
        default=None, ge=0, le=MAX_REMIND_TIMES, description=REMIND_TIMES
    )
    working_hours: StrictBool | None = Field(default=None, description=WORKING_HOURS)
    sender: str | None = Field(default=None, max_length=254, description=SENDER)
    language: str | None = Field(
        default=None, description=DEFAULT_LANGUAGE, json_schema_extra=LANGUAGE_RULES
    )
    translations: list[TranslationIn] | None = Field(
        default=None, max_length=MAX_TRANSLATIONS, description=TRANSLATIONS
    )
    remove_translations: list[str] | None = Field(
        default=None,
        max_length=MAX_TRANSLATIONS,
        description="languages whose translation is withdrawn: their readers get the "
        "fallback text from the next occurrence on",
        examples=[["ja"]],
    )

    _trim_title = field_validator("title", mode="before")(trimmed)


# Body members under "schedule" and "audience" and the model fields they set (errors.py names
# problems by the model field, as the service does).
MODEL_NAMES: dict[tuple[str, ...], str] = {
    ("schedule", "kind"): "schedule_kind",
    ("schedule", "cron"): "cron",
    ("schedule", "at_local"): "at_local",
    ("schedule", "at_fold"): "at_fold",
    ("schedule", "timezone"): "timezone",
    ("schedule", "per_recipient_zone"): "per_recipient_zone",
    ("audience", "kind"): "audience_kind",
    ("audience", "values"): "audience_values",
    ("audience", "employee_ids"): "recipients",
}


def model_values(data: dict[str, Any]) -> dict[str, Any]:
    """A request's members (``model_dump``, without places) as Announcement field values."""
    values = dict(data)
    for group in ("schedule", "audience"):
        for member, value in (values.pop(group, None) or {}).items():
            values[MODEL_NAMES[(group, member)]] = value
    if (minutes := values.pop("misfire_grace_minutes", None)) is not None:
        values["misfire_grace"] = timedelta(minutes=minutes)
    return values


class RetryIn(Strict):
    occurrence_id: int | None = Field(
        default=None, ge=SMALLEST, le=LARGEST, description="only this occurrence's deliveries"
    )
    include_unknown: StrictBool = Field(
        default=False,
        description="also retry deliveries that may already have arrived (risking a duplicate):"
        " must be JSON true",
    )


class EmployeeIn(Strict):
    """One employee as the HR system has them; upserted by email."""

    email: str = Field(json_schema_extra={"format": "email", "maxLength": 254})
    name: str = Field(json_schema_extra={"pattern": NAME, "maxLength": 200})
    department: str = Field(json_schema_extra={"pattern": CELL, "maxLength": 100})
    location: str = Field(
        description="the location's name (created, in this timezone, if new); empty: none",
        json_schema_extra={"pattern": CELL, "maxLength": 100},
    )
    timezone: str = Field(
        description="IANA zone; empty: the location's zone",
        json_schema_extra={"pattern": CELL, "maxLength": 64},
    )
    active: StrictBool | None = Field(default=None, description="left alone when omitted")
    away_until: date | None = Field(
        default=None,
        description="the last day of their leave (YYYY-MM-DD); null: not away; left alone "
        "when omitted",
    )
    slack_user_id: str | None = Field(
        default=None, max_length=32, description="left alone when omitted"
    )
    language: str | None = Field(
        default=None,
        description="BCP 47 tag of the language they read (e.g. de, pt-BR), kept canonical; "
        "empty: the organisation's default; left alone when omitted; an unknown tag is a 422 "
        "naming it",
        json_schema_extra={"maxLength": 35, "examples": ["de", "pt-BR"]},
    )


class BulkResult(Schema):
    created: int
    updated: int
    unchanged: int


# --- locations --------------------------------------------------------------------------------

WEEK = "days and hours on the employee's own clock, e.g. 'Mon-Fri 08:00-18:00'"


class LocationIn(Strict):
    name: str = Field(
        description="unique; employees and audiences name their location by it",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    timezone: str = Field(
        description="IANA zone of its employees whose own zone is not given",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    country: str = Field(default="", description="ISO 3166-1 alpha-2 code, for public holidays")
    subdivision: str = Field(default="", description="a state or region code, e.g. MH, ENG")
    working_week: str | None = Field(
        default=None, description=WEEK + " (BULLETIN_WORKING_WEEK when omitted)"
    )

    _trim = field_validator("name", "timezone", "country", "subdivision", mode="before")(trimmed)


class LocationPatch(Patch):
    name: str | None = Field(
        default=None,
        description="only while no employee is in it",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    timezone: str | None = Field(default=None, json_schema_extra={"pattern": NOT_BLANK})
    country: str | None = Field(default=None, description="'' for none")
    subdivision: str | None = None
    working_week: str | None = Field(default=None, description=WEEK)

    _trim = field_validator("name", "timezone", "country", "subdivision", mode="before")(trimmed)
