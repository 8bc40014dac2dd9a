"""The compose form and the CSV upload form.

The form checks what a person can fix on the page (no department chosen, a time that does not
exist, a builder without a day); the service (``lifecycle``) still validates everything again
and its ValidationErrors are put back on the same fields with ``add_service_errors``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Count, Q
from django.utils import timezone as django_timezone

from bulletin import conf
from bulletin.channels import TRANSPORTS
from bulletin.conf import secret
from bulletin.dispatch.announcements import parse_local
from bulletin.dispatch.reminders import MAX_REMIND_AFTER_DAYS, MAX_REMIND_TIMES
from bulletin.domain.models import (
    PERSON_CHANNELS,
    Announcement,
    AudienceKind,
    Channel,
    Employee,
    Place,
    ScheduleKind,
)
from bulletin.domain.records import MAX_BODY_CHARS
from bulletin.interfaces.hr.schedule import (
    COMMON_ZONES,
    REPEATS,
    WEEKDAYS,
    BuilderError,
    TimeQuestion,
    build_cron,
    builder_of,
    time_question,
    zone_or_none,
)
from bulletin.scheduling.rules import CronRule, ScheduleError

OTHER_ZONE = "other"
SCHEDULE_KINDS = [
    (ScheduleKind.ONCE.value, "Once, at a date and time"),
    (ScheduleKind.CRON.value, "Repeatedly"),
]
# Where a service error about a model field is shown on this form.
_FIELD_OF = {
    "title": "title",
    "body": "body",
    "channels": "channels",
    "places": "places",
    "cron": "cron",
    "at_local": "at_local",
    "at_fold": "at_local",
    "timezone": "timezone",
    "per_recipient_zone": "per_recipient_zone",
    "schedule_kind": "schedule_kind",
    "audience_kind": "audience_kind",
    "working_hours": "working_hours",
    "remind_after_days": "remind_after_days",
    "remind_times": "remind_times",
}


@dataclass(frozen=True)
class ChannelOption:
    value: str
    label: str
    checked: bool
    available: bool
    note: str = ""


def slack_configured() -> bool:
    try:
        return bool(secret("SLACK_BOT_TOKEN"))
    except ImproperlyConfigured:
        return False


def channel_options(selected: list[str]) -> list[ChannelOption]:
    """Person channels this server can send on; one that is not set up is shown, disabled,
    unless the announcement already uses it (so an edit never drops it silently)."""
    options = []
    for channel in PERSON_CHANNELS:
        if channel.value not in TRANSPORTS:
            continue
        ready = channel != Channel.SLACK or slack_configured()
        note = "" if ready else "not set up on this server (SLACK_BOT_TOKEN)"
        options.append(
            ChannelOption(
                value=channel.value,
                label=str(channel.label),
                checked=channel.value in selected,
                available=ready or channel.value in selected,
                note=note,
            )
        )
    return options


def sender_choices(saved: str) -> list[tuple[str, str]]:
    """The default sender first (the empty choice), then BULLETIN_SENDERS; a saved sender the
    list no longer has stays choosable only to be refused with a sentence (clean_sender)."""
    listed = conf.options().sender_list()
    default = str(settings.DEFAULT_FROM_EMAIL)
    choices = [("", f"{default} (the default)")] + [(entry, entry) for entry in listed]
    if saved and saved not in listed:
        choices.append((saved, f"{saved} (no longer allowed)"))
    return choices


def _place_label(place: Place) -> str:
    inactive = "" if place.active else " (inactive)"
    return f"{place.get_channel_display()}: {place.name}{inactive}"


def _counted(column: str) -> list[tuple[str, str]]:
    rows = (
        Employee.objects.filter(active=True)
        .exclude(**{column: ""})
        .values(column)
        .annotate(n=Count("id"))
        .order_by(column)
    )
    return [(row[column], f"{row[column]} ({row['n']})") for row in rows]


def employee_zones() -> list[str]:
    rows = (
        Employee.objects.filter(active=True)
        .values("timezone")
        .annotate(n=Count("id"))
        .order_by("-n", "timezone")
    )
    return [row["timezone"] for row in rows[:50]]


def default_zone(user: Any) -> str:
    """The requester's own zone, else where most employees are, else UTC."""
    employee = getattr(user, "employee", None)
    if employee is not None and zone_or_none(employee.timezone):
        return str(employee.timezone)
    zones = employee_zones()
    return zones[0] if zones else "UTC"


class AnnouncementForm(forms.Form):
    # Always a mutable QueryDict copy here (see __init__); Any, as the stubs say Mapping.
    data: Any

    title = forms.CharField(max_length=200, strip=True)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "true"}),
        max_length=MAX_BODY_CHARS,
        strip=False,
        help_text="Markdown: **bold**, _italic_, [a link](https://example.com), "
        "lists with “- ”. {{ first_name }} and {{ name }} become each person's name.",
    )
    audience_kind = forms.ChoiceField(
        choices=AudienceKind.choices, widget=forms.RadioSelect, initial=AudienceKind.ALL
    )
    # Several may be chosen; the audience stays a rule: whoever is in one of them at each send.
    department = forms.MultipleChoiceField(required=False, label="Which departments")
    location = forms.MultipleChoiceField(required=False, label="Which locations")
    recipients = forms.ModelMultipleChoiceField(queryset=Employee.objects.all(), required=False)
    channels = forms.MultipleChoiceField(required=False)
    places = forms.ModelMultipleChoiceField(
        queryset=Place.objects.none(), widget=forms.CheckboxSelectMultiple, required=False
    )
    mandatory = forms.BooleanField(
        required=False,
        label="Mandatory",
        help_text="Send even to people who opted out of a channel (e.g. safety notices).",
    )
    requires_ack = forms.BooleanField(
        required=False,
        label="Ask people to acknowledge it",
        help_text="Each person confirms they have read it: in the inbox, or with the "
        "email's Acknowledge button.",
    )
    remind_after_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_REMIND_AFTER_DAYS,
        label="Remind after (days)",
        help_text="Remind whoever has not acknowledged, this many days after each send.",
    )
    remind_times = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_REMIND_TIMES,
        label="At most (reminders)",
    )
    sender = forms.ChoiceField(
        required=False,
        label="Email from",
        help_text="Who the email comes from (BULLETIN_SENDERS).",
        error_messages={"invalid_choice": "%(value)s is not one of the allowed senders."},
    )
    working_hours = forms.BooleanField(
        required=False,
        label="Deliver within each person's working hours",
        help_text="Nights, weekends, their location's public holidays and leave wait for their "
        "next working window; mandatory announcements never wait.",
    )
    schedule_kind = forms.ChoiceField(
        choices=SCHEDULE_KINDS, widget=forms.RadioSelect, initial=ScheduleKind.ONCE
    )
    at_local = forms.CharField(
        required=False,
        label="Date and time",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    at_choice = forms.CharField(required=False)
    repeat = forms.ChoiceField(choices=REPEATS, required=False, initial="weekdays")
    weekdays = forms.MultipleChoiceField(
        choices=WEEKDAYS, widget=forms.CheckboxSelectMultiple, required=False, label="On"
    )
    month_day = forms.IntegerField(min_value=1, max_value=31, required=False, label="Day")
    time_of_day = forms.CharField(
        required=False,
        initial="09:00",
        label="At",
        widget=forms.TimeInput(attrs={"type": "time"}),
    )
    cron = forms.CharField(
        required=False,
        max_length=100,
        label="Cron expression",
        help_text="Five fields: minute hour day-of-month month day-of-week.",
    )
    timezone = forms.CharField(required=False, max_length=64, label="Time zone")
    timezone_other = forms.CharField(required=False, max_length=64, label="Other time zone")
    per_recipient_zone = forms.BooleanField(
        required=False, label="At each recipient's local time instead"
    )

    def __init__(
        self,
        data: Any = None,
        *,
        announcement: Announcement | None = None,
        user: Any = None,
    ) -> None:
        self.announcement = announcement
        # A copy, so a chosen gap answer can be written back into what the page shows.
        super().__init__(data.copy() if data is not None else None, initial=self._initial(user))
        self.time_question: TimeQuestion | None = None
        saved_names = list(announcement.audience_values or []) if announcement else []
        self._choice("department").choices = self._value_choices("department", saved_names)
        self._choice("location").choices = self._value_choices("location", saved_names)
        # What may be ticked: channels set up here, and any the announcement already uses.
        saved = list(announcement.channels) if announcement else []
        self.allowed_channels = {
            option.value for option in channel_options(saved) if option.available
        }
        self._choice("channels").choices = [
            (option.value, option.label)
            for option in channel_options(saved)
            if option.value in self.allowed_channels
        ]
        attached = list(announcement.places.values_list("pk", flat=True)) if announcement else []
        places = cast(forms.ModelMultipleChoiceField, self.fields["places"])
        places.queryset = Place.objects.filter(Q(active=True) | Q(pk__in=attached))
        places.label_from_instance = _place_label  # type: ignore[assignment,method-assign]
        self._choice("sender").choices = sender_choices(announcement.sender if announcement else "")
        if not self.is_bound:
            self._ask_about_initial_time()

    def clean_sender(self) -> str:
        chosen = str(self.cleaned_data.get("sender") or "")
        if chosen and chosen not in conf.options().sender_list():
            raise ValidationError(f"{chosen} is no longer an allowed sender: choose another.")
        return chosen

    def _choice(self, name: str) -> forms.ChoiceField:
        return cast(forms.ChoiceField, self.fields[name])

    # --- initial values ----------------------------------------------------------------------

    def _initial(self, user: Any) -> dict[str, Any]:
        item = self.announcement
        if item is None:
            zone = default_zone(user)
            tomorrow = django_timezone.now().astimezone(zone_or_none(zone)) + timedelta(days=1)
            return {
                "timezone": zone,
                "at_local": tomorrow.replace(hour=9, minute=0).strftime("%Y-%m-%dT%H:%M"),
                "channels": ["email"],
            }
        built = builder_of(item.cron) if item.cron else None
        initial: dict[str, Any] = {
            "title": item.title,
            "body": item.body,
            "audience_kind": item.audience_kind,
            "department": self._names_if(AudienceKind.DEPARTMENT),
            "location": self._names_if(AudienceKind.LOCATION),
            "recipients": list(item.recipients.values_list("pk", flat=True)),
            "channels": list(item.channels),
            "places": list(item.places.values_list("pk", flat=True)),
            "mandatory": item.mandatory,
            "requires_ack": item.requires_ack,
            "remind_after_days": item.remind_after_days,
            "remind_times": item.remind_times,
            "sender": item.sender,
            "working_hours": item.working_hours,
            "schedule_kind": item.schedule_kind,
            "at_local": item.at_local,
            "at_choice": f"fold:{item.at_fold}" if item.at_fold is not None else "",
            "cron": item.cron,
            "timezone": item.timezone,
            "per_recipient_zone": item.per_recipient_zone,
        }
        if built is not None:
            initial["repeat"] = built.repeat
            if built.repeat != "custom":
                initial.update(
                    time_of_day=built.time_of_day,
                    weekdays=list(built.weekdays),
                    month_day=built.month_day,
                )
        return initial

    def _names_if(self, kind: AudienceKind) -> list[str]:
        item = self.announcement
        if item is None or item.audience_kind != kind:
            return []
        return list(item.audience_values or [])

    def _value_choices(self, column: str, saved: list[str]) -> list[tuple[str, str]]:
        """Those of the employees table, and any saved name nobody has now (so an edit keeps
        it)."""
        choices = _counted(column)
        known = {value for value, _ in choices}
        choices += [(name, f"{name} (nobody there now)") for name in saved if name not in known]
        return choices

    def _ask_about_initial_time(self) -> None:
        item = self.announcement
        if item is None or item.schedule_kind != ScheduleKind.ONCE or item.per_recipient_zone:
            return
        zone = zone_or_none(item.timezone)
        try:
            at = parse_local(item.at_local)
        except ScheduleError:
            return
        if zone is not None:
            self.time_question = time_question(at, zone)

    # --- for the template ---------------------------------------------------------------------

    def channel_options(self) -> list[ChannelOption]:
        """The checkboxes: ticked as posted (or saved); availability as the field allows."""
        selected = (
            self.data.getlist("channels") if self.is_bound else self.initial.get("channels", [])
        )
        return [
            replace(
                option,
                checked=option.value in selected,
                available=option.value in self.allowed_channels,
            )
            for option in channel_options([])
        ]

    def zone_value(self) -> str:
        if self.is_bound:
            return str(self.data.get("timezone", ""))
        return str(self.initial.get("timezone", ""))

    def zone_options(self) -> list[tuple[str, list[str]]]:
        here = employee_zones()
        common = [zone for zone in COMMON_ZONES if zone not in here]
        groups = [("Where your employees are", here), ("Other common zones", common)]
        current = self.zone_value()
        known = {*here, *common, OTHER_ZONE, ""}
        if current not in known:
            groups.insert(0, ("Chosen", [current]))
        return [(label, zones) for label, zones in groups if zones]

    def chosen_people(self) -> list[Employee]:
        if self.is_bound:
            ids = [v for v in self.data.getlist("recipients") if str(v).isdigit()]
        else:
            ids = [str(pk) for pk in self.initial.get("recipients", [])]
        return list(Employee.objects.filter(pk__in=ids).order_by("name")[:500])

    def chosen_names(self, name: str) -> list[str]:
        """The departments (or locations) selected, as posted or saved."""
        if self.is_bound:
            return [str(value) for value in self.data.getlist(name)]
        return [str(value) for value in self.initial.get(name) or []]

    def chosen_departments(self) -> list[str]:
        return self.chosen_names("department")

    def chosen_locations(self) -> list[str]:
        return self.chosen_names("location")

    def at_choice_value(self) -> str:
        if self.is_bound:
            return str(self.data.get("at_choice", ""))
        return str(self.initial.get("at_choice", ""))

    # --- checking -----------------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self._clean_audience(data)
        zone_name = self._clean_zone(data)
        if data.get("schedule_kind") == ScheduleKind.CRON:
            data["cron_value"] = self._clean_cron(data)
            data["at_value"], data["fold_value"] = "", None
        else:
            data["cron_value"] = ""
            data["at_value"], data["fold_value"] = self._clean_at(data, zone_name)
        return data

    def _clean_audience(self, data: dict[str, Any]) -> None:
        kind = data.get("audience_kind")
        if kind == AudienceKind.DEPARTMENT and not data.get("department"):
            self.add_error("department", "Choose at least one department.")
        if kind == AudienceKind.LOCATION and not data.get("location"):
            self.add_error("location", "Choose at least one location.")
        if kind == AudienceKind.LIST and not data.get("recipients"):
            self.add_error("recipients", "Add at least one person.")

    def _clean_zone(self, data: dict[str, Any]) -> str:
        if data.get("per_recipient_zone"):
            data["zone_value"] = ""
            return ""
        name = data.get("timezone") or ""
        if name == OTHER_ZONE:
            name = (data.get("timezone_other") or "").strip()
        data["zone_value"] = name
        if not name:
            self.add_error("timezone", "Choose a time zone.")
        elif zone_or_none(name) is None:
            self.add_error(
                "timezone", f"“{name}” is not a time zone Bulletin knows, e.g. Europe/London."
            )
        return name

    def _clean_cron(self, data: dict[str, Any]) -> str:
        repeat = data.get("repeat") or "custom"
        if repeat == "custom":
            cron = (data.get("cron") or "").strip()
            if not cron:
                self.add_error("cron", "Write a cron expression, or choose a repeat above.")
                return ""
            try:
                return CronRule(cron).expr
            except ScheduleError as exc:
                self.add_error("cron", str(exc))
                return cron
        try:
            cron = build_cron(
                repeat,
                data.get("time_of_day") or "",
                data.get("weekdays") or [],
                data.get("month_day"),
            )
        except BuilderError as exc:
            self.add_error(exc.field, str(exc))
            return ""
        self.data["cron"] = cron  # show the expression the builder wrote
        return cron

    def _clean_at(self, data: dict[str, Any], zone_name: str) -> tuple[str, int | None]:
        raw = (data.get("at_local") or "").strip()
        if not raw:
            self.add_error("at_local", "Choose the date and time to send it.")
            return "", None
        try:
            at = parse_local(raw)
        except ScheduleError as exc:
            self.add_error("at_local", str(exc))
            return raw, None
        zone = zone_or_none(zone_name)
        if data.get("per_recipient_zone") or zone is None:
            return at.isoformat(timespec="minutes"), None
        self.time_question = time_question(at, zone)
        if self.time_question is None:
            return at.isoformat(timespec="minutes"), None
        answer = self.time_question.answer(data.get("at_choice") or "")
        if answer is None:
            self.add_error("at_local", "Choose which of the two times below you mean.")
            return raw, None
        self.data["at_local"] = answer.at_local
        return answer.at_local, answer.at_fold

    # --- results ------------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The Announcement fields this form sets (recipients and places are separate)."""
        data = self.cleaned_data
        kind = data["audience_kind"]
        names = {
            AudienceKind.DEPARTMENT: data.get("department"),
            AudienceKind.LOCATION: data.get("location"),
        }
        return {
            "title": data["title"],
            "body": data["body"],
            "audience_kind": kind,
            "audience_values": list(names.get(kind) or []),
            "channels": list(data.get("channels") or []),
            "mandatory": bool(data.get("mandatory")),
            "requires_ack": bool(data.get("requires_ack")),
            # Reminders only for what asks to be acknowledged; none without a number of days.
            "remind_after_days": data.get("remind_after_days")
            if data.get("requires_ack")
            else None,
            "remind_times": (data.get("remind_times") or 0)
            if data.get("requires_ack") and data.get("remind_after_days")
            else 0,
            "sender": data.get("sender") or "",
            "working_hours": bool(data.get("working_hours")),
            "schedule_kind": data["schedule_kind"],
            "cron": data["cron_value"],
            "at_local": data["at_value"],
            "at_fold": data["fold_value"],
            "timezone": data["zone_value"],
            "per_recipient_zone": bool(data.get("per_recipient_zone")),
        }

    def places_chosen(self) -> list[Place]:
        return list(self.cleaned_data.get("places") or [])

    def recipients_chosen(self) -> list[Employee]:
        if self.cleaned_data.get("audience_kind") != AudienceKind.LIST:
            return []
        return list(self.cleaned_data.get("recipients") or [])

    def add_service_errors(self, error: ValidationError, *, skip: Collection[str] = ()) -> None:
        """Put the service's errors on the fields they name (the rest above the form), but
        not on the fields in ``skip``."""
        if not hasattr(error, "error_dict"):
            for message in error.messages:
                self.add_error(None, message)
            return
        kind = self.data.get("audience_kind")
        for name, messages in error.message_dict.items():
            target = _FIELD_OF.get(name)
            if name == "audience_values":
                target = "location" if kind == AudienceKind.LOCATION else "department"
            if name == "cron" and self.data.get("repeat") not in ("custom", None, ""):
                target = "cron"
            if (target or "__all__") in skip:
                continue
            for message in messages:
                self.add_error(target, _sentence(message))


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "?", "!")) else ".")


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Employee CSV file",
        help_text="UTF-8 CSV with the header email,name,department,location,timezone "
        "(an “active” column and other columns are allowed).",
    )


def changed_fields(announcement: Announcement, values: dict[str, Any]) -> dict[str, Any]:
    """The values that differ from what is saved (the order of channels and of audience names
    does not count)."""

    def same(name: str, value: Any) -> bool:
        saved = getattr(announcement, name)
        if name in ("channels", "audience_values"):
            return sorted(saved or []) == sorted(value)
        return bool(saved == value)

    return {name: value for name, value in values.items() if not same(name, value)}
