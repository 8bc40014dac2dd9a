"""The PostgreSQL advisory lock that lets one planner run at a time: an optimisation only."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import time_machine
from django.db import connection

from bulletin.dispatch.planning import PLANNER_LOCK, tick
from bulletin.domain.models import Occurrence
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
