"""Slack identities remembered: the real dispatcher against the loopback Slack.

What ``users.lookupByEmail`` and ``conversations.open`` found is kept on the employee, so the
next announcement to the same people is one ``chat.postMessage`` per DM; a remembered identity
that Slack refuses is forgotten and found again, once; an email change means a new look-up; a
member id typed in by hand is used as given and never replaced. The proof is what the loopback
Slack received, method by method.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from bulletin import conf
from bulletin.channels.base import Destination, Message, Recipient
from bulletin.channels.slack import SlackTransport
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import ChannelPace, Delivery, DeliveryState, Employee
from tests import factories
from tests.slack_server import SlackServer

pytestmark = pytest.mark.django_db

PEOPLE = {"ada@example.com": "U0ADA", "grace@example.com": "U0GRACE", "alan@example.com": "U0ALAN"}
LOOKUP, OPEN, POST = "users.lookupByEmail", "conversations.open", "chat.postMessage"
TIER_3_KEYS = ("slack:users.lookupByEmail", "slack:conversations.open")
STALE = ["users_not_found", "user_not_found", "account_inactive", "cannot_dm_bot"]


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[SlackServer]:
    with SlackServer(users=dict(PEOPLE)) as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", server.token)
        monkeypatch.delenv("SLACK_BOT_TOKEN_FILE", raising=False)
        # Budgets far above these tests' needs: they count calls; the pace tests set their own.
        settings.BULLETIN = replace(
            conf.load({}),
            slack_api_url=server.url,
            slack_timeout=5.0,
            slack_per_minute=60000.0,
            slack_lookups_per_minute=60000.0,
        )
        yield server


def staff(*emails: str, **fields: Any) -> list[Employee]:
    return [
        Employee.objects.create(email=email, name=email.split("@")[0].title(), **fields)
        for email in emails
    ]


def announce_and_dispatch(slack: SlackServer) -> list[str]:
    """One more DM announcement to everyone, dispatched to the end; the methods it called."""
    already = len(slack.calls())
    factories.fired(channels=("slack",))
    deadline = time.monotonic() + 30
    waiting = [DeliveryState.PENDING, DeliveryState.CLAIMED]
    while Delivery.objects.filter(state__in=waiting).exists():
        assert time.monotonic() < deadline, "deliveries were still waiting after 30 s"
        if not Dispatcher().run_until_idle():
            time.sleep(0.05)  # a paced delivery's slot is a moment away
    return [call.method for call in slack.calls()[already:]]


def latest() -> Delivery:
    return Delivery.objects.order_by("-pk").first()  # type: ignore[return-value]


def tier_3_slots() -> list[tuple[str, object]]:
    """The Tier 3 pace keys and their next free slots, as the pace table holds them."""
    slots = ChannelPace.objects.filter(key__in=TIER_3_KEYS).order_by("key")
    return list(slots.values_list("key", "next_slot_at"))


def remembered(email: str) -> tuple[str, str, str, str]:
    ada = Employee.objects.get(email=email)
    return ada.slack_found_id, ada.slack_found_for, ada.slack_dm_channel, ada.slack_dm_user


# --- remembered -----------------------------------------------------------------------------


def test_the_second_announcement_makes_one_chat_post_message_per_dm_and_no_lookups(
    slack: SlackServer,
) -> None:
    staff(*PEOPLE)

    first = announce_and_dispatch(slack)
    tier_3 = list(
        ChannelPace.objects.filter(key__in=TIER_3_KEYS).values_list("key", "next_slot_at")
    )
    second = announce_and_dispatch(slack)

    assert Counter(first) == {LOOKUP: 3, OPEN: 3, POST: 3}
    assert Counter(second) == {POST: 3}
    posted = [call.params["channel"] for call in slack.calls(POST)[3:]]
    assert sorted(posted) == ["D0ADA", "D0ALAN", "D0GRACE"]
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert remembered("ada@example.com") == ("U0ADA", "ada@example.com", "D0ADA", "U0ADA")
    # The second announcement reserved no Tier 3 slot: those keys are where the first left them.
    assert len(tier_3) == 2
    assert (
        list(ChannelPace.objects.filter(key__in=TIER_3_KEYS).values_list("key", "next_slot_at"))
        == tier_3
    )


@pytest.mark.parametrize("code", [*STALE, "channel_not_found"])
def test_a_remembered_identity_slack_refuses_is_forgotten_and_found_again(
    slack: SlackServer, code: str
) -> None:
    staff("ada@example.com")
    announce_and_dispatch(slack)
    slack.users["ada@example.com"] = "U0ADA2"  # deactivated, invited again: a new member id
    slack.fail(POST, code)

    methods = announce_and_dispatch(slack)

    assert methods == [POST, LOOKUP, OPEN, POST]
    assert slack.calls(POST)[-1].params["channel"] == "D0ADA2"
    delivery = latest()
    assert (delivery.state, delivery.attempts) == (DeliveryState.SENT, 2)
    assert remembered("ada@example.com") == ("U0ADA2", "ada@example.com", "D0ADA2", "U0ADA2")


@pytest.mark.parametrize("code", STALE)
def test_a_remembered_member_id_refused_when_opening_the_dm_is_found_again(
    slack: SlackServer, code: str
) -> None:
    # Found by email before; its DM not yet opened (or since forgotten).
    staff("ada@example.com", slack_found_id="U0OLD", slack_found_for="ada@example.com")
    slack.fail(OPEN, code)

    methods = announce_and_dispatch(slack)

    assert methods == [OPEN, LOOKUP, OPEN, POST]
    assert [call.params["users"] for call in slack.calls(OPEN)] == ["U0OLD", "U0ADA"]
    assert (latest().state, latest().attempts) == (DeliveryState.SENT, 2)
    assert remembered("ada@example.com") == ("U0ADA", "ada@example.com", "D0ADA", "U0ADA")


def test_a_person_slack_no_longer_knows_fails_after_one_fresh_lookup(slack: SlackServer) -> None:
    staff("ada@example.com")
    announce_and_dispatch(slack)
    del slack.users["ada@example.com"]  # left the company
    slack.fail(POST, "account_inactive")

    methods = announce_and_dispatch(slack)

    assert methods == [POST, LOOKUP]  # found again once, not in a loop
    delivery = latest()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 2)
    assert "users_not_found" in delivery.last_error
    assert remembered("ada@example.com") == ("", "", "", "")


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("U0ADA", [LOOKUP, POST]),  # the same Slack account: its DM is still the one
        ("U0ADA3", [LOOKUP, OPEN, POST]),  # another account: another DM
    ],
)
def test_an_email_change_looks_the_person_up_again_by_the_new_email(
    slack: SlackServer, member: str, expected: list[str]
) -> None:
    [ada] = staff("ada@example.com")
    announce_and_dispatch(slack)
    ada.email = "ada.lovelace@example.com"
    ada.save()
    slack.users = {"ada.lovelace@example.com": member}

    methods = announce_and_dispatch(slack)

    assert methods == expected
    assert slack.calls(LOOKUP)[-1].params["email"] == "ada.lovelace@example.com"
    assert latest().state == DeliveryState.SENT
    found = remembered("ada.lovelace@example.com")
    assert found == (member, "ada.lovelace@example.com", "D" + member[1:], member)


# --- typed in by hand -----------------------------------------------------------------------


def test_a_member_id_typed_in_by_hand_is_used_as_given_and_never_replaced_by_a_lookup(
    slack: SlackServer,
) -> None:
    staff("ada@example.com", slack_user_id="U0GRACE")  # not what a look-up would say (U0ADA)

    first = announce_and_dispatch(slack)
    second = announce_and_dispatch(slack)
    slack.fail(POST, "cannot_dm_bot")  # the remembered DM refused: reopened, with the same id
    third = announce_and_dispatch(slack)

    assert (first, second, third) == ([OPEN, POST], [POST], [POST, OPEN, POST])
    assert {call.params["users"] for call in slack.calls(OPEN)} == {"U0GRACE"}
    ada = Employee.objects.get(email="ada@example.com")
    assert (ada.slack_user_id, ada.slack_found_id) == ("U0GRACE", "")
    assert (ada.slack_dm_channel, ada.slack_dm_user) == ("D0GRACE", "U0GRACE")
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}


def test_a_member_id_typed_in_by_hand_that_slack_refuses_fails_saying_so_and_is_kept(
    slack: SlackServer,
) -> None:
    staff("ada@example.com", slack_user_id="U0TYPO")

    methods = announce_and_dispatch(slack)

    assert methods == [OPEN]  # user_not_found; no look-up by email behind HR's back
    delivery = latest()
    assert delivery.state == DeliveryState.FAILED
    assert "typed in" in delivery.last_error and "U0TYPO" in delivery.last_error
    assert Employee.objects.get(email="ada@example.com").slack_user_id == "U0TYPO"


def test_a_member_id_changed_by_hand_opens_its_own_dm(slack: SlackServer) -> None:
    [ada] = staff("ada@example.com")
    announce_and_dispatch(slack)
    ada.slack_user_id = "U0ALAN"
    ada.save()

    methods = announce_and_dispatch(slack)

    assert methods == [OPEN, POST]
    assert slack.calls(POST)[-1].params["channel"] == "D0ALAN"


# --- the Tier 3 pace ------------------------------------------------------------------------


def test_tier_3_pace_keys_are_reserved_only_by_a_dm_that_calls_those_methods(
    settings: Any,
) -> None:
    # Slack's Tier 3: 50+ a minute
    settings.BULLETIN = replace(settings.BULLETIN, slack_lookups_per_minute=50.0)
    new = Recipient("ada@example.com", "Ada", "UTC")
    typed = replace(new, slack_user_id="U0ADA")
    known = replace(
        new,
        slack_found_id="U0ADA",
        slack_found_for="ada@example.com",
        slack_dm_channel="D0ADA",
        slack_dm_user="U0ADA",
    )
    moved = replace(known, email="ada.lovelace@example.com")

    def tier_3(to: Recipient | None, place: Destination | None = None) -> dict[str, float]:
        message = Message("k", "T", "text", "", recipient=to, place=place)
        return {k: v for k, v in SlackTransport().paces(message) if k in TIER_3_KEYS}

    assert tier_3(new) == dict.fromkeys(TIER_3_KEYS, 1.2)
    assert tier_3(moved) == dict.fromkeys(TIER_3_KEYS, 1.2)
    assert tier_3(typed) == {"slack:conversations.open": 1.2}
    assert tier_3(known) == {}
    assert tier_3(None, Destination("#general", "C0GENERAL")) == {}
    settings.BULLETIN = replace(settings.BULLETIN, slack_lookups_per_minute=20.0)
    assert tier_3(new) == dict.fromkeys(TIER_3_KEYS, 3.0)


def test_lookups_reach_slack_no_faster_than_the_tier_3_budget(
    slack: SlackServer, settings: Any
) -> None:
    # One each half second.
    settings.BULLETIN = replace(settings.BULLETIN, slack_lookups_per_minute=120.0)
    slack.users |= {f"p{n}@example.com": f"U0P{n}" for n in range(3)}
    staff(*PEOPLE, *(f"p{n}@example.com" for n in range(3)))

    announce_and_dispatch(slack)

    for method in (LOOKUP, OPEN):
        arrivals = [call.at for call in slack.calls(method)]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        assert len(arrivals) == 6
        assert min(gaps) >= 0.45, f"{method} arrived {min(gaps):.3f} s after the one before"
    assert len(slack.calls(POST)) == 6


def test_the_admin_shows_what_slack_found_and_saving_the_form_keeps_it(
    slack: SlackServer, admin_client: Any
) -> None:
    [ada] = staff("ada@example.com")
    announce_and_dispatch(slack)
    url = f"/admin/bulletin/employee/{ada.pk}/change/"

    page = admin_client.get(url).content.decode()
    form = {"email": ada.email, "name": "Ada L.", "timezone": "UTC", "active": "on"}
    form |= {"opt_outs-TOTAL_FORMS": "0", "opt_outs-INITIAL_FORMS": "0"}
    saved = admin_client.post(url, form)

    assert "U0ADA" in page and "D0ADA" in page
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert Employee.objects.get(pk=ada.pk).name == "Ada L."
    assert remembered("ada@example.com") == ("U0ADA", "ada@example.com", "D0ADA", "U0ADA")


def test_a_lookup_slack_rate_limits_holds_every_lookup_for_its_retry_after_and_none_is_lost(
    slack: SlackServer,
) -> None:
    staff(*PEOPLE)
    slack.rate_limit(LOOKUP, retry_after=1)  # past the limit: Slack says wait a second

    announce_and_dispatch(slack)

    refused, *others = [call.at for call in slack.calls(LOOKUP)]
    assert len(others) == 3  # the refused person's look-up again, and the other two
    assert min(others) - refused >= 0.95  # nobody looked up during Slack's Retry-After
    assert len(slack.calls(POST)) == 3
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
