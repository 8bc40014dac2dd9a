"""A throwaway Postfix on loopback, for the bounce round trip (tests/test_postfix_round_trip.py).

Debian's postfix package (``scripts/services.sh install``) started by the tests with a private
configuration directory, queue, data directory, log and mailboxes under one temporary
directory: ``postfix -c DIR start`` (it needs root: the master process drops to ``postfix``),
``postfix -c DIR stop`` afterwards. Its SMTP listener is on 127.0.0.1 at a free port; nothing
else listens.

Two domains, so that both a delivered and an asynchronously bounced message exist:

- ``mail.test`` (``MAILBOX_DOMAIN``): virtual(8) Maildirs under ``mail/mail.test/<user>/``, for
  the healthy employees and for the bounce mailbox ``bounces``. With ``recipient_delimiter = +``
  mail for ``bounces+<key>@mail.test`` lands in ``bounces``' Maildir, and virtual(8) keeps the
  whole address in ``Delivered-To`` (and ``X-Original-To``).
- ``staff.test`` (``LOCAL_DOMAIN``): in ``mydestination`` with ``local_recipient_maps`` empty,
  so smtpd accepts any user there; local(8) then finds no such account and the bounce daemon
  writes a real DSN (RFC 3464, "unknown user") to the envelope sender: the VERP return path.

Postfix documents each parameter in postconf(5) and each master.cf column in master(5); the
service list below is Debian's master.cf without its port-25 smtpd and the optional pipes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import free_port

MAILBOX_DOMAIN = "mail.test"
LOCAL_DOMAIN = "staff.test"
START_SECONDS = 20.0

# master(5): service type private unpriv chroot wakeup maxproc command. chroot "n" everywhere:
# the daemons then need no copy of /etc inside the queue directory.
_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def require_postfix() -> str:
    """The postfix command; skip by hand, fail in CI, when it is missing or we are not root."""
    postfix = shutil.which("postfix") or (
        "/usr/sbin/postfix" if Path("/usr/sbin/postfix").exists() else ""
    )
    if postfix and os.geteuid() == 0:
        return postfix
    message = (
        "Postfix is not installed, or the tests do not run as root (its master process must "
        "start as root): `scripts/services.sh install` installs Debian's postfix"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Postfix:
    root: Path
    port: int
    mailboxes: tuple[str, ...]

    @property
    def config(self) -> Path:
        return self.root / "conf"

    def maildir(self, user: str) -> Path:
        """The Maildir of ``user@mail.test`` (virtual(8) makes it at the first delivery)."""
        return self.root / "mail" / MAILBOX_DOMAIN / user

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_mail(self, user: str, count: int = 1, timeout: float = 30.0) -> list[Path]:
        """The files in ``user``'s Maildir ``new/`` once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            new = self.maildir(user) / "new"
            found = sorted(new.iterdir()) if new.is_dir() else []
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(found)} of {count} messages reached {user}@{MAILBOX_DOMAIN}; "
                    f"Postfix's log:\n{self.log()[-4000:]}"
                )
            time.sleep(0.05)


def _main_cf(root: Path, mailbox_owner: int) -> str:
    # postconf(5) for each. local_recipient_maps empty: smtpd accepts unknown local users, and
    # local(8) bounces them after the SMTP transaction (the asynchronous bounce under test).
    return f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.{MAILBOX_DOMAIN}
mydomain = {MAILBOX_DOMAIN}
myorigin = $myhostname
mynetworks = 127.0.0.0/8
mydestination = localhost, {LOCAL_DOMAIN}
local_recipient_maps =
alias_maps =
alias_database =
recipient_delimiter = +
virtual_mailbox_domains = {MAILBOX_DOMAIN}
virtual_mailbox_maps = texthash:{root}/conf/mailboxes
virtual_mailbox_base = {root}/mail
virtual_uid_maps = static:{mailbox_owner}
virtual_gid_maps = static:{mailbox_owner}
virtual_minimum_uid = 1
smtp_dns_support_level = disabled
biff = no
smtputf8_enable = no
"""


def _write_config(root: Path, port: int, mailboxes: tuple[str, ...]) -> None:
    owner = _postfix_uid()
    config = root / "conf"
    config.mkdir()
    (config / "main.cf").write_text(_main_cf(root, owner))
    listener = f"127.0.0.1:{port} inet  n       -       n       -       -       smtpd\n"
    (config / "master.cf").write_text(listener + _SERVICES)
    # texthash: needs no postmap; a trailing slash makes the mailbox a Maildir (virtual(8)).
    lines = [f"{user}@{MAILBOX_DOMAIN} {MAILBOX_DOMAIN}/{user}/" for user in mailboxes]
    (config / "mailboxes").write_text("\n".join(lines) + "\n")
    (root / "queue").mkdir(mode=0o755)  # root's; `postfix check` makes what is inside
    for owned in (root / "mail", root / "data"):
        owned.mkdir(mode=0o700)
        os.chown(owned, owner, owner)


def _postfix_uid() -> int:
    import pwd

    return pwd.getpwnam("postfix").pw_uid


def _postfix(postfix: str, root: Path, *command: str) -> None:
    done = subprocess.run(
        [postfix, "-c", str(root / "conf"), *command], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"postfix {' '.join(command)} failed: {done.stderr}{done.stdout}")


def _wait_for_port(port: int, root: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"220"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            log = (
                (root / "maillog").read_text(errors="replace")
                if (root / "maillog").exists()
                else ""
            )
            raise AssertionError(f"Postfix did not answer on port {port}:\n{log[-4000:]}")
        time.sleep(0.05)


@contextmanager
def running_postfix(mailboxes: tuple[str, ...] = ("bounces",)) -> Iterator[Postfix]:
    """Postfix started on a free loopback port with ``mailboxes`` at mail.test, stopped after."""
    postfix = require_postfix()
    # Not pytest's tmp_path: its parents are 0700, and Postfix's daemons run as ``postfix``.
    root = Path(tempfile.mkdtemp(prefix="bulletin-postfix-"))
    root.chmod(0o755)
    port = free_port()
    _write_config(root, port, mailboxes)
    try:
        _postfix(postfix, root, "check")  # makes the queue's directories, owned as they must be
        _postfix(postfix, root, "start")
        try:
            _wait_for_port(port, root)
            yield Postfix(root, port, mailboxes)
        finally:
            _postfix(postfix, root, "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
