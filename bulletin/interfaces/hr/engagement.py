"""Who has read an announcement: HR's engagement figures, read in one place.

For each occurrence, and in total:

- **delivered** by channel: sent deliveries, from the kept counts (``ledger/counts.py``), never
  a ``GROUP BY`` over the ledger;
- **reached**: distinct people with a sent delivery on any channel (served by
  ``delivery_occurrence_state_idx``: occurrence, state);
- **opened** and **acknowledged**: people with an ``Engagement`` row saying so (served by
  ``engagement_identity``: occurrence, employee), whichever channel it came through.

A total adds up its occurrences: a person sent a weekly announcement four times is four
receipts, each opened or not. After retention prunes an occurrence's sent deliveries, who was
reached is no longer in the ledger: that occurrence's ``reached`` is unknown (``None``), its
delivered counts stay (kept), and its rates are not given.

The breakdowns by department and location count only people reached (and of them, who opened
and acknowledged); a group of fewer than ``SMALLEST_GROUP`` people is reported as such, without
its figures, so nobody's reading habits can be picked out of a small team.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, QuerySet
from django.db.models.functions import Trunc

from bulletin.dispatch.ledger import counts
from bulletin.domain.engagement import Engagement
from bulletin.domain.models import Announcement, Delivery, DeliveryState, Employee, Occurrence

LARGEST = 2**63 - 1  # the database's largest id
SMALLEST_GROUP = 5  # a group under this many people reached is shown as "fewer than 5"
GROUPINGS = {"department": "department", "location": "location"}  # name → employee column
BY_LANGUAGE = "language"  # by the delivery's language: what each person was sent


class Rates:
    """Opened and acknowledged as shares of the people reached (a send's or a group's)."""

    reached: int | None
    opened: int
    acknowledged: int

    @property
    def opened_rate(self) -> float | None:
        return _rate(self.opened, self.reached)

    @property
    def acknowledged_rate(self) -> float | None:
        return _rate(self.acknowledged, self.reached)

    @property
    def opened_percent(self) -> str:
        return percent(self.opened_rate)

    @property
    def acknowledged_percent(self) -> str:
        return percent(self.acknowledged_rate)


@dataclass
class Figures(Rates):
    """One occurrence's engagement, or a sum of them."""

    delivered: dict[str, int] = field(default_factory=dict)  # channel → sent
    reached: int | None = 0  # None: some of its sent deliveries were pruned
    opened: int = 0
    acknowledged: int = 0

    def __add__(self, other: Figures) -> Figures:
        delivered = dict(self.delivered)
        for channel, n in other.delivered.items():
            delivered[channel] = delivered.get(channel, 0) + n
        reached = (
            None if self.reached is None or other.reached is None else self.reached + other.reached
        )
        opened, acknowledged = self.opened + other.opened, self.acknowledged + other.acknowledged
        # Channels in name order: the counts come in whatever order the database reads them.
        return Figures(dict(sorted(delivered.items())), reached, opened, acknowledged)

    @property
    def sent(self) -> int:
        return sum(self.delivered.values())


def _rate(part: int, whole: int | None) -> float | None:
    """A share of the people reached (0 to 1), or None when that is unknown or nobody."""
    if not whole:
        return None
    return round(min(part / whole, 1.0), 4)


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def occurrences_of(item: Announcement, occurrence: Occurrence | None = None) -> QuerySet[Any]:
    """The ids of the announcement's occurrences (or just one), as a subquery. Reminders are
    not sends of their own here: who they reach was reached by what they remind of, and
    their readings count for it (bulletin.dispatch.reminders)."""
    found = Occurrence.objects.filter(announcement=item, reminder_of__isnull=True)
    if occurrence is not None:
        found = found.filter(pk=occurrence.pk)
    return found.values("id")


def sent_to_people(occurrences: QuerySet[Any]) -> QuerySet[Delivery]:
    """Sent deliveries to a person (alone or through a place) of these occurrences."""
    return Delivery.objects.filter(
        occurrence_id__in=occurrences, state=DeliveryState.SENT, employee__isnull=False
    )


def delivered_by_occurrence(item: Announcement) -> tuple[dict[int, dict[str, int]], set[int]]:
    """Sent deliveries per occurrence and channel (kept counts), and the occurrences whose
    sent deliveries were partly pruned (who was reached is no longer known there)."""
    delivered: dict[int, dict[str, int]] = {}
    pruned: set[int] = set()
    # A reminder's messages are delivered for the occurrence it reminds of.
    reminders = Occurrence.objects.filter(announcement=item, reminder_of__isnull=False)
    roots = {pk: root or pk for pk, root in reminders.values_list("pk", "reminder_of")}
    for count in counts.of_announcements([item.pk]):
        if count.state != DeliveryState.SENT:
            continue
        occurrence_id = roots.get(count.occurrence_id, count.occurrence_id)
        channels = delivered.setdefault(occurrence_id, {})
        channels[count.channel] = channels.get(count.channel, 0) + count.total
        if count.pruned:
            pruned.add(occurrence_id)
    ordered = {pk: dict(sorted(channels.items())) for pk, channels in delivered.items()}
    return ordered, pruned


def reached_by_occurrence(occurrences: QuerySet[Any]) -> dict[int, int]:
    rows = (
        sent_to_people(occurrences)
        .order_by()
        .values("occurrence_id")
        .annotate(people=Count("employee_id", distinct=True))
    )
    return {row["occurrence_id"]: row["people"] for row in rows}


def engaged_by_occurrence(occurrences: QuerySet[Any]) -> dict[int, tuple[int, int]]:
    """(opened, acknowledged) per occurrence: Count of a column counts its non-null values."""
    rows = (
        Engagement.objects.filter(occurrence_id__in=occurrences)
        .order_by()
        .values("occurrence_id")
        .annotate(opened=Count("opened_at"), acknowledged=Count("acknowledged_at"))
    )
    return {row["occurrence_id"]: (row["opened"], row["acknowledged"]) for row in rows}


@dataclass
class Summary:
    total: Figures
    per_occurrence: dict[int, Figures]
    people_counted: bool = True  # False: too many deliveries to count people here


def figures(
    item: Announcement, occurrence: Occurrence | None = None, *, sent_up_to: int | None = None
) -> Summary:
    """The announcement's figures per occurrence (those with any) and in total. Counting
    people reached reads every sent delivery; with ``sent_up_to``, it is left out (reached
    None) when there are more than that many, so a page stays as quick at any size."""
    which = occurrences_of(item, occurrence)
    delivered, pruned = delivered_by_occurrence(item)
    if occurrence is not None:
        delivered = {pk: n for pk, n in delivered.items() if pk == occurrence.pk}
    sent = sum(sum(channels.values()) for channels in delivered.values())
    counted = sent_up_to is None or sent <= sent_up_to
    reached = reached_by_occurrence(which) if counted else {}
    engaged = engaged_by_occurrence(which)
    per_occurrence = {
        pk: Figures(
            delivered=delivered.get(pk, {}),
            reached=None if pk in pruned or not counted else reached.get(pk, 0),
            opened=engaged.get(pk, (0, 0))[0],
            acknowledged=engaged.get(pk, (0, 0))[1],
        )
        for pk in sorted(set(reached) | set(engaged) | set(delivered))
    }
    return Summary(sum(per_occurrence.values(), Figures()), per_occurrence, counted)


# --- by department and location ---------------------------------------------------------------


@dataclass(frozen=True)
class Group(Rates):
    """People reached in one department or location; figures only for a large enough group."""

    name: str
    reached: int
    opened: int
    acknowledged: int

    @property
    def fewer_than_5(self) -> bool:
        return self.reached < SMALLEST_GROUP


def _reached_pairs(also: str = "") -> str:
    """SQL for the (occurrence, employee) pairs reached: a person sent it on two channels is
    reached once. The occurrences come as a subquery on the announcement's id, between two
    ids: one occurrence's twice, or 0 and the largest (every one), so the statement and its
    parameters' types stay the same either way. ``also``: more of the delivery's columns."""
    return (
        f"SELECT DISTINCT d.occurrence_id, d.employee_id{also} FROM {Delivery._meta.db_table} d "
        f"WHERE d.occurrence_id IN (SELECT o.id FROM {Occurrence._meta.db_table} o "
        "WHERE o.announcement_id = %s AND o.id BETWEEN %s AND %s AND o.reminder_of_id IS NULL) "
        "AND d.state = %s AND d.employee_id IS NOT NULL"
    )


def pair_parameters(item: Announcement, occurrence: Occurrence | None) -> list[Any]:
    lowest, highest = (occurrence.pk, occurrence.pk) if occurrence is not None else (0, LARGEST)
    return [item.pk, lowest, highest, DeliveryState.SENT.value]


def groups_sql(by: str) -> str:
    """The breakdown's statement: people reached, opened and acknowledged per value of the
    employee column ``by`` names; each pair's engagement found by its unique index."""
    if by == BY_LANGUAGE:
        return _language_groups_sql()
    column = GROUPINGS[by]  # never user input in SQL: only the fixed names above
    return (
        f"SELECT COALESCE(e.{column}, ''), COUNT(*), COUNT(g.opened_at), COUNT(g.acknowledged_at) "
        f"FROM ({_reached_pairs()}) r "
        f"JOIN {Employee._meta.db_table} e ON e.id = r.employee_id "
        f"LEFT JOIN {Engagement._meta.db_table} g "
        "ON g.occurrence_id = r.occurrence_id AND g.employee_id = r.employee_id "
        f"GROUP BY COALESCE(e.{column}, '')"
    )


def _language_groups_sql() -> str:
    """By the language of the text each person was sent (the delivery's, after the fallback),
    not the one they prefer now: "" is a delivery from before languages were recorded, which
    sent the announcement's only text, in its default language."""
    return (
        "SELECT r.language, COUNT(*), COUNT(g.opened_at), COUNT(g.acknowledged_at) "
        f"FROM ({_reached_pairs(', d.language')}) r "
        f"LEFT JOIN {Engagement._meta.db_table} g "
        "ON g.occurrence_id = r.occurrence_id AND g.employee_id = r.employee_id "
        "GROUP BY r.language"
    )


def groups(item: Announcement, by: str, occurrence: Occurrence | None = None) -> list[Group]:
    """Per department, location or language (``by``), largest first: one query."""
    with connection.cursor() as cursor:
        cursor.execute(groups_sql(by), pair_parameters(item, occurrence))
        rows = cursor.fetchall()
    found = [Group(str(name), int(n), int(o), int(a)) for name, n, o, a in rows]
    if by == BY_LANGUAGE:
        found = _unrecorded_as_default(found, item.language)
    return sorted(found, key=lambda group: (-group.reached, group.name))


def _unrecorded_as_default(found: list[Group], default: str) -> list[Group]:
    totals: dict[str, list[int]] = {}
    for group in found:
        total = totals.setdefault(group.name or default, [0, 0, 0])
        total[0] += group.reached
        total[1] += group.opened
        total[2] += group.acknowledged
    return [Group(name, *total) for name, total in totals.items()]


def sent_by_language(item: Announcement) -> dict[str, int]:
    """Sent deliveries (every channel, places' too) per language of their text: a GROUP BY
    over the announcement's sent deliveries, read through the (occurrence, state) index. It
    reads each of them, as counting people reached does, so callers cap it the same way
    (``figures(sent_up_to=…)``)."""
    rows = (
        Delivery.objects.filter(
            occurrence_id__in=Occurrence.objects.filter(announcement=item).values("id"),
            state=DeliveryState.SENT,
        )
        .order_by()
        .values("language")
        .annotate(n=Count("id"))
    )
    found: dict[str, int] = {}
    for row in rows:
        name = row["language"] or item.language
        found[name] = found.get(name, 0) + row["n"]
    return found


# --- not yet acknowledged -------------------------------------------------------------------


@dataclass(frozen=True)
class Unacknowledged:
    """A person reached by an occurrence who has not acknowledged it (on any channel)."""

    occurrence_id: int
    employee_id: int
    name: str
    email: str
    department: str
    location: str


def _unacknowledged_sql(columns: str) -> str:
    return (
        f"SELECT {columns} FROM ({_reached_pairs()}) r "
        f"JOIN {Employee._meta.db_table} e ON e.id = r.employee_id "
        f"JOIN {Occurrence._meta.db_table} o ON o.id = r.occurrence_id "
        f"WHERE NOT EXISTS (SELECT 1 FROM {Engagement._meta.db_table} g "
        "WHERE g.occurrence_id = r.occurrence_id AND g.employee_id = r.employee_id "
        "AND g.acknowledged_at IS NOT NULL)"
    )


ORDER = " ORDER BY o.fire_at DESC, r.occurrence_id, e.name, e.id"


class NotAcknowledged:
    """The people reached who have not acknowledged, newest occurrence first, then by name:
    a sequence Django's Paginator can page (a COUNT, then LIMIT/OFFSET for one page)."""

    def __init__(self, item: Announcement, occurrence: Occurrence | None = None) -> None:
        self.item, self.occurrence = item, occurrence
        self.parameters = pair_parameters(item, occurrence)

    def count(self) -> int:
        statement = f"SELECT COUNT(*) FROM ({_unacknowledged_sql('r.employee_id')}) n"
        with connection.cursor() as cursor:
            cursor.execute(statement, self.parameters)
            return int(cursor.fetchone()[0])

    def __getitem__(self, which: slice) -> list[Unacknowledged]:
        start, stop = which.start or 0, which.stop
        columns = "r.occurrence_id, e.id, e.name, e.email, e.department, e.location"
        statement = _unacknowledged_sql(columns) + ORDER + " LIMIT %s OFFSET %s"
        with connection.cursor() as cursor:
            cursor.execute(statement, [*self.parameters, stop - start, start])
            rows = cursor.fetchall()
        return [Unacknowledged(o, e, n, m, d or "", w or "") for o, e, n, m, d, w in rows]

    def __len__(self) -> int:
        return self.count()


def not_acknowledged_sql(columns: str) -> str:
    """The whole list's statement with these select ``columns`` (for the CSV export), in the
    page's order; its parameters are ``NotAcknowledged(...).parameters``."""
    return _unacknowledged_sql(columns) + ORDER


def fire_times(ids: Sequence[int]) -> dict[int, Occurrence]:
    return {o.pk: o for o in Occurrence.objects.filter(pk__in=list(ids))}


# --- over time -------------------------------------------------------------------------------


def first_and_last(
    item: Announcement, occurrence: Occurrence | None = None
) -> tuple[datetime | None, datetime | None]:
    """When the first person opened it and when the last opened or acknowledged it."""
    rows = Engagement.objects.filter(occurrence_id__in=occurrences_of(item, occurrence))
    found = rows.aggregate(
        first=Min("opened_at"), opened=Max("opened_at"), acked=Max("acknowledged_at")
    )
    last = max((t for t in (found["opened"], found["acked"]) if t is not None), default=None)
    return found["first"], last


def per_bucket(
    item: Announcement, occurrence: Occurrence | None, column: str, unit: str, zone: tzinfo
) -> dict[datetime, int]:
    """How many engagements have ``column`` (opened_at or acknowledged_at) in each ``unit``
    (hour, day, week) of ``zone``'s clock: counted by the database, one row per bucket."""
    rows = (
        Engagement.objects.filter(
            occurrence_id__in=occurrences_of(item, occurrence), **{f"{column}__isnull": False}
        )
        .annotate(bucket=Trunc(column, unit, tzinfo=zone))
        .order_by()
        .values("bucket")
        .annotate(n=Count("id"))
    )
    return {row["bucket"].astimezone(UTC): row["n"] for row in rows}
