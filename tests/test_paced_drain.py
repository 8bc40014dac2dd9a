"""Paces that drain: one `bulletin dispatch` (a real process) sends everything a pace holds
back a moment, and the pace holds at the receiver across lanes and processes.

Every rate here is measured by the loopback receiver's own clock, on every request it got:
in any window of W seconds it saw at most rate * (W + LATE) + 1. The "+ 1": a window may open
just as one send lands and close just as another does. LATE is what `bulletin.dispatch.pacing`
promises to absorb: its slots are 2 % wider than the pace, so in the providers' 10-second window
a send may land 200 ms after its slot, later than the ones after it, and the window still sees
no more than the pace allows. The windows here are 1 s (the rates are high and the windows short,
so the tests stay quick), where those 2 % are only 20 ms; a loaded two-core machine wakes a lane
100-200 ms late now and then (18 posts in one second were seen, against 16), so the same 200 ms
is granted outright. A broken pace still fails: four lanes at twice it put some 30 posts into a
second, against the 19 allowed. `make bench` (slack-paced, teams-paced) checks the 10-second
window itself at the real sizes.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bulletin.dispatch.pacing import SPACING
from tests.arrivals import TimedSlack, TimedTeams, busiest
from tests.harness import Installation, employee_csv, free_port
from tests.processes import delivery_states, tick_one_occurrence_due_now

pytestmark = pytest.mark.slow

PEOPLE = 60
PER_SECOND = 15  # Slack: BULLETIN_SLACK_PER_MINUTE = 900
WINDOW = 1.0  # seconds; the allowance scales with it: 19 posts in any second
# The lateness pacing's spacing absorbs in the providers' 10-second window: 200 ms.
LATE = (SPACING - 1) * 10.0
SUMMARY = re.compile(r"^dispatched: (\d+) sent, (\d+) failed, (\d+) unknown, (\d+) retrying$")


def test_the_busiest_window_is_found_wherever_it_starts() -> None:
    times = [0.0, 0.5, 1.2, 1.3, 1.4, 1.9, 3.0]
    assert busiest(times, 1.0) == 4  # 1.2, 1.3, 1.4, 1.9
    assert busiest(times, 0.05) == 1 and busiest(times, 10.0) == 7


def announce_by_slack_dm(site: Installation, people: int) -> None:
    """``people`` employees, one Slack DM each: an every-minute announcement, its current
    minute's occurrence planned and fanned out (and no other)."""
    (site.directory / "people.csv").write_text(employee_csv(people))
    site.run("import_employees", str(site.directory / "people.csv"))
    (site.directory / "body.md").write_text("Hello {{ name }}, the **office** closes at 4.")
    site.run(
        "announce",
        *("--title", "Early close", "--body-file", str(site.directory / "body.md")),
        *("--cron", "* * * * *", "--tz", "UTC", "--channels", "slack"),
    )
    tick_one_occurrence_due_now(site)
    assert delivery_states(site) == {"pending": people}


@pytest.fixture
def slack(installation: Installation) -> Iterator[TimedSlack]:
    users = {f"person{n}@example.com": f"U{n:06d}" for n in range(PEOPLE)}
    server = TimedSlack(users=users)
    with server:
        installation.env.update(
            SLACK_API_URL=server.url,
            SLACK_BOT_TOKEN=server.token,
            BULLETIN_SLACK_PER_MINUTE=str(PER_SECOND * 60),
            # Looking people up is paced apart (Tier 3); here only the posts' pace is measured.
            BULLETIN_SLACK_LOOKUPS_PER_MINUTE="600000",
            BULLETIN_DISPATCH_LANES="4",
            BULLETIN_BATCH_SIZE="5",  # so that every lane has some of the 60 to send
        )
        announce_by_slack_dm(installation, PEOPLE)
        yield server


def summary(output: str) -> tuple[int, ...]:
    match = SUMMARY.match(output.strip().splitlines()[-1])
    assert match, output
    return tuple(int(n) for n in match.groups())


def assert_paced(times: list[float], per_second: float) -> None:
    most = busiest(times, WINDOW)
    assert most <= per_second * (WINDOW + LATE) + 1, f"{most} requests within {WINDOW} s"


def test_one_dispatch_sends_every_paced_slack_dm_at_the_pace_with_four_lanes_and_exits(
    installation: Installation, slack: TimedSlack
) -> None:
    done = installation.run("dispatch", timeout=60)
    assert summary(done.stdout) == (PEOPLE, 0, 0, 0)
    assert delivery_states(installation) == {"sent": PEOPLE}
    posts = slack.calls("chat.postMessage")
    assert sorted(call.params["channel"] for call in posts) == sorted(
        f"D{n:06d}" for n in range(PEOPLE)
    )  # everyone once
    times = slack.posted_at()
    assert_paced(times, PER_SECOND)
    # And it did not dawdle: 60 posts at 15 a second take 4 s.
    assert times[-1] - times[0] < (PEOPLE / PER_SECOND) * 1.5


def test_the_summary_counts_each_delivery_once_by_how_it_ended(
    installation: Installation, slack: TimedSlack
) -> None:
    for n in range(PEOPLE - 3, PEOPLE):  # unknown to Slack (users_not_found): failed
        del slack.users[f"person{n}@example.com"]  # (the last: not the ones scripted below)
    slack.fail("chat.postMessage", "internal_error")  # may have posted: unknown
    slack.status("users.lookupByEmail", 500)  # nothing posted: retried later, not waited for
    done = installation.run("dispatch", timeout=60)
    assert summary(done.stdout) == (PEOPLE - 5, 3, 1, 1)
    assert delivery_states(installation) == {
        "sent": PEOPLE - 5,
        "failed": 3,
        "unknown": 1,
        "pending": 1,
    }


def test_two_dispatch_processes_at_once_share_one_pace(
    installation: Installation, slack: TimedSlack
) -> None:
    installation.env["BULLETIN_DISPATCH_LANES"] = "2"
    both = [installation.start("dispatch") for _ in range(2)]
    outputs = [process.communicate(timeout=60)[0] for process in both]
    assert [process.returncode for process in both] == [0, 0]
    counts = [summary(output) for output in outputs]
    assert sum(sent for sent, *_ in counts) == PEOPLE
    assert all(rest == [0, 0, 0] for _, *rest in counts)
    assert delivery_states(installation) == {"sent": PEOPLE}
    assert len(slack.calls("chat.postMessage")) == PEOPLE
    assert_paced(slack.posted_at(), PER_SECOND)


def test_a_429_makes_every_lane_wait_out_retry_after_and_the_drain_still_completes(
    installation: Installation, slack: TimedSlack
) -> None:
    installation.env["LOG_LEVEL"] = "INFO"  # should it fail, its log says how
    hold = slack.hold("chat.postMessage")  # the first post: answered 429 once it is in
    dispatch = installation.start("dispatch")
    hold.wait(timeout=30)
    refused_at = time.monotonic()
    hold.release(_rate_limited(retry_after=3))
    out, err = dispatch.communicate(timeout=60)
    assert dispatch.returncode == 0, err
    # The refused one was sent on its retry.
    assert summary(out) == (PEOPLE, 0, 0, 0), (delivery_states(installation), err)
    assert delivery_states(installation) == {"sent": PEOPLE}
    times = slack.posted_at()
    # The other lanes were waiting for slots booked before the 429: none of them posted
    # during the hold. Half a second's grace: the hold is written once the answer is read,
    # and a lane that had just booked its slot may be posting already (at 15 a second,
    # without the hold some 37 posts would land in the 2.5 s after it).
    during = [at for at in times if refused_at + 0.5 < at < refused_at + 3.0]
    assert during == [], f"{len(during)} posts during the Retry-After hold"
    assert len(times) == PEOPLE + 1  # the refused post and its successful retry
    assert_paced(times, PER_SECOND)


def _rate_limited(retry_after: int) -> Any:
    from tests.slack_server import Reply as SlackReply

    headers = (("Retry-After", str(retry_after)),)
    return SlackReply(status=429, payload={"ok": False, "error": "ratelimited"}, headers=headers)


def test_sigterm_while_waiting_for_a_slot_stops_at_once_and_gives_the_rest_back(
    installation: Installation, slack: TimedSlack
) -> None:
    installation.env["BULLETIN_SLACK_PER_MINUTE"] = "60"  # one a second: most wait
    dispatch = installation.start("dispatch")
    deadline = time.monotonic() + 30
    while len(slack.posted_at()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    asked = time.monotonic()
    dispatch.send_signal(signal.SIGTERM)
    out, _ = dispatch.communicate(timeout=30)
    assert time.monotonic() - asked < 2.0  # it did not sit out its booked slots
    assert re.match(r"stopped by SIGTERM: (\d+) sent, (\d+) released", out.strip())
    states = delivery_states(installation)
    assert states["sent"] == len(slack.posted_at()) and states["pending"] == PEOPLE - states["sent"]


def test_the_embedded_dispatcher_of_bulletin_run_sends_every_paced_dm_at_the_pace(
    installation: Installation, slack: TimedSlack
) -> None:
    never = datetime(2999, 1, 1, tzinfo=UTC)  # nothing more to plan while it runs
    installation.sql("UPDATE bulletin_announcement SET next_fire_at = ?", (never,))
    process = installation.start("run", "--port", str(free_port()))
    try:
        deadline = time.monotonic() + 60
        while delivery_states(installation) != {"sent": PEOPLE}:
            assert time.monotonic() < deadline, delivery_states(installation)
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert len(slack.calls("chat.postMessage")) == PEOPLE
    assert_paced(slack.posted_at(), PER_SECOND)


TEAMS_POSTS = 40
TEAMS_PER_SECOND = 15


def test_one_dispatch_sends_every_post_to_one_teams_webhook_at_its_pace(
    installation: Installation,
) -> None:
    teams = TimedTeams()
    with teams:
        url = teams.url("/workflows/hr/triggers/manual/paths/invoke?sig=SECRET")
        installation.run("add_place", "--channel", "teams", "--name", "HR-news", "--target", url)
        occurrences_to_place(installation, "teams:HR-news", TEAMS_POSTS)
        installation.env.update(
            BULLETIN_TEAMS_PER_SECOND=str(TEAMS_PER_SECOND),
            BULLETIN_DISPATCH_LANES="4",
            BULLETIN_BATCH_SIZE="5",
        )
        done = installation.run("dispatch", timeout=60)
    assert summary(done.stdout) == (TEAMS_POSTS, 0, 0, 0)
    assert delivery_states(installation) == {"sent": TEAMS_POSTS}
    assert len(teams.arrivals) == TEAMS_POSTS
    assert_paced(teams.arrivals, TEAMS_PER_SECOND)


def occurrences_to_place(site: Installation, place: str, count: int) -> None:
    """``count`` due occurrences of an every-minute announcement to one place: its past
    ``count`` minutes, planned by one tick (no misfire grace is missed: an hour's grace)."""
    (site.directory / "body.md").write_text("The **office** is closed on Friday.")
    site.run(
        "announce",
        *("--title", "Office closed", "--body-file", str(site.directory / "body.md")),
        *("--cron", "* * * * *", "--tz", "UTC", "--channels", "", "--places", place),
    )
    while datetime.now(UTC).second >= 55:
        time.sleep(0.5)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=count - 1)
    start -= timedelta(seconds=1)
    site.sql(
        "UPDATE bulletin_announcement SET planned_until = ?, next_fire_at = ?, created_at = ?",
        (start, start, start),
    )
    site.run("tick")
    assert delivery_states(site) == {"pending": count}
