"""The authorisation matrix: every URL Bulletin serves, every kind of caller, the exact answer.

Every pattern ``get_resolver()`` knows is either a row here or in ``PUBLIC`` with a reason, so a
new URL without a row fails ``test_every_url_the_project_serves_is_in_the_matrix_or_public``.
Each row says, for each caller, what happens: ``ok`` (2xx, or a redirect to the row's ``to``),
``login`` (anonymous on an HTML page), ``admin-login`` (the admin's own login), ``->URL`` (a
redirect to exactly there), or a status code (401 for the API and the compose page's JSON
endpoints, 403, 404, 405). A caller who is refused changes nothing; a state-changing request
that is allowed changes something (``changes`` names who).

Conventions proven here: someone else's inbox item is a 404 (a 403 would confirm it exists),
even for an Administrator; HR screens check the role before looking the announcement up, so a
missing one is a 404 only for people who may see announcements. The API takes bearer tokens
only: a session cookie authenticates nothing there, so the API needs no CSRF token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from bulletin.dispatch import lifecycle, translations
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    ApiToken,
    Approval,
    Attempt,
    AuditEvent,
    Bounce,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Employee,
    InboxItem,
    Location,
    Occurrence,
    Place,
    ScheduleKind,
    Suppression,
)
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER, APPROVER, EMPLOYEE
from bulletin.interfaces.api.app import api
from bulletin.interfaces.api.auth import SCOPES
from tests import factories

pytestmark = pytest.mark.django_db

ACTORS = ("anonymous", "employee", "announcer", "approver", "administrator")
ROLE_OF = {"employee": EMPLOYEE, "announcer": ANNOUNCER, "approver": APPROVER}
ROLE_OF["administrator"] = ADMINISTRATOR

# Patterns anyone may reach, and why (a load balancer and Prometheus call /healthz and /metrics
# without a login; /metrics takes a bearer token when one is configured).
WEBHOOK = (
    "a mail provider posts bounce and complaint events here: the provider's credential is "
    "the credential (basic auth with the webhook secret; Mailgun's signing key), 404 until it "
    "is configured (test_bounce_webhooks)"
)
PUBLIC = {
    "accounts/login/": "the login page itself",
    "accounts/logout/": "logging out needs no rights (a POST, CSRF-checked below)",
    "admin/login/": "the admin's login page",
    "api/v1/openapi.json": "the API's description: routes and schemas, no data",
    "api/v1/docs": "the interactive docs page, which only reads openapi.json",
    "api/v1/": "django-ninja's root: always a 404, there only so API URLs can be reversed",
    "healthz": "liveness for a load balancer: says up or down, nothing else",
    "metrics": "Prometheus scrapes it: counts only, no names or text",
    "unsubscribe/<str:token>/": "RFC 8058 one-click unsubscribe: the signed per-person link is "
    "the credential, POSTed by mailbox providers without login or CSRF token (test_unsubscribe)",
    "e/<str:token>/": "an email's sign-in link: the signed, expiring per-person token is the "
    "credential; it never signs in a user with any permission (test_signed_links)",
    "preferences/link/<str:token>/": "an email's preferences link: the signed per-person token "
    "is the credential, for that person's own channels only (test_signed_links)",
    "acknowledge/<str:token>/": "an email's acknowledge link: the signed per-person token is the "
    "credential, for that person's own acknowledgement only (test_signed_links)",
    "oidc/authenticate/": "single sign-on starts here, before anyone is signed in: it only "
    "redirects to the identity provider (or says single sign-on is off; test_sso)",
    "oidc/callback/": "the identity provider sends the browser back here; the state in the "
    "session, the nonce and the signed ID token are the credential (test_sso_browser)",
    "bounces/webhooks/amazon_ses/": WEBHOOK,
    "bounces/webhooks/sendgrid/": WEBHOOK,
    "bounces/webhooks/mailgun/": WEBHOOK,
    "bounces/webhooks/postmark/": WEBHOOK,
    "bounces/webhooks/brevo/": WEBHOOK,
}
PROBES = ("healthz", "metrics")
AXES_MODELS = ("axes/accessattempt", "axes/accesslog", "axes/accessfailurelog")


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- the world every case starts from -------------------------------------------------------


@dataclass
class World:
    """One login per actor (each also an employee, as HR people are), an author whose
    announcements the others act on, and a colleague, Bob, whose inbox nobody else may open."""

    people: dict[str, Any]
    author: Any
    erin: Employee  # the "employee" actor
    bob: Employee
    item: Any = None  # the object the row acts on, made by its ``item`` builder


def employee_for(user: Any, name: str) -> Employee:
    return Employee.objects.create(
        email=f"{name}@example.com", name=name.title(), timezone="Europe/London", user=user
    )


@pytest.fixture
def world(db: None) -> World:
    people = {}
    for actor, role in ROLE_OF.items():
        user = factories.person(actor, role, is_staff=actor != "employee")
        employee_for(user, actor)
        people[actor] = user
    author = factories.person("author", ANNOUNCER)
    bob = employee_for(factories.person("bob", EMPLOYEE), "bob")
    return World(people, author, people["employee"].employee, bob)


def draft(w: World) -> Announcement:
    item = Announcement(
        title="Canteen reopens",
        body="On **Monday**.",
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * *",
        timezone="Europe/London",
    )
    return lifecycle.create(item, w.author)


def scheduled(w: World) -> Announcement:
    return lifecycle.submit(draft(w), w.author)


def paused(w: World) -> Announcement:
    item = scheduled(w)
    lifecycle.pause(item, w.author)
    return item


def pending(w: World) -> Announcement:
    item = draft(w)
    Announcement.objects.filter(pk=item.pk).update(status=AnnouncementStatus.PENDING_APPROVAL)
    item.refresh_from_db()
    return item


def failed(w: World) -> Announcement:
    """A scheduled announcement with one failed email delivery, to Erin."""
    item = scheduled(w)
    occurrence = Occurrence.objects.create(
        announcement=item, zone="Europe/London", fire_at=timezone.now(), state="fanned_out"
    )
    Delivery.objects.create(
        occurrence=occurrence,
        employee=w.erin,
        channel="email",
        due_at=timezone.now(),
        state=DeliveryState.FAILED,
    )
    return item


def place(w: World) -> Place:
    return Place.objects.create(name="#general", channel="slack", target="C123")


def held(w: World) -> Announcement:
    """A scheduled announcement whose delivery to Erin waits for her working hours."""
    item = failed(w)
    factories.put(
        Delivery.objects.filter(occurrence__announcement=item),
        state=DeliveryState.HELD,
        due_at=timezone.now() + timedelta(hours=12),
        hold_reason="weekend",
    )
    return item


def token_of(w: World) -> ApiToken:
    return ApiToken.issue(w.author, "sync", ["announcements:read"])[0]


def lockout_record(w: World, model: str) -> Any:
    values = {"user_agent": "curl", "ip_address": "192.0.2.1", "username": "bob"}
    if model == "accessattempt":
        values.update(get_data="", post_data="", failures_since_start=3)
    return apps.get_model("axes", model).objects.create(http_accept="*/*", path_info="/", **values)


def asking(w: World) -> Announcement:
    """The failed one, asking for acknowledgement (it has a not-yet-acknowledged list)."""
    item = failed(w)
    Announcement.objects.filter(pk=item.pk).update(requires_ack=True)
    return item


def bob_in_ops(w: World) -> Employee:
    Employee.objects.filter(pk=w.bob.pk).update(department="Ops")
    return w.bob


def asking_occurrence(w: World) -> Occurrence:
    return Occurrence.objects.get(announcement=asking(w))


def translated(w: World) -> Announcement:
    """A draft with a German text besides its English one."""
    item = draft(w)
    translations.save_text(item, "de", "Kantine öffnet", "Am Montag.", w.author)
    return item


def german_text(w: World) -> dict[str, str]:
    return {"title": "Kantine öffnet wieder", "body": "Am **Montag**."}


def suppression(w: World) -> Suppression:
    """Bob's address, suppressed after a hard bounce."""
    now = timezone.now()
    bounce = Bounce.objects.create(
        kind="hard",
        outcome="bounced",
        source="pipe",
        recipient=w.bob.email,
        raw=b"a DSN",
        digest="0" * 64,
        received_at=now,
    )
    return Suppression.objects.create(
        address=w.bob.email,
        employee=w.bob,
        bounce=bounce,
        reason="suppressed: 5.1.1",
        created_at=now,
    )


BUILDERS: dict[str, Callable[[World], Any]] = {
    "suppression": suppression,
    "bounce": lambda w: suppression(w).bounce,
    "asking": asking,
    "asking occurrence": asking_occurrence,
    "bob in ops": bob_in_ops,
    "draft": draft,
    "translated": translated,
    "scheduled": scheduled,
    "paused": paused,
    "pending": pending,
    "failed": failed,
    "held": held,
    "location": lambda w: factories.location("Pune", zone="Asia/Kolkata", country="IN"),
    "erins item": lambda w: factories.inbox_item(w.erin, requires_ack=True),
    "bob": lambda w: w.bob,
    "place": place,
    "occurrence": lambda w: failed(w).occurrences.get(),
    "delivery": lambda w: Delivery.objects.get(occurrence__announcement=failed(w)),
    "attempt": lambda w: Attempt.objects.create(
        delivery=Delivery.objects.get(occurrence__announcement=failed(w)),
        number=1,
        started_at=timezone.now(),
        outcome="failed",
    ),
    "inbox item": lambda w: factories.inbox_item(w.bob),
    "bobs occurrence": lambda w: factories.inbox_item(w.bob).delivery.occurrence,
    "token": token_of,
    "user": lambda w: w.author,
    "group": lambda w: w.author.groups.get(),
    **{m: lambda w, m=m: lockout_record(w, m.split("/")[1]) for m in AXES_MODELS},
}


def confirm(w: World) -> dict[str, str]:
    return {"confirm": "yes"}


def confirm_delete(w: World) -> dict[str, str]:
    return {"post": "yes"}


def opt_out_of_email(w: World) -> dict[str, list[str]]:
    return {"opt_out": ["email"]}


def fingerprint() -> tuple[Any, ...]:
    """Everything a request could change that matters here (not last_used_at or sessions)."""
    return (
        list(Announcement.objects.order_by("pk").values_list("pk", "status", "title", "body")),
        AuditEvent.objects.count(),
        Approval.objects.count(),
        list(Delivery.objects.order_by("pk").values_list("pk", "state", "due_at")),
        list(InboxItem.objects.order_by("pk").values_list("pk", "read_at", "acknowledged_at")),
        list(Employee.objects.order_by("pk").values_list("pk", "active", "name")),
        list(ChannelOptOut.objects.order_by("pk").values_list("employee_id", "channel")),
        list(Suppression.objects.order_by("pk").values_list("pk", "lifted_at")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        list(Place.objects.order_by("pk").values_list("pk", "name")),
        list(Location.objects.order_by("pk").values_list("pk", "name", "working_week")),
        get_user_model().objects.count(),
        len(mail.outbox),
    )


# --- HTML rows: the HR screens, the inbox and the admin --------------------------------------


@dataclass(frozen=True)
class Row:
    request: str  # "METHOD /path/"; "{item}" in the path stands for the built object's pk
    expect: str  # one outcome per actor, in ACTORS order
    item: str | None = None  # the BUILDERS entry that makes the object the row acts on
    data: Callable[[World], dict[str, Any]] | None = None
    to: str | None = None  # where an allowed request redirects (a regular expression)
    changes: str = ""  # "ok": every allowed actor changes something; or the actors' names

    @property
    def method(self) -> str:
        return self.request.split()[0]

    @property
    def url(self) -> str:
        return self.request.split()[1]

    @property
    def route(self) -> str:
        return resolve(self.url.replace("{item}", "1").partition("?")[0]).route

    def outcome(self, actor: str) -> str:
        return dict(zip(ACTORS, self.expect.split(), strict=True))[actor]

    def __str__(self) -> str:
        return self.request + (f" ({self.item})" if self.item else "")


def compose(w: World, **overrides: str) -> dict[str, Any]:
    return {
        "title": "Canteen reopens",
        "body": "Hello {{ first_name }}.",
        "audience_kind": "all",
        "channels": ["email"],
        "schedule_kind": "cron",
        "repeat": "weekdays",
        "time_of_day": "09:00",
        "timezone": "Europe/London",
        "action": "draft",
        **overrides,
    }


def edited(w: World) -> dict[str, Any]:
    return compose(w, title="Canteen reopens on Monday", action="save")


def upload(w: World) -> dict[str, Any]:
    csv = b"email,name,department,location,timezone\nnew@example.com,New,Ops,Leeds,UTC\n"
    return {"action": "check", "file": SimpleUploadedFile("people.csv", csv)}


def remind_them(w: World) -> dict[str, Any]:
    occurrence = Occurrence.objects.get(announcement=w.item)
    return {"occurrence": occurrence.pk, "channels": ["email"], "token": "drawn-with-the-page"}


# An HR action that is allowed changes the announcement and returns to its page.
DONE: dict[str, Any] = {"to": "/hr/{item}/", "changes": "ok"}
# A translation saved or removed returns to the announcement's list of languages.
TEXTS: dict[str, Any] = {"to": "/hr/{item}/translations/", "changes": "ok"}
HR_ROWS = [
    Row("GET /", "->/inbox/ ->/inbox/ ->/hr/ ->/hr/ ->/hr/"),
    Row("GET /hr/", "login 403 ok ok ok"),
    Row("GET /hr/new/", "login 403 ok 403 ok"),
    Row("POST /hr/new/", "login 403 ok 403 ok", data=compose, to=r"/hr/\d+/", changes="ok"),
    Row("GET /hr/preview/", "401 403 405 403 405"),
    Row("POST /hr/preview/", "401 403 ok 403 ok", data=lambda w: {"body": "**Hi**"}),
    Row("GET /hr/audience/", "401 403 ok ok ok"),
    Row("GET /hr/fire-times/", "401 403 ok 403 ok"),
    Row("GET /hr/people/?q=bo", "401 403 ok ok ok"),
    Row("GET /hr/employees/import/", "login 403 403 403 ok"),
    Row("GET /hr/employees/invite/", "login 403 ok 403 ok"),
    Row(
        "POST /hr/employees/invite/",
        "login 403 ok 403 ok",
        "bob in ops",
        data=lambda w: {"department": "Ops"},
        to="/hr/employees/invite/",
        changes="ok",
    ),
    Row("POST /hr/employees/import/", "login 403 403 403 ok", data=upload),  # the check step
    Row("GET /hr/suppressions/", "login 403 ok ok ok"),
    Row("GET /hr/suppressions/?address=bob", "login 403 ok ok ok", "suppression"),
    Row("GET /hr/suppressions/{item}/lift/", "login 403 403 403 405", "suppression"),
    Row(
        "POST /hr/suppressions/{item}/lift/",
        "login 403 403 403 ok",
        "suppression",
        to="/hr/suppressions/",
        changes="ok",
    ),
    Row("GET /hr/bounces/{item}/message.txt", "login 403 ok ok ok", "bounce"),
    Row("GET /hr/bounces/999999/message.txt", "login 403 404 404 404"),
    Row("GET /hr/{item}/", "login 403 ok ok ok", "draft"),
    Row("GET /hr/999999/", "login 403 404 404 404"),
    Row("GET /hr/{item}/edit/", "login 403 ok 403 ok", "draft"),
    Row("POST /hr/{item}/edit/", "login 403 ok 403 ok", "draft", edited, **DONE),
    Row("GET /hr/{item}/submit/", "login 403 405 405 405", "draft"),
    Row("POST /hr/{item}/submit/", "login 403 ok 403 ok", "draft", **DONE),
    Row("POST /hr/{item}/approve/", "login 403 403 ok ok", "pending", **DONE),
    Row("POST /hr/{item}/pause/", "login 403 ok 403 ok", "scheduled", **DONE),
    Row("POST /hr/{item}/resume/", "login 403 ok 403 ok", "paused", **DONE),
    Row("GET /hr/{item}/cancel/", "login 403 ok 403 ok", "scheduled"),  # asks first
    Row("POST /hr/{item}/cancel/", "login 403 ok 403 ok", "scheduled", confirm, **DONE),
    Row("POST /hr/{item}/retry/", "login 403 ok 403 ok", "failed", **DONE),
    Row("GET /hr/{item}/retry/unknown/", "login 403 ok 403 ok", "failed"),
    Row("POST /hr/{item}/send-now/", "login 403 ok 403 ok", "held", **DONE),
    Row("POST /hr/{item}/test/", "login 403 ok 403 ok", "draft", **DONE),
    Row("GET /hr/{item}/deliveries.csv", "login 403 ok ok ok", "failed"),
    Row("GET /hr/{item}/email-preview/", "login 403 ok ok ok", "draft"),
    Row("GET /hr/{item}/engagement/", "login 403 ok ok ok", "failed"),
    Row("GET /hr/{item}/not-acknowledged/", "login 403 ok ok ok", "asking"),
    Row("GET /hr/{item}/not-acknowledged.csv", "login 403 ok ok ok", "asking"),
    Row("POST /hr/{item}/remind/", "login 403 ok 403 ok", "asking", remind_them, **DONE),
    Row("GET /hr/{item}/translations/", "login 403 ok ok ok", "translated"),
    Row("GET /hr/999999/translations/", "login 403 404 404 404"),
    Row("GET /hr/{item}/translations/de/", "login 403 ok 403 ok", "translated"),
    Row("GET /hr/{item}/translations/fr/", "login 403 ok 403 ok", "draft"),  # a new one
    Row("GET /hr/{item}/translations/xx/", "login 403 404 403 404", "draft"),
    Row("POST /hr/{item}/translations/de/", "login 403 ok 403 ok", "draft", german_text, **TEXTS),
    Row("GET /hr/{item}/translations/de/remove/", "login 403 405 403 405", "translated"),
    Row(
        "POST /hr/{item}/translations/de/remove/",
        "login 403 ok 403 ok",
        "translated",
        confirm,
        **TEXTS,
    ),
]

INBOX_ROWS = [
    Row("GET /inbox/", "login ok ok ok ok", "erins item"),
    Row("GET /inbox/read/", "login 405 405 405 405"),
    # Everyone may mark *their own* items read; only Erin has any, so only hers change.
    Row("POST /inbox/read/", "login ok ok ok ok", "erins item", to="/inbox/", changes="employee"),
    Row("GET /inbox/{item}/", "login ok 404 404 404", "erins item", changes="employee"),
    Row(
        "POST /inbox/{item}/acknowledge/",
        "login ok 404 404 404",
        "erins item",
        to="/inbox/{item}/",
        changes="employee",
    ),
    # An occurrence's page: for whoever it reached (Erin, by email) and HR; others get a 404.
    Row("GET /announcements/{item}/", "login ok ok ok ok", "occurrence"),
    Row("GET /announcements/{item}/", "login 404 ok ok ok", "bobs occurrence"),
    Row("GET /announcements/999999/", "login 404 404 404 404"),
    # Only for whoever it reached in person and asked to acknowledge: this one asks nobody.
    Row("POST /announcements/{item}/acknowledge/", "login 404 404 404 404", "occurrence"),
    Row("GET /preferences/", "login ok ok ok ok"),
    Row("POST /preferences/", "login ok ok ok ok", None, opt_out_of_email, "/preferences/", "ok"),
]


# The admin: what each staff role may do on each model's pages (view, add, change, delete).
ADMIN_RIGHTS: dict[str, tuple[str, str, str]] = {
    # model: (announcer, approver, administrator)
    "bulletin/announcement": ("vacd", "v", "vacd"),
    "bulletin/employee": ("v", "v", "vacd"),
    "bulletin/place": ("v", "v", "vacd"),
    "bulletin/location": ("", "", "vacd"),
    "bulletin/occurrence": ("v", "v", "v"),  # the ledger is read-only for everyone
    "bulletin/delivery": ("v", "v", "v"),
    "bulletin/inboxitem": ("", "", "v"),
    "bulletin/attempt": ("", "", "v"),  # every try: administrators (no role has view_attempt)
    "bulletin/apitoken": ("", "", "vcd"),  # issued on the command line, never added here
    "auth/user": ("", "", ""),  # superusers only
    "auth/group": ("", "", ""),
}
# django-axes' lockout records: superusers only (no role is granted the axes app).
if apps.is_installed("axes"):
    ADMIN_RIGHTS.update(dict.fromkeys(AXES_MODELS, ("", "", "")))
ADMIN_ITEM = {
    "bulletin/announcement": "draft",
    "bulletin/employee": "bob",
    "bulletin/place": "place",
    "bulletin/location": "location",
    "bulletin/occurrence": "occurrence",
    "bulletin/delivery": "delivery",
    "bulletin/inboxitem": "inbox item",
    "bulletin/attempt": "attempt",
    "bulletin/apitoken": "token",
    "auth/user": "user",
    "auth/group": "group",
}
STAFF_ONLY = "admin-login admin-login"  # anonymous and Erin, who is not staff


def admin_rows(model: str) -> Iterator[Row]:
    rights = ADMIN_RIGHTS[model]
    base, item = f"/admin/{model}/", ADMIN_ITEM.get(model, model)

    def expect(letter: str) -> str:
        cells = ["ok" if letter in r or (letter == "v" and "c" in r) else "403" for r in rights]
        return " ".join([STAFF_ONLY, *cells])

    page = base + "{item}/"
    yield Row(f"GET {base}", expect("v"))
    yield Row(f"GET {base}add/", expect("a"))
    yield Row(f"POST {base}add/", expect("a"))  # empty: the form comes back with its errors
    yield Row(f"GET {page}change/", expect("v"), item)
    # Empty, too; a token has nothing editable, so it is saved as it was and the list follows.
    saved = re.escape(base) if model == "bulletin/apitoken" else None
    yield Row(f"POST {page}change/", expect("c"), item, to=saved)
    yield Row(f"GET {page}history/", expect("v"), item)
    yield Row(f"GET {page}delete/", expect("d"), item)
    yield Row(f"POST {page}delete/", expect("d"), item, confirm_delete, re.escape(base), "ok")
    # The bare object URL only redirects to its change page, which checks.
    yield Row(f"GET {page}", STAFF_ONLY + " ->.*/change/" * 3, item)


def action(name: str) -> Callable[[World], dict[str, Any]]:
    return lambda w: admin_action(name, w.item)


def admin_action(name: str, *items: Any) -> dict[str, Any]:
    return {"action": name, "_selected_action": [item.pk for item in items]}


ANNOUNCEMENTS = "/admin/bulletin/announcement/"
ADMIN_ROWS = [
    Row("GET /admin/", f"{STAFF_ONLY} ok ok ok"),
    Row("POST /admin/logout/", "->/admin/ ->/admin/ ok ok ok"),
    Row("GET /admin/password_change/", f"{STAFF_ONLY} ok ok ok"),
    Row("GET /admin/password_change/done/", f"{STAFF_ONLY} ok ok ok"),
    Row("GET /admin/autocomplete/", f"{STAFF_ONLY} 403 403 403"),
    Row("GET /admin/jsi18n/", f"{STAFF_ONLY} ok ok ok"),
    Row("GET /admin/r/1/1/", f"{STAFF_ONLY} 404 404 404"),
    Row("GET /admin/bulletin/", f"{STAFF_ONLY} ok ok ok"),
    Row("GET /admin/auth/", f"{STAFF_ONLY} 404 404 404"),
    Row("GET /admin/auth/user/{item}/password/", f"{STAFF_ONLY} 403 403 403", "user"),
    Row("GET /admin/nowhere/", f"{STAFF_ONLY} 404 404 404"),
    # Admin actions: the Approver reaches the list, but the service refuses to pause.
    Row(
        f"POST {ANNOUNCEMENTS}",
        f"{STAFF_ONLY} ok ok ok",
        "scheduled",
        action("pause_selected"),
        ANNOUNCEMENTS,
        "announcer administrator",
    ),
    Row(
        f"POST {ANNOUNCEMENTS}",
        f"{STAFF_ONLY} ok ok ok",
        "pending",
        action("approve_selected"),
        ANNOUNCEMENTS,
        "approver administrator",
    ),
    Row(
        "POST /admin/bulletin/apitoken/",
        f"{STAFF_ONLY} 403 403 ok",
        "token",
        action("revoke_selected"),
        "/admin/bulletin/apitoken/",
        "ok",
    ),
    *(row for model in ADMIN_RIGHTS for row in admin_rows(model)),
]

HTML_ROWS = HR_ROWS + INBOX_ROWS + ADMIN_ROWS


def client_for(w: World, actor: str, **options: Any) -> Client:
    client = Client(**options)
    if actor != "anonymous":
        client.force_login(w.people[actor])
    return client


def url_of(row: Row, w: World) -> str:
    return row.url.replace("{item}", str(w.item.pk)) if w.item is not None else row.url


def send(client: Client, row: Row, w: World, **extra: Any) -> Any:
    data = {**(row.data(w) if row.data else {}), **extra}
    if row.method == "GET":
        return client.get(url_of(row, w), data)
    return client.post(url_of(row, w), data)


def assert_outcome(response: Any, expected: str, to: str | None, w: World) -> None:
    status, where = response.status_code, response.get("Location", "")
    pk = str(w.item.pk) if w.item is not None else ""
    said = f"{status} {where} {getattr(response, 'content', b'')[:300]!r}"
    if expected == "ok" and to is None:
        assert 200 <= status < 300, said
    elif expected == "ok" or expected.startswith("->"):
        target = (to if expected == "ok" else expected[2:]) or ""
        assert 300 <= status < 400 and re.fullmatch(target.replace("{item}", pk), where), said
    elif expected in ("login", "admin-login"):
        page = "/accounts/login/" if expected == "login" else "/admin/login/"
        assert status == 302 and where.startswith(f"{page}?next="), said
    else:
        assert status == int(expected), said


def changers(row: Row) -> set[str]:
    if row.changes == "ok":
        return {actor for actor in ACTORS if row.outcome(actor) == "ok"}
    return set(row.changes.split())


def prepare(w: World, item: str | None) -> None:
    w.item = BUILDERS[item](w) if item else None


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("row", HTML_ROWS, ids=str)
def test_each_caller_gets_exactly_the_answer_the_matrix_gives_and_only_allowed_ones_change_data(
    world: World, row: Row, actor: str
) -> None:
    prepare(world, row.item)
    client = client_for(world, actor)
    before = fingerprint()
    assert_outcome(send(client, row, world), row.outcome(actor), row.to, world)
    if actor in changers(row):
        assert fingerprint() != before, "an allowed change changed nothing"
    else:
        assert fingerprint() == before, "this caller changed something"


def routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    """Every URL pattern spelt out from the root, joined as ResolverMatch.route joins them."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern).removeprefix("^" if prefix else "")
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, route)
        else:
            assert isinstance(pattern, URLPattern)
            yield route


def api_route(path: str) -> str:
    return resolve(path.replace("{id}", "1")).route


def test_every_url_the_project_serves_is_in_the_matrix_or_public() -> None:
    served = set(routes(get_resolver().url_patterns))
    covered = {row.route for row in HTML_ROWS} | {api_route(row.path) for row in API_ROWS}
    covered |= {api_route(row.path) for row in SCIM_ROWS}
    unaccounted = served - covered - set(PUBLIC)
    assert not unaccounted, f"add these to the matrix, or to PUBLIC with a reason: {unaccounted}"
    assert set(PUBLIC) <= served, "a public pattern that is no longer served"


def test_every_model_in_the_admin_has_its_rights_in_the_matrix() -> None:
    registered = {f"{m._meta.app_label}/{m._meta.model_name}" for m in admin.site._registry}
    assert registered == set(ADMIN_RIGHTS)


# --- the API: bearer tokens, scopes and roles ------------------------------------------------

API_ACTORS = ("no token", "revoked token", "token without the scope", *ROLE_OF)
READ, WRITE = "announcements:read", "announcements:write"
NEW = {
    "title": "Canteen reopens",
    "body": "On **Monday**.",
    "channels": ["email"],
    "schedule": {"kind": "cron", "cron": "0 9 * * 1-5", "timezone": "Europe/London"},
}
PERSON = {"email": "new@example.com", "name": "New", "department": "Ops", "location": "Leeds"}
PERSON["timezone"] = "UTC"
PUNE = {"name": "Pune", "timezone": "Asia/Kolkata", "country": "IN", "subdivision": "MH"}


@dataclass(frozen=True)
class ApiRow:
    method: str
    path: str  # as the OpenAPI schema spells it; {id} is the item's pk (999999 if none)
    scope: str
    expect: str  # employee, announcer, approver, administrator (all with every scope)
    item: str | None = None
    body: Any = None
    changes: bool = False
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # beyond Authorization

    def __str__(self) -> str:
        return f"{self.method} {self.path}" + (f" ({self.item})" if self.item else "")


ANN = "/api/v1/announcements"
API_ROWS = [
    ApiRow("GET", ANN, READ, "403 200 200 200"),
    ApiRow("POST", ANN, WRITE, "403 201 403 201", body=NEW, changes=True),
    ApiRow("GET", ANN + "/{id}", READ, "403 200 200 200", "draft"),
    ApiRow("GET", ANN + "/{id}", READ, "403 404 404 404"),
    ApiRow("PATCH", ANN + "/{id}", WRITE, "403 200 403 200", "draft", {"title": "New"}, True),
    ApiRow("DELETE", ANN + "/{id}", WRITE, "403 204 403 204", "draft", changes=True),
    ApiRow("GET", ANN + "/{id}/occurrences", READ, "403 200 200 200", "failed"),
    ApiRow("GET", ANN + "/{id}/preview", READ, "403 200 200 200", "scheduled"),
    ApiRow("GET", ANN + "/{id}/engagement", READ, "403 200 200 200", "failed"),
    ApiRow("POST", ANN + "/{id}/schedule", WRITE, "403 200 403 200", "draft", changes=True),
    ApiRow("POST", ANN + "/{id}/approve", WRITE, "403 403 200 200", "pending", changes=True),
    ApiRow("POST", ANN + "/{id}/pause", WRITE, "403 200 403 200", "scheduled", changes=True),
    ApiRow("POST", ANN + "/{id}/resume", WRITE, "403 200 403 200", "paused", changes=True),
    ApiRow("POST", ANN + "/{id}/cancel", WRITE, "403 200 403 200", "scheduled", changes=True),
    ApiRow("POST", ANN + "/{id}/retry", WRITE, "403 200 403 200", "failed", {}, True),
    ApiRow("POST", ANN + "/{id}/send-now", WRITE, "403 200 403 200", "held", changes=True),
    ApiRow(
        "GET",
        "/api/v1/preview",
        READ,
        "403 200 200 200",
        query={"cron": "0 9 * * *", "timezone": "Europe/London"},
    ),
    ApiRow("GET", "/api/v1/employees", "employees:read", "403 200 200 200"),
    ApiRow(
        "POST", "/api/v1/employees/bulk", "employees:write", "403 403 403 200", None, [PERSON], True
    ),
    ApiRow(
        "POST",
        "/api/v1/employees/{id}/deactivate",
        "employees:write",
        "403 403 403 200",
        "bob",
        changes=True,
    ),
    ApiRow("GET", "/api/v1/deliveries", "deliveries:read", "403 200 200 200"),
    ApiRow(
        "POST",
        "/api/v1/occurrences/{id}/reminders",
        WRITE,
        "403 201 403 201",
        "asking occurrence",
        {"channels": ["email"]},
        True,
        headers={"Idempotency-Key": "matrix"},
    ),
    ApiRow("GET", "/api/v1/locations", "employees:read", "403 200 200 200"),
    ApiRow("POST", "/api/v1/locations", "employees:write", "403 403 403 201", None, PUNE, True),
    ApiRow("GET", "/api/v1/locations/{id}", "employees:read", "403 200 200 200", "location"),
    ApiRow(
        "PATCH",
        "/api/v1/locations/{id}",
        "employees:write",
        "403 403 403 200",
        "location",
        {"working_week": "Mon-Sat 09:00-13:00"},
        True,
    ),
]


def authorization(user: Any, scopes: list[str], *, revoked: bool = False) -> dict[str, str]:
    token, raw = ApiToken.issue(user, "matrix", scopes)
    if revoked:
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def bearer(w: World, actor: str, scope: str) -> dict[str, str]:
    """The Authorization header each API caller sends (none for "no token")."""
    if actor == "no token":
        return {}
    user = w.people[actor] if actor in ROLE_OF else w.people["administrator"]
    scopes = [s for s in SCOPES if s != scope] if actor == "token without the scope" else SCOPES
    return authorization(user, list(scopes), revoked=actor == "revoked token")


def call(client: Client, row: ApiRow, w: World, headers: dict[str, str]) -> Any:
    path = row.path.replace("{id}", str(w.item.pk) if w.item is not None else "999999")
    headers = {
        **headers,
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in row.headers.items()},
    }
    if row.method == "GET":
        return client.get(path, row.query, **headers)
    body = {"data": json.dumps(row.body), "content_type": "application/json"}
    return client.generic(row.method, path, **(body if row.body is not None else {}), **headers)


def api_outcome(row: ApiRow, actor: str) -> int:
    refused = {"no token": 401, "revoked token": 401, "token without the scope": 403}
    if actor in refused:
        return refused[actor]
    return int(dict(zip(ROLE_OF, row.expect.split(), strict=True))[actor])


# --- SCIM: the identity provider's token, with the scope scim and the right to add and change
# employees (only the Administrator role has both) -----------------------------------------

SCIM_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "new",
    "displayName": "New",
    "emails": [{"value": "new@example.com", "type": "work"}],
}
SCIM_BOB = {**SCIM_USER, "userName": "bob", "displayName": "Robert"}
SCIM_BOB["emails"] = [{"value": "bob@example.com", "type": "work"}]
SCIM_PATCH = {"Operations": [{"op": "replace", "path": "displayName", "value": "Robert"}]}
SCIM_ADMIN = "403 403 403 200"
S = "/scim/v2"
SCIM_ROWS = [
    ApiRow("GET", f"{S}/Users", "scim", SCIM_ADMIN),
    ApiRow("POST", f"{S}/Users", "scim", "403 403 403 201", None, SCIM_USER, True),
    ApiRow("GET", f"{S}/Users/{{id}}", "scim", SCIM_ADMIN, "bob"),
    ApiRow("GET", f"{S}/Users/{{id}}", "scim", "403 403 403 404"),
    ApiRow("PUT", f"{S}/Users/{{id}}", "scim", SCIM_ADMIN, "bob", SCIM_BOB, True),
    ApiRow("PATCH", f"{S}/Users/{{id}}", "scim", SCIM_ADMIN, "bob", SCIM_PATCH, True),
    ApiRow("DELETE", f"{S}/Users/{{id}}", "scim", "403 403 403 204", "bob", changes=True),
    ApiRow("POST", f"{S}/Users/.search", "scim", SCIM_ADMIN, body={"count": 5}),
    ApiRow("POST", f"{S}/.search", "scim", SCIM_ADMIN, body={"count": 5}),
    ApiRow("GET", f"{S}/ServiceProviderConfig", "scim", SCIM_ADMIN),
    ApiRow("GET", f"{S}/ResourceTypes", "scim", SCIM_ADMIN),
    ApiRow("GET", f"{S}/ResourceTypes/User", "scim", SCIM_ADMIN),
    ApiRow("GET", f"{S}/Schemas", "scim", SCIM_ADMIN),
    ApiRow("GET", f"{S}/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "scim", SCIM_ADMIN),
    # Groups are not served (departments come from the enterprise extension): a SCIM 404.
    ApiRow("GET", f"{S}/Groups", "scim", "403 403 403 404"),
]


@pytest.mark.parametrize("actor", API_ACTORS)
@pytest.mark.parametrize("row", [*API_ROWS, *SCIM_ROWS], ids=str)
def test_each_api_and_scim_caller_gets_exactly_the_answer_the_matrix_gives(
    world: World, row: ApiRow, actor: str
) -> None:
    prepare(world, row.item)
    headers = bearer(world, actor, row.scope)
    before = fingerprint()
    response = call(Client(enforce_csrf_checks=True), row, world, headers)
    expected = api_outcome(row, actor)
    assert response.status_code == expected, response.content[:300]
    if expected >= 400:
        if row.path.startswith(S):  # SCIM's errors in its own schema and media type
            assert response["Content-Type"] == "application/scim+json"
        assert "detail" in response.json() and fingerprint() == before
    else:
        assert (fingerprint() != before) == row.changes


def test_every_api_operation_has_a_row_with_its_scope() -> None:
    schema = api.get_openapi_schema()
    operations = {
        (method.upper(), path, spec["x-scope"])
        for path, methods in schema["paths"].items()
        for method, spec in methods.items()
    }
    assert operations == {(row.method, row.path, row.scope) for row in API_ROWS}


# --- CSRF ------------------------------------------------------------------------------------

TOKEN_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token(client: Client, page: str = "/preferences/") -> str:
    """The token a real form on ``page`` carries (however the project stores it)."""
    found = TOKEN_FIELD.search(client.get(page).content.decode())
    assert found, f"{page} renders no form with a CSRF token"
    return found.group(1)


def allowed_actor(row: Row) -> str:
    return next(actor for actor in ACTORS[1:] if row.outcome(actor) == "ok")


STATE_CHANGING = [row for row in HTML_ROWS if row.method == "POST" and "ok" in row.expect]


@pytest.mark.parametrize("row", STATE_CHANGING, ids=str)
def test_every_html_form_endpoint_refuses_a_post_without_its_csrf_token_and_accepts_it_with(
    world: World, row: Row
) -> None:
    prepare(world, row.item)
    actor = allowed_actor(row)
    client = client_for(world, actor, enforce_csrf_checks=True)
    before = fingerprint()
    assert send(client, row, world).status_code == 403
    assert fingerprint() == before
    response = send(client, row, world, csrfmiddlewaretoken=csrf_token(client))
    assert_outcome(response, row.outcome(actor), row.to, world)
    assert (fingerprint() != before) == (actor in changers(row))


# The admin's login form carries next=/admin/ in a hidden field; the employees' form needs none.
@pytest.mark.parametrize(
    ("login_page", "landing"), [("/accounts/login/", "/inbox/"), ("/admin/login/", "/admin/")]
)
def test_logging_in_needs_the_login_forms_csrf_token(
    world: World, login_page: str, landing: str
) -> None:
    client = Client(enforce_csrf_checks=True)
    credentials = {"username": "administrator", "password": "pw", "next": landing}
    assert client.post(login_page, credentials).status_code == 403
    assert "_auth_user_id" not in client.session
    token = csrf_token(client, login_page)
    response = client.post(login_page, {**credentials, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == landing
    assert client.session["_auth_user_id"] == str(world.people["administrator"].pk)


def test_logging_out_needs_a_csrf_token_so_another_site_cannot_log_someone_out(
    world: World,
) -> None:
    client = client_for(world, "employee", enforce_csrf_checks=True)
    assert client.post("/accounts/logout/").status_code == 403
    assert client.get("/inbox/").status_code == 200
    token = csrf_token(client)
    assert client.post("/accounts/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert client.get("/inbox/")["Location"].startswith("/accounts/login/")


def test_the_api_takes_a_bearer_token_without_csrf_and_never_a_session_cookie(
    world: World,
) -> None:
    """The API has no cookie authentication at all, so a forged cross-site POST carrying the
    browser's session is a 401, with or without a CSRF token, and a bearer token (which a
    browser never attaches by itself) needs none."""
    client = client_for(world, "administrator", enforce_csrf_checks=True)
    body = {"data": json.dumps(NEW), "content_type": "application/json"}
    assert client.post(ANN, **body).status_code == 401
    token = csrf_token(client)
    with_csrf = client.post(ANN, **body, HTTP_X_CSRFTOKEN=token)
    assert with_csrf.status_code == 401 and with_csrf["WWW-Authenticate"].startswith("Bearer")
    assert client.get(ANN).status_code == 401  # reading needs the token too
    assert not Announcement.objects.exists()
    headers = bearer(world, "announcer", WRITE)
    assert Client(enforce_csrf_checks=True).post(ANN, **body, **headers).status_code == 201
    assert Announcement.objects.get().created_by == world.people["announcer"]


# --- public pages ----------------------------------------------------------------------------


def test_the_public_pages_answer_anyone_and_show_no_data(world: World) -> None:
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/admin/login/").status_code == 200
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200 and "paths" in schema.json()
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/").status_code == 404
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"
    for route in PROBES:
        response = client.get(f"/{route}")
        assert response.status_code == 200, route
        assert "bob@example.com" not in response.content.decode(), route


# --- object-level rules ----------------------------------------------------------------------


def test_an_employee_cannot_read_acknowledge_or_mark_read_another_employees_items_by_guessing(
    world: World,
) -> None:
    mine = factories.inbox_item(world.erin)
    theirs = [factories.inbox_item(world.bob, requires_ack=True), factories.inbox_item(world.bob)]
    InboxItem.objects.filter(pk__in=[t.pk for t in theirs]).update(title="Bob's pay review")
    client = client_for(world, "employee")
    for pk in range(1, max(item.pk for item in theirs) + 3):
        if pk == mine.pk:
            continue
        assert client.get(f"/inbox/{pk}/").status_code == 404, pk
        assert client.head(f"/inbox/{pk}/").status_code == 404, pk
        assert client.post(f"/inbox/{pk}/acknowledge/").status_code == 404, pk
    assert client.post("/inbox/read/").status_code == 302
    assert "Bob" not in client.get("/inbox/").content.decode()
    bobs = InboxItem.objects.filter(employee=world.bob)
    assert not bobs.filter(read_at__isnull=False).exists()
    assert not bobs.filter(acknowledged_at__isnull=False).exists()
    assert InboxItem.objects.get(pk=mine.pk).read_at is not None


def test_a_login_that_is_no_employee_gets_a_page_saying_so_on_every_inbox_page(
    world: World,
) -> None:
    item = factories.inbox_item(world.bob, requires_ack=True)
    client = Client()
    client.force_login(world.author)  # HR, but not linked to an employee
    for url in ("/inbox/", f"/inbox/{item.pk}/", "/preferences/"):
        assert client.get(url).status_code == 403, url
    for url in (f"/inbox/{item.pk}/acknowledge/", "/inbox/read/", "/preferences/"):
        assert client.post(url, {"opt_out": ["email"]}).status_code == 403, url
    item.refresh_from_db()
    assert item.read_at is None and not ChannelOptOut.objects.exists()


@pytest.mark.usefixtures("approval_required")
def test_nobody_approves_an_announcement_they_wrote_or_last_edited_anywhere(
    world: World,
) -> None:
    """Someone who may both write and approve still needs a second person: on the HR screens
    (a message on the announcement's page), in the API (403) and in the admin (an error)."""
    both = factories.person("both", ANNOUNCER, APPROVER, is_staff=True)
    world.author = both
    own = lifecycle.submit(draft(world), both)
    world.author = factories.person("someone", ANNOUNCER)
    edited = lifecycle.submit(draft(world), world.author)
    lifecycle.edit(edited, both, title="Canteen reopens on Tuesday")
    client = Client()
    client.force_login(both)
    headers = authorization(both, [WRITE])
    for item in (own, edited):
        assert item.status == AnnouncementStatus.PENDING_APPROVAL
        response = client.post(f"/hr/{item.pk}/approve/", follow=True)
        assert "Another approver has to approve it" in response.content.decode()
        page = client.post("/admin/bulletin/announcement/", admin_action("approve_selected", item))
        assert page.status_code == 302
        assert Client().post(f"{ANN}/{item.pk}/approve", **headers).status_code == 403
    assert not Approval.objects.exists()
    assert set(Announcement.objects.values_list("status", flat=True)) == {"pending_approval"}
    response = client_for(world, "approver").post(f"/hr/{own.pk}/approve/")
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.status == AnnouncementStatus.SCHEDULED


def test_a_retry_naming_an_occurrence_of_another_announcement_is_a_404_everywhere(
    world: World,
) -> None:
    item, other = failed(world), failed(world)
    foreign = other.occurrences.get().pk
    client = client_for(world, "announcer")
    headers = bearer(world, "announcer", WRITE)
    before = fingerprint()
    for occurrence in (str(foreign), "999999", "abc"):
        data = {"occurrence": occurrence}
        assert client.post(f"/hr/{item.pk}/retry/", data).status_code == 404, occurrence
        assert client.get(f"/hr/{item.pk}/retry/unknown/", data).status_code == 404, occurrence
    body = {"data": json.dumps({"occurrence_id": foreign}), "content_type": "application/json"}
    assert Client().post(f"{ANN}/{item.pk}/retry", **body, **headers).status_code == 404
    assert fingerprint() == before


def test_staff_who_may_only_view_api_tokens_cannot_revoke_them(world: World) -> None:
    from django.contrib.auth.models import Permission

    viewer = factories.person("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    world.item = token_of(world)
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/bulletin/apitoken/").status_code == 200
    response = client.post("/admin/bulletin/apitoken/", admin_action("revoke_selected", world.item))
    assert response.status_code == 200  # the list again, with "No action selected"
    assert ApiToken.objects.get().revoked_at is None


def test_a_role_without_staff_status_does_not_open_the_admin(world: World) -> None:
    administrator = world.people["administrator"]
    administrator.is_staff = False
    administrator.save(update_fields=["is_staff"])
    response = client_for(world, "administrator").get("/admin/bulletin/announcement/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client_for(world, "administrator").get("/hr/").status_code == 200
