"""Places (a Slack channel, a Teams channel, a webhook endpoint) and channel opt-outs, from the
announcement through fan-out: one delivery per place, or per person through a place."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from bulletin.domain.models import ChannelOptOut, Delivery, DeliveryState, Employee, Place
from tests import factories

pytestmark = pytest.mark.django_db


def place(channel: str, name: str, **fields: Any) -> Place:
    return Place.objects.create(
        channel=channel,
        name=name,
        target=fields.pop("target", f"https://hooks.test/{name}"),
        secret=fields.pop("secret", "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="),
        **fields,
    )


def rows() -> list[tuple[str | None, str | None, str, str]]:
    return sorted(
        (
            d.employee.email if d.employee else None,
            d.place.name if d.place else None,
            d.channel,
            d.state,
        )
        for d in Delivery.objects.select_related("employee", "place")
    )


def fire(places: list[Place], **fields: Any) -> None:
    factories.tick_after(factories.created_earlier(places=places, **fields))


def test_a_place_gets_one_delivery_however_large_the_audience() -> None:
    factories.employees(3)
    fire([place("teams", "HR news")], channels=())
    assert rows() == [(None, "HR news", "teams", "pending")]


def test_a_per_person_webhook_place_gets_one_delivery_per_recipient() -> None:
    factories.employees(2)
    fire([place("webhook", "HRIS", per_person=True)], channels=())
    assert rows() == [
        ("person0@example.com", "HRIS", "webhook", "pending"),
        ("person1@example.com", "HRIS", "webhook", "pending"),
    ]


def test_person_and_place_deliveries_have_distinct_stable_keys() -> None:
    factories.employees(1)
    fire(
        [place("webhook", "HRIS", per_person=True), place("slack", "#general", target="C1")],
        channels=("email",),
    )
    keys = [d.idempotency_key for d in Delivery.objects.all()]
    assert len(keys) == len(set(keys)) == 3


def test_an_opted_out_employee_gets_a_skipped_row_with_the_reason() -> None:
    alice, bob = factories.employees(2)
    ChannelOptOut.objects.create(employee=alice, channel="email")
    fire([], channels=("email", "inapp"))
    skipped = Delivery.objects.get(employee=alice, channel="email")
    assert (skipped.state, skipped.last_error) == (DeliveryState.SKIPPED, "opted out of email")
    assert Delivery.objects.get(employee=alice, channel="inapp").state == DeliveryState.PENDING
    assert Delivery.objects.get(employee=bob, channel="email").state == DeliveryState.PENDING


def test_a_mandatory_announcement_ignores_opt_outs() -> None:
    (alice,) = factories.employees(1)
    ChannelOptOut.objects.create(employee=alice, channel="email")
    fire([], channels=("email",), mandatory=True)
    assert Delivery.objects.get().state == DeliveryState.PENDING


@pytest.mark.parametrize(
    ("fields", "places", "field", "words"),
    [
        ({"channels": ("teams",)}, [], "channels", "teams posts to places"),
        ({"channels": ("carrier-pigeon",)}, [], "channels", "unknown channel 'carrier-pigeon'"),
        ({"channels": ()}, [], "channels", "choose at least one channel or place"),
        ({"per_recipient_zone": True}, ["teams"], "places", "no time zone of their own"),
        ({}, ["inactive"], "places", "inactive place"),
    ],
)
def test_channel_and_place_mistakes_are_refused_by_field(
    fields: dict[str, Any], places: list[str], field: str, words: str
) -> None:
    chosen = [place("teams", name, active=name != "inactive") for name in places]
    with pytest.raises(ValidationError) as error:
        factories.created_earlier(places=chosen, **fields)
    assert any(words in message for message in error.value.message_dict[field])


def test_announce_posts_to_places_named_on_the_command_line(tmp_path: Any) -> None:
    place("slack", "#general", target="C123")
    place("teams", "HR-news")
    announcement = factories.announce_cli(
        tmp_path,
        "--cron",
        "0 9 * * *",
        "--tz",
        "UTC",
        "--channels",
        "email,teams",
        "--places",
        "slack:#general,teams:HR-news",
    )
    assert announcement.channels == ["email"]
    assert sorted(str(p) for p in announcement.places.all()) == ["slack:#general", "teams:HR-news"]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--places", "slack:#nowhere"], "no place 'slack:#nowhere'"),
        (["--channels", "webhook"], "--channels webhook needs --places webhook:NAME"),
    ],
)
def test_announce_refuses_unknown_places_and_placeless_place_channels(
    tmp_path: Any, arguments: list[str], words: str
) -> None:
    with pytest.raises(CommandError, match=words):
        factories.announce_cli(tmp_path, "--cron", "0 9 * * *", "--tz", "UTC", *arguments)


def test_add_place_makes_a_secret_and_rotation_keeps_the_old_one_signing() -> None:
    out = io.StringIO()
    call_command(
        "add_place",
        "--channel",
        "webhook",
        "--name",
        "HRIS",
        "--target",
        "https://hris.test/hook",
        stdout=out,
    )
    first = Place.objects.get().secret
    assert first.startswith("whsec_") and first in out.getvalue()
    call_command(
        "add_place",
        "--channel",
        "webhook",
        "--name",
        "HRIS",
        "--target",
        "https://hris.test/hook",
        "--rotate-secret",
        stdout=io.StringIO(),
    )
    rotated = Place.objects.get()
    assert rotated.previous_secret == first and rotated.secret != first
    assert Employee.objects.count() == 0  # nothing else touched


def test_a_place_secret_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bulletin.dispatch.compose import destination

    monkeypatch.setenv("HRIS_SECRET", "whsec_ZnJvbS10aGUtZW52aXJvbm1lbnQ=")
    hris = place("webhook", "HRIS", secret="env:HRIS_SECRET", previous_secret="whsec_b2xk")
    assert destination(hris).secrets == ("whsec_ZnJvbS10aGUtZW52aXJvbm1lbnQ=", "whsec_b2xk")
