import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from bulletin.conf import options
from bulletin.conf_email import SenderNotAllowed, allowed_sender
from bulletin.dispatch import announcements, lifecycle
from bulletin.dispatch.announcements import PLACE_ONLY
from bulletin.dispatch.audience import unmatched
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AudienceKind,
    Place,
    ScheduleKind,
)
from bulletin.domain.records import MAX_BODY_CHARS
from bulletin.interfaces.management.base import BulletinCommand

RECIPIENT_ZONE = "recipient"


AUDIENCE_FORMS = "all, department:NAME[,NAME...], location:NAME[,NAME...]"


def parse_audience(value: str) -> tuple[str, list[str]]:
    """``all``, or a kind and its comma-separated names (trimmed, blanks and repeats dropped)."""
    kind, _, rest = value.partition(":")
    if kind == AudienceKind.ALL and not rest:
        return AudienceKind.ALL, []
    names = list(dict.fromkeys(name.strip() for name in rest.split(",") if name.strip()))
    if kind in (AudienceKind.DEPARTMENT, AudienceKind.LOCATION) and names:
        return kind, names
    raise CommandError(f"--audience '{value}' is not one of {AUDIENCE_FORMS}")


def parse_places(value: str) -> list[Place]:
    places = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        channel, _, name = item.partition(":")
        place = Place.objects.filter(channel=channel, name=name).first()
        if place is None:
            known = ", ".join(str(p) for p in Place.objects.all()) or "none configured"
            raise CommandError(f"--places: no place '{item}' (known: {known})")
        places.append(place)
    return places


def parse_channels(value: str, places: list[Place]) -> list[str]:
    """Person channels to store; teams/webhook are accepted when a matching place is given."""
    channels = [c.strip() for c in value.split(",") if c.strip()]
    for channel in set(channels) & set(PLACE_ONLY):
        if not any(place.channel == channel for place in places):
            raise CommandError(f"--channels {channel} needs --places {channel}:NAME")
    return [c for c in channels if c not in PLACE_ONLY]


def parse_sender(value: str) -> str:
    """ "" (DEFAULT_FROM_EMAIL), or the entry of BULLETIN_SENDERS with that address."""
    if not value.strip():
        return ""
    try:
        return allowed_sender(value.strip(), options().sender_list())
    except SenderNotAllowed as exc:
        raise CommandError(f"--sender: {exc}") from None


class Command(BulletinCommand):
    help = (
        "Create and schedule an announcement (or, when approval is required, submit it for "
        "approval); prints its id."
    )
    option_names = {
        "title": "--title",
        "body": "--body-file",
        "cron": "--cron",
        "at_local": "--at",
        "at_fold": "--fold",
        "timezone": "--tz",
        "audience_values": "--audience",
        "channels": "--channels",
        "places": "--places",
        "misfire_grace": "--grace-minutes",
        "sender": "--sender",
        "remind_after_days": "--remind-after-days",
        "remind_times": "--remind-times",
    }

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--title", required=True)
        parser.add_argument("--body-file", required=True, help="Markdown file, or - for stdin")
        when = parser.add_mutually_exclusive_group(required=True)
        when.add_argument("--cron", help="5-field cron expression, e.g. '0 9 * * 1-5'")
        when.add_argument("--at", help="one-off local date-time, e.g. 2027-01-04T09:00")
        parser.add_argument(
            "--fold",
            type=int,
            choices=(0, 1),
            help="an --at time that happens twice when clocks go back: 0 the first, 1 the second",
        )
        parser.add_argument(
            "--tz",
            required=True,
            help=f"IANA zone, or '{RECIPIENT_ZONE}' for each recipient's own local time",
        )
        parser.add_argument(
            "--audience",
            default="all",
            help="all | department:NAME[,NAME...] | location:NAME[,NAME...] (comma-separated: "
            "anyone in any of them when it is sent, including later joiners)",
        )
        parser.add_argument(
            "--channels",
            default="email",
            help="comma-separated: email, slack, inapp reach each person; teams and webhook "
            "need --places",
        )
        parser.add_argument(
            "--places", default="", help="comma-separated CHANNEL:NAME, e.g. slack:#general"
        )
        parser.add_argument(
            "--mandatory", action="store_true", help="ignore employees' channel opt-outs"
        )
        parser.add_argument(
            "--requires-ack", action="store_true", help="ask for acknowledgement in the inbox"
        )
        parser.add_argument(
            "--remind-after-days",
            type=int,
            default=None,
            help="with --requires-ack: remind whoever has not acknowledged, N days after each send",
        )
        parser.add_argument(
            "--remind-times", type=int, default=0, help="at most this many automatic reminders"
        )
        parser.add_argument(
            "--allow-empty",
            action="store_true",
            help="schedule it even if a department or location named has no active employee "
            "(a team still to be filled)",
        )
        parser.add_argument(
            "--sender",
            default="",
            help="the email's From, one of BULLETIN_SENDERS (default: DEFAULT_FROM_EMAIL)",
        )
        parser.add_argument(
            "--working-hours",
            action="store_true",
            help="deliver to each person within their working hours (their location's working "
            "week, public holidays, their leave); `bulletin send_now ID` sends what waits",
        )
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=60,
            help="how late an occurrence may still be sent after downtime",
        )
        parser.add_argument(
            "--send-late",
            action="store_true",
            help="send occurrences even when later than the grace",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        kind, names = parse_audience(opts["audience"])
        per_recipient = opts["tz"] == RECIPIENT_ZONE
        if opts["grace_minutes"] < 0:
            raise CommandError("--grace-minutes must not be negative")
        places = parse_places(opts["places"])
        channels = parse_channels(opts["channels"], places)
        sender = parse_sender(opts["sender"])
        announcement = Announcement(
            title=opts["title"],
            body=self._body(opts["body_file"]),
            audience_kind=kind,
            audience_values=names,
            channels=channels,
            mandatory=opts["mandatory"],
            requires_ack=opts["requires_ack"],
            remind_after_days=opts["remind_after_days"],
            remind_times=opts["remind_times"],
            sender=sender,
            working_hours=opts["working_hours"],
            schedule_kind=ScheduleKind.CRON if opts["cron"] else ScheduleKind.ONCE,
            cron=opts["cron"] or "",
            at_local=opts["at"] or "",
            at_fold=opts["fold"],
            timezone="" if per_recipient else opts["tz"],
            per_recipient_zone=per_recipient,
            misfire_grace=timedelta(minutes=opts["grace_minutes"]),
            send_late=opts["send_late"],
        )
        announcements.validate(announcement, places=places)  # its own words first
        if not opts["allow_empty"] and (problems := _misnamed(announcement)):
            raise CommandError(f"--audience: {'; '.join(problems)} (--allow-empty to keep it)")
        lifecycle.announce_from_console(announcement, places)
        if announcement.status == AnnouncementStatus.PENDING_APPROVAL:
            self.stdout.write(f"{announcement.pk} waiting for approval")
        else:
            self.stdout.write(str(announcement.pk))

    def _body(self, path: str) -> str:
        try:
            raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
            body = raw.decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"cannot read --body-file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"--body-file {path} is not UTF-8 text") from None
        if "\0" in body:
            raise CommandError(f"--body-file {path} contains a NUL character (not UTF-8 text?)")
        if len(body) > MAX_BODY_CHARS:
            raise CommandError(
                f"--body-file {path} has {len(body)} characters; at most {MAX_BODY_CHARS} "
                "are allowed"
            )
        return body


def _misnamed(announcement: Announcement) -> list[str]:
    """Each department or location named that no active employee has (with the closest)."""
    if announcement.audience_kind not in (AudienceKind.DEPARTMENT, AudienceKind.LOCATION):
        return []
    return unmatched(announcement)
