"""The test identity provider (tests/oidc_provider/provider.mjs) as a context manager.

It starts Node on a free loopback port (the provider listens on port 0 and prints its issuer),
waits until the discovery document answers, and stops the process afterwards. Without Node or
the provider's node_modules (`scripts/services.sh install` runs `npm ci`), a test using it
skips, or fails under CI, like ``require_server`` in conftest.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

HERE = Path(__file__).parent / "oidc_provider"
CLIENT_ID = "bulletin-tests"
CLIENT_SECRET = "test-client-secret-not-a-real-one"
START_SECONDS = 20.0
# oidc-provider 9 and jose 6 use the global WebCrypto of Node 20 (Debian 12's own nodejs is 18).
NODE_MAJOR = 20


def require_node() -> str:
    """The node executable; skip by hand, fail in CI, when it or the provider is missing."""
    node = shutil.which("node")
    installed = (HERE / "node_modules" / "oidc-provider").is_dir()
    if node and installed and _major_version(node) >= NODE_MAJOR:
        return node
    message = (
        f"Node.js {NODE_MAJOR} or later, or tests/oidc_provider/node_modules, is missing: "
        "`scripts/services.sh install` installs Node and runs `npm ci` there"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _major_version(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    return int(version.stdout.strip().lstrip("v").split(".")[0] or 0)


@dataclass
class Provider:
    issuer: str
    accounts_file: Path

    def set_accounts(self, accounts: dict[str, dict[str, Any]]) -> None:
        """Login name → claims (sub, email, email_verified, name, groups); read at each use."""
        self.accounts_file.write_text(json.dumps(accounts))

    def spoil_id_tokens(self, mode: str) -> None:
        """normal, tampered, expired, wrong-audience, wrong-issuer or rotated (provider.mjs)."""
        response = requests.post(f"{self.issuer}/__test__/mode", data=mode, timeout=5)
        assert response.status_code == 204, response.text

    def jwks_fetches(self) -> int:
        """How many times the provider's key set (/jwks) was read."""
        response = requests.get(f"{self.issuer}/__test__/jwks-fetches", timeout=5)
        return int(response.json()["count"])


@contextmanager
def identity_provider(
    site: str, accounts: dict[str, dict[str, Any]], directory: Path
) -> Iterator[Provider]:
    """A running provider whose one client may send people back to ``site``."""
    node = require_node()
    accounts_file = directory / "idp-accounts.json"
    accounts_file.write_text(json.dumps(accounts))
    env = {
        **os.environ,
        "ACCOUNTS_FILE": str(accounts_file),
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URIS": f"{site}/oidc/callback/",
        "POST_LOGOUT_REDIRECT_URIS": f"{site}/accounts/login/",
    }
    log = (directory / "idp.log").open("w")
    process = subprocess.Popen(
        [node, str(HERE / "provider.mjs")], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=log
    )
    try:
        issuer = _issuer_line(process, directory / "idp.log")
        _wait_for_discovery(issuer)
        yield Provider(issuer, accounts_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _issuer_line(process: subprocess.Popen[bytes], log: Path) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_SECONDS):
            raise AssertionError(f"the provider printed nothing: {log.read_text()}")
    line = process.stdout.readline()
    if not line:
        raise AssertionError(f"the provider stopped: {log.read_text()}")
    return str(json.loads(line)["issuer"])


def _wait_for_discovery(issuer: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    url = f"{issuer}/.well-known/openid-configuration"
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {START_SECONDS} s")
        time.sleep(0.05)
