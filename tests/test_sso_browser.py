"""Single sign-on end to end: real Chromium, Bulletin's live server, and a real OpenID provider
(Node's certified ``oidc-provider``, tests/oidc_provider) on loopback.

Every test reads the rows afterwards (users, their roles, the sessions) as well as the page:
a sign-in that only looked right would not pass.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session

from bulletin import conf
from bulletin.conf_sso import logout_origins
from bulletin.domain.models import Employee
from bulletin.domain.roles import ANNOUNCER, EMPLOYEE
from bulletin.interfaces.sso import discovery
from tests.oidc import CLIENT_ID, CLIENT_SECRET, Provider, identity_provider

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 10_000
PROVIDER_NAME = "Test IdP"


def account(name: str, groups: list[str], verified: bool = True) -> dict[str, Any]:
    return {
        "sub": f"idp-{name}",
        "email": f"{name}@example.com",
        "email_verified": verified,
        "name": name.title(),
        "groups": groups,
    }


ACCOUNTS = {
    "eve": account("eve", ["everyone"]),
    "hannah": account("hannah", ["everyone", "hr-comms"]),
    "una": account("una", ["everyone"], verified=False),
    "dora": account("dora", ["everyone"]),
}


@pytest.fixture
def idp(live_server: Any, settings: Any, tmp_path: Path) -> Iterator[Provider]:
    with identity_provider(live_server.url, ACCOUNTS, tmp_path) as provider:
        discovery.forget()
        settings.BULLETIN = replace(
            conf.load({}),
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_provider_name=PROVIDER_NAME,
            oidc_group_roles="hr-comms=Announcer\nhr-approvers=Approver",
        )
        settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
        policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)  # as settings.py makes it
        policy["DIRECTIVES"]["form-action"] += logout_origins(provider.issuer)
        settings.CONTENT_SECURITY_POLICY = policy
        yield provider
    discovery.forget()


@pytest.fixture
def employees(db: None) -> None:
    for name in ACCOUNTS:
        Employee.objects.create(
            email=f"{name}@example.com", name=name.title(), timezone="UTC", active=name != "dora"
        )


def signed_in_user_ids() -> set[str]:
    return {
        str(data["_auth_user_id"])
        for session in Session.objects.all()
        if "_auth_user_id" in (data := session.get_decoded())
    }


def sign_in(browser: Any, site: str, login: str, context: Any = None) -> Any:
    """From Bulletin's login page through the provider's and back; the page where it ends."""
    page = (context or browser.new_context()).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{site}/accounts/login/")
    page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}").click()
    page.get_by_label("Account").fill(login)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(site))
    page.wait_for_load_state()
    return page


def test_an_employee_signs_in_with_the_provider_lands_in_their_inbox_and_is_linked(
    browser: Any, live_server: Any, idp: Provider, employees: None
) -> None:
    page = sign_in(browser, live_server.url, "eve")

    assert page.url == f"{live_server.url}/inbox/"
    user = get_user_model().objects.get(username="oidc:idp-eve")
    assert user.email == "eve@example.com" and not user.has_usable_password()
    assert Employee.objects.get(email="eve@example.com").user == user
    assert signed_in_user_ids() == {str(user.pk)}
    assert not user.is_staff and not user.is_superuser


def test_someone_in_the_hr_group_gets_the_announcer_role_and_the_hr_screens(
    browser: Any, live_server: Any, idp: Provider, employees: None
) -> None:
    page = sign_in(browser, live_server.url, "hannah")

    assert page.url == f"{live_server.url}/hr/"
    user = get_user_model().objects.get(username="oidc:idp-hannah")
    assert set(user.groups.values_list("name", flat=True)) == {ANNOUNCER}
    assert page.get_by_role("link", name="New announcement").count() >= 1


def test_a_group_removed_at_the_provider_removes_its_role_at_the_next_sign_in_only(
    browser: Any, live_server: Any, idp: Provider, employees: None
) -> None:
    sign_in(browser, live_server.url, "hannah")
    user = get_user_model().objects.get(username="oidc:idp-hannah")
    user.groups.add(Group.objects.get(name=EMPLOYEE))  # given by hand: no group maps to it
    assert set(user.groups.values_list("name", flat=True)) == {ANNOUNCER, EMPLOYEE}

    idp.set_accounts({**ACCOUNTS, "hannah": account("hannah", ["everyone"])})
    page = sign_in(browser, live_server.url, "hannah")

    assert page.url == f"{live_server.url}/inbox/"
    assert set(user.groups.values_list("name", flat=True)) == {EMPLOYEE}
    assert get_user_model().objects.filter(email="hannah@example.com").count() == 1


def test_the_provider_s_keys_are_kept_between_sign_ins_and_read_again_when_it_rotates_them(
    browser: Any, live_server: Any, idp: Provider, employees: None
) -> None:
    sign_in(browser, live_server.url, "eve")
    sign_in(browser, live_server.url, "hannah")
    assert idp.jwks_fetches() == 1  # the library alone reads them at every sign-in

    idp.spoil_id_tokens("rotated")  # a second key published, and ID tokens signed with it
    page = sign_in(browser, live_server.url, "eve")

    assert page.url == f"{live_server.url}/inbox/"
    assert idp.jwks_fetches() == 2  # the unfamiliar kid made one fresh read


@pytest.mark.parametrize(
    ("spoiled", "says", "reason"),
    [
        ("tampered", "could not be verified", "tampered"),
        ("expired", "has expired", "expired"),
        ("wrong-audience", "meant for another application", "audience"),
        ("wrong-issuer", "did not come from Test IdP", "issuer"),
    ],
)
def test_a_spoiled_id_token_is_refused_with_a_page_saying_why_and_no_session(
    browser: Any,
    live_server: Any,
    idp: Provider,
    employees: None,
    spoiled: str,
    says: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    idp.spoil_id_tokens(spoiled)
    with caplog.at_level(logging.WARNING, logger="bulletin.interfaces.sso.refusals"):
        page = sign_in(browser, live_server.url, "eve")

    assert page.url.startswith(f"{live_server.url}/oidc/callback/")
    assert says in page.locator("#sso-refusal").inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == "You are not signed in"
    assert signed_in_user_ids() == set()
    assert not get_user_model().objects.filter(username="oidc:idp-eve").exists()
    warned = [record for record in caplog.records if record.name.endswith("sso.refusals")]
    assert [(record.levelno, record.message) for record in warned] == [
        (logging.WARNING, f"single sign-on refused: {reason}")
    ]


def test_an_unverified_email_is_refused(
    browser: Any, live_server: Any, idp: Provider, employees: None
) -> None:
    page = sign_in(browser, live_server.url, "una")

    assert "has not verified your email address" in page.locator("#sso-refusal").inner_text()
    assert signed_in_user_ids() == set()
    assert Employee.objects.get(email="una@example.com").user is None


def test_a_deactivated_employee_cannot_sign_in(
    browser: Any, live_server: Any, idp: Provider, employees: None
) -> None:
    page = sign_in(browser, live_server.url, "dora")

    assert "employee record in Bulletin is deactivated" in page.locator("#sso-refusal").inner_text()
    assert signed_in_user_ids() == set()


def test_logging_out_ends_the_session_here_and_at_the_provider(
    browser: Any, live_server: Any, idp: Provider, employees: None
) -> None:
    context = browser.new_context()
    page = sign_in(browser, live_server.url, "eve", context)
    assert len(signed_in_user_ids()) == 1

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(lambda url: url.startswith(f"{idp.issuer}/session/end"))
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/**")

    assert signed_in_user_ids() == set()
    # The provider forgot the person too: signing in again asks who they are.
    page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}").click()
    assert page.get_by_label("Account").is_visible()


def test_without_passwords_only_a_superuser_signs_in_by_password_at_the_break_glass_page(
    browser: Any, live_server: Any, idp: Provider, settings: Any
) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, password_login=False)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    users = get_user_model().objects
    users.create_user("pat", "pat@example.com", "not-a-real-pw-1")
    root = users.create_superuser("root", "root@example.com", "not-a-real-pw-2")
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    page.goto(f"{live_server.url}/accounts/login/")
    assert page.get_by_role("link", name=f"Sign in with {PROVIDER_NAME}").is_visible()
    assert page.get_by_label("Password").count() == 0

    page.goto(f"{live_server.url}/accounts/login/?password=1")
    page.get_by_label("Username").fill("pat")
    page.get_by_label("Password").fill("not-a-real-pw-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    assert signed_in_user_ids() == set()

    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("not-a-real-pw-2")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/inbox/")
    assert signed_in_user_ids() == {str(root.pk)}
