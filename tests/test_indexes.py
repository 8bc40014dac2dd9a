"""Every query the planner and dispatcher poll with must use an index, never scan a table:
their cost has to stay flat as the ledger grows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulletin import conf
from bulletin.dispatch import ledger
from bulletin.dispatch.holding import release_opened
from bulletin.dispatch.planning import tick
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Delivery, DeliveryState, Place
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _every_statement_seen(settings: Any) -> None:
    """Prepared statements go to psycopg's own cursor, out of Django's sight: here every
    statement goes through Django's, so each one the ledger runs is captured and explained."""
    settings.BULLETIN = replace(conf.load({}), prepared_statements=False)


LEDGER = ("bulletin_announcement", "bulletin_occurrence", "bulletin_delivery", "bulletin_attempt")


def full_scans(sql: str) -> list[str]:
    """The plan's steps that read a whole ledger table."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Tiny test tables make a sequential scan cheapest; forbid it wherever an index
            # could serve, so a scan left in the plan means that no index can.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}")
            lines = [row[0] for row in cursor.fetchall()]
            cursor.execute("RESET enable_seqscan")
            return [line for line in lines if any(f"Seq Scan on {t}" in line for t in LEDGER)]
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        plan = [row[-1] for row in cursor.fetchall()]
    return [
        step
        for step in plan
        if step.startswith("SCAN ") and step.split()[1] in LEDGER and "USING" not in step
    ]


def polled_queries(run: object) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        run()  # type: ignore[operator]
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith(("SELECT", "UPDATE", "WITH"))
    ]


def test_idle_planning_and_dispatching_use_only_indexes() -> None:
    factories.employees(3)
    factories.created_earlier(cron="0 9 * * *")
    queries = polled_queries(tick) + polled_queries(Dispatcher().run_until_idle)
    queries += polled_queries(lambda: ledger.reap(timezone.now(), []))
    assert queries
    for sql in queries:
        assert full_scans(sql) == [], sql


def index_definitions(column: str) -> list[str]:
    """The SQL of every index on the delivery table that names ``column``."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'bulletin_delivery'")
        else:
            cursor.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'bulletin_delivery' AND sql IS NOT NULL"
            )
        return [sql for (sql,) in cursor.fetchall() if column in sql]


def test_a_place_is_looked_up_through_an_index_that_fan_out_to_people_never_writes() -> None:
    place = Place.objects.create(channel="webhook", name="ops", target="https://hooks.test/o")
    # What deleting a place asks (PROTECT) and what its history asks: no scan of the ledger.
    assert full_scans(str(Delivery.objects.filter(place=place).query)) == []
    assert full_scans(str(Delivery.objects.filter(place__in=[place]).query)) == []
    # Every index on place_id leaves people's rows (place_id NULL) out.
    definitions = index_definitions("place_id")
    single = [sql for sql in definitions if "employee_id" not in sql and "occurrence_id" not in sql]
    assert single, definitions
    assert all("IS NOT NULL" in sql for sql in single), single


def test_releasing_deliveries_whose_working_window_opened_uses_the_held_index() -> None:
    factories.employees(3)
    factories.tick_after(factories.created_earlier())
    factories.put(Delivery.objects, state=DeliveryState.HELD, due_at=timezone.now())
    queries = polled_queries(lambda: release_opened(timezone.now()))
    assert any("UPDATE" in sql.upper() for sql in queries)
    for sql in queries:
        assert full_scans(sql) == [], sql
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}
