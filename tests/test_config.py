"""Configuration from the environment: typed, validated, and one clear line when wrong."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from bulletin import conf
from tests.harness import Installation


def test_options_read_bulletin_variables_with_their_types() -> None:
    options = conf.load({"BULLETIN_LEASE_SECONDS": "15", "BULLETIN_IDLE_SECONDS": "0.5"})
    assert (options.lease_seconds, options.idle_seconds) == (15, 0.5)
    assert options.max_attempts == conf.Options().max_attempts


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "1.5"])
def test_a_bad_number_names_the_variable(raw: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="BULLETIN_LEASE_SECONDS"):
        conf.load({"BULLETIN_LEASE_SECONDS": raw})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("EMAIL_PORT", "abc", "EMAIL_PORT must be a whole number"),
        ("BULLETIN_MAX_ATTEMPTS", "-1", "BULLETIN_MAX_ATTEMPTS must be positive"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be text or json"),
        ("DATABASE_URL", "nosuch://x", "DATABASE_URL is not usable"),
    ],
)
def test_bad_settings_stop_the_command_with_one_line(
    installation: Installation, variable: str, value: str, words: str
) -> None:
    installation.env[variable] = value
    result = installation.run("status", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and words in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("raw", "expected"), [("0", False), ("off", False), ("TRUE", True)])
def test_switches_read_true_and_false(raw: str, expected: bool) -> None:
    assert conf.load({"BULLETIN_EMBEDDED_WORKERS": raw}).embedded_workers is expected


def test_a_switch_that_is_neither_true_nor_false_names_the_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match="BULLETIN_EMBEDDED_WORKERS must be true"):
        conf.load({"BULLETIN_EMBEDDED_WORKERS": "maybe"})


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("https://bulletin.example.com", "https://bulletin.example.com"),
        ("https://bulletin.example.com/", "https://bulletin.example.com"),
        ("http://10.0.0.5:8000/bulletin/", "http://10.0.0.5:8000/bulletin"),
        ("", ""),
    ],
)
def test_the_site_url_is_kept_without_its_trailing_slash(raw: str, kept: str) -> None:
    assert conf.load({"BULLETIN_SITE_URL": raw}).site_url == kept


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("bulletin.example.com", "absolute http:// or https:// URL"),
        ("ftp://bulletin.example.com", "absolute http:// or https:// URL"),
        ("https://", "absolute http:// or https:// URL"),
        ("https://bulletin.example.com:port", "absolute http:// or https:// URL"),
        ("https://bulletin.example.com/?next=1", "without a query"),
        ("https://bulletin.example.com/#top", "without a query (?) or fragment (#)"),
        ("https://hr:secret@bulletin.example.com", "without a user name or password"),
    ],
)
def test_a_site_url_that_cannot_start_every_link_names_the_variable(raw: str, words: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="BULLETIN_SITE_URL must be") as raised:
        conf.load({"BULLETIN_SITE_URL": raw})
    assert words in str(raised.value) and "secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("variables", "sender", "domain"),
    [
        (
            {"BULLETIN_SITE_URL": "https://news.example.com:8443/b"},
            "x@mail.example",
            "news.example.com",
        ),
        ({}, "Bulletin <hr@corp.example>", "corp.example"),
        ({}, "hr@corp.example", "corp.example"),
        ({"BULLETIN_SITE_URL": "http://[::1]:8000"}, "hr@corp.example", "corp.example"),
        (
            {"BULLETIN_MESSAGE_ID_DOMAIN": "ids.example", "BULLETIN_SITE_URL": "https://a.example"},
            "hr@corp.example",
            "ids.example",
        ),
    ],
)
def test_the_message_id_domain_comes_from_the_site_url_then_the_sender_never_a_made_up_one(
    settings: Any, variables: dict[str, str], sender: str, domain: str
) -> None:
    settings.BULLETIN = conf.load(variables)
    assert conf.message_id_domain(sender) == domain


def test_links_start_with_the_site_url_or_the_local_default(settings: Any) -> None:
    settings.BULLETIN = conf.load({"BULLETIN_SITE_URL": "https://b.example/x/"})
    assert conf.site_link("/unsubscribe/t/") == "https://b.example/x/unsubscribe/t/"
    settings.BULLETIN = conf.load({})
    assert conf.site_link("unsubscribe/t/") == f"{conf.SITE_URL_FALLBACK}/unsubscribe/t/"
