"""Several SMTP connections driven from one thread, against a real SMTP server on loopback
(aiosmtpd): each carries one mail transaction at a time, all are under way together, and
every way a transaction can end is told apart — delivered, refused, never sent, in doubt."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings

from bulletin.channels.base import (
    AmbiguousError,
    Ended,
    Message,
    PermanentError,
    Recipient,
    Sends,
    TransientError,
)
from bulletin.channels.email import EmailTransport, message_id
from bulletin.channels.smtp import SmtpSends
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Delivery, DeliveryState
from tests import factories
from tests.harness import SmtpSink, free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def connections(settings: Any, smtp_settings: SmtpSink) -> SmtpSink:
    """Three connections per dispatcher."""
    settings.BULLETIN = dataclasses.replace(settings.BULLETIN, email_connections=3)
    return smtp_settings


def message(number: int, text: str = "Hello") -> Message:
    person = Recipient(email=f"person{number}@example.com", name=f"Person {number}", timezone="")
    return Message(
        idempotency_key=f"1.{number}.email",
        title="Notice",
        text=text,
        html=f"<p>{text}</p>",
        recipient=person,
        delivery_id=number,
    )


def until_all_ended(sends: Sends, count: int) -> list[Ended]:
    ended: list[Ended] = []
    while len(ended) < count:
        ended += sends.ended()
    return ended


def test_every_connection_has_a_message_under_way_at_once(connections: SmtpSink) -> None:
    connections.hold_after = 0  # the server keeps every message and holds its "250"
    sends = EmailTransport().sends()
    assert isinstance(sends, SmtpSends) and sends.ready(3) == 3
    for number in range(3):
        sends.begin(message(number))
    assert sends.ready(3) == 0
    with ThreadPoolExecutor(1) as driver:  # the replies are read while the sends are awaited
        waiting = driver.submit(until_all_ended, sends, 3)
        connections.wait_for(3)  # all three arrived while none had been answered
        assert not waiting.done()
        connections.released.set()
        ended = waiting.result(timeout=30)
    sends.close()
    assert sorted(end.message.delivery_id for end in ended) == [0, 1, 2]
    assert [end.error for end in ended] == [None, None, None]
    assert len(connections.connections) == 3


def test_a_refused_recipient_keeps_the_connection_for_the_next_message(
    smtp_settings: SmtpSink,
) -> None:
    smtp_settings.rcpt_replies["person0@example.com"] = "550 5.1.1 No such user"
    sends = SmtpSends(1, EmailTransport()._envelope, settings.EMAIL_TIMEOUT)
    outcomes = []
    for number in (0, 1):
        assert sends.ready(3) == 1
        sends.begin(message(number))
        outcomes += sends.ended()
    sends.close()
    refused, delivered = outcomes
    assert isinstance(refused.error, PermanentError) and "550" in str(refused.error)
    assert delivered.error is None
    assert [r.recipients for r in smtp_settings.received] == [["person1@example.com"]]
    assert len(smtp_settings.connections) == 1  # RSET, not a new connection


def test_a_reply_of_several_lines_is_read_whole(smtp_settings: SmtpSink) -> None:
    smtp_settings.multi_line_replies = True
    sends = SmtpSends(1, EmailTransport()._envelope, settings.EMAIL_TIMEOUT)
    ended = []
    for number in range(3):  # each next message would trip over a line left unread
        sends.ready(3)
        sends.begin(message(number))
        ended += sends.ended()
    sends.close()
    assert [end.error for end in ended] == [None, None, None]
    assert len(smtp_settings.received) == 3


def test_a_line_starting_with_a_dot_arrives_as_written(smtp_settings: SmtpSink) -> None:
    sends = SmtpSends(1, EmailTransport()._envelope, settings.EMAIL_TIMEOUT)
    sends.ready(3)
    sends.begin(message(0, text="Line one\n.\n..two dots\n.hidden"))
    (ended,) = sends.ended()
    sends.close()
    assert ended.error is None
    (received,) = smtp_settings.received
    text = received.message.get_body(("plain",)).get_content()
    assert text.splitlines() == ["Line one", ".", "..two dots", ".hidden"]


def test_a_connection_lost_before_the_message_was_sent_is_retried_not_in_doubt(
    smtp_settings: SmtpSink,
) -> None:
    factories.employees(2)
    factories.fired()
    smtp_settings.hang_up_at_rcpt.add("person0@example.com")
    Dispatcher().run_until_idle()
    lost = Delivery.objects.get(employee__email="person0@example.com")
    assert (lost.state, lost.attempts) == (DeliveryState.PENDING, 1)
    assert "before the message was sent" in lost.last_error
    other = Delivery.objects.get(employee__email="person1@example.com")
    assert other.state == DeliveryState.SENT


def test_a_server_that_stops_answering_leaves_its_message_in_doubt(
    settings: Any, smtp_settings: SmtpSink
) -> None:
    settings.EMAIL_TIMEOUT = 1
    smtp_settings.hold_after = 0  # it has the message, and never says "250"
    sends = SmtpSends(1, EmailTransport()._envelope, settings.EMAIL_TIMEOUT)
    sends.ready(3)
    sends.begin(message(0))
    (ended,) = sends.ended()
    sends.close()
    assert isinstance(ended.error, AmbiguousError)
    assert "no reply in 1 s" in str(ended.error)
    assert len(smtp_settings.received) == 1


def test_an_idle_connection_the_server_closed_is_replaced_before_it_is_used(
    smtp_settings: SmtpSink,
) -> None:
    sends = SmtpSends(1, EmailTransport()._envelope, settings.EMAIL_TIMEOUT)
    sends.ready(3)
    sends.begin(message(0))
    assert sends.ended()[0].error is None
    smtp_settings.hang_up()  # as servers drop connections left idle
    assert sends.ready(3) == 1
    sends.begin(message(1))
    (ended,) = sends.ended()
    sends.close()
    assert ended.error is None  # no attempt lost to the dead connection
    assert len(smtp_settings.connections) == 2


def test_an_unreachable_server_still_lets_one_send_be_tried_to_say_why(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    sends = SmtpSends(3, EmailTransport()._envelope, 5)
    assert sends.ready(3) == 1  # none could open: one is still tried, to say why
    with pytest.raises(TransientError, match="cannot connect"):
        sends.begin(message(0))
    sends.close()


def test_a_lone_message_opens_one_connection_not_all(connections: SmtpSink) -> None:
    factories.employees(1)
    factories.fired()
    Dispatcher().run_until_idle()
    assert Delivery.objects.get().state == DeliveryState.SENT
    assert connections.greeted == 1


def test_a_drain_reuses_its_connections_from_batch_to_batch(
    settings: Any, connections: SmtpSink
) -> None:
    settings.BULLETIN = dataclasses.replace(settings.BULLETIN, batch_size=10)
    factories.employees(30)
    factories.fired()
    Dispatcher().run_until_idle()
    deliveries = list(Delivery.objects.all())
    assert {d.state for d in deliveries} == {DeliveryState.SENT}
    arrived = connections.message_ids()
    assert sorted(arrived) == sorted(message_id(d.idempotency_key) for d in deliveries)
    assert set(arrived.values()) == {1}
    assert connections.greeted == 3  # three batches, the same three connections
