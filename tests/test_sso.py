"""Single sign-on below the browser: the variables, the roles table, discovery's refusals, and
the views' answers when something is off (the full sign-in is test_sso_browser's).

Discovery documents come from a real loopback HTTP server (tests/http_receiver.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from bulletin import conf
from bulletin.conf_sso import group_roles
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER, APPROVER, EMPLOYEE
from bulletin.interfaces.sso import claims, discovery
from bulletin.interfaces.sso.backend import subject_username
from tests import factories
from tests.http_receiver import HttpReceiver, Reply, closed_url

ROOT = Path(__file__).resolve().parent.parent
SSO = {"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "bulletin"}


# --- the variables -----------------------------------------------------------------------------


def test_unset_issuer_means_no_single_sign_on_and_passwords_as_today() -> None:
    chosen = conf.load({})
    assert (chosen.oidc_issuer, chosen.password_login) == ("", True)
    assert chosen.oidc_scopes == "openid email profile" and chosen.oidc_groups_claim == "groups"


def test_the_group_roles_table_is_read_and_kept_one_pair_a_line() -> None:
    chosen = conf.load(
        {
            **SSO,
            "OIDC_GROUP_ROLES": "hr-comms=Announcer, hr-approvers=Approver,it-admins=Administrator",
        }
    )
    assert chosen.oidc_group_roles == (
        "hr-comms=Announcer\nhr-approvers=Approver\nit-admins=Administrator"
    )
    assert group_roles(chosen.oidc_group_roles) == {
        "hr-comms": ANNOUNCER,
        "hr-approvers": APPROVER,
        "it-admins": ADMINISTRATOR,
    }


BAD = [
    ({"OIDC_GROUP_ROLES": "hr=Boss"}, "OIDC_GROUP_ROLES: 'Boss' is not a role"),
    ({"OIDC_GROUP_ROLES": "hr-comms"}, "OIDC_GROUP_ROLES must be group=Role pairs"),
    ({"OIDC_GROUP_ROLES": "a=Announcer,a=Approver"}, "OIDC_GROUP_ROLES names group 'a' twice"),
    ({"OIDC_ISSUER": "http://idp.example.com"}, "OIDC_ISSUER must be the provider's https://"),
    ({"OIDC_ISSUER": "https://idp.example.com/?x=1"}, "OIDC_ISSUER must be"),
    ({"OIDC_CLIENT_ID": ""}, "OIDC_CLIENT_ID must be set when OIDC_ISSUER is"),
    ({"OIDC_SCOPES": "openid profile"}, "OIDC_SCOPES must include openid and email"),
    (
        {"OIDC_ISSUER": "", "BULLETIN_PASSWORD_LOGIN": "false"},
        "BULLETIN_PASSWORD_LOGIN=false needs",
    ),
    ({"BULLETIN_PASSWORD_LOGIN": "nope"}, "BULLETIN_PASSWORD_LOGIN must be true or false"),
]


@pytest.mark.parametrize(("changed", "says"), BAD)
def test_a_bad_single_sign_on_variable_is_one_error_naming_it(
    changed: dict[str, str], says: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=says.replace("?", r"\?")):
        conf.load({**SSO, **changed})


def test_plain_http_issuers_are_let_through_on_loopback_only() -> None:
    assert conf.load({**SSO, "OIDC_ISSUER": "http://127.0.0.1:9000"}).oidc_issuer == (
        "http://127.0.0.1:9000"
    )


def test_the_client_secret_may_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    environ = {"OIDC_CLIENT_SECRET_FILE": str(tmp_path / "secret")}
    assert conf.secret("OIDC_CLIENT_SECRET", environ) == "s3cret"


def _start(extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("OIDC_")}
    environ.update(BULLETIN_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="bulletin.settings")
    command = [sys.executable, "-c", "import django; django.setup()"]
    return subprocess.run(
        command, env={**environ, **extra}, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_start_up_stops_with_one_line_for_a_bad_group_roles_value_or_a_missing_secret(
    tmp_path: Path,
) -> None:
    bad_role = _start({**SSO, "OIDC_CLIENT_SECRET": "x", "OIDC_GROUP_ROLES": "a=Boss"}, tmp_path)
    assert bad_role.returncode != 0
    assert "OIDC_GROUP_ROLES: 'Boss' is not a role" in bad_role.stderr.splitlines()[-1]
    no_secret = _start(SSO, tmp_path)
    assert no_secret.returncode != 0
    assert "OIDC_CLIENT_SECRET (or OIDC_CLIENT_SECRET_FILE) must be set" in no_secret.stderr
    assert _start({**SSO, "OIDC_CLIENT_SECRET": "x"}, tmp_path).returncode == 0


# --- claims and roles --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "email"),
    [
        ({"email": "a@example.com", "email_verified": True}, "a@example.com"),
        ({"email": "a@example.com", "email_verified": "true"}, "a@example.com"),
        ({"email": "a@example.com", "email_verified": False}, ""),
        ({"email": "a@example.com", "xms_edov": True}, "a@example.com"),
        ({"email": "a@example.com", "xms_edov": "1"}, ""),
        ({"email": "a@example.com"}, ""),
        ({"email_verified": True}, ""),
    ],
)
def test_only_a_verified_address_counts(found: dict[str, Any], email: str) -> None:
    assert claims.verified_email(found) == email


def test_the_groups_claim_may_be_a_list_or_one_string_and_an_overage_is_not_no_groups() -> None:
    assert claims.groups_in({"groups": ["a", "b", 3]}, "groups") == {"a", "b"}
    assert claims.groups_in({"roles": "hr"}, "roles") == {"hr"}
    assert claims.groups_in({}, "groups") == set()
    overage = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {}}}
    with pytest.raises(claims.GroupsUnknown):
        claims.groups_in(overage, "groups")


TABLE = {"hr-comms": ANNOUNCER, "hr-approvers": APPROVER, "it-admins": ADMINISTRATOR}


@pytest.mark.django_db
def test_roles_follow_the_groups_but_only_among_the_roles_the_table_manages() -> None:
    user = factories.person("hannah", EMPLOYEE, APPROVER)

    change = claims.follow_groups(user, {"hr-comms", "unmapped"}, TABLE)

    assert change == claims.RoleChange(frozenset({ANNOUNCER}), frozenset({APPROVER}))
    assert set(user.groups.values_list("name", flat=True)) == {EMPLOYEE, ANNOUNCER}
    claims.follow_groups(user, set(), TABLE)
    assert set(user.groups.values_list("name", flat=True)) == {EMPLOYEE}
    assert not user.is_staff and not user.is_superuser
    assert Group.objects.filter(name=ADMINISTRATOR).exists()


def test_a_subject_becomes_a_stable_username_that_fits_django_s_150_characters() -> None:
    assert subject_username("00u1abcd") == "oidc:00u1abcd"
    long = subject_username("x" * 300)
    assert len(long) <= 150 and long == subject_username("x" * 300)


# --- discovery ----------------------------------------------------------------------------------


def document(issuer: str, **changes: Any) -> dict[str, Any]:
    found = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "userinfo_endpoint": f"{issuer}/me",
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    }
    found.update(changes)
    return {key: value for key, value in found.items() if value is not None}


@pytest.fixture
def idp() -> Iterator[HttpReceiver]:
    discovery.forget()
    with HttpReceiver(default=Reply(404)) as receiver:
        yield receiver
    discovery.forget()


def issuer_of(receiver: HttpReceiver) -> str:
    return receiver.url("").rstrip("/")


WELL_KNOWN = "/.well-known/openid-configuration"


def test_discovery_reads_the_endpoints_and_keeps_the_document(idp: HttpReceiver) -> None:
    issuer = issuer_of(idp)
    idp.route(WELL_KNOWN, Reply.json(200, document(issuer, end_session_endpoint=f"{issuer}/end")))

    found = discovery.provider(issuer)
    assert (found.token_endpoint, found.end_session_endpoint) == (
        f"{issuer}/token",
        f"{issuer}/end",
    )
    assert found.algorithms == ("RS256",) and found.token_auth_methods == ("client_secret_basic",)
    discovery.provider(issuer)
    assert len(idp.requests) == 1


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (lambda issuer: Reply.json(200, document("https://evil.example")), "Discovery §4.3"),
        (lambda issuer: Reply.json(200, document(issuer, jwks_uri=None)), "no usable jwks_uri"),
        (lambda issuer: Reply(200, b"<html>"), "did not answer JSON"),
        (lambda issuer: Reply(500), "answered 500"),
        (
            lambda issuer: Reply.json(
                200, document(issuer, id_token_signing_alg_values_supported=["HS256"])
            ),
            "not RS256 or ES256",
        ),
    ],
)
def test_an_unusable_discovery_document_is_refused_saying_why(
    idp: HttpReceiver, reply: Any, says: str
) -> None:
    issuer = issuer_of(idp)
    idp.route(WELL_KNOWN, reply(issuer))
    with pytest.raises(discovery.DiscoveryError, match=says):
        discovery.provider(issuer)


def test_an_unreachable_provider_is_a_discovery_error_kept_a_while(idp: HttpReceiver) -> None:
    issuer = closed_url("").rstrip("/")
    with pytest.raises(discovery.DiscoveryError, match="cannot reach"):
        discovery.provider(issuer)
    with pytest.raises(discovery.DiscoveryError, match="cannot reach"):
        discovery.provider(issuer)  # kept: no second wait on a provider that is down


# --- the views ------------------------------------------------------------------------------------


@pytest.fixture
def sso_on(settings: Any, idp: HttpReceiver) -> str:
    issuer = issuer_of(idp)
    settings.BULLETIN = replace(
        conf.load({}), oidc_issuer=issuer, oidc_client_id="bulletin", oidc_provider_name="Acme SSO"
    )
    settings.OIDC_RP_CLIENT_SECRET = "secret"
    return issuer


@pytest.mark.django_db
def test_an_unreachable_provider_leaves_the_login_page_up_saying_sso_is_unavailable(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    discovery.forget()
    settings.BULLETIN = replace(
        conf.load({}), oidc_issuer=closed_url("").rstrip("/"), oidc_client_id="bulletin"
    )
    with caplog.at_level(logging.WARNING, logger="bulletin.interfaces.sso.discovery"):
        page = Client().get("/accounts/login/")
    assert page.status_code == 200
    assert b"Single sign-on with single sign-on is unavailable right now" in page.content
    assert b'name="password"' in page.content
    assert any("single sign-on unavailable" in record.message for record in caplog.records)
    discovery.forget()


@pytest.mark.django_db
def test_sign_in_starts_the_code_flow_with_pkce_state_and_nonce(
    sso_on: str, idp: HttpReceiver
) -> None:
    idp.route(WELL_KNOWN, Reply.json(200, document(sso_on)))
    client = Client()
    page = client.get("/accounts/login/")
    assert b"Sign in with Acme SSO" in page.content

    answer = client.get("/oidc/authenticate/?next=/inbox/3/")

    target = urlsplit(answer["Location"])
    query = {key: values[0] for key, values in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{sso_on}/auth"
    assert query["response_type"] == "code" and query["client_id"] == "bulletin"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["scope"] == "openid email profile"
    assert query["redirect_uri"] == "http://testserver/oidc/callback/"
    kept = client.session["oidc_states"][query["state"]]
    assert kept["nonce"] == query["nonce"] and len(kept["code_verifier"]) >= 43


@pytest.mark.django_db
def test_a_callback_whose_state_this_session_never_sent_is_refused_with_a_page(
    sso_on: str, idp: HttpReceiver
) -> None:
    idp.route(WELL_KNOWN, Reply.json(200, document(sso_on)))
    client = Client()
    client.get("/oidc/authenticate/")
    answer = client.get("/oidc/callback/?code=abc&state=forged")
    assert answer.status_code == 403
    assert b"This sign-in was not started here" in answer.content
    assert not [request for request in idp.requests if request.path == "/token"]


@pytest.mark.django_db
def test_a_sign_in_the_provider_refused_says_so(sso_on: str) -> None:
    answer = Client().get("/oidc/callback/?error=access_denied&state=x")
    assert answer.status_code == 403
    assert b"Acme SSO did not sign you in (access_denied)." in answer.content


@pytest.mark.django_db
def test_with_single_sign_on_off_its_urls_say_so() -> None:
    for url in ("/oidc/authenticate/", "/oidc/callback/?code=a&state=b"):
        answer = Client().get(url)
        assert answer.status_code == 403
        assert b"Single sign-on is not set up for this Bulletin." in answer.content
    assert b"Sign in with" not in Client().get("/accounts/login/").content


@pytest.mark.django_db
def test_logging_out_of_a_password_session_goes_to_the_login_page() -> None:
    client = Client()
    client.force_login(factories.person("pat", EMPLOYEE))
    assert "_auth_user_id" in client.session
    answer = client.post("/accounts/logout/")
    assert answer["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session


# --- finding the person ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_changed_address_keeps_the_login_found_by_its_subject() -> None:
    from bulletin.interfaces.sso.backend import _find_or_create

    first = _find_or_create("idp-7", "old@example.com", {"name": "Ann"})
    again = _find_or_create("idp-7", "new@example.com", {"name": "Ann"})
    assert again.pk == first.pk and again.username == "oidc:idp-7"
    again.refresh_from_db()
    assert again.email == "new@example.com"


@pytest.mark.django_db
def test_the_first_sign_in_takes_over_the_employee_s_existing_login_but_never_a_superuser_s() -> (
    None
):
    from django.contrib.auth import get_user_model

    from bulletin.domain.models import Employee
    from bulletin.interfaces.sso.backend import _find_or_create

    ann = factories.person("ann", ANNOUNCER)
    Employee.objects.create(email="ann@example.com", name="Ann", timezone="UTC", user=ann)
    assert _find_or_create("idp-ann", "ann@example.com", {}).pk == ann.pk

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    found = _find_or_create("idp-root", "root@example.com", {})
    assert found.pk != root.pk and not found.is_superuser


@pytest.mark.django_db
def test_a_login_linked_to_a_deactivated_employee_is_refused() -> None:
    from bulletin.domain.models import Employee
    from bulletin.interfaces.sso.backend import _find_or_create
    from bulletin.interfaces.sso.refusals import Refused

    user = _find_or_create("idp-dora", "dora@example.com", {})
    Employee.objects.create(
        email="dora.old@example.com", name="Dora", timezone="UTC", user=user, active=False
    )
    with pytest.raises(Refused) as refused:
        _find_or_create("idp-dora", "dora@example.com", {})
    assert refused.value.reason == "deactivated"
