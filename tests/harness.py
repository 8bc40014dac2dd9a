"""The real parts the tests run against: an SMTP server on loopback, PostgreSQL databases made
for one test, and Bulletin itself driven through its command line and Celery in subprocesses.

Importable without pytest's fixtures, so `make chaos` uses the very same parts.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    data: bytes = b""  # the bytes as received (DATA, dot-stuffing undone)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"]).strip()  # folded onto its own line when long


@dataclass
class SmtpSink:
    """An aiosmtpd handler that keeps what it receives and can refuse, stall or hang up."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    delay: float = 0.0
    hold_after: int | None = None
    hang_up_after_data: bool = False
    hang_up_at_rcpt: set[str] = field(default_factory=set)
    multi_line_replies: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Each client connection that got as far as RCPT, and its transport (to hang up on it).
    connections: dict[Any, Any] = field(default_factory=dict)
    loop: Any = None  # the server's event loop, once a client has connected
    greeted: int = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.greeted += 1  # one EHLO per connection a client opens
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        self.connections[session.peer] = server.transport
        self.loop = asyncio.get_running_loop()
        if address in self.hang_up_at_rcpt:
            server.transport.close()  # before the message: nothing can have been delivered
            return "421 closing"
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def hang_up(self) -> None:
        """Close every client connection, as a server does to idle ones; returns once closed."""

        async def close_all() -> None:
            for transport in self.connections.values():
                transport.close()
            await asyncio.sleep(0.1)  # the sockets close on the loop's next turns

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=10)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            sender, recipients = envelope.mail_from, list(envelope.rcpt_tos)
            self.received.append(Received(sender, recipients, message, envelope.content))
            count = len(self.received)
        if self.hang_up_after_data:
            # The message is in, but the connection drops before the client hears "250".
            server.transport.close()
            return "421 closing"
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold_after is not None and count > self.hold_after:
            # The message is in; the reply is withheld, as a server stalls before its "250".
            self.held.set()
            while not self.released.is_set():
                await asyncio.sleep(0.02)
        if self.multi_line_replies:
            return f"250-Message accepted for delivery\r\n250-Queued\r\n250 as {count}"
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(r.message_id for r in self.received)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"SMTP server got {len(self.received)} of {count} messages")
            time.sleep(0.02)


@contextmanager
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        sink.released.set()
        controller.stop()


def employee_csv(count: int, *, zones: tuple[str, ...] = ("Europe/London",)) -> str:
    lines = ["email,name,department,location,timezone"]
    for n in range(count):
        zone = zones[n % len(zones)]
        lines.append(f"person{n}@example.com,Person {n},Dept {n % 3},Site {n % 2},{zone}")
    return "\n".join(lines) + "\n"


def _sqlite_param(value: Any) -> Any:
    # Django keeps aware datetimes in SQLite as naive UTC text.
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


@dataclass
class Installation:
    """A Bulletin on its own database (a SQLite file, or a fresh PostgreSQL database when the
    suite runs on PostgreSQL), driven through its real command line in subprocesses."""

    directory: Path
    env: dict[str, str]

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def database(self) -> Path:
        return self.directory / "bulletin.sqlite3"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bulletin", *args]

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"bulletin {' '.join(args)} failed: {result.stderr}")
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        return self._spawn(self.command(*args))

    def start_celery(self, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
        """A Celery beat or worker process for this installation (stdout+stderr to ``log``)."""
        command = [sys.executable, "-m", "celery", "-A", "bulletin", *args]
        out = open(log or os.devnull, "a")  # noqa: SIM115 - owned by the child process
        return subprocess.Popen(
            command,
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def _spawn(self, command: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            command,
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement with ``?`` placeholders against the installation's database."""
        if self.database_url.startswith("postgres"):
            with psycopg.connect(self.database_url, autocommit=True) as connection:
                cursor = connection.execute(statement.replace("?", "%s"), params)
                return cursor.fetchall() if cursor.description else []
        with sqlite3.connect(self.database, timeout=30) as connection:
            return connection.execute(statement, tuple(map(_sqlite_param, params))).fetchall()


def installation_at(directory: Path, database: str, *, migrate: bool = True) -> Installation:
    """A Bulletin whose subprocesses see only the settings given here, migrated unless its
    database is a copy of one that already is."""
    own = ("BULLETIN_", "EMAIL_", "DATABASE_URL", "DJANGO_", "CELERY_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(own)}
    env.update(
        BULLETIN_VAR_DIR=str(directory),
        DATABASE_URL=database,
        SECRET_KEY="test-secret-key-not-for-production",
        LOG_LEVEL="WARNING",
    )
    site = Installation(directory, env)
    if migrate:
        site.run("migrate", "--verbosity", "0")
    return site


def database_url(server: str, name: str) -> str:
    """The URL of database ``name`` on the server that ``server`` (any database on it) names."""
    return f"{server.rsplit('/', 1)[0]}/{name}"


@contextmanager
def postgres_database(server: str, template: str = "") -> Iterator[str]:
    """A new PostgreSQL database for one test or one chaos run, empty or a copy of the database
    ``template``; dropped afterwards."""
    name = f"bulletin_site_{uuid.uuid4().hex[:12]}"
    admin = database_url(server, "postgres")
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield database_url(server, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
