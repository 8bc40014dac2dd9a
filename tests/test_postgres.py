"""PostgreSQL specifics: claims skip rows another worker has locked instead of waiting, and an
advisory lock lets one planner run at a time (an optimisation only)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from bulletin.dispatch import ledger
from bulletin.dispatch.planning import PLANNER_LOCK, tick
from bulletin.domain.models import Delivery, Occurrence
from tests import factories

pytestmark = [pytest.mark.scale_out, pytest.mark.django_db(transaction=True)]


def other_session() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
        autocommit=True,
    )


def test_a_tick_steps_aside_while_another_planner_holds_the_lock_then_plans() -> None:
    factories.employees(2)
    item = factories.created_earlier()
    moment = item.created_at + timedelta(seconds=60)
    with other_session() as planner, time_machine.travel(moment, tick=False):
        planner.execute("SELECT pg_advisory_lock(%s)", [PLANNER_LOCK])
        assert tick().announcements == 0
        assert Occurrence.objects.count() == 0
        planner.execute("SELECT pg_advisory_unlock(%s)", [PLANNER_LOCK])
        assert tick().occurrences == 1
    assert Occurrence.objects.count() == 1


def test_the_lock_is_released_after_every_tick() -> None:
    tick()
    with other_session() as planner:
        acquired = planner.execute("SELECT pg_try_advisory_lock(%s)", [PLANNER_LOCK]).fetchone()
        assert acquired == (True,)


def test_a_claim_skips_rows_another_worker_holds_locked_instead_of_waiting() -> None:
    factories.employees(6)
    factories.fired()
    ids = sorted(Delivery.objects.values_list("pk", flat=True))
    with other_session() as worker, worker.transaction():
        # Another worker is mid-claim on the first three rows and has not committed yet.
        worker.execute("SET lock_timeout = '5s'")
        worker.execute("SELECT id FROM bulletin_delivery WHERE id = ANY(%s) FOR UPDATE", [ids[:3]])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a blocked claim would fail, not hang
        claimed = ledger.claim(ledger.new_token(), 10, timezone.now(), timedelta(seconds=60))
    assert claimed == ids[3:]


def test_a_racing_fan_out_waits_for_the_first_then_inserts_nothing() -> None:
    import threading
    import time

    from bulletin.dispatch.fanout import fan_out
    from bulletin.domain.models import OccurrenceState

    factories.employees(3)
    item = factories.created_earlier()
    occurrence = Occurrence.objects.create(
        announcement=item, zone="Europe/London", fire_at=timezone.now(), state="planned"
    )
    with other_session() as first:
        # The first fan-out holds the occurrence and has marked it, but not yet committed.
        first.execute("BEGIN")
        first.execute(
            "SELECT id FROM bulletin_occurrence WHERE id = %s FOR UPDATE", [occurrence.pk]
        )
        first.execute(
            "UPDATE bulletin_occurrence SET state = 'fanned_out' WHERE id = %s", [occurrence.pk]
        )
        threading.Timer(0.5, lambda: first.execute("COMMIT")).start()
        started = time.monotonic()
        fan_out(occurrence, timezone.now())
        waited = time.monotonic() - started
    assert waited >= 0.4, "the second fan-out did not wait for the first"
    assert Delivery.objects.filter(occurrence=occurrence).count() == 0
    occurrence.refresh_from_db()
    assert occurrence.state == OccurrenceState.FANNED_OUT
