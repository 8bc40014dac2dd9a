"""``scripts/test.sh`` itself: a pass it was asked for that cannot run fails the run, and
either of the two passes (run side by side) failing fails it.

The script runs in a copy of the project holding only itself and a stand-in ``.venv/bin/python``
that passes every pytest run, so what is under test is the script's own decisions, in a real
bash process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import ROOT

POSTGRES = {"BULLETIN_TEST_POSTGRES_URL": "postgres://postgres@127.0.0.1:1/postgres"}


def project_copy(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy(ROOT / "scripts" / "test.sh", scripts / "test.sh")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "pytest $*" >> "$(dirname "$0")/../../runs"\n')
    python.chmod(0o755)
    return tmp_path


def run_script(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    own = ("BULLETIN_", "CI", "DATABASE_URL")
    base = {key: value for key, value in os.environ.items() if not key.startswith(own)}
    return subprocess.run(
        ["bash", str(project / "scripts" / "test.sh")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def runs(project: Path) -> list[str]:
    record = project / "runs"
    return record.read_text().splitlines() if record.exists() else []


def test_without_postgresql_the_script_fails_at_once_with_one_line_saying_why(
    tmp_path: Path,
) -> None:
    project = project_copy(tmp_path)

    result = run_script(project)

    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "PostgreSQL pass cannot run" in line and "BULLETIN_SKIP_POSTGRES=1" in line
    assert runs(project) == []  # not a quarter of an hour of SQLite first


def test_skipping_postgresql_on_purpose_passes_after_the_sqlite_pass(tmp_path: Path) -> None:
    project = project_copy(tmp_path)

    result = run_script(project, BULLETIN_SKIP_POSTGRES="1")

    assert result.returncode == 0, result.stderr
    assert "skipped (BULLETIN_SKIP_POSTGRES=1)" in result.stdout
    [sqlite] = runs(project)
    assert "-m not scale_out" in sqlite


def test_with_postgresql_both_passes_run_side_by_side_each_in_its_own_temporary_tree(
    tmp_path: Path,
) -> None:
    project = project_copy(tmp_path)

    result = run_script(project, **POSTGRES)

    assert result.returncode == 0, result.stderr
    [postgres] = [run for run in runs(project) if "--ignore=tests/test_mime.py" in run]
    [sqlite] = [run for run in runs(project) if "-m not scale_out" in run]
    assert "--basetemp" in postgres and "--basetemp" in sqlite  # apart: they run at once
    assert result.stdout.index("== SQLite") < result.stdout.index("== PostgreSQL\n")


def failing_pass(project: Path, marker: str, status: int) -> None:
    """The stand-in python exits ``status`` for the pass whose arguments hold ``marker``."""
    python = project / ".venv" / "bin" / "python"
    python.write_text(
        '#!/bin/sh\necho "pytest $*" >> "$(dirname "$0")/../../runs"\n'
        f'case "$*" in *"{marker}"*) echo "{marker} says no"; exit {status};; esac\n'
    )


@pytest.mark.parametrize(
    ("marker", "status"),
    [("not scale_out", 1), ("--ignore=tests/test_mime.py", 1), ("--ignore=tests/test_mime.py", 5)],
)
def test_either_pass_failing_or_collecting_nothing_fails_the_run_and_both_are_printed(
    tmp_path: Path, marker: str, status: int
) -> None:
    project = project_copy(tmp_path)
    failing_pass(project, marker, status)

    result = run_script(project, **POSTGRES)

    assert result.returncode != 0
    assert len(runs(project)) == 2  # the other pass ran to its end
    assert f"{marker} says no" in result.stdout  # and the failing one's output is shown
    assert "== SQLite" in result.stdout and "== PostgreSQL\n" in result.stdout


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_run_stopped_early_stops_the_pass_in_the_background_too(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    python = project / ".venv" / "bin" / "python"
    python.write_text(
        '#!/bin/sh\ncase "$*" in *"--ignore="*) echo $$ > "$(dirname "$0")/../../background";; '
        "esac\nexec sleep 60\n"
    )
    own = ("BULLETIN_", "CI", "DATABASE_URL")
    env = {key: value for key, value in os.environ.items() if not key.startswith(own)}
    script = subprocess.Popen(
        ["bash", str(project / "scripts" / "test.sh")],
        env={**env, **POSTGRES},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    recorded = project / "background"
    deadline = time.monotonic() + 10
    while not recorded.exists() or not recorded.read_text().strip():
        assert time.monotonic() < deadline, "the PostgreSQL pass never started"
        time.sleep(0.05)
    background = int(recorded.read_text())
    assert running(background)

    script.terminate()
    script.wait(timeout=10)

    deadline = time.monotonic() + 10
    while running(background):
        assert time.monotonic() < deadline, "the PostgreSQL pass outlived the run"
        time.sleep(0.05)
