"""Durable running counts of what leaves no row of its own: refused second copies and
recovered leases (the ``bulletin_duplicates_total`` and lease metrics read them)."""

from __future__ import annotations

from django.db import connection, models


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
