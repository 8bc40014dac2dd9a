"""Durable running counts of what leaves no row of its own: refused second copies and
recovered leases (the ``bulletin_duplicates_total`` and lease metrics read them)."""

from __future__ import annotations

from django.db import connection, models

# Seconds: the bounds of ``bulletin_send_seconds``. An SMTP hand-off on a LAN takes tens of
# milliseconds, an HTTP API call a few hundred; the upper buckets catch slow relays and
# timeouts (SMTP's default is 30 s). Changing them splits old counts from new: a migration
# would have to recount (see migration 0010).
SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def bucket(seconds: float) -> int:
    """The first bucket ``seconds`` fits in; ``len(SEND_BUCKETS)`` for "+Inf"."""
    return next((i for i, bound in enumerate(SEND_BUCKETS) if seconds <= bound), len(SEND_BUCKETS))


class Tallied(models.TextChoices):
    """What a Tally counts. ``duplicate.*``: a unique key or a conditional write refused a
    second copy (the count is of copies refused: occurrences, fan-outs or deliveries).
    ``lease_expired.*``: expired leases that leave no Attempt row of their own."""

    REPEATED_PLANNING = "duplicate.repeated_planning", "Occurrences a racing planner had recorded"
    REPEATED_FAN_OUT = "duplicate.repeated_fan_out", "Fan-outs of an occurrence already fanned out"
    INTENT_AFTER_LOST_LEASE = (
        "duplicate.intent_after_lost_lease",
        "Sends not started: the worker's claim had expired and been taken",
    )
    OUTCOME_AFTER_LOST_LEASE = (
        "duplicate.outcome_after_lost_lease",
        "Outcomes refused: the worker's lease had expired mid-send",
    )
    CLAIM_REQUEUED = "lease_expired.claim_requeued", "Expired claims the reaper put back"


class Tally(models.Model):
    """A durable running count of refusals and recoveries that leave no row of their own.

    Added to in the transaction that refused, so every process's count lands in the one
    database (the web process that serves /metrics is not the one that sends), and a refusal
    that is rolled back is not counted.
    """

    # A Tallied value; no ``choices`` here, so a new kind of count needs no migration.
    name = models.CharField(max_length=64, unique=True)
    total = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "tally"
        verbose_name_plural = "tallies"

    def __str__(self) -> str:
        return f"{self.name}: {self.total}"

    @classmethod
    def add(cls, name: Tallied, count: int = 1) -> None:
        """Add ``count`` in one statement (an upsert: the first of its kind creates the row)."""
        if count <= 0:
            return
        table = cls._meta.db_table
        sql = (
            f"INSERT INTO {table} (name, total) VALUES (%s, %s) "
            f"ON CONFLICT (name) DO UPDATE SET total = {table}.total + excluded.total"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [name.value, count])


class DeliveryCount(models.Model):
    """How many deliveries of one occurrence and channel are in one state: kept, not computed.

    Every state change adds a :class:`DeliveryCountChange` in its own transaction (the ledger,
    ``bulletin.dispatch.ledger``, is the only writer); folding moves those into these rows.
    The count of a key is its row here plus its changes not yet folded, so a read costs the
    same at ten thousand deliveries and at ten million.
    """

    occurrence = models.ForeignKey(
        "bulletin.Occurrence", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=16)
    state = models.CharField(max_length=16)
    live = models.BigIntegerField(default=0)  # rows in the ledger now
    # Rows retention deleted: gone from the ledger, still counted in the totals HR sees.
    pruned = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "delivery count"
        verbose_name_plural = "delivery counts"
        constraints = [
            # counts.fold's upsert; reads by occurrence use its leading column.
            models.UniqueConstraint(
                fields=["occurrence", "channel", "state"], name="delivery_count_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.occurrence_id} {self.channel} {self.state}: {self.live}+{self.pruned}"


class DeliveryCountChange(models.Model):
    """A change to the kept counts, not yet folded into :class:`DeliveryCount`.

    Appended, never updated: concurrent dispatchers moving rows of the same occurrence would
    otherwise all wait on the one count row of (occurrence, channel, ``pending``) — an
    insert takes no lock another insert waits for. Folding (every tick) keeps this table small.
    """

    occurrence = models.ForeignKey(
        "bulletin.Occurrence", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=16)
    state = models.CharField(max_length=16)
    live = models.BigIntegerField(default=0)
    pruned = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.occurrence_id} {self.channel} {self.state}: {self.live:+}{self.pruned:+}"


class LedgerOnly(Exception):
    """A delivery's state was to be written around the ledger, which keeps its counts."""


class DeliveryQuerySet(models.QuerySet):  # type: ignore[type-arg]
    """Deliveries, to read as any QuerySet. Their state moves only through the ledger
    (``bulletin.dispatch.ledger``): an ``update`` of it here would leave the kept counts
    wrong, so it is refused outright rather than left to drift."""

    def update(self, **kwargs: object) -> int:
        if "state" in kwargs:
            raise LedgerOnly(
                "a delivery's state moves only through bulletin.dispatch.ledger, "
                "which keeps the counts"
            )
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise LedgerOnly(
            "deliveries are deleted only by retention (bulletin.dispatch.ledger), "
            "which keeps the counts"
        )


def count_saved(occurrence_id: int, channel: str, was: str | None, now: str | None) -> None:
    """One delivery saved or deleted through the ORM (the admin, fixtures): its count moves
    from ``was`` to ``now`` (None: it did not exist / no longer does)."""
    changes = [(was, -1), (now, 1)] if was != now else []
    DeliveryCountChange.objects.bulk_create(
        DeliveryCountChange(occurrence_id=occurrence_id, channel=channel, state=state, live=n)
        for state, n in changes
        if state is not None
    )


class AttemptCount(models.Model):
    """Send attempts by channel, outcome and duration bucket (``bulletin_send_seconds``,
    retries, interrupted sends): kept as :class:`DeliveryCount` is, so ``/metrics`` does not
    read the attempt history, and a pruned attempt still counts (a counter never goes back).
    ``bucket`` indexes the ledger's ``SEND_BUCKETS``; one past the last is "+Inf"."""

    channel = models.CharField(max_length=16)
    outcome = models.CharField(max_length=16)
    bucket = models.PositiveSmallIntegerField()
    attempts = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        verbose_name = "attempt count"
        verbose_name_plural = "attempt counts"
        constraints = [
            # counts.fold's upsert
            models.UniqueConstraint(
                fields=["channel", "outcome", "bucket"], name="attempt_count_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.outcome} [{self.bucket}]: {self.attempts}"


class AttemptCountChange(models.Model):
    """Attempts not yet folded into :class:`AttemptCount`: appended, never updated."""

    channel = models.CharField(max_length=16)
    outcome = models.CharField(max_length=16)
    bucket = models.PositiveSmallIntegerField()
    attempts = models.BigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return f"{self.channel} {self.outcome} [{self.bucket}]: +{self.attempts}"


def count_attempt(channel: str, outcome: str, seconds: float) -> None:
    """One attempt saved through the ORM (a fixture): counted as the ledger counts its own."""
    AttemptCountChange.objects.create(
        channel=channel, outcome=outcome, bucket=bucket(seconds), attempts=1, seconds=seconds
    )
