"""Setting up an installation for the multi-process tests through its real command line."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.harness import Installation, SmtpSink, employee_csv


def announce_every_minute(site: Installation, employees: int) -> None:
    """Import employees, announce every minute, and date the announcement two minutes back
    so the previous minute's occurrence is due as soon as a tick runs."""
    csv_file = site.directory / "employees.csv"
    csv_file.write_text(employee_csv(employees))
    body = site.directory / "body.md"
    body.write_text("Hello {{ name }}, this is occurrence-keyed mail.")
    site.run("import_employees", str(csv_file))
    site.run(
        "announce",
        "--title",
        "Stand-up",
        "--body-file",
        str(body),
        "--cron",
        "* * * * *",
        "--tz",
        "Europe/London",
    )
    earlier = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(seconds=1)
    site.sql(
        "UPDATE bulletin_announcement SET planned_until = ?, next_fire_at = ?", (earlier, earlier)
    )


def tick_one_occurrence_due_now(site: Installation) -> None:
    """Date every announcement back so exactly one fire time (the last minute's) is due, then
    plan and fan it out: kept clear of the next minute until the tick is done, or two would be."""
    while datetime.now(UTC).second >= 50:
        time.sleep(0.5)
    earlier = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(seconds=1)
    site.sql(
        "UPDATE bulletin_announcement SET planned_until = ?, next_fire_at = ?", (earlier, earlier)
    )
    site.run("tick")


def use_smtp(site: Installation, sink: SmtpSink, **options: str) -> None:
    site.env.update(EMAIL_HOST=sink.host, EMAIL_PORT=str(sink.port), **options)


def delivery_states(site: Installation) -> dict[str, int]:
    rows = site.sql("SELECT state, count(*) FROM bulletin_delivery GROUP BY state")
    return {state: count for state, count in rows}
