"""API tokens: stored only as a hash, shown once by `bulletin create_api_token`, revocable at
once, and limited to the scopes they were given."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from bulletin.domain.models import ApiToken
from bulletin.domain.roles import ANNOUNCER
from tests.harness import Installation

pytestmark = pytest.mark.django_db


@pytest.fixture
def ann(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("ann", "ann@example.com")
    user.groups.add(Group.objects.get(name=ANNOUNCER))
    return user


def create_token(**options: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue().strip()


def status(token: str, path: str = "/api/v1/announcements") -> int:
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_the_stored_hash_is_not_the_token(ann: Any) -> None:
    token, raw = ApiToken.issue(ann, "sync", ["announcements:read"])
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith("blt_") and len(raw) > 40
    assert stored.key_hash != raw and stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {stored.key_hash, stored.hint, stored.name}
    assert raw.startswith(stored.hint) and len(stored.hint) < len(raw) // 2


def test_create_api_token_prints_a_token_that_authenticates(ann: Any) -> None:
    raw = create_token(user="ann", name="HRIS sync", scopes="announcements:read,deliveries:read")
    assert "\n" not in raw and raw.startswith("blt_")
    assert status(raw) == 200
    assert status(raw, "/api/v1/deliveries") == 200
    assert status(raw, "/api/v1/employees") == 403  # not one of its scopes
    token = ApiToken.objects.get()
    assert token.name == "HRIS sync" and token.user == ann
    assert token.scopes == ["announcements:read", "deliveries:read"]


def test_revocation_takes_effect_on_the_very_next_request(ann: Any) -> None:
    raw = create_token(user="ann", name="laptop", scopes="announcements:read")
    assert status(raw) == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    assert status(raw) == 401


def test_last_used_is_written_at_most_once_a_minute(ann: Any) -> None:
    raw = create_token(user="ann", name="laptop", scopes="announcements:read")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        status(raw)
    assert ApiToken.objects.get().last_used_at == start
    with time_machine.travel(start + timedelta(seconds=59), tick=False):
        status(raw)
    assert ApiToken.objects.get().last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        status(raw)
    assert ApiToken.objects.get().last_used_at == start + timedelta(seconds=61)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scopes": "announcements:read,everything"}, "unknown scope(s) everything"),
        ({"scopes": " , "}, "name at least one of"),
        ({"user": "nobody"}, "no user 'nobody'"),
    ],
)
def test_create_api_token_refuses_unknown_scopes_and_users(
    ann: Any, options: dict[str, str], message: str
) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_token(**{"user": "ann", "name": "x", "scopes": "announcements:read", **options})
    assert ApiToken.objects.count() == 0


@pytest.mark.slow
def test_create_api_token_errors_are_one_line_with_a_failing_exit_code(
    installation: Installation,
) -> None:
    result = installation.run(
        "create_api_token", "--user", "nobody", "--name", "x", "--scopes", "nope:x", check=False
    )
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "unknown scope(s) nope:x" in result.stderr


@pytest.mark.django_db
def test_revoking_a_token_in_the_admin_locks_it_out_at_once(admin_client: Any) -> None:
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.create_user("owner", "owner@example.com", "pw")
    token, raw = ApiToken.issue(owner, "hris", ["employees:read"])
    admin_client.post(
        "/admin/bulletin/apitoken/", {"action": "revoke_selected", "_selected_action": [token.pk]}
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = admin_client.get("/api/v1/employees", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
