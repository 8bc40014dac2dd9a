"""Security: headers and CSP on every kind of page, cookies and HTTPS under the production
switch, login throttling, secrets from ``NAME_FILE``, and secrets kept out of logs and error
pages."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path
from django.utils import timezone

from bulletin import logs
from bulletin.domain import roles
from bulletin.domain.models import ApiToken, Employee
from bulletin.interfaces.api.auth import SCOPES
from tests import factories
from tests.harness import ROOT, Installation

PASSWORD = "right-horse-battery-1"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


# --- headers and CSP --------------------------------------------------------------------------


def hr_page(ann: Any) -> Any:
    return logged_in(ann).get("/hr/new/")


def inbox_page(eve: Any) -> Any:
    Employee.objects.create(email="eve@example.com", name="Eve", timezone="UTC", user=eve)
    return logged_in(eve).get("/inbox/")


def admin_login(_: Any) -> Any:
    return Client().get("/admin/login/")


def api_response(ann: Any) -> Any:
    _, raw = ApiToken.issue(ann, "tests", list(SCOPES))
    return Client().get("/api/v1/announcements", HTTP_AUTHORIZATION=f"Bearer {raw}")


PAGES = [hr_page, inbox_page, admin_login, api_response]


@pytest.mark.django_db
@pytest.mark.parametrize("fetch", PAGES, ids=lambda fetch: fetch.__name__)
def test_every_kind_of_response_carries_the_security_headers(
    fetch: Any, ann: Any, eve: Any
) -> None:
    response = fetch(eve if fetch is inbox_page else ann)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_the_policy_allows_no_inline_code_beyond_one_hashed_script(ann: Any) -> None:
    policy = directives(hr_page(ann))
    assert policy["script-src"][0] == "'self'"
    assert [v for v in policy["script-src"][1:] if not v.startswith("'sha256-")] == []
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == policy["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in str(policy) and "'unsafe-eval'" not in str(policy)


@pytest.mark.django_db
@pytest.mark.parametrize("fetch", [hr_page, inbox_page, admin_login], ids=lambda f: f.__name__)
def test_each_inline_script_on_a_page_is_allowed_by_its_hash_and_nothing_else_is_inline(
    fetch: Any, ann: Any, eve: Any
) -> None:
    response = fetch(eve if fetch is inbox_page else ann)
    page = response.content.decode()
    allowed = directives(response)["script-src"]
    for code in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page, re.S):
        digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed, code
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", page)


# --- HTTPS, HSTS and cookies under the production switch -------------------------------------

PRODUCTION_PROBE = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
get_user_model().objects.create_user("ada", password="right-horse-battery-1")
client = Client()
form = client.get("/accounts/login/", secure=True)
login = client.post(
    "/accounts/login/", {"username": "ada", "password": "right-horse-battery-1"}, secure=True
)
cookies = {**form.cookies, **login.cookies}
print(json.dumps({
    "login": login.status_code,
    "cookies": {
        name: {"secure": bool(c["secure"]), "httponly": bool(c["httponly"]),
               "samesite": c["samesite"]}
        for name, c in cookies.items()
    },
    "hsts": form.get("Strict-Transport-Security"),
    "plain": [client.get("/hr/").status_code, client.get("/hr/").get("Location")],
    "healthz": client.get("/healthz").status_code,
    "metrics": client.get("/metrics").status_code,
}))
"""


def subprocess_python(site: Installation, code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=site.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_under_the_production_switch_cookies_are_secure_and_plain_http_is_redirected(
    installation: Installation,
) -> None:
    installation.env.update(
        BULLETIN_HTTPS="1", ALLOWED_HOSTS="testserver", DJANGO_SETTINGS_MODULE="bulletin.settings"
    )
    result = subprocess_python(installation, PRODUCTION_PROBE)
    seen = json.loads(result)
    assert seen["login"] == 302
    flags = {"secure": True, "httponly": True, "samesite": "Lax"}
    assert seen["cookies"] == {"csrftoken": flags, "sessionid": flags}
    assert seen["hsts"] == "max-age=31536000; includeSubDomains"
    assert seen["plain"] == [301, "https://testserver/hr/"]
    # Load balancers probe these over plain HTTP: never redirected.
    assert seen["healthz"] != 301 and seen["metrics"] != 301


# --- login throttling -------------------------------------------------------------------------


def try_login(url: str, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    return Client(REMOTE_ADDR=ip).post(url, {"username": username, "password": password})


def fail_five_times(url: str, username: str = "ada", ip: str = "10.0.0.1") -> None:
    """Five wrong passwords: the form says so four times; the fifth locks the account."""
    statuses = [try_login(url, username, "wrong-password", ip).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


@pytest.fixture
def people(db: None) -> None:
    factories.person("ada", roles.ADMINISTRATOR, password=PASSWORD, is_staff=True)
    factories.person("bob", roles.EMPLOYEE, password=PASSWORD)


LOGINS = ["/accounts/login/", "/admin/login/"]


@pytest.mark.parametrize("url", LOGINS)
def test_five_wrong_passwords_lock_the_right_one_out_with_a_429_page(
    url: str, people: None
) -> None:
    fail_five_times(url)
    refused = try_login(url, "ada", PASSWORD)
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(15 * 60)
    page = refused.content.decode()
    assert "Too many failed logins" in page and "Wait 15 minutes" in page
    assert "_auth_user_id" not in refused.client.session  # nobody got logged in


def test_four_wrong_passwords_do_not_lock_anyone_out(people: None) -> None:
    for _ in range(4):
        try_login("/accounts/login/", "ada", "wrong-password")
    assert try_login("/accounts/login/", "ada", PASSWORD).status_code == 302


def test_a_lockout_holds_only_that_username_from_that_address(people: None) -> None:
    fail_five_times("/accounts/login/")
    assert try_login("/accounts/login/", "bob", PASSWORD).status_code == 302
    assert try_login("/accounts/login/", "ada", PASSWORD, ip="10.0.0.2").status_code == 302
    assert try_login("/accounts/login/", "ada", PASSWORD).status_code == 429


def test_behind_a_proxy_the_forwarded_address_counts_and_a_forged_one_does_not_help(
    people: None, settings: Any
) -> None:
    settings.PROXY_COUNT = 1

    def via_proxy(password: str, forwarded: str) -> int:
        client = Client(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=forwarded)
        form = {"username": "ada", "password": password}
        return client.post("/accounts/login/", form).status_code

    statuses = [via_proxy("wrong-password", f"1.1.1.{n}, 203.0.113.7") for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert via_proxy(PASSWORD, "9.9.9.9, 203.0.113.7") == 429
    assert via_proxy(PASSWORD, "203.0.113.8") == 302  # a colleague behind the same proxy


def test_the_lock_expires_fifteen_minutes_after_the_last_try(people: None) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail_five_times("/accounts/login/")
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert try_login("/accounts/login/", "ada", PASSWORD).status_code == 429
    # That try restarted the wait: 15 minutes after the first lockout is still too soon.
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        assert try_login("/accounts/login/", "ada", PASSWORD).status_code == 429
    with time_machine.travel(start + timedelta(minutes=31, seconds=1), tick=False):
        assert try_login("/accounts/login/", "ada", PASSWORD).status_code == 302


def test_a_lower_limit_and_a_shorter_wait_are_honoured(people: None, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    for _ in range(2):
        try_login("/accounts/login/", "ada", "wrong-password")
    refused = try_login("/accounts/login/", "ada", PASSWORD)
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert "Wait 1 minute without" in refused.content.decode()


@pytest.mark.slow
def test_the_limit_and_the_wait_are_read_from_the_environment(installation: Installation) -> None:
    installation.env.update(BULLETIN_LOGIN_FAILURE_LIMIT="3", BULLETIN_LOGIN_LOCKOUT_MINUTES="2")
    code = (
        "from django.conf import settings as s; import sys; "
        "sys.stdout.write(f'{s.AXES_FAILURE_LIMIT} {s.AXES_COOLOFF_TIME.total_seconds():.0f}')"
    )
    assert installation.run("shell", "--no-imports", "-c", code).stdout == "3 120"


def test_api_tokens_still_work_and_a_bad_token_is_not_a_login_failure(people: None) -> None:
    from django.contrib.auth import get_user_model

    _, raw = ApiToken.issue(get_user_model().objects.get(username="ada"), "t", list(SCOPES))
    for _ in range(6):
        bad = Client().get("/api/v1/announcements", HTTP_AUTHORIZATION="Bearer blt_wrong")
        assert bad.status_code == 401
    good = Client().get("/api/v1/announcements", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert good.status_code == 200
    assert not AccessAttempt.objects.exists()


# --- secrets from files -----------------------------------------------------------------------

SHOW_SETTING = (
    "from django.conf import settings; import sys; "
    "value = settings.{name}; sys.stdout.write('same' if value == {expected!r} else 'different')"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "setting", "content"),
    [
        ("SECRET_KEY", "SECRET_KEY", "k" * 20 + "from-a-file-" + "z" * 20),
        ("EMAIL_HOST_PASSWORD", "EMAIL_HOST_PASSWORD", "smtp-pw-from-a-file"),
        ("CELERY_BROKER_URL", "CELERY_BROKER_URL", "redis://:broker-pw@10.9.9.9:6379/3"),
        ("DATABASE_URL", "DATABASES['default']['NAME']", "sqlite:///{dir}/from-file.sqlite3"),
    ],
)
def test_a_secret_is_read_from_the_file_its_name_file_variable_names(
    installation: Installation, tmp_path: Path, variable: str, setting: str, content: str
) -> None:
    content = content.format(dir=tmp_path)
    secret_file = tmp_path / "secret"
    secret_file.write_text(content + "\n")  # as `echo … > file` leaves it
    installation.env.pop(variable, None)
    installation.env[f"{variable}_FILE"] = str(secret_file)
    expected = f"{tmp_path}/from-file.sqlite3" if variable == "DATABASE_URL" else content
    code = SHOW_SETTING.format(name=setting, expected=expected)
    assert installation.run("shell", "--no-imports", "-c", code).stdout == "same"


@pytest.mark.slow
@pytest.mark.parametrize("variable", ["EMAIL_HOST_PASSWORD", "DATABASE_URL", "SECRET_KEY"])
def test_a_missing_or_empty_secret_file_stops_the_command_with_one_line(
    installation: Installation, tmp_path: Path, variable: str
) -> None:
    installation.env.pop(variable, None)
    missing = tmp_path / "no-such-file"
    installation.env[f"{variable}_FILE"] = str(missing)
    result = installation.run("status", check=False)
    assert result.returncode == 2
    assert result.stderr == (
        f"bulletin: configuration error: {variable}_FILE: cannot read {missing}: "
        "No such file or directory\n"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    installation.env[f"{variable}_FILE"] = str(empty)
    result = installation.run("status", check=False)
    assert result.returncode == 2
    assert result.stderr == f"bulletin: configuration error: {variable}_FILE: {empty} is empty\n"


# --- secrets never in logs --------------------------------------------------------------------

DB_PASSWORD, SMTP_PASSWORD, BROKER_PASSWORD = "db-Pw-4411", "smtp-Pw-9902", "broker-Pw-7310"
SECRET_KEY = "s3cret-key-" + "q" * 40
SLACK_TOKEN = "xoxb-1234-5678-abcdefABCDEF"

IMAP_PASSWORD, OIDC_SECRET = "imap-pw-9d2f71", "oidc-secret-5c83e0"
LEAKY_LOGGING = f"""
import logging
log = logging.getLogger("bulletin.leaky")
log.warning("connecting to %s with %s", "postgres://bulletin:{DB_PASSWORD}@db:5432/b",
            {{"password": "{SMTP_PASSWORD}"}}, extra={{"key": "{SECRET_KEY}", "n": 3}})
log.warning("slack said no to {SLACK_TOKEN}; teams https://t.example/x?sig=abc123&v=1")
log.warning("imap login with {IMAP_PASSWORD} refused; oidc client {OIDC_SECRET} refused")
try:
    raise RuntimeError("broker redis://:{BROKER_PASSWORD}@redis:6379/0 refused")
except RuntimeError:
    log.exception("celery is down", extra={{"url": "redis://u:other-pw@h/0"}})
"""


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_and_url_passwords_are_redacted_from_every_part_of_a_log_line(
    installation: Installation, log_format: str
) -> None:
    installation.env.update(
        LOG_FORMAT=log_format,
        LOG_LEVEL="INFO",
        DATABASE_URL=f"postgres://bulletin:{DB_PASSWORD}@127.0.0.1:1/bulletin",
        EMAIL_HOST_PASSWORD=SMTP_PASSWORD,
        SECRET_KEY=SECRET_KEY,
        CELERY_BROKER_URL=f"redis://:{BROKER_PASSWORD}@127.0.0.1:1/0",
        SLACK_BOT_TOKEN=SLACK_TOKEN,
        BULLETIN_IMAP_PASSWORD=IMAP_PASSWORD,
        OIDC_CLIENT_SECRET=OIDC_SECRET,
    )
    stderr = installation.run("shell", "--no-imports", "-c", LEAKY_LOGGING).stderr
    assert "imap login with *** refused; oidc client *** refused" in stderr
    for secret in (DB_PASSWORD, SMTP_PASSWORD, BROKER_PASSWORD, SECRET_KEY, "other-pw", "abc123"):
        assert secret not in stderr
    assert "1234-5678" not in stderr
    assert "postgres://bulletin:***@db:5432/b" in stderr
    assert "redis://:***@redis:6379/0 refused" in stderr  # inside the traceback
    assert "slack said no to ***;" in stderr and "sig=***&v=1" in stderr
    assert "Traceback" in stderr and "RuntimeError" in stderr
    if log_format == "json":
        records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        lines = [record for record in records if record["logger"] == "bulletin.leaky"]
        first = lines[0]
        assert first["key"] == "***" and first["n"] == 3
        assert "'password': '***'" in first["message"]
        assert "redis://:***@redis" in lines[-1]["exc_info"]
    else:
        assert "key=*** n=3" in stderr


def test_a_secret_containing_another_is_masked_whole() -> None:
    assert logs.redact("a abcdef b abc", ["abc", "abcdef"]) == "a *** b ***"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("token xoxb-123-456-abcDEF sent", "token xoxb-*** sent"),
        ("place secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "place secret whsec_***"),
        ("post https://x.example/invoke?api-version=1&sig=Zm9v%3D", "?api-version=1&sig=***"),
        ("amqp://guest:guest@rabbit:5672//", "amqp://guest:***@rabbit:5672//"),
    ],
)
def test_secret_shaped_values_are_masked_even_when_not_configured(line: str, shown: str) -> None:
    assert shown in logs.redact(line)


def test_the_error_report_filter_masks_a_password_in_a_url_setting(settings: Any) -> None:
    from django.views.debug import get_exception_reporter_filter

    settings.CELERY_BROKER_URL = f"redis://:{BROKER_PASSWORD}@redis:6379/0"
    safe = get_exception_reporter_filter(HttpRequest()).get_safe_settings()
    assert safe["CELERY_BROKER_URL"] == "redis://:***@redis:6379/0"
    assert safe["REDACTED_SECRETS"] == "********************"
    assert safe["EMAIL_HOST_PASSWORD"] == "********************"


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(f"cannot reach redis://:{BROKER_PASSWORD}@redis:6379/0")


urlpatterns = [path("boom/", boom), path("", include("bulletin.urls"))]


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_server_error_shows_a_plain_page_without_the_error() -> None:
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert BROKER_PASSWORD not in page and "RuntimeError" not in page
    assert response["X-Frame-Options"] == "DENY"


def test_an_admin_login_without_a_next_page_lands_on_the_home_page(people: None) -> None:
    # Not Django's /accounts/profile/, which does not exist here; "/" sends HR to the HR screens.
    assert try_login("/admin/login/", "ada", PASSWORD)["Location"] == "/"


def test_a_secret_inside_a_list_is_masked_and_a_list_of_ids_passes_untouched() -> None:
    ids = [1, 2, 3]
    record = logging.LogRecord("bulletin", logging.INFO, "x", 1, "sent", None, None)
    record.delivery_ids = ids
    record.urls = ["https://hooks.example/x?sig=s3cret&a=1", 7]
    logs.RedactSecrets().filter(record)
    assert record.delivery_ids is ids
    assert record.urls == ["https://hooks.example/x?sig=***&a=1", 7]
