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
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bulletin.domain.models import (
    Attempt,
    AttemptOutcome,
    Channel,
    Delivery,
    DeliveryState,
    Tallied,
    Tally,
)
from bulletin.interfaces.health import duplicates_prevented, lag

# Seconds. An SMTP hand-off on a LAN takes tens of milliseconds, an HTTP API call a few hundred;
# the upper buckets catch slow relays and timeouts (SMTP's default is 30 s).
SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _deliveries() -> Metric:
    found = {
        (state, channel): n
        for state, channel, n in Delivery.objects.values_list("state", "channel")
        .annotate(n=Count("pk"))
        .order_by()
    }
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


def _send_seconds() -> Metric:
    """Attempt durations by channel. A batch sent together (webhooks, the inbox) records one
    start for all its attempts, so each of those measures its batch so far."""
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le{n}": Count("pk", filter=Q(took__lte=timedelta(seconds=bound)))
        for n, bound in enumerate(SEND_BUCKETS)
    }
    rows = (
        Attempt.objects.filter(finished_at__isnull=False)
        .exclude(outcome=AttemptOutcome.INTERRUPTED)  # ended by the reaper, not by a send
        .annotate(took=took)
        .values("delivery__channel")
        .annotate(count=Count("pk"), total=Sum("took"), **buckets)
        .order_by()
    )
    histogram = HistogramMetricFamily(
        "bulletin_send_seconds", "Duration of send attempts, by channel.", labels=["channel"]
    )
    for row in rows:
        cumulative = [(str(bound), row[f"le{n}"]) for n, bound in enumerate(SEND_BUCKETS)]
        total = row["total"].total_seconds() if row["total"] else 0.0
        histogram.add_metric(
            [row["delivery__channel"]], [*cumulative, ("+Inf", row["count"])], total
        )
    return histogram


def _retries() -> Metric:
    found = dict(
        Attempt.objects.filter(outcome=AttemptOutcome.RETRY)
        .values_list("delivery__channel")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counter = CounterMetricFamily(
        "bulletin_retries", "Attempts that ended in a temporary error.", labels=["channel"]
    )
    for channel in Channel:
        counter.add_metric([channel.value], found.get(channel.value, 0))
    return counter


def _leases_expired() -> Metric:
    interrupted = Attempt.objects.filter(outcome=AttemptOutcome.INTERRUPTED).count()
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


class LedgerCollector(Collector):
    """Every metric, from the database, at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield _deliveries()
        yield _duplicates()
        yield _send_seconds()
        yield _retries()
        yield _leases_expired()
        yield from _lag()


# Its own registry: only the ledger, not this web process's memory or CPU (nor, without a
# describe(), any query at import time).
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(LedgerCollector())


def exposition() -> bytes:
    """The Prometheus text format of every metric, as of now."""
    return generate_latest(REGISTRY)
