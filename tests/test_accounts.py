"""Logins and employees linked without an admin screen: by address at sign-in, and HR's
invitation of a whole department (its email's link signs each person in to their inbox)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone

from bulletin.domain.models import AuditEvent, Employee
from bulletin.domain.records import AuditAction
from bulletin.interfaces.accounts import invite
from tests import factories

pytestmark = pytest.mark.django_db


def sign_in_with_password(email: str, password: str = "pw") -> Client:
    client = Client()
    assert (
        client.post("/accounts/login/", {"username": email, "password": password}).status_code
        == 302
    )
    return client


def test_a_password_sign_in_links_the_user_to_the_employee_with_that_address() -> None:
    (person,) = factories.employees(1)
    user = User.objects.create_user("p0", person.email.upper(), "pw")
    sign_in_with_password("p0")
    person.refresh_from_db()
    assert person.user_id == user.pk


def test_no_link_when_the_address_is_ambiguous_taken_or_the_person_inactive() -> None:
    taken, inactive = factories.employees(2)
    taken.user = User.objects.create_user("other", "other@example.com", "pw")
    taken.save()
    Employee.objects.filter(pk=inactive.pk).update(active=False)
    User.objects.create_user("t", taken.email, "pw")
    User.objects.create_user("i", inactive.email, "pw")
    sign_in_with_password("t")
    sign_in_with_password("i")
    taken.refresh_from_db()
    inactive.refresh_from_db()
    assert taken.user.username == "other" and inactive.user_id is None


def test_hr_invites_a_department_and_each_link_signs_that_person_in_to_their_inbox(
    client: Client, ann: Any
) -> None:
    sales = factories.employees(3, department="Sales")
    factories.employees(2, prefix="ops", department="Ops")
    client.force_login(ann)
    page = client.get("/hr/employees/invite/")
    assert "Sales — 3 people, 3 without a login" in page.content.decode()
    done = client.post("/hr/employees/invite/", {"department": "Sales"}, follow=True)
    assert "Invited 3 in Sales" in done.content.decode()
    assert sorted(email.to[0] for email in mail.outbox) == sorted(p.email for p in sales)
    first = mail.outbox[0]
    link = re.search(r"https?://\S+/e/\S+/", first.body)
    assert link, first.body
    visitor = Client()
    landed = visitor.get(urlsplit(link.group(0)).path)
    assert landed.status_code == 302 and landed["Location"] == "/inbox/"
    invited = Employee.objects.get(email=first.to[0])
    assert invited.user_id is not None and visitor.session["_auth_user_id"] == str(invited.user_id)
    event = AuditEvent.objects.get(action=AuditAction.INVITED)
    assert event.actor == ann and event.detail["sent"] == 3


def test_nobody_is_invited_twice_within_a_day_however_often_hr_asks() -> None:
    factories.employees(4, department="Sales")
    now = timezone.now()
    first = invite("Sales", None, now)
    again = invite("Sales", None, now + timedelta(hours=23))
    assert (first.sent, again.sent, again.skipped) == (4, 0, 4)
    with time_machine.travel(now + timedelta(days=1, minutes=1), tick=False):
        later = invite("Sales", None, timezone.now())
    assert later.sent == 4
    assert len(mail.outbox) == 8


# Two threads of one process share SQLite's in-memory test database, which locks whole
# tables rather than letting them race; PostgreSQL (the pass that runs this) lets them race.
@pytest.mark.scale_out
@pytest.mark.django_db(transaction=True)
def test_two_hr_people_inviting_at_once_send_each_person_one_invitation() -> None:
    factories.employees(20, department="Sales")
    now, barrier = timezone.now(), threading.Barrier(2)
    results: list[int] = []

    def press() -> None:
        try:
            barrier.wait()
            results.append(invite("Sales", None, now).sent)
        finally:
            connection.close()  # each thread's own connection, not left for teardown

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 20
    assert sorted(email.to[0] for email in mail.outbox) == sorted(
        Employee.objects.values_list("email", flat=True)
    )


def test_inviting_a_department_nobody_is_in_is_refused(client: Client, ann: Any) -> None:
    factories.employees(1, department="Sales")
    client.force_login(ann)
    answer = client.post("/hr/employees/invite/", {"department": "Salse"}, follow=True)
    assert "no active employee is in" in answer.content.decode()
    assert not mail.outbox
    with pytest.raises(CommandError, match="department"):
        call_command("invite", "--department", "Salse")


def test_the_command_invites_a_department() -> None:
    factories.employees(2, department="Ops")
    call_command("invite", "--department", "Ops")
    assert len(mail.outbox) == 2
