"""One typed settings reader (bulletin.conf): every knob parsed once at start into ``Options``,
overridden in tests through ``settings.BULLETIN`` alone, and a bad value of any of them stops
every command with one line naming the variable."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from bulletin import conf
from bulletin.channels.base import AmbiguousError, Destination, Message, Recipient
from bulletin.channels.slack import SlackTransport
from bulletin.channels.teams import TeamsTransport
from bulletin.channels.webhook import WebhookTransport
from bulletin.domain.models import Employee
from bulletin.interfaces.roster import import_employees
from tests.harness import Installation
from tests.http_receiver import HttpReceiver, Reply
from tests.slack_server import SlackServer
from tests.test_roster import HEADER, csv_bytes, rejected

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "xoxb-1234-settings-reader"
SIGNING = "whsec_" + base64.b64encode(b"settings-reader-secret!!").decode()
ADA = Recipient(email="ada@example.com", name="Ada Lovelace", timezone="Europe/London")


def message(target: str, *, to: Recipient | None = None) -> Message:
    return Message(
        idempotency_key="key-1",
        title="Office closed Friday",
        text="",
        html="",
        body="Hello **all**",
        recipient=to,
        place=None if to else Destination(name="somewhere", target=target, secrets=(SIGNING,)),
    )


@pytest.fixture
def knobs(settings: Any) -> Any:
    """The one seam: tests change knobs by replacing settings.BULLETIN, never the environment."""
    settings.BULLETIN = conf.load({})
    return settings


# --- in-process: the seam reaches the channels ---------------------------------------------


def test_channel_paces_follow_the_settings_seam_and_ignore_a_later_environment(
    knobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("SLACK", "TEAMS", "WEBHOOK"):
        monkeypatch.setenv(f"BULLETIN_{variable}_PER_SECOND", "1000")
    monkeypatch.setenv("BULLETIN_SLACK_PER_MINUTE", "1000")
    knobs.BULLETIN = replace(
        knobs.BULLETIN,
        slack_per_minute=30.0,
        slack_lookups_per_minute=20.0,
        teams_per_second=2.0,
        webhook_per_second=10.0,
    )
    slack = dict(SlackTransport().paces(message("", to=ADA)))
    assert (slack["slack:workspace"], slack["slack:users.lookupByEmail"]) == (2.0, 3.0)
    assert TeamsTransport().paces(message("https://t.example/w"))[0][1] == 0.5
    assert WebhookTransport().paces(message("https://h.example/in"))[0][1] == 0.1


def test_an_http_timeout_set_through_settings_ends_a_send_that_gets_no_answer(
    knobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BULLETIN_HTTP_TIMEOUT", "60")  # read once at start: not now
    knobs.BULLETIN = replace(knobs.BULLETIN, http_timeout=0.3)
    transport = WebhookTransport()
    with HttpReceiver(default=Reply(204)) as receiver:
        receiver.script(Reply.hold())
        started = time.monotonic()
        with pytest.raises(AmbiguousError):
            transport.send(message(receiver.url("/in")))
        assert time.monotonic() - started < 10
        assert receiver.release() == 1
    transport.close()


@pytest.fixture
def slack_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackServer]:
    with SlackServer(token=TOKEN, users={ADA.email: "U0ADA"}) as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)  # a secret: still read when opening
        monkeypatch.delenv("SLACK_BOT_TOKEN_FILE", raising=False)
        monkeypatch.delenv("SLACK_API_URL", raising=False)
        yield server


def test_slack_takes_its_api_url_and_timeout_from_the_settings_seam(
    knobs: Any, slack_server: SlackServer
) -> None:
    knobs.BULLETIN = replace(knobs.BULLETIN, slack_api_url=slack_server.url, slack_timeout=0.3)
    slack_server.delay("chat.postMessage", 2.0)
    transport = SlackTransport()
    with pytest.raises(AmbiguousError):
        transport.send(message("C0GENERAL"))
    assert len(slack_server.calls("chat.postMessage")) == 1  # it reached the loopback Slack


def test_the_slack_api_url_is_kept_with_one_trailing_slash() -> None:
    assert conf.load({"SLACK_API_URL": "http://127.0.0.1:9/api"}).slack_api_url == (
        "http://127.0.0.1:9/api/"
    )
    assert conf.load({}).slack_api_url == "https://slack.com/api/"


# --- the variables, their names and defaults -------------------------------------------------

# Read as secrets (conf.secret, with a NAME_FILE twin) or by dj-database-url, not as knobs.
SECRETS = {
    "DATABASE_URL",
    "SECRET_KEY",
    "EMAIL_HOST_PASSWORD",
    "CELERY_BROKER_URL",
    "SLACK_BOT_TOKEN",
    "BULLETIN_METRICS_TOKEN",
    "OIDC_CLIENT_SECRET",
    "BULLETIN_ANYMAIL_WEBHOOK_SECRET",
    "BULLETIN_MAILGUN_WEBHOOK_SIGNING_KEY",
    "BULLETIN_SENDGRID_WEBHOOK_VERIFICATION_KEY",
}


def readme_variables() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}


def test_every_variable_in_the_readme_table_is_read_by_the_one_reader() -> None:
    names = {name for name in readme_variables() if not name.endswith("_FILE")}
    assert names - SECRETS - set(conf.variables().values()) == set()


def test_the_channel_defaults_are_the_readme_s() -> None:
    chosen = conf.load({})
    assert (chosen.slack_per_minute, chosen.teams_per_second, chosen.webhook_per_second) == (
        100,
        4,
        20,
    )
    assert (chosen.slack_lookups_per_minute, chosen.http_timeout, chosen.slack_timeout) == (
        50,
        10,
        10,
    )


def test_django_s_own_switches_and_numbers_are_read_with_the_one_vocabulary() -> None:
    chosen = conf.load({"DEBUG": "on", "EMAIL_USE_TLS": "yes", "CONN_MAX_AGE": "0"})
    assert (chosen.debug, chosen.email_use_tls, chosen.conn_max_age) == (True, True, 0)
    assert conf.load({"BULLETIN_HSTS_INCLUDE_SUBDOMAINS": "off"}).hsts_include_subdomains is False


BAD = [
    ("BULLETIN_HTTP_TIMEOUT", "abc", "BULLETIN_HTTP_TIMEOUT must be a number"),
    ("BULLETIN_HTTP_TIMEOUT", "nan", "BULLETIN_HTTP_TIMEOUT must be a number"),
    ("BULLETIN_SLACK_PER_MINUTE", "0", "BULLETIN_SLACK_PER_MINUTE must be positive"),
    ("BULLETIN_SLACK_LOOKUPS_PER_MINUTE", "x", "BULLETIN_SLACK_LOOKUPS_PER_MINUTE must be"),
    ("BULLETIN_TEAMS_PER_SECOND", "-1", "BULLETIN_TEAMS_PER_SECOND must be positive"),
    ("BULLETIN_WEBHOOK_PER_SECOND", "inf", "BULLETIN_WEBHOOK_PER_SECOND must be a number"),
    ("SLACK_TIMEOUT", "abc", "SLACK_TIMEOUT must be a number"),
    ("SLACK_API_URL", "slack.com/api", "SLACK_API_URL must be an absolute http"),
    ("DEBUG", "maybe", "DEBUG must be true or false"),
    ("EMAIL_USE_TLS", "ture", "EMAIL_USE_TLS must be true or false"),
    ("CONN_MAX_AGE", "-1", "CONN_MAX_AGE must be 0 or more"),
    ("EMAIL_PORT", "70000", "EMAIL_PORT must be at most 65535"),
    ("BULLETIN_PROXY_COUNT", "-2", "BULLETIN_PROXY_COUNT must be 0 or more"),
    ("BULLETIN_LOGIN_FAILURE_LIMIT", "0", "BULLETIN_LOGIN_FAILURE_LIMIT must be positive"),
    ("CELERY_WORKER_CONCURRENCY", "many", "CELERY_WORKER_CONCURRENCY must be a whole number"),
    ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of"),
    ("BULLETIN_LEASE_SECONDS", "1" + "0" * 20, "BULLETIN_LEASE_SECONDS must be at most"),
]


@pytest.mark.parametrize(("variable", "value", "words"), BAD)
def test_a_bad_value_of_any_knob_names_its_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(words)):
        conf.load({variable: value})


def test_tls_and_ssl_together_are_refused_naming_both() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_USE_TLS and EMAIL_USE_SSL"):
        conf.load({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"})


@pytest.mark.slow
@pytest.mark.parametrize(("variable", "value", "words"), BAD)
def test_a_bad_value_of_any_knob_stops_bulletin_status_with_one_line(
    installation: Installation, variable: str, value: str, words: str
) -> None:
    installation.env[variable] = value
    result = installation.run("status", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# --- nothing else reads the environment ------------------------------------------------------


def test_every_environment_read_outside_the_reader_says_why_it_stays() -> None:
    unexplained = []
    for path in sorted((ROOT / "bulletin").rglob("*.py")):
        lines = ["", *path.read_text(encoding="utf-8").splitlines()]
        for number, line in enumerate(lines[1:], 1):
            said = "#" in line or lines[number - 1].strip().startswith("#")
            if path.name != "conf.py" and re.search(r"os\.environ|getenv\(", line) and not said:
                unexplained.append(f"{path.relative_to(ROOT)}:{number}")
    assert unexplained == []


# --- the roster speaks the same vocabulary ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cell", "active"), [("on", True), ("OFF", False), ("Y", True), ("n", False), ("", True)]
)
def test_the_roster_s_active_column_reads_the_one_vocabulary(cell: str, active: bool) -> None:
    import_employees(
        csv_bytes(
            f"ann@example.com,Ann Lee,Eng,London,Europe/London,{cell}", header=f"{HEADER},active"
        )
    )
    assert Employee.objects.get().active is active


@pytest.mark.django_db
def test_a_roster_active_cell_outside_the_vocabulary_is_refused_with_the_words_it_takes() -> None:
    [(line, words)] = rejected(
        csv_bytes(
            "ann@example.com,Ann Lee,Eng,London,Europe/London,maybe", header=f"{HEADER},active"
        )
    )
    assert line == 2 and "active 'maybe'" in words and "yes/no" in words
