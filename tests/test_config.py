"""Configuration from the environment: typed, validated, and one clear line when wrong."""

from __future__ import annotations

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
