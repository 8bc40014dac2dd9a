"""Prometheus metrics, read from the database at scrape time.

The database is the single source of truth, and in the scale-out setup the web process that
answers /metrics is not the process that sends: so nothing here counts in memory. Each scrape
runs a handful of aggregate queries (deliveries by state and channel, attempts by channel and
outcome); scrape every 15 s or slower on a large ledger.

Counters come from rows, so they are only as old as the rows. ``bulletin_retries_total``,
``bulletin_leases_expired_total`` (its interrupted attempts) and ``bulletin_send_seconds`` count
Attempt rows: when ``bulletin prune`` deletes old deliveries with their attempts, these fall,
and Prometheus treats a counter that falls as a reset (``rate()`` and ``increase()`` carry on
correctly; a raw value plotted across a prune drops). ``bulletin_duplicates_prevented_total``
and the requeued-claims part of ``bulletin_leases_expired_total`` come from Tally rows, which
prune does not touch.

``bulletin_announcement_opened`` and ``bulletin_announcement_acknowledged`` (people, by
announcement id) are one aggregate over Engagement. Engagement grows with every send, so they
cover only announcements with an occurrence that fired in the last ``ENGAGEMENT_DAYS`` days: a
scrape then reads the recent occurrences' rows (by the engagement_identity index), whatever
the history; an older announcement's series stops (HR's page and the API still have it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bulletin.dispatch.ledger import counts
from bulletin.domain.engagement import Engagement
from bulletin.domain.models import (
    AttemptOutcome,
    Channel,
    DeliveryState,
    Occurrence,
    Tallied,
    Tally,
)
from bulletin.domain.tallies import SEND_BUCKETS
from bulletin.interfaces.health import duplicates_prevented, lag


def _deliveries() -> Metric:
    found: Counter[tuple[str, str]] = Counter()
    for count in counts.kept():  # kept, not computed; pruned ones included (they happened)
        found[(count.state, count.channel)] += count.total
    gauge = GaugeMetricFamily(
        "bulletin_deliveries", "Deliveries by state and channel.", labels=["state", "channel"]
    )
    for state in DeliveryState:
        for channel in Channel:
            gauge.add_metric(
                [state.value, channel.value], found.get((state.value, channel.value), 0)
            )
    return gauge


def _duplicates() -> Metric:
    counter = CounterMetricFamily(
        "bulletin_duplicates_prevented",
        "Second copies a unique key or a conditional write refused, by reason.",
        labels=["reason"],
    )
    for reason, total in duplicates_prevented().items():
        counter.add_metric([reason], total)
    return counter


def _send_seconds(timings: list[counts.Timing]) -> Metric:
    """Attempt durations by channel (kept counts: pruned attempts still count). A batch sent
    together (webhooks, the inbox) records one start for all its attempts, so each of those
    measures its batch so far. Interrupted sends were ended by the reaper, not by a send."""
    by_channel: dict[str, list[counts.Timing]] = {}
    for timing in timings:
        if timing.outcome != AttemptOutcome.INTERRUPTED:
            by_channel.setdefault(timing.channel, []).append(timing)
    histogram = HistogramMetricFamily(
        "bulletin_send_seconds", "Duration of send attempts, by channel.", labels=["channel"]
    )
    for channel, found in sorted(by_channel.items()):
        histogram.add_metric([channel], _cumulative(found), sum(t.seconds for t in found))
    return histogram


def _cumulative(found: list[counts.Timing]) -> list[tuple[str, float]]:
    per_bucket = Counter[int]()
    for timing in found:
        per_bucket[timing.bucket] += timing.attempts
    running, buckets = 0, []
    for n, bound in enumerate(SEND_BUCKETS):
        running += per_bucket[n]
        buckets.append((str(bound), float(running)))
    return [*buckets, ("+Inf", float(running + per_bucket[len(SEND_BUCKETS)]))]


def _retries(timings: list[counts.Timing]) -> Metric:
    found = Counter[str]()
    for timing in timings:
        if timing.outcome == AttemptOutcome.RETRY:
            found[timing.channel] += timing.attempts
    counter = CounterMetricFamily(
        "bulletin_retries", "Attempts that ended in a temporary error.", labels=["channel"]
    )
    for channel in Channel:
        counter.add_metric([channel.value], found.get(channel.value, 0))
    return counter


def _leases_expired(timings: list[counts.Timing]) -> Metric:
    interrupted = sum(t.attempts for t in timings if t.outcome == AttemptOutcome.INTERRUPTED)
    requeued = Tally.objects.filter(name=Tallied.CLAIM_REQUEUED).values_list("total", flat=True)
    return CounterMetricFamily(
        "bulletin_leases_expired",
        "Leases that expired: sends interrupted mid-way plus claims put back unsent.",
        value=interrupted + (requeued.first() or 0),
    )


def _lag() -> Iterator[Metric]:
    behind = lag()
    yield GaugeMetricFamily(
        "bulletin_planner_lag_seconds",
        "How long the most overdue scheduled announcement has waited to be planned.",
        value=behind.planner_lag_seconds,
    )
    yield GaugeMetricFamily(
        "bulletin_oldest_due_delivery_age_seconds",
        "How long the pending delivery due longest ago has waited.",
        value=behind.oldest_due_age_seconds,
    )


ENGAGEMENT_DAYS = 30  # announcements that fired within this many days have engagement gauges


def _engagement() -> Iterator[Metric]:
    since = timezone.now() - timedelta(days=ENGAGEMENT_DAYS)
    recent = Occurrence.objects.filter(fire_at__gte=since).values("id")
    rows = (
        Engagement.objects.filter(occurrence_id__in=recent)
        .order_by()
        .values("occurrence__announcement_id")
        .annotate(opened=Count("opened_at"), acknowledged=Count("acknowledged_at"))
    )
    labels = ["announcement"]
    opened = GaugeMetricFamily(
        "bulletin_announcement_opened",
        f"People who opened an announcement (sends in the last {ENGAGEMENT_DAYS} days).",
        labels=labels,
    )
    acknowledged = GaugeMetricFamily(
        "bulletin_announcement_acknowledged",
        f"People who acknowledged an announcement (sends in the last {ENGAGEMENT_DAYS} days).",
        labels=labels,
    )
    for row in rows:
        announcement = [str(row["occurrence__announcement_id"])]
        opened.add_metric(announcement, row["opened"])
        acknowledged.add_metric(announcement, row["acknowledged"])
    yield opened
    yield acknowledged


class LedgerCollector(Collector):
    """Every metric, from the database, at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield _deliveries()
        yield _duplicates()
        timings = counts.timings()
        yield _send_seconds(timings)
        yield _retries(timings)
        yield _leases_expired(timings)
        yield from _lag()
        yield from _engagement()


# Its own registry: only the ledger, not this web process's memory or CPU (nor, without a
# describe(), any query at import time).
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(LedgerCollector())


def exposition() -> bytes:
    """The Prometheus text format of every metric, as of now."""
    return generate_latest(REGISTRY)
