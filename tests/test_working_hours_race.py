"""Deliveries held for a working window, opening at the same minute, raced by several real
dispatcher processes (``bulletin dispatch``) against a real SMTP server: each is sent once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness import Installation, SmtpSink
from tests.processes import delivery_states, tick_one_occurrence_due_now, use_smtp

pytestmark = pytest.mark.slow

PEOPLE = 120
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def closed_today() -> str:
    """A working week of one day, two days from now (UTC): whatever the time, closed now."""
    return f"{DAYS[(datetime.now(UTC).weekday() + 2) % 7]} 08:00-18:00"


def announce_within_working_hours(site: Installation) -> None:
    rows = [f"person{n}@example.com,Person {n},Ops,Leeds,UTC" for n in range(PEOPLE)]
    roster = site.directory / "employees.csv"
    roster.write_text("email,name,department,location,timezone\n" + "\n".join(rows) + "\n")
    site.run("import_employees", str(roster))
    site.sql("UPDATE bulletin_location SET working_week = ?", (closed_today(),))
    body = site.directory / "body.md"
    body.write_text("Hello {{ name }}, the canteen opens at noon.")
    site.run(
        "announce", "--title", "Canteen", "--body-file", str(body), "--cron", "* * * * *",
        "--tz", "UTC", "--channels", "email",
    )  # fmt: skip
    site.sql("UPDATE bulletin_announcement SET working_hours = ?", (True,))


def test_racing_dispatchers_send_each_delivery_that_opens_at_the_same_minute_once(
    installation: Installation, smtp_sink: SmtpSink
) -> None:
    announce_within_working_hours(installation)
    tick_one_occurrence_due_now(installation)
    assert delivery_states(installation) == {"held": PEOPLE}
    opens = {row[0] for row in installation.sql("SELECT DISTINCT due_at FROM bulletin_delivery")}
    assert len(opens) == 1, "one location, one window: every delivery opens at once"
    # The clock reaches the window: it opened a second ago, for everyone at once.
    never = datetime(2999, 1, 1, tzinfo=UTC)
    installation.sql("UPDATE bulletin_announcement SET next_fire_at = ?", (never,))
    opened = datetime.now(UTC) - timedelta(seconds=1)
    installation.sql("UPDATE bulletin_delivery SET due_at = ? WHERE state = 'held'", (opened,))
    use_smtp(installation, smtp_sink, BULLETIN_BATCH_SIZE="5")
    smtp_sink.delay = 0.01  # slow enough that the dispatchers really overlap

    dispatchers = [installation.start("dispatch") for _ in range(4)]
    outputs = [process.communicate(timeout=180) for process in dispatchers]
    assert all(process.returncode == 0 for process in dispatchers), outputs
    sent = [int(out.split()[1]) for out, _ in outputs]
    assert sum(1 for n in sent if n) >= 2, f"the dispatchers did not overlap: {sent}"
    assert sum(sent) == PEOPLE
    assert delivery_states(installation) == {"sent": PEOPLE}
    assert set(smtp_sink.message_ids().values()) == {1}
    assert Counter(r.recipients[0] for r in smtp_sink.received) == {
        f"person{n}@example.com": 1 for n in range(PEOPLE)
    }
