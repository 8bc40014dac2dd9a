"""Small JSON endpoints the compose page calls while someone types (fetch, debounced).

- ``/hr/preview/``: the body as the server's *sanitised* HTML (``markdown_to_html``: raw HTML
  off, then nh3), plus a Slack/Teams-like plain rendering. The page inserts only this HTML.
- ``/hr/audience/``: how many people the audience reaches now and up to five names, using
  ``bulletin.dispatch.audience.audience_of`` (active employees only), as fan-out will. Several
  ``department`` (or ``location``) parameters count everyone in any of them.
- ``/hr/fire-times/``: the next ten fire times in the chosen zone with DST notes, or the
  gap/fold question for a one-off time, or the reason there are none; with "within working
  hours" ticked, who receives the next send later and why (``holds.preview``).
- ``/hr/people/``: active employees matching a search, for the explicit-people picker.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from bulletin.channels.base import Message, PermanentError, Recipient
from bulletin.channels.render import render_html
from bulletin.channels.slack_blocks import preview_text, slack_message
from bulletin.channels.teams_card import PAYLOAD_LIMIT, teams_card
from bulletin.conf import site_link
from bulletin.dispatch.announcements import parse_local
from bulletin.dispatch.audience import audience_of, unmatched
from bulletin.domain.models import PERSON_CHANNELS, Announcement, AudienceKind, Channel, Employee
from bulletin.interfaces.hr import holds
from bulletin.interfaces.hr.access import hr_view
from bulletin.interfaces.hr.forms import OTHER_ZONE
from bulletin.interfaces.hr.present import person_name
from bulletin.interfaces.hr.schedule import (
    BuilderError,
    build_cron,
    describe_cron,
    rule_for,
    time_question,
    upcoming,
    zone_or_none,
)
from bulletin.scheduling.rules import CronRule, ScheduleError

MAX_PREVIEW_CHARS = 200_000
SAMPLE_SIZE = 5
FIRES_SHOWN = 10
_ON = {"on", "true", "1", "yes"}


def _sample_reader(request: HttpRequest) -> Recipient:
    """Who the preview is personalised for: the person writing it."""
    user: Any = request.user
    employee = getattr(user, "employee", None)
    if employee is not None:
        return Recipient(email=employee.email, name=employee.name, timezone=employee.timezone)
    return Recipient(email=user.email or "", name=person_name(user), timezone="UTC")


@hr_view("add_announcement", json=True)
@require_POST
def preview(request: HttpRequest) -> JsonResponse:
    body = request.POST.get("body", "")
    title = request.POST.get("title", "")
    if len(body) > MAX_PREVIEW_CHARS:
        return JsonResponse({"error": "The text is too long to preview."}, status=400)
    reader = _sample_reader(request)
    chat, limits = _chat_preview(title, body, reader) if body.strip() else ("", [])
    return JsonResponse(
        {
            "title": " ".join(title.split()),
            "html": render_html(body, reader),
            "chat": chat,
            "limits": limits,
            "reader": reader.name,
        }
    )


def _chat_preview(title: str, body: str, reader: Recipient) -> tuple[str, list[str]]:
    """Slack's rendition as text, cut where Slack will cut, and a sentence per channel on
    whether the text fits (bulletin.channels.slack_blocks, .teams_card)."""
    message = Message("preview", title, "", "", body=body, recipient=reader, web_url=site_link("/"))
    try:
        slack = slack_message(message)
    except PermanentError:
        return "", []
    teams = teams_card(message)
    return preview_text(slack), [
        _fits("Slack", slack.cut, slack.shown_chars, slack.body_chars, "its limits"),
        _fits("Teams", teams.cut, teams.shown_chars, teams.body_chars, f"{PAYLOAD_LIMIT:,} bytes"),
    ]


def _fits(channel: str, cut: bool, shown: int, whole: int, limit: str) -> str:
    if not cut:
        return f"{channel}: the whole text fits ({whole:,} characters)."
    return (
        f"{channel}: shows the first {shown:,} of {whole:,} characters ({limit}), then "
        "a “Read the whole announcement” link."
    )


def audience_from(params: Any) -> QuerySet[Employee]:
    """The people an audience choice reaches now, by the same rule fan-out uses."""
    kind = params.get("audience_kind") or AudienceKind.ALL
    if kind == AudienceKind.LIST:
        ids = [value for value in params.getlist("recipients") if str(value).isdigit()]
        return Employee.objects.filter(active=True, pk__in=ids)
    column = "location" if kind == AudienceKind.LOCATION else "department"
    names = [name.strip() for name in params.getlist(column) if name.strip()]
    if kind in (AudienceKind.DEPARTMENT, AudienceKind.LOCATION) and not names:
        return Employee.objects.none()
    return audience_of(Announcement(audience_kind=kind, audience_values=names))


@hr_view("view_employee", json=True)
@require_safe
def audience(request: HttpRequest) -> JsonResponse:
    people = audience_from(request.GET)
    count = people.count()
    sample = list(people.order_by("name").values_list("name", flat=True)[:SAMPLE_SIZE])
    skipped = []
    if request.GET.get("mandatory") not in _ON:
        wanted = set(request.GET.getlist("channels"))
        for channel in PERSON_CHANNELS:
            if channel.value in wanted and channel != Channel.INAPP:
                n = people.filter(opt_outs__channel=channel.value).count()
                if n:
                    skipped.append({"channel": str(channel.label), "count": n})
    # Reaching nobody is allowed (a department still to be filled) but said, with why.
    problems = [] if count else _nobody(request.GET)
    return JsonResponse(
        {"count": count, "sample": sample, "opted_out": skipped, "problems": problems}
    )


def _nobody(params: Any) -> list[str]:
    kind = params.get("audience_kind") or AudienceKind.ALL
    if kind not in (AudienceKind.DEPARTMENT, AudienceKind.LOCATION):
        return ["this audience matches no active employee"]
    column = "location" if kind == AudienceKind.LOCATION else "department"
    names = [name.strip() for name in params.getlist(column) if name.strip()]
    return unmatched(Announcement(audience_kind=kind, audience_values=names)) if names else []


@hr_view("view_employee", json=True)
@require_safe
def people(request: HttpRequest) -> JsonResponse:
    query = request.GET.get("q", "").strip()
    if len(query) < 2:
        return JsonResponse({"results": []})
    found = (
        Employee.objects.filter(active=True)
        .filter(Q(name__icontains=query) | Q(email__icontains=query))
        .order_by("name")[:10]
    )
    results = [
        {
            "id": e.pk,
            "name": e.name,
            "email": e.email,
            "where": " · ".join(part for part in (e.department, e.location_id) if part),
        }
        for e in found
    ]
    return JsonResponse({"results": results})


def _zones_of(people: QuerySet[Employee]) -> list[str]:
    rows = people.values("timezone").annotate(n=Count("id")).order_by("-n", "timezone")
    return [row["timezone"] for row in rows[:20]]


@hr_view("add_announcement", json=True)
@require_safe
def fire_times(request: HttpRequest) -> JsonResponse:
    return JsonResponse(fire_times_answer(request.GET))


def fire_times_answer(params: Any) -> dict[str, Any]:
    """The schedule panel's content for the compose form's current values."""
    answer: dict[str, Any] = {"errors": {}, "fires": [], "question": None, "cron": ""}
    errors: dict[str, str] = answer["errors"]
    kind = params.get("schedule_kind") or "once"
    per_recipient = params.get("per_recipient_zone") in _ON
    fold: int | None = None
    at_local = ""
    if kind == "cron":
        cron = _cron_of(params, errors)
        answer["cron"] = cron
        if cron and "cron" not in errors:
            answer["description"] = describe_cron(cron)
    else:
        try:
            at_local = parse_local(params.get("at_local") or "").isoformat(timespec="minutes")
        except ScheduleError as exc:
            errors["at_local"] = (
                "Choose the date and time to send it." if not params.get("at_local") else str(exc)
            )
    zone_name, zone_note = _zone_of(params, per_recipient, errors)
    answer["zone"], answer["zone_note"] = zone_name, zone_note
    zone = zone_or_none(zone_name)
    if errors or zone is None:
        return answer
    if kind != "cron" and not per_recipient:
        question = time_question(parse_local(at_local), zone)
        if question is not None:
            chosen = question.answer(params.get("at_choice") or "")
            answer["question"] = {
                "kind": question.kind,
                "message": question.message,
                "choices": [{"value": c.value, "label": c.label} for c in question.choices],
                "chosen": chosen.value if chosen else "",
            }
            if chosen is None:
                return answer
            at_local, fold = chosen.at_local, chosen.at_fold
    now = timezone.now()
    try:
        rule = rule_for(kind, answer["cron"], at_local, per_recipient=per_recipient, fold=fold)
        fires = upcoming(rule, zone, now, FIRES_SHOWN)
    except ScheduleError as exc:
        errors["cron" if kind == "cron" else "at_local"] = str(exc)
        return answer
    answer["fires"] = [asdict(fire) for fire in fires]
    if not fires:
        answer["empty"] = (
            "That time has already passed." if kind != "cron" else "It never fires again."
        )
        return answer
    answer["waiting"] = holds.preview(
        _draft(params), audience_from(params), rule, zone, now, per_recipient=per_recipient
    )
    return answer


def _draft(params: Any) -> Announcement:
    return holds.draft_of(
        params,
        working_hours=params.get("working_hours") in _ON,
        mandatory=params.get("mandatory") in _ON,
    )


def _cron_of(params: Any, errors: dict[str, str]) -> str:
    repeat = params.get("repeat") or "custom"
    if repeat == "custom":
        cron = " ".join((params.get("cron") or "").split())
        if not cron:
            errors["cron"] = "Write a cron expression, or choose a repeat."
            return ""
    else:
        day = params.get("month_day") or ""
        try:
            cron = build_cron(
                repeat,
                params.get("time_of_day") or "",
                params.getlist("weekdays"),
                int(day) if day.isdigit() else None,
            )
        except BuilderError as exc:
            errors[exc.field] = str(exc)
            return ""
    try:
        return CronRule(cron).expr
    except ScheduleError as exc:
        errors["cron"] = str(exc)
        return cron


def _zone_of(params: Any, per_recipient: bool, errors: dict[str, str]) -> tuple[str, str]:
    if per_recipient:
        zones = _zones_of(audience_from(params))
        if not zones:
            return "UTC", "Nobody is in this audience yet; times are shown in UTC."
        others = len(zones) - 1
        note = f"Shown for {zones[0]}, where most of this audience is."
        if others:
            rest = ", ".join(zones[1:4]) + ("…" if others > 3 else "")
            note += (
                f" The other {others} zone{'s' if others > 1 else ''} ({rest}) each get their "
                f"own send at the same local time."
            )
        return zones[0], note
    name = params.get("timezone") or ""
    if name == OTHER_ZONE:
        name = (params.get("timezone_other") or "").strip()
    if not name:
        errors["timezone"] = "Choose a time zone."
    elif zone_or_none(name) is None:
        errors["timezone"] = f"“{name}” is not a time zone Bulletin knows, e.g. Europe/London."
    return name, ""
