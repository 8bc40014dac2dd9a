"""Keys that never collide: every idempotency key contains the installation's random id.

Two installations (or one database rebuilt from scratch) number their occurrences, employees
and places alike, so keys made of those numbers alone repeat: a receiver told to drop repeats
would silently drop the second installation's messages. Proven here by what a real SMTP server
and a real webhook receiver got from two fresh installations, each driven through its command
line; and a delivery made before the upgrade keeps the key it had, resent after it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from bulletin.dispatch import lifecycle
from bulletin.domain.models import (
    Announcement,
    Occurrence,
    ScheduleKind,
    delivery_key,
    installation_id,
)
from bulletin.domain.models import Installation as InstallationRow
from tests.conftest import own_database
from tests.harness import Installation, SmtpSink, installation_at
from tests.http_receiver import HttpReceiver, Reply
from tests.processes import delivery_states, tick_one_occurrence_due_now, use_smtp

HEX_128 = re.compile(r"[0-9a-f]{32}")


def fresh_site(directory: Path) -> Iterator[Installation]:
    directory.mkdir()
    with own_database(directory) as url:
        yield installation_at(directory, url)  # its first migrate: a new installation


@pytest.fixture
def first(tmp_path: Path) -> Iterator[Installation]:
    yield from fresh_site(tmp_path / "first")


@pytest.fixture
def second(tmp_path: Path) -> Iterator[Installation]:
    yield from fresh_site(tmp_path / "second")


def installation_of(site: Installation) -> str:
    status = json.loads(site.run("status", "--json").stdout)
    return str(status["installation"])


def first_announcement(site: Installation, sink: SmtpSink, endpoint: str) -> None:
    """One person, one webhook place, one announcement to both: delivered."""
    use_smtp(site, sink)
    people = site.directory / "people.csv"
    people.write_text("email,name,department,location,timezone\nada@example.com,Ada,,,UTC\n")
    site.run("import_employees", str(people))
    site.run("add_place", "--channel", "webhook", "--name", "HRIS", "--target", endpoint)
    body = site.directory / "body.md"
    body.write_text("The office is closed on Friday.")
    site.run(
        *("announce", "--title", "Office closed", "--body-file", str(body)),
        *("--cron", "* * * * *", "--tz", "UTC", "--channels", "email", "--places", "webhook:HRIS"),
    )
    tick_one_occurrence_due_now(site)
    site.run("dispatch")
    assert delivery_states(site) == {"sent": 2}


@pytest.mark.slow
def test_two_fresh_installations_have_their_own_ids_and_status_shows_each(
    first: Installation, second: Installation
) -> None:
    ids = [installation_of(site) for site in (first, second)]

    assert all(HEX_128.fullmatch(found) for found in ids), ids
    assert ids[0] != ids[1]
    for site, found in zip((first, second), ids, strict=True):
        assert f"installation: {found}" in site.run("status").stdout.splitlines()
        assert installation_of(site) == found  # kept, not made anew


@pytest.mark.slow
def test_two_installations_first_deliveries_reach_receivers_under_different_keys(
    first: Installation, second: Installation, smtp_sink: SmtpSink
) -> None:
    with HttpReceiver(default=Reply(200)) as receiver:
        endpoint = receiver.url("/bulletin")
        for site in (first, second):
            first_announcement(site, smtp_sink, endpoint)
        hooks = receiver.wait_for(2)

    ids = [installation_of(site) for site in (first, second)]
    message_ids = [received.message_id for received in smtp_sink.received]
    webhook_ids = [request.headers["webhook-id"] for request in hooks]
    # The same first delivery of each: occurrence 1 to employee 1, and to place 1.
    for found, message_id, webhook_id in zip(ids, message_ids, webhook_ids, strict=True):
        assert message_id.startswith(f"<1.1.email.{found}@"), message_id
        assert webhook_id == f"1.p1.webhook.{found}"
    assert [request.headers["idempotency-key"] for request in hooks] == webhook_ids
    assert len(set(message_ids)) == 2 and len(set(webhook_ids)) == 2


# --- a key for life ---------------------------------------------------------------------------


def insert_before_upgrade(site: Installation, place_id: int) -> tuple[int, int, int]:
    """Rows as the code before keys had an installation id wrote them (the schema at 0005):
    an employee, an announcement, its occurrence, and a delivery to each recipient, both left
    ``unknown`` by an interrupted send; and its next occurrence, planned. Returns (occurrence,
    employee, email delivery) ids."""
    now = datetime.now(UTC) - timedelta(hours=1)
    site.sql(
        "INSERT INTO bulletin_employee (email, name, department, location, timezone, active, "
        "slack_user_id, created_at, updated_at) VALUES (?, ?, '', '', 'UTC', ?, '', ?, ?)",
        ("ada@example.com", "Ada", True, now, now),
    )
    grace = "1 hour" if site.database_url.startswith("postgres") else 3_600_000_000
    site.sql(
        "INSERT INTO bulletin_announcement (title, body, audience_kind, audience_values, "
        "channels, mandatory, requires_ack, schedule_kind, cron, at_local, timezone, "
        "per_recipient_zone, misfire_grace, send_late, status, created_at, updated_at) "
        "VALUES ('Office closed', 'Closed on Friday.', 'all', '[]', '[\"email\"]', ?, ?, "
        "'once', '', '2026-01-05T09:00', 'UTC', ?, ?, ?, 'finished', ?, ?)",
        (False, False, False, grace, False, now, now),
    )
    [(announcement, employee)] = site.sql(
        "SELECT a.id, e.id FROM bulletin_announcement a, bulletin_employee e"
    )
    site.sql(
        "INSERT INTO bulletin_occurrence (announcement_id, zone, fire_at, state, delivery_count, "
        "note, created_at) VALUES (?, 'UTC', ?, 'fanned_out', 2, '', ?)",
        (announcement, now, now),
    )
    [(occurrence,)] = site.sql("SELECT id FROM bulletin_occurrence")
    # And the next one, planned but not fanned out: no delivery, so no key seen yet.
    site.sql(
        "INSERT INTO bulletin_occurrence (announcement_id, zone, fire_at, state, note, "
        "created_at) VALUES (?, 'UTC', ?, 'planned', '', ?)",
        (announcement, now + timedelta(days=1), now),
    )
    for person, place, channel in ((employee, None, "email"), (None, place_id, "webhook")):
        site.sql(
            "INSERT INTO bulletin_delivery (occurrence_id, employee_id, place_id, channel, state, "
            "attempts, due_at, last_error, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'unknown', 1, ?, 'interrupted', ?, ?)",
            (occurrence, person, place, channel, now, now, now),
        )
    [(email_delivery,)] = site.sql("SELECT id FROM bulletin_delivery WHERE channel = 'email'")
    return occurrence, employee, email_delivery


@pytest.mark.slow
def test_a_delivery_made_before_the_upgrade_is_resent_after_it_under_its_old_key(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    with own_database(tmp_path) as url, HttpReceiver(default=Reply(200)) as receiver:
        site = installation_at(tmp_path, url, migrate=False)
        # Django's own apps first (PostgreSQL enforces their later column widths), then
        # Bulletin as it was before the installation id.
        site.run("migrate", "auth", "--verbosity", "0")
        site.run("migrate", "bulletin", "0005", "--verbosity", "0")
        site.run("add_place", "--channel", "webhook", "--name", "HRIS", "--target", receiver.url())
        [(place,)] = site.sql("SELECT id FROM bulletin_place")
        occurrence, employee, email_delivery = insert_before_upgrade(site, place)

        site.run("migrate", "--verbosity", "0")  # the upgrade
        listed = site.run("settle", "--list").stdout
        ids = [str(pk) for (pk,) in site.sql("SELECT id FROM bulletin_delivery")]
        site.run("settle", "--resend", *ids)
        use_smtp(site, smtp_sink)
        site.run("dispatch")
        [hook] = receiver.wait_for(1)
        key_spaces = site.sql("SELECT key_space FROM bulletin_occurrence ORDER BY id")
        installation = installation_of(site)
        states = delivery_states(site)

    # The keys as the code before the upgrade made them: no installation part.
    old_email_key = f"{occurrence}.{employee}.email"
    old_webhook_key = f"{occurrence}.p{place}.webhook"
    assert key_spaces == [("",), (installation,)]
    assert states == {"sent": 2}
    [received] = smtp_sink.received
    assert received.message_id.startswith(f"<{old_email_key}@"), received.message_id
    assert hook.headers["webhook-id"] == old_webhook_key
    # What the runbook shows for the unknown delivery is what the receiver saw.
    [line] = [row for row in listed.splitlines() if row.startswith(f"{email_delivery}\t")]
    assert received.message_id in line.split("\t")


@pytest.mark.django_db
def test_keys_before_and_after_the_upgrade_differ_only_by_the_installation_part() -> None:
    space = installation_id()

    assert delivery_key("", 12, 42, None, "email") == "12.42.email"
    assert delivery_key(space, 12, 42, None, "email") == f"12.42.email.{space}"
    assert delivery_key(space, 12, None, 4, "webhook") == f"12.p4.webhook.{space}"
    assert delivery_key(space, 12, 42, 4, "webhook") == f"12.42.p4.webhook.{space}"


@pytest.mark.django_db
def test_an_occurrence_takes_the_installation_id_and_a_lost_row_is_made_again() -> None:
    InstallationRow.objects.all().delete()  # a database flushed by hand

    made = installation_id()
    out = io.StringIO()
    call_command("status", "--json", stdout=out)

    assert HEX_128.fullmatch(made)
    assert json.loads(out.getvalue())["installation"] == made
    assert Occurrence._meta.get_field("key_space").get_default() == made


def test_an_hr_test_send_carries_the_installation_id(ann: Any, smtp_settings: SmtpSink) -> None:
    draft = Announcement(
        title="Canteen reopens",
        body="On **Monday**.",
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * *",
        timezone="Europe/London",
    )
    item = lifecycle.create(draft, ann)

    lifecycle.send_test(item, ann)

    [received] = smtp_settings.received
    assert re.fullmatch(
        rf"<test\.{item.pk}\.{ann.pk}\.\d+\.{installation_id()}@[^>]+>", received.message_id
    )
