"""Posts to one Teams workflow webhook (loopback: 202, as a Workflows webhook answers) through
the real dispatcher (`bulletin dispatch`, one process), paced at BULLETIN_TEAMS_PER_SECOND.

One announcement to one Teams channel with one due occurrence per post: every post shares
the webhook's pace key. The pace is the benchmark's choice (50 a second keeps the run about
ten seconds); Bulletin's default is 4 a second, Microsoft's stated per-channel budget.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from bench.common import report, setup_django
from bench.paced import dispatch, pace_rows
from tests.arrivals import TimedTeams


def due_posts(url: str, posts: int) -> None:
    """``posts`` due occurrences of one announcement to one Teams place, fanned out."""
    from django.utils import timezone

    from bulletin.dispatch.fanout import fan_out
    from bulletin.domain.models import Occurrence, OccurrenceState, Place
    from tests.factories import announcement

    now = timezone.now()
    place = Place.objects.create(channel="teams", name="HR-news", target=url)
    item = announcement(now=now, cron="0 9 * * 1", channels=(), places=[place])
    version = item.versions.first()
    for number in range(posts):
        occurrence = Occurrence.objects.create(
            announcement=item,
            version=version,
            zone="Europe/London",
            fire_at=now - timedelta(seconds=number + 1),
            state=OccurrenceState.PLANNED,
        )
        fan_out(occurrence, now)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, required=True)
    parser.add_argument("--per_second", type=int, default=50)
    args = parser.parse_args()
    setup_django()
    from bulletin.domain.models import Delivery, DeliveryState

    teams = TimedTeams()
    with teams:
        due_posts(teams.url("/workflows/hr/triggers/manual/paths/invoke?sig=SECRET"), args.posts)
        drain = dispatch(BULLETIN_TEAMS_PER_SECOND=str(args.per_second))
    sent = Delivery.objects.filter(state=DeliveryState.SENT).count()
    got = len(teams.arrivals)
    wrong = ""
    if not got == sent == args.posts or drain.counts != (args.posts, 0, 0, 0):
        wrong = f"the webhook got {got}, {sent} sent, bulletin dispatch said {drain.counts}"
    check = f"{args.posts} posts, each sent once"
    name = f"{args.posts} Teams posts at {args.per_second}/s"
    details = {"dispatch_seconds": round(drain.seconds, 2)}
    for row in pace_rows(name, teams.arrivals, args.per_second, check, wrong, **details):
        report(row)


if __name__ == "__main__":
    main()
