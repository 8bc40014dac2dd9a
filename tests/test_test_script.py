"""``scripts/test.sh`` itself: a pass it was asked for that cannot run fails the run.

The script runs in a copy of the project holding only itself and a stand-in ``.venv/bin/python``
that passes every pytest run, so what is under test is the script's own decisions, in a real
bash process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.harness import ROOT


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


def test_without_postgresql_the_script_fails_with_one_line_saying_why(tmp_path: Path) -> None:
    project = project_copy(tmp_path)

    result = run_script(project)

    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "PostgreSQL pass cannot run" in line and "BULLETIN_SKIP_POSTGRES=1" in line
    assert len((project / "runs").read_text().splitlines()) == 1  # the SQLite pass ran


def test_skipping_postgresql_on_purpose_passes_after_the_sqlite_pass(tmp_path: Path) -> None:
    project = project_copy(tmp_path)

    result = run_script(project, BULLETIN_SKIP_POSTGRES="1")

    assert result.returncode == 0, result.stderr
    assert "skipped (BULLETIN_SKIP_POSTGRES=1)" in result.stdout
    assert len((project / "runs").read_text().splitlines()) == 1


def test_with_postgresql_both_passes_run_the_second_on_its_database(tmp_path: Path) -> None:
    project = project_copy(tmp_path)

    result = run_script(
        project, BULLETIN_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:1/postgres"
    )

    assert result.returncode == 0, result.stderr
    runs = (project / "runs").read_text().splitlines()
    assert len(runs) == 2 and "--ignore=tests/test_mime.py" in runs[1]
