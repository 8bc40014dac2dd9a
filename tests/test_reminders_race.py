"""A reminder asked for twice at once — a double click, a retried script — by real concurrent
processes (``bulletin remind`` with the same key): one reminder, each person reached once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from tests.harness import Installation, employee_csv
from tests.processes import delivery_states, tick_one_occurrence_due_now

pytestmark = pytest.mark.slow

PEOPLE = 30
ACKNOWLEDGED = 10


def sent_asking_for_acknowledgement(site: Installation) -> int:
    (site.directory / "people.csv").write_text(employee_csv(PEOPLE))
    site.run("import_employees", str(site.directory / "people.csv"))
    (site.directory / "body.md").write_text("Please read the new **safety** rules.")
    site.run(
        "announce", "--title", "Safety rules", "--body-file", str(site.directory / "body.md"),
        "--cron", "* * * * *", "--tz", "UTC", "--channels", "inapp", "--requires-ack",
    )  # fmt: skip
    tick_one_occurrence_due_now(site)
    never = datetime(2999, 1, 1, tzinfo=UTC)  # no second occurrence while the test runs
    site.sql("UPDATE bulletin_announcement SET next_fire_at = ?", (never,))
    site.run("dispatch")
    assert delivery_states(site) == {"sent": PEOPLE}
    ((occurrence,),) = site.sql("SELECT id FROM bulletin_occurrence")
    return int(occurrence)


def acknowledge_some(site: Installation, occurrence: int) -> None:
    now = datetime.now(UTC)
    for (employee,) in site.sql(
        f"SELECT id FROM bulletin_employee ORDER BY id LIMIT {ACKNOWLEDGED}"
    ):
        site.sql(
            "INSERT INTO bulletin_engagement (occurrence_id, employee_id, opened_at, "
            "acknowledged_at, acknowledged_via) VALUES (?, ?, ?, ?, 'inapp')",
            (occurrence, employee, now, now),
        )


def test_a_reminder_asked_for_by_racing_processes_with_one_key_reaches_each_person_once(
    installation: Installation,
) -> None:
    occurrence = sent_asking_for_acknowledgement(installation)
    acknowledge_some(installation, occurrence)
    racing = [
        installation.start("remind", str(occurrence), "--channels", "inapp", "--key", "click-1")
        for _ in range(4)
    ]
    outputs = [process.communicate(timeout=120) for process in racing]
    assert [process.returncode for process in racing] == [0] * 4, outputs
    said = [out.strip() for out, _ in outputs]
    assert sum("made:" in line for line in said) == 1, said
    assert sum("already made" in line for line in said) == 3, said
    reminders = installation.sql(
        "SELECT id, delivery_count FROM bulletin_occurrence WHERE reminder_of_id = ?", (occurrence,)
    )
    assert len(reminders) == 1 and reminders[0][1] == PEOPLE - ACKNOWLEDGED
    events = installation.sql("SELECT count(*) FROM bulletin_auditevent WHERE action = 'reminded'")
    assert events == [(1,)]

    installation.run("dispatch")
    items = Counter(
        employee for (employee,) in installation.sql("SELECT employee_id FROM bulletin_inboxitem")
    )
    acknowledged = {
        employee for (employee,) in installation.sql("SELECT employee_id FROM bulletin_engagement")
    }
    assert len(items) == PEOPLE
    assert all(items[e] == (1 if e in acknowledged else 2) for e in items), items


def test_a_second_key_is_a_second_reminder_and_a_bad_request_is_one_line_on_stderr(
    installation: Installation,
) -> None:
    occurrence = sent_asking_for_acknowledgement(installation)
    installation.run("remind", str(occurrence), "--channels", "inapp", "--key", "monday")
    installation.run("remind", str(occurrence), "--channels", "inapp", "--key", "friday")
    count = installation.sql(
        "SELECT count(*) FROM bulletin_occurrence WHERE reminder_of_id = ?", (occurrence,)
    )
    assert count == [(2,)]
    refused = installation.run(
        "remind", str(occurrence), "--channels", "fax", "--key", "k", check=False
    )
    assert refused.returncode != 0
    assert refused.stderr.strip().count("\n") == 0 and "channels" in refused.stderr
    missing = installation.run("remind", "999999", "--channels", "inapp", "--key", "k", check=False)
    assert missing.returncode != 0 and "no occurrence with id 999999" in missing.stderr
