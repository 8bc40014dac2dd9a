"""A dispatcher killed while its request is in flight, on each chat channel: non-de-duplicating
channels (Slack, Teams) end `unknown` with the request seen once; the webhook channel, whose
receivers de-duplicate by `webhook-id`, is resent with the same id."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.harness import Installation
from tests.http_receiver import HttpReceiver, Reply
from tests.processes import delivery_states, tick_one_occurrence_due_now
from tests.slack_server import SlackServer

pytestmark = pytest.mark.slow

LEASE_SECONDS = 2


def announce_to_place(site: Installation, place: str) -> None:
    """An every-minute announcement to one place, dated so that an occurrence is due now."""

    body = site.directory / "body.md"
    body.write_text("The **office** is closed on Friday.")
    site.run(
        "announce",
        "--title",
        "Office closed",
        "--body-file",
        str(body),
        "--cron",
        "* * * * *",
        "--tz",
        "UTC",
        "--channels",
        "",
        "--places",
        place,
    )
    tick_one_occurrence_due_now(site)


def kill_mid_request(site: Installation, wait_for_request: object) -> None:
    """Start a dispatcher, SIGKILL it once its request has arrived, outlive its lease."""
    site.env["BULLETIN_LEASE_SECONDS"] = str(LEASE_SECONDS)
    victim = site.start("dispatch")
    wait_for_request()  # type: ignore[operator]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert delivery_states(site) == {"sending": 1}
    time.sleep(LEASE_SECONDS + 1)


@pytest.fixture
def slack(installation: Installation) -> Iterator[SlackServer]:
    with SlackServer() as server:
        installation.env.update(SLACK_API_URL=server.url, SLACK_BOT_TOKEN=server.token)
        yield server


def test_a_slack_post_interrupted_mid_request_ends_unknown_and_is_not_resent(
    installation: Installation, slack: SlackServer
) -> None:
    installation.run("add_place", "--channel", "slack", "--name", "#general", "--target", "C01")
    announce_to_place(installation, "slack:#general")
    hold = slack.hold("chat.postMessage")
    kill_mid_request(installation, lambda: hold.wait(timeout=30))
    hold.release()
    installation.run("dispatch")
    assert delivery_states(installation) == {"unknown": 1}
    assert len(slack.calls("chat.postMessage")) == 1


def test_a_teams_post_interrupted_mid_request_ends_unknown_and_is_not_resent(
    installation: Installation,
) -> None:
    with HttpReceiver(default=Reply.teams_accepted()) as teams:
        url = teams.url("/workflows/hr/triggers/manual/paths/invoke?sig=SECRET")
        installation.run("add_place", "--channel", "teams", "--name", "HR-news", "--target", url)
        announce_to_place(installation, "teams:HR-news")
        teams.script(Reply.hold())
        kill_mid_request(installation, lambda: teams.wait_held(1, timeout=30))
        teams.release()
        installation.run("dispatch")
        assert delivery_states(installation) == {"unknown": 1}
        assert len(teams.requests) == 1


def test_a_webhook_interrupted_mid_request_is_resent_with_the_same_webhook_id(
    installation: Installation,
) -> None:
    with HttpReceiver(default=Reply(200)) as endpoint:
        url = endpoint.url("/bulletin")
        installation.run("add_place", "--channel", "webhook", "--name", "HRIS", "--target", url)
        announce_to_place(installation, "webhook:HRIS")
        endpoint.script(Reply.hold())
        kill_mid_request(installation, lambda: endpoint.wait_held(1, timeout=30))
        endpoint.release()
        installation.run("dispatch")
        assert delivery_states(installation) == {"sent": 1}
        first, second = endpoint.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert first.body == second.body  # the same event; only the timestamp may differ
