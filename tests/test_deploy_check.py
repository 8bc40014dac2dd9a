"""`bulletin check --deploy` in a real subprocess: silent under the production switch, and
warning without it (so these tests can fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT

pytestmark = pytest.mark.slow

# What a deployment sets besides BULLETIN_HTTPS is its own business; the check must not depend
# on anything inherited from the test run.
INHERITED = ("BULLETIN_", "EMAIL_", "DATABASE_URL", "DJANGO_", "CELERY_", "SECRET_KEY", "DEBUG")


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED)}
    env.update(BULLETIN_VAR_DIR=str(tmp_path), LOG_LEVEL="WARNING", **settings)
    return env


def deploy_check(
    tmp_path: Path, *command: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    command = command or (sys.executable, "-m", "bulletin")
    return subprocess.run(
        [*command, "check", "--deploy", "--fail-level", "WARNING"],
        env=environment(tmp_path, **settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_production_switch_passes_the_deploy_check_with_no_warnings(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, BULLETIN_HTTPS="1")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
    # The key `bulletin` made for itself in var/ is one the check accepts.
    assert len((tmp_path / "secret_key").read_text()) >= 50


def test_djangos_own_entry_point_agrees(tmp_path: Path) -> None:
    django = (sys.executable, "-m", "django")
    result = deploy_check(
        tmp_path, *django, BULLETIN_HTTPS="1", DJANGO_SETTINGS_MODULE="bulletin.settings"
    )
    assert result.returncode == 0, result.stderr


def test_without_the_switch_the_check_names_what_is_missing(tmp_path: Path) -> None:
    result = deploy_check(tmp_path)
    assert result.returncode == 1
    for warning in ("W004", "W008", "W012", "W016"):  # HSTS, redirect, the two cookies
        assert f"security.{warning}" in result.stderr


@pytest.mark.parametrize(
    ("settings", "warning"),
    [
        ({"BULLETIN_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SECRET_KEY": "short-and-guessable"}, "security.W009"),
        ({"DEBUG": "1"}, "security.W018"),
    ],
)
def test_a_weaker_production_setting_is_caught_by_the_check(
    tmp_path: Path, settings: dict[str, str], warning: str
) -> None:
    result = deploy_check(tmp_path, BULLETIN_HTTPS="1", **settings)
    assert result.returncode == 1 and warning in result.stderr


def test_a_misspelt_switch_stops_with_one_line_rather_than_meaning_off(tmp_path: Path) -> None:
    result = deploy_check(tmp_path, BULLETIN_HTTPS="ture")
    assert result.returncode == 2
    assert result.stderr == (
        "bulletin: configuration error: BULLETIN_HTTPS must be true or false, got 'ture'\n"
    )
