"""/healthz and /metrics: figures exact for a seeded ledger, duplicates counted by real refusals,
503 from a real server whose database is gone, and the metrics token enforced."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from bulletin import conf
from bulletin.dispatch import ledger
from bulletin.dispatch.fanout import fan_out
from bulletin.dispatch.planning import plan_announcement
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Attempt,
    AttemptOutcome,
    Channel,
    Delivery,
    DeliveryState,
    Employee,
    Occurrence,
    OccurrenceState,
    ScheduleKind,
)
from tests import factories
from tests.harness import ROOT, free_port, installation_at

NOW = datetime(2027, 5, 4, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
TOKEN = "scrape-4f1c9e7a2b"


# --- a ledger with known timestamps ---------------------------------------------------------


def announcement(next_fire_at: datetime, status: str = AnnouncementStatus.SCHEDULED) -> Any:
    return Announcement.objects.create(
        title="Ops",
        body="Hi",
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * *",
        timezone="UTC",
        status=status,
        planned_until=NOW - timedelta(days=1),
        next_fire_at=next_fire_at,
    )


def occurrence() -> Occurrence:
    return Occurrence.objects.create(
        announcement=announcement(NOW + timedelta(hours=1)),
        zone="UTC",
        fire_at=NOW - timedelta(hours=3),
        state=OccurrenceState.FANNED_OUT,
    )


def delivery(where: Occurrence, state: str, due_at: datetime, channel: str = "email") -> Delivery:
    n = Delivery.objects.count()
    person = Employee.objects.create(email=f"p{n}@example.com", name=f"P {n}", timezone="UTC")
    return Delivery.objects.create(
        occurrence=where, employee=person, channel=channel, state=state, due_at=due_at
    )


def attempt(of: Delivery, number: int, outcome: str, seconds: float) -> None:
    started = NOW - timedelta(hours=1, minutes=number)
    Attempt.objects.create(
        delivery=of,
        number=number,
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        outcome=outcome,
    )


def health(client: Client) -> tuple[int, dict[str, Any], Any]:
    with time_machine.travel(NOW, tick=False):
        response = client.get("/healthz")
    return response.status_code, json.loads(response.content), response


def scrape(client: Client, **headers: str) -> dict[tuple[str, frozenset[Any]], float]:
    """Every sample of /metrics, parsed back by prometheus_client: (name, labels) → value."""
    with time_machine.travel(NOW, tick=False):
        response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def one(name: str, **labels: str) -> tuple[str, frozenset[Any]]:
    return name, frozenset(labels.items())


# --- /healthz -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_reports_the_planner_lag_and_the_oldest_due_delivery_to_the_second(
    client: Client,
) -> None:
    announcement(NOW - timedelta(seconds=90))  # the planner should have run 90 s ago
    announcement(NOW - timedelta(hours=5), status=AnnouncementStatus.PAUSED)  # not lag: paused
    where = occurrence()
    oldest = delivery(where, DeliveryState.PENDING, NOW - timedelta(seconds=42))
    delivery(where, DeliveryState.PENDING, NOW - timedelta(seconds=10))
    delivery(where, DeliveryState.PENDING, NOW + timedelta(minutes=1))  # not due yet
    delivery(where, DeliveryState.CLAIMED, NOW - timedelta(hours=1))  # held, not waiting

    status, body, response = health(client)

    assert status == 200
    assert body == {
        "status": "ok",
        "database": "ok",
        "planner_lag_seconds": 90.0,
        "oldest_due_delivery": {
            "id": oldest.pk,
            "due_at": (NOW - timedelta(seconds=42)).isoformat(),
            "age_seconds": 42.0,
        },
        "max_lag_seconds": 300,
        "warnings": [],
    }
    assert "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response


@pytest.mark.django_db
def test_an_empty_ledger_is_healthy_with_nothing_waiting(client: Client) -> None:
    status, body, _ = health(client)

    assert client.head("/healthz").status_code == 200  # some load balancers probe with HEAD
    assert client.post("/healthz").status_code == 405

    assert status == 200
    assert (body["status"], body["planner_lag_seconds"], body["oldest_due_delivery"]) == (
        "ok",
        0.0,
        None,
    )


@pytest.mark.django_db
def test_a_lagging_planner_and_queue_are_warnings_in_a_200_not_an_outage(
    client: Client,
) -> None:
    announcement(NOW - timedelta(seconds=400))
    delivery(occurrence(), DeliveryState.PENDING, NOW - timedelta(minutes=20))

    status, body, _ = health(client)

    assert status == 200
    assert body["status"] == "warn"
    assert body["warnings"] == [
        "planner lag 400s is over 300s",
        "oldest due delivery waited 1200s (> 300s)",
    ]


@pytest.mark.django_db
def test_the_lag_threshold_comes_from_the_options(client: Client, settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({}), health_max_lag_seconds=500)
    announcement(NOW - timedelta(seconds=400))

    status, body, _ = health(client)

    assert (status, body["status"], body["max_lag_seconds"], body["warnings"]) == (
        200,
        "ok",
        500,
        [],
    )


def test_the_lag_threshold_is_read_from_its_environment_variable() -> None:
    assert conf.load({}).health_max_lag_seconds == 300
    found = conf.load({"BULLETIN_HEALTH_MAX_LAG_SECONDS": "45"})
    assert found.health_max_lag_seconds == 45
    with pytest.raises(ImproperlyConfigured, match="BULLETIN_HEALTH_MAX_LAG_SECONDS"):
        conf.load({"BULLETIN_HEALTH_MAX_LAG_SECONDS": "soon"})


# --- /healthz from a real server whose database goes away ------------------------------------


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_until_serving(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            get(url)
            return
        except OSError:
            assert process.poll() is None, f"server exited: {process.communicate()[1]}"
            assert time.monotonic() < deadline, "server did not start listening"
            time.sleep(0.1)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, errors = process.communicate(timeout=30)
    return errors


@pytest.mark.slow
def test_bulletin_run_answers_503_while_its_database_is_gone_and_200_once_it_is_back(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    site = installation_at(tmp_path, f"sqlite:///{store / 'bulletin.sqlite3'}")
    site.env.update(BULLETIN_EMBEDDED_WORKERS="0")
    url = f"http://127.0.0.1:{free_port()}/healthz"
    process = site.start("run", "--port", url.split(":")[2].split("/")[0])
    try:
        wait_until_serving(url, process)
        assert get(url)[0] == 200
        # The disk holding the database is gone: its directory is now a file, so SQLite
        # cannot open it (not even as root, unlike a chmod).
        store.rename(tmp_path / "elsewhere")
        store.write_text("not a directory")
        status, body = get(url)
        store.unlink()
        (tmp_path / "elsewhere").rename(store)
        back = get(url)[0]
    finally:
        errors = stop(process)
    assert status == 503
    assert json.loads(body) == {
        "status": "error",
        "database": "unreachable",
        "problems": ["database unreachable (OperationalError)"],
    }
    assert str(tmp_path) not in body and "Traceback" not in body
    assert back == 200
    assert "health check: database unreachable" in errors


@pytest.mark.slow
def test_a_web_process_whose_postgresql_refuses_connections_answers_503_without_the_url(
    tmp_path: Path,
) -> None:
    database = f"postgres://bulletin:pw-s3cret@127.0.0.1:{free_port()}/bulletin"
    env = installation_at(tmp_path, database, migrate=False).env  # nothing to migrate: refused
    port = free_port()
    command = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "bulletin.wsgi:application"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        wait_until_serving(url, process)
        status, body = get(url)
    finally:
        errors = stop(process)
    assert status == 503, body
    assert json.loads(body)["database"] == "unreachable"
    for secret in ("pw-s3cret", "postgres://", str(database.split("@")[1])):
        assert secret not in body
    assert "pw-s3cret" not in errors


# --- /metrics -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_report_deliveries_send_times_retries_and_lag_as_the_rows_say(
    client: Client,
) -> None:
    announcement(NOW - timedelta(seconds=90))
    where = occurrence()
    first = delivery(where, DeliveryState.SENT, NOW - timedelta(hours=2))
    attempt(first, 1, AttemptOutcome.RETRY, 0.2)
    attempt(first, 2, AttemptOutcome.SENT, 0.04)
    attempt(delivery(where, DeliveryState.SENT, NOW - timedelta(hours=2)), 1, "sent", 3.0)
    attempt(delivery(where, DeliveryState.FAILED, NOW - timedelta(hours=2)), 1, "failed", 12.0)
    delivery(where, DeliveryState.PENDING, NOW - timedelta(seconds=30))
    interrupted = delivery(where, DeliveryState.UNKNOWN, NOW - timedelta(hours=2), "slack")
    attempt(interrupted, 1, AttemptOutcome.INTERRUPTED, 600.0)  # ended by the reaper
    slack = delivery(where, DeliveryState.SENT, NOW - timedelta(hours=2), "slack")
    attempt(slack, 1, AttemptOutcome.SENT, 0.3)
    delivery(where, DeliveryState.SKIPPED, NOW - timedelta(hours=2), "inapp")

    metrics = scrape(client)

    deliveries = {
        labels: value for (name, labels), value in metrics.items() if name == "bulletin_deliveries"
    }
    # every state on every channel, zero or not
    assert len(deliveries) == len(DeliveryState) * len(Channel)
    assert {
        dict(labels)["state"] + "/" + dict(labels)["channel"]: value
        for labels, value in deliveries.items()
        if value
    } == {
        "sent/email": 2,
        "failed/email": 1,
        "pending/email": 1,
        "unknown/slack": 1,
        "sent/slack": 1,
        "skipped/inapp": 1,
    }
    email = {
        dict(labels)["le"]: value
        for (name, labels), value in metrics.items()
        if name == "bulletin_send_seconds_bucket" and dict(labels)["channel"] == "email"
    }
    # Durations 0.04, 0.2, 3 and 12 s; the interrupted slack attempt is not a send time.
    assert email == {
        "0.01": 0, "0.025": 0, "0.05": 1, "0.1": 1, "0.25": 2, "0.5": 2, "1.0": 2,
        "2.5": 2, "5.0": 3, "10.0": 3, "30.0": 4, "60.0": 4, "+Inf": 4,
    }  # fmt: skip
    assert metrics[one("bulletin_send_seconds_count", channel="email")] == 4
    assert metrics[one("bulletin_send_seconds_sum", channel="email")] == pytest.approx(15.24)
    assert metrics[one("bulletin_send_seconds_count", channel="slack")] == 1
    assert metrics[one("bulletin_send_seconds_sum", channel="slack")] == pytest.approx(0.3)
    assert metrics[one("bulletin_retries_total", channel="email")] == 1
    assert metrics[one("bulletin_retries_total", channel="slack")] == 0
    assert metrics[one("bulletin_leases_expired_total")] == 1
    assert metrics[one("bulletin_planner_lag_seconds")] == 90
    assert metrics[one("bulletin_oldest_due_delivery_age_seconds")] == 30


def duplicates(client: Client) -> dict[str, float]:
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in scrape(client).items()
        if name == "bulletin_duplicates_prevented_total"
    }


NONE_PREVENTED = {
    "repeated_planning": 0,
    "repeated_fan_out": 0,
    "intent_after_lost_lease": 0,
    "outcome_after_lost_lease": 0,
}


@pytest.mark.django_db
def test_a_second_fan_out_of_an_occurrence_counts_one_duplicate_prevented(
    client: Client,
) -> None:
    factories.employees(3)
    factories.fired()
    assert duplicates(client) == NONE_PREVENTED

    assert fan_out(Occurrence.objects.get(), timezone.now()) == 3  # a racing tick, too late

    assert Delivery.objects.count() == 3
    assert duplicates(client) == NONE_PREVENTED | {"repeated_fan_out": 1}


@pytest.mark.django_db
def test_a_cancelled_occurrence_found_by_a_late_fan_out_is_not_a_duplicate(
    client: Client,
) -> None:
    factories.employees(2)
    item = factories.created_earlier()
    with time_machine.travel(item.created_at + timedelta(seconds=60), tick=False):
        plan_announcement(item, timezone.now())
    Occurrence.objects.update(state=OccurrenceState.CANCELLED)

    assert fan_out(Occurrence.objects.get(), timezone.now()) == 0

    assert duplicates(client) == NONE_PREVENTED


@pytest.mark.django_db
def test_a_planner_that_lost_the_race_for_the_cursor_counts_the_occurrences_it_refused(
    client: Client,
) -> None:
    item = factories.created_earlier(minutes=2)
    stale = Announcement.objects.get(pk=item.pk)  # what a second tick read, before the first
    with time_machine.travel(item.created_at + timedelta(seconds=60), tick=False):
        assert plan_announcement(Announcement.objects.get(pk=item.pk), timezone.now()) == 1
        assert plan_announcement(stale, timezone.now()) == 0

    assert Occurrence.objects.count() == 1
    assert duplicates(client) == NONE_PREVENTED | {"repeated_planning": 1}


@pytest.mark.django_db
def test_workers_that_lost_their_leases_are_refused_and_counted_with_the_expired_leases(
    client: Client,
) -> None:
    factories.employees(2)
    factories.fired()
    mid_send, unsent = Delivery.objects.order_by("pk")
    now = timezone.now()
    slow, stalled = ledger.new_token(), ledger.new_token()
    ledger.claim(slow, 1, now, LEASE)
    assert ledger.begin_attempt(mid_send.pk, slow, now, LEASE) == 1
    ledger.claim(stalled, 1, now, LEASE)
    later = now + 2 * LEASE
    reaped = ledger.reap(later, deduplicating=[])  # mid_send → unknown, unsent → requeued
    assert (reaped.unknown, reaped.requeued) == ([mid_send.pk], [unsent.pk])
    sent = ledger.Outcome(DeliveryState.SENT, AttemptOutcome.SENT)

    assert ledger.finish(mid_send.pk, slow, sent, later, now) is False
    assert ledger.begin_attempt(unsent.pk, stalled, later, LEASE) is None

    assert duplicates(client) == NONE_PREVENTED | {
        "outcome_after_lost_lease": 1,
        "intent_after_lost_lease": 1,
    }
    metrics = scrape(client)
    # One interrupted attempt row (mid_send) plus one requeued claim (unsent), which has none.
    assert metrics[one("bulletin_leases_expired_total")] == 2


# --- the metrics token ----------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_open_when_no_token_is_configured(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BULLETIN_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("BULLETIN_METRICS_TOKEN_FILE", raising=False)

    assert one("bulletin_leases_expired_total") in scrape(client)


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["variable", "file"])
def test_a_configured_token_is_required_as_a_bearer_and_never_logged(
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    source: str,
) -> None:
    if source == "variable":
        monkeypatch.setenv("BULLETIN_METRICS_TOKEN", TOKEN)
    else:
        monkeypatch.delenv("BULLETIN_METRICS_TOKEN", raising=False)
        (tmp_path / "token").write_text(TOKEN + "\n")
        monkeypatch.setenv("BULLETIN_METRICS_TOKEN_FILE", str(tmp_path / "token"))
    caplog.set_level(logging.DEBUG)

    refused = [
        client.get("/metrics"),
        client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}),
        client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}),
        client.get("/metrics", headers={"Authorization": TOKEN}),
    ]
    metrics = scrape(client, Authorization=f"Bearer {TOKEN}")

    assert [response.status_code for response in refused] == [401] * 4
    assert all(response["WWW-Authenticate"].startswith("Bearer") for response in refused)
    assert all(TOKEN.encode() not in response.content for response in refused)
    assert one("bulletin_leases_expired_total") in metrics
    assert "metrics scrape refused" in caplog.text
    logged = [(r.getMessage(), r.args, vars(r)) for r in caplog.records]
    assert TOKEN not in repr(logged)


# --- bulletin status ------------------------------------------------------------------------


@pytest.mark.django_db
def test_status_names_the_duplicates_prevented_and_the_oldest_due_delivery() -> None:
    factories.employees(2)
    factories.fired()
    fan_out(Occurrence.objects.get(), timezone.now())
    waiting_longest = Delivery.objects.order_by("pk").last()
    assert waiting_longest is not None
    Delivery.objects.filter(pk=waiting_longest.pk).update(
        due_at=waiting_longest.due_at - timedelta(seconds=5)
    )
    text, data = io.StringIO(), io.StringIO()

    call_command("status", stdout=text)
    call_command("status", "--json", stdout=data)

    assert "duplicates prevented: 1 (repeated_fan_out 1)" in text.getvalue().splitlines()
    status = json.loads(data.getvalue())
    assert status["duplicates_prevented"] == NONE_PREVENTED | {"repeated_fan_out": 1}
    assert status["oldest_due_delivery_id"] == waiting_longest.pk
