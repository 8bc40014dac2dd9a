"""Slack DMs through the real dispatcher (`bulletin dispatch`, one process) to a loopback
Slack, paced at BULLETIN_SLACK_PER_MINUTE, twice to the same people.

The first announcement learns everyone's Slack identity (``users.lookupByEmail`` and
``conversations.open``, which Slack paces at Tier 3, about 50 a minute: at loopback their
budget is raised, or 2,000 people would take 40 minutes, once). The second is the one judged:
its DMs go out at the pace with the default look-up budget, at most 1.05 Web API calls each
(the identities are remembered), and nobody gets a DM twice in either.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import timedelta
from typing import Any

from bench.common import VALUE_AT_MOST, Result, report, seed_employees, setup_django
from bench.paced import Drain, dispatch, pace_rows
from tests.arrivals import TimedSlack

# Look-ups at loopback speed for the first announcement only (see the module docstring).
LOOPBACK_LOOKUPS_PER_MINUTE = "600000"


def announce(item_number: int) -> Any:
    """A due occurrence of a new announcement to everyone by Slack DM, fanned out."""
    from django.utils import timezone

    from bulletin.dispatch.fanout import fan_out
    from bulletin.domain.models import Occurrence, OccurrenceState
    from tests.factories import announcement

    now = timezone.now()
    item = announcement(
        now=now, cron="0 9 * * 1", channels=("slack",), title=f"Announcement {item_number}"
    )
    occurrence = Occurrence.objects.create(
        announcement=item,
        version=item.versions.first(),
        zone="Europe/London",
        fire_at=now - timedelta(seconds=item_number),
        state=OccurrenceState.PLANNED,
    )
    fan_out(occurrence, now)
    return occurrence


def wrong_answer(dms: int, posts: list[Any], drain: Drain, which: str) -> str:
    """Everyone exactly once, every delivery sent, the summary saying so."""
    from bulletin.domain.models import Delivery, DeliveryState

    per_channel = Counter(str(call.params.get("channel")) for call in posts)
    twice = sum(1 for count in per_channel.values() if count > 1)
    sent = Delivery.objects.filter(state=DeliveryState.SENT).count()
    problems = []
    if len(per_channel) != dms or twice:
        problems.append(f"{which}: {len(per_channel)} people got a DM, {twice} of them twice")
    if drain.counts != (dms, 0, 0, 0):
        problems.append(f"{which}: bulletin dispatch reported {drain.counts}")
    return "; ".join(problems) + (f" ({sent} deliveries sent)" if problems else "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dms", type=int, required=True)
    parser.add_argument("--per_minute", type=int, default=6000)
    args = parser.parse_args()
    setup_django()
    seed_employees(args.dms)
    users = {f"person{n}@example.com": f"U{n:07d}" for n in range(1, args.dms + 1)}
    slack = TimedSlack(users=users)
    env = {
        "SLACK_API_URL": slack.url,
        "SLACK_BOT_TOKEN": slack.token,
        "BULLETIN_SLACK_PER_MINUTE": str(args.per_minute),
    }
    with slack:
        announce(1)
        first = dispatch(**env, BULLETIN_SLACK_LOOKUPS_PER_MINUTE=LOOPBACK_LOOKUPS_PER_MINUTE)
        between = len(slack.calls())
        announce(2)
        second = dispatch(**env)
        calls = slack.calls()
    _report(args, slack, calls, between, (first, second))


def _report(
    args: argparse.Namespace, slack: TimedSlack, calls: list[Any], between: int, drains: Any
) -> None:
    first, second = drains
    posts = [c for c in calls if c.method == "chat.postMessage"]
    earlier, later = posts[: len(posts) // 2], posts[len(posts) // 2 :]
    wrong = "; ".join(
        filter(
            None,
            (
                wrong_answer(args.dms, earlier, first, "first"),
                wrong_answer(args.dms, later, second, "second"),
            ),
        )
    )
    check = f"{args.dms} DMs per announcement, each person once, all sent"
    per_second = args.per_minute / 60
    name = f"{args.dms} Slack DMs at {args.per_minute}/min"
    times = slack.posted_at()
    for which, drain, span in (
        ("1st", first, times[: args.dms]),
        ("2nd", second, times[args.dms :]),
    ):
        details = {"dispatch_seconds": round(drain.seconds, 2)}
        for row in pace_rows(f"{name}, {which}", span, per_second, check, wrong, **details):
            report(row)
    second_calls = calls[between:]
    methods = Counter(call.method for call in second_calls)
    report(
        Result(
            name=f"{name}, 2nd: Web API calls per DM",
            value=len(second_calls) / args.dms,
            baseline=1.0,
            unit="calls",
            target=1.05,
            compare=VALUE_AT_MOST,
            measures="every request to the loopback Slack during the 2nd announcement, per DM",
            baseline_is="one chat.postMessage per DM",
            check=wrong or check,
            correct=not wrong,
            details={"methods": dict(methods)},
        )
    )


if __name__ == "__main__":
    main()
