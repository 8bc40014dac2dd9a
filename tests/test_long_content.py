"""Long announcements through the real dispatcher (a `bulletin dispatch` process) to a loopback
Slack and a loopback Teams workflow that refuse what the real services refuse: 13k, 40k and
100k-character bodies all end `sent`, each message within the limits and ending with a link to
the occurrence's page, where the whole text is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from bulletin.domain.models import Delivery, Occurrence
from tests import factories
from tests.harness import Installation
from tests.http_receiver import HttpReceiver, Reply
from tests.processes import delivery_states, tick_one_occurrence_due_now
from tests.slack_server import SlackServer, blocks_too_long

SITE = "https://bulletin.example.com"
LENGTHS = (13_000, 40_000, 100_000)
WORKFLOW = "/workflows/hr/triggers/manual/paths/invoke?sig=SECRET"


def long_body(length: int) -> str:
    unit = "Read [the policy](https://wiki.example.com/p) and run `make test` today. " * 6
    unit += "\n\n```\nmake bench\n```\n\n"
    return (unit * (length // len(unit) + 1))[:length]


def announce_long_bodies(site: Installation, places: str) -> None:
    """One every-minute announcement per length, each with one occurrence due now."""
    for length in LENGTHS:
        body = site.directory / f"body-{length}.md"
        body.write_text(long_body(length))
        site.run(
            "announce", "--title", f"Handbook ({length})", "--body-file", str(body),
            "--cron", "* * * * *", "--tz", "UTC", "--channels", "", "--places", places,
        )  # fmt: skip
    tick_one_occurrence_due_now(site)


def pages(site: Installation) -> set[str]:
    return {
        f"{SITE}/announcements/{pk}/" for (pk,) in site.sql("SELECT id FROM bulletin_occurrence")
    }


@pytest.fixture
def slack(installation: Installation) -> Iterator[SlackServer]:
    with SlackServer() as server:
        installation.env.update(
            SLACK_API_URL=server.url, SLACK_BOT_TOKEN=server.token, BULLETIN_SITE_URL=SITE
        )
        yield server


@pytest.mark.slow
def test_long_bodies_reach_slack_within_its_limits_and_link_to_the_rest(
    installation: Installation, slack: SlackServer
) -> None:
    installation.run("add_place", "--channel", "slack", "--name", "#general", "--target", "C0GEN")
    announce_long_bodies(installation, "slack:#general")
    installation.run("dispatch")
    assert delivery_states(installation) == {"sent": 3}
    posts = slack.calls("chat.postMessage")
    assert len(posts) == 3
    links = set()
    for post in posts:
        blocks = post.blocks
        assert len(blocks) <= 50
        assert not blocks_too_long(blocks)  # the loopback would have refused it, as Slack does
        [more] = blocks[-1]["elements"][0]["elements"]
        assert more["text"] == "Read the whole announcement"
        links.add(more["url"])
    assert links == pages(installation)


@pytest.mark.slow
def test_long_bodies_reach_teams_within_28000_bytes_and_link_to_the_rest(
    installation: Installation,
) -> None:
    installation.env["BULLETIN_SITE_URL"] = SITE
    with HttpReceiver(default=Reply.teams_accepted()) as teams:
        target = teams.url(WORKFLOW)
        installation.run("add_place", "--channel", "teams", "--name", "HR", "--target", target)
        announce_long_bodies(installation, "teams:HR")
        installation.run("dispatch")
        assert delivery_states(installation) == {"sent": 3}
        assert len(teams.requests) == 3
        assert all(len(request.body) <= 28_000 for request in teams.requests)
        actions = [r.json()["attachments"][0]["content"]["actions"] for r in teams.requests]
        assert {action["url"] for [action] in actions} == pages(installation)


@pytest.mark.django_db
def test_the_page_a_cut_message_links_to_shows_the_whole_text_to_whoever_it_reached() -> None:
    ada, bob = factories.employees(2)
    ada.user = factories.person("ada")
    ada.name = "Ada Lovelace"
    ada.save()
    item = factories.inbox_item(bob, title="Handbook")
    occurrence: Occurrence = item.delivery.occurrence
    occurrence.announcement.body = long_body(40_000) + "\n\nThe very end, {{ first_name }}."
    occurrence.announcement.save()
    client = Client()
    client.force_login(ada.user)
    assert client.get(f"/announcements/{occurrence.pk}/").status_code == 404  # not Ada's
    Delivery.objects.create(
        occurrence=occurrence, employee=ada, channel="slack", due_at=occurrence.fire_at
    )
    page = client.get(f"/announcements/{occurrence.pk}/").content.decode()
    assert "Handbook" in page and page.count("make bench") == long_body(40_000).count("make bench")
    assert "The very end, Ada." in page
    # Bob had it in his inbox: his inbox item is where he reads (and acknowledges) it.
    bob.user = factories.person("bob")
    bob.save()
    client.force_login(bob.user)
    answer = client.get(f"/announcements/{occurrence.pk}/")
    assert answer.status_code == 302 and answer["Location"] == f"/inbox/{item.pk}/"
