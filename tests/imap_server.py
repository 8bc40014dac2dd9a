"""A throwaway Dovecot IMAP server on loopback, for ``fetch_bounces --imap``.

Debian's dovecot-imapd (``scripts/services.sh install``) run in the foreground (``dovecot -F
-c FILE``) with a configuration of its own under one temporary directory: IMAP over TLS only
(implicit TLS, RFC 8314) on 127.0.0.1 at a free port, a certificate for 127.0.0.1 made with
``openssl`` there (the test passes it as ``--imap-ca-file``), one user in a passwd-file, the
mail in Maildirs beside it. As root, Dovecot's own unprivileged users run the login and mail
processes (the package makes ``dovenull`` and ``dovecot``; mail is kept as ``nobody``); as
anyone else, everything runs as that user. The settings are dovecot.conf(5)'s.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import free_port

START_SECONDS = 20.0
USER = "bounces"
PASSWORD = "imap-test-password-7f3a"


def require_dovecot() -> str:
    """The dovecot binary; skip by hand, fail in CI, when it or openssl is missing."""
    dovecot = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else ""
    )
    if dovecot and shutil.which("openssl"):
        return dovecot
    message = (
        "Dovecot (or openssl) is not installed: `scripts/services.sh install` installs "
        "Debian's dovecot-imapd"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Dovecot:
    root: Path
    port: int
    user: str = USER
    password: str = PASSWORD

    @property
    def ca_file(self) -> Path:
        return self.root / "cert.pem"

    @property
    def url(self) -> str:
        return f"imaps://{self.user}@127.0.0.1:{self.port}/INBOX"

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _accounts() -> tuple[str, str, int, int]:
    """(login user, internal user, mail uid, mail gid)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return me, me, os.geteuid(), os.getegid()
    nobody = pwd.getpwnam("nobody")
    return "dovenull", "dovecot", nobody.pw_uid, grp.getgrnam("nogroup").gr_gid


def _config(root: Path, port: int, capability: str) -> str:
    login, internal, uid, gid = _accounts()
    group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
default_login_user = {login}
default_internal_user = {internal}
default_internal_group = {group}
first_valid_uid = {min(uid, 500)}
first_valid_gid = {min(gid, 500)}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
{f"imap_capability = {capability}" if capability else ""}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def _certificate(root: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip


def _write(root: Path, port: int, capability: str) -> None:
    _certificate(root)
    (root / "dovecot.conf").write_text(_config(root, port, capability))
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    _, _, uid, gid = _accounts()
    home = root / "home"
    home.mkdir()
    os.chown(home, uid, gid)


def _wait_for_port(process: subprocess.Popen[bytes], dovecot: Dovecot) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            raw = socket.create_connection(("127.0.0.1", dovecot.port), timeout=2)
            with dovecot.context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                if tls.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"Dovecot did not answer on {dovecot.port}:\n{dovecot.log()}")
        time.sleep(0.05)


@contextmanager
def running_dovecot(capability: str = "") -> Iterator[Dovecot]:
    """Dovecot on a free loopback port with one user, stopped and removed after.
    ``capability``: what it announces after login instead of its own list (dovecot.conf's
    ``imap_capability``), to play an older server."""
    binary = require_dovecot()
    # Not pytest's tmp_path: its parents are 0700, and Dovecot's mail processes run as nobody.
    root = Path(tempfile.mkdtemp(prefix="bulletin-dovecot-"))
    root.chmod(0o755)
    dovecot = Dovecot(root, free_port())
    try:
        _write(root, dovecot.port, capability)
        process = subprocess.Popen(
            [binary, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(root / "stderr.log").open("wb"),
        )
        try:
            _wait_for_port(process, dovecot)
            yield dovecot
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        shutil.rmtree(root, ignore_errors=True)
