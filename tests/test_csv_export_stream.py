"""HR's CSV export of an announcement's deliveries: streamed in chunks of rows from one query,
every column as it always was (recipients, states, UTC times, formulas neutralised), the same
people allowed, and a failure half-way through logged and broken off — never an error page
inside the file. Its speed and memory at 1M rows are `make bench BENCH=csv-export`."""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulletin.domain.models import Delivery, Occurrence, OccurrenceState, Place
from bulletin.interfaces.hr import exports
from tests import factories

HEADER = "fire_at,recipient,channel,state,attempts,last_error,sent_at,hold_reason\r\n"
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def occurrence(item: Any, fire_at: datetime) -> Occurrence:
    return Occurrence.objects.create(
        announcement=item, zone="UTC", fire_at=fire_at, state=OccurrenceState.FANNED_OUT
    )


def deliver(where: Occurrence, **fields: Any) -> int:
    """One delivery in the state a scenario needs, saved on its own (the ledger counts it)."""
    fields = {"channel": "email", "due_at": where.fire_at} | fields
    return int(Delivery.objects.create(occurrence=where, **fields).pk)


def text_of(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def an_announcement() -> Any:
    return factories.announcement(now=timezone.now(), cron="0 9 * * 1")


@pytest.mark.django_db
def test_the_export_streams_states_times_and_recipients_exactly_in_fire_order(ann: Any) -> None:
    item = an_announcement()
    anna, ben, cleo = factories.employees(3)
    general = Place.objects.create(name="General", channel="slack", target="C0000001")
    hook = Place.objects.create(name="Payroll hook", channel="webhook", target="https://h.test")
    # Created first but fired later: the file follows the fire time, not the row ids.
    later = occurrence(item, MONDAY + timedelta(days=7))
    earlier = occurrence(item, MONDAY)
    deliver(later, employee=anna, state="failed", attempts=3, last_error="550 no such user")
    deliver(later, employee=cleo, state="skipped", last_error="opted out of email")
    deliver(later, employee=ben, state="held", hold_reason="after working hours")
    deliver(later, place=general, channel="slack", state="sent", attempts=1, sent_at=MONDAY)
    deliver(later, employee=anna, place=hook, channel="webhook", state="pending")
    precise = MONDAY + timedelta(seconds=61, microseconds=123456)
    deliver(earlier, employee=anna, state="sent", attempts=1, sent_at=precise)
    deliver(earlier, employee=ben, state="sent", attempts=2, sent_at=MONDAY + timedelta(hours=1))

    response = logged_in(ann).get(f"/hr/{item.pk}/deliveries.csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == (
        f'attachment; filename="announcement-{item.pk}-deliveries.csv"'
    )
    first, second = "2026-03-02T09:00:00+00:00", "2026-03-09T09:00:00+00:00"
    assert text_of(response) == HEADER + "\r\n".join(
        [
            f"{first},person0@example.com,email,sent,1,,2026-03-02T09:01:01.123456+00:00,",
            f"{first},person1@example.com,email,sent,2,,2026-03-02T10:00:00+00:00,",
            f"{second},person0@example.com,email,failed,3,550 no such user,,",
            f"{second},person2@example.com,email,skipped,0,opted out of email,,",
            f"{second},person1@example.com,email,held,0,,,after working hours",
            f"{second},General,slack,sent,1,,2026-03-02T09:00:00+00:00,",
            f"{second},person0@example.com (via Payroll hook),webhook,pending,0,,,",
            "",
        ]
    )


@pytest.mark.django_db
def test_every_cell_that_a_spreadsheet_would_run_as_a_formula_starts_with_an_apostrophe(
    ann: Any,
) -> None:
    item = an_announcement()
    (person,) = factories.employees(1)
    person.email = "=1+2@example.com"
    person.save()
    where = occurrence(item, MONDAY)
    minus = Place.objects.create(name="-minus", channel="slack", target="C0000002")
    hook = Place.objects.create(name="Hook", channel="webhook", target="https://h.test")
    deliver(where, employee=person, state="failed", last_error='=HYPERLINK("http://evil")')
    deliver(where, place=minus, channel="slack", last_error="+SUM(A1)", hold_reason="@cmd")
    deliver(where, employee=person, place=hook, channel="webhook", last_error="\tTAB")
    deliver(where, place=hook, channel="webhook", last_error="\rCR", hold_reason="plain, text")

    body = text_of(logged_in(ann).get(f"/hr/{item.pk}/deliveries.csv"))

    fire = "2026-03-02T09:00:00+00:00"
    assert body == HEADER + "\r\n".join(
        [
            f'{fire},\'=1+2@example.com,email,failed,0,"\'=HYPERLINK(""http://evil"")",,',
            f"{fire},'-minus,slack,pending,0,'+SUM(A1),,'@cmd",
            f"{fire},'=1+2@example.com (via Hook),webhook,pending,0,'\tTAB,,",
            f'{fire},Hook,webhook,pending,0,"\'\rCR",,"plain, text"',
            "",
        ]
    )


@pytest.mark.django_db
def test_the_rows_come_from_one_query_in_chunks_not_a_piece_per_row(
    ann: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "CHUNK", 2)
    item = an_announcement()
    where = occurrence(item, MONDAY)
    for person in factories.employees(5):
        deliver(where, employee=person)
    response = logged_in(ann).get(f"/hr/{item.pk}/deliveries.csv")

    with CaptureQueriesContext(connection) as queries:
        pieces = list(response.streaming_content)

    assert len(queries) == 1  # the deliveries with their occurrence, person and place
    assert [piece.count(b"\r\n") for piece in pieces] == [1, 2, 2, 1]  # header, then chunks


@pytest.mark.django_db
def test_an_announcement_without_deliveries_exports_the_header_alone(ann: Any) -> None:
    item = an_announcement()
    assert text_of(logged_in(ann).get(f"/hr/{item.pk}/deliveries.csv")) == HEADER


@pytest.mark.django_db
def test_people_who_may_not_see_deliveries_get_what_they_always_got(eve: Any) -> None:
    item = an_announcement()
    url = f"/hr/{item.pk}/deliveries.csv"
    assert Client().get(url).status_code == 302  # to the login page
    refused = logged_in(eve).get(url)
    assert refused.status_code == 403 and not refused.streaming
    assert "see deliveries" in refused.content.decode()


@contextmanager
def served(**adjustments: Any) -> Iterator[int]:
    """Bulletin's WSGI application under waitress, as `bulletin run` serves it: its port."""
    from django.core.handlers.wsgi import WSGIHandler
    from waitress import create_server  # type: ignore[import-untyped]

    # What bulletin.wsgi serves, without its django.setup(): that would configure logging
    # again and take pytest's log capture off the root logger.
    server = create_server(WSGIHandler(), host="127.0.0.1", port=0, threads=1, **adjustments)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        thread.join(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_a_failure_half_way_is_logged_with_the_announcement_and_breaks_the_download_off(
    ann: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(exports, "CHUNK", 2)
    item = an_announcement()
    where = occurrence(item, MONDAY)
    people = factories.employees(5)
    ids = [deliver(where, employee=person) for person in people]
    # A time no reader can hold (past year 9999): the fifth row fails after two chunks went out.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Delivery._meta.db_table} SET sent_at = %s WHERE id = %s",
            ["10000-01-01 00:00:00+00:00", ids[-1]],
        )
    cookie = logged_in(ann).cookies["sessionid"].value

    with served() as port, caplog.at_level(logging.INFO):
        web = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        path = f"/hr/{item.pk}/deliveries.csv"
        web.request("GET", path, headers={"Host": "testserver", "Cookie": f"sessionid={cookie}"})
        response = web.getresponse()
        with pytest.raises(http.client.IncompleteRead) as broken:
            response.read()
        web.close()

    assert response.status == 200
    received = broken.value.partial.decode()
    fire = "2026-03-02T09:00:00+00:00"
    assert received == HEADER + "".join(
        f"{fire},{person.email},email,pending,0,,,\r\n" for person in people[:4]
    )
    failures = [r for r in caplog.records if r.name == exports.__name__ and r.levelname == "ERROR"]
    assert [(r.getMessage(), getattr(r, "announcement_id", None)) for r in failures] == [
        ("delivery export failed", item.pk)
    ]


def logged(caplog: pytest.LogCaptureFixture, message: str, within: float = 20.0) -> list[Any]:
    """The export's log records with this message (ids included), once one has come."""
    deadline = time.monotonic() + within
    while True:
        found = [
            (r.getMessage(), getattr(r, "announcement_id", None))
            for r in caplog.records
            if r.name == exports.__name__ and r.getMessage() == message
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_download_given_up_half_way_is_logged_with_the_announcement(
    ann: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(exports, "CHUNK", 1)
    item = an_announcement()
    where = occurrence(item, MONDAY)
    # 5 MB in all, more than the server holds for a client (64 kB here) and the sockets
    # between: it is still writing when the client leaves.
    for person in factories.employees(100):
        deliver(where, employee=person, state="failed", last_error="x" * 50_000)
    cookie = logged_in(ann).cookies["sessionid"].value

    with served(outbuf_high_watermark=65536) as port, caplog.at_level(logging.INFO):
        web = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        path = f"/hr/{item.pk}/deliveries.csv"
        web.request("GET", path, headers={"Host": "testserver", "Cookie": f"sessionid={cookie}"})
        response = web.getresponse()
        assert response.read(1000).startswith(HEADER.encode())
        response.close()  # the person closed the browser tab
        web.close()
        given_up = logged(caplog, "delivery export abandoned")

    assert given_up == [("delivery export abandoned", item.pk)]
    assert not logged(caplog, "deliveries exported", within=0)
