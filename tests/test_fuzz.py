"""The REST API under Schemathesis: a live `bulletin run`, a token with every scope, every phase
(examples, coverage, fuzzing, stateful), every check. Any server error, undocumented status
code or content type, response that breaks the schema, or schema-valid request refused fails it.

Bounded and seeded: the same requests every run (a failure can be replayed with its seed), under
a minute on this machine; `make fuzz` runs it alone. The whole report is written to
var/fuzz.txt. tests/schemathesis.toml names the operations that may refuse a request the schema
allows with a 422, and why (values whose meaning no JSON Schema states: zones, cron fields…).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bulletin.interfaces.api.auth import SCOPES
from tests.harness import ROOT, Installation, free_port

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES_PER_OPERATION = 20


def serving(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            assert server.poll() is None, "bulletin run exited"
            assert time.monotonic() < deadline, "bulletin run did not start listening"
            time.sleep(0.1)


def full_scope_token(site: Installation) -> str:
    site.env["DJANGO_SUPERUSER_PASSWORD"] = "fuzzing-is-not-a-password-1"
    site.run("createsuperuser", "--noinput", "--username", "fuzz", "--email", "fuzz@example.com")
    issued = site.run(
        "create_api_token", "--user", "fuzz", "--name", "fuzz", "--scopes", ",".join(SCOPES)
    )
    return issued.stdout.strip().splitlines()[-1]


def fuzzing(schema: str, token: str, reports: Path) -> list[str]:
    options = {
        "--checks": "all",
        "--phases": "examples,coverage,fuzzing,stateful",
        "--header": f"Authorization: Bearer {token}",
        "--max-examples": str(EXAMPLES_PER_OPERATION),
        "--seed": "20261207",
        "--generation-database": "none",
        "--report-dir": str(reports),
    }
    config = Path(__file__).with_name("schemathesis.toml")
    command = [str(SCHEMATHESIS), "--config-file", str(config), "run", schema, "--no-color"]
    return [*command, *sum(options.items(), ())]


def test_the_api_answers_every_generated_request_as_its_schema_says(
    installation: Installation, tmp_path: Path
) -> None:
    token = full_scope_token(installation)
    port = free_port()
    # Its log goes to a file: a pipe nobody reads fills up and stalls the server mid-request.
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        installation.command("run", "--port", str(port)),
        env=installation.env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    schema = f"http://127.0.0.1:{port}/api/v1/openapi.json"
    try:
        serving(schema, server)
        fuzz = subprocess.run(
            fuzzing(schema, token, tmp_path),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "fuzz.txt").write_text(fuzz.stdout + fuzz.stderr)
    assert fuzz.returncode == 0, fuzz.stdout[-20000:] + fuzz.stderr[-2000:]
