"""Bulletin's own knobs, read once from ``BULLETIN_*`` environment variables.

Settings hold one frozen ``Options`` value (``settings.BULLETIN``); code reads it through
``options()`` so tests can swap it with Django's ``override_settings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Options:
    lease_seconds: int = 60
    max_attempts: int = 5
    retry_base_seconds: int = 30
    retry_max_seconds: int = 3600
    batch_size: int = 100
    tick_seconds: int = 5
    idle_seconds: float = 1.0
    default_grace_seconds: int = 3600
    from_email: str = "Bulletin <bulletin@localhost>"
    message_id_domain: str = "bulletin.localhost"
    # How many dispatchers send at once: Celery tasks a tick starts when work is due, or threads
    # in `bulletin run` and `bulletin dispatch` (each its own connections: SMTP latency overlaps).
    # Celery: and how long each task drains.
    dispatch_lanes: int = 4
    # How many SMTP connections each dispatcher keeps sending on at once, from its one thread:
    # a message is four round trips, and while one connection waits the others are answered.
    email_connections: int = 4
    dispatch_budget_seconds: int = 30
    sweep_seconds: int = 15
    # `bulletin run` plans and sends in its own threads unless Celery does it (scale-out).
    embedded_workers: bool = True
    # A second person with the approver role must approve before anything is scheduled.
    require_approval: bool = False
    # /healthz warns (still 200) when planning or sending is this many seconds behind.
    health_max_lag_seconds: int = 300
    # PostgreSQL: dispatch's repeated statements prepared once per connection (see
    # bulletin.dispatch.statements). Off behind a pooler that does not keep them (PgBouncer
    # before 1.21 in transaction mode).
    prepared_statements: bool = True


_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _parse(name: str, raw: str, kind: type) -> object:
    if kind is bool:
        if raw.strip().lower() not in _BOOLEANS:
            raise ImproperlyConfigured(
                f"BULLETIN_{name.upper()} must be true or false, got {raw!r}"
            )
        return _BOOLEANS[raw.strip().lower()]
    try:
        value = kind(raw)
    except ValueError:
        number = "a whole number" if kind is int else "a number"
        message = f"BULLETIN_{name.upper()} must be {number}, got {raw!r}"
        raise ImproperlyConfigured(message) from None
    if kind in (int, float) and value <= 0:
        raise ImproperlyConfigured(f"BULLETIN_{name.upper()} must be positive, got {raw!r}")
    return value


def load(environ: os._Environ[str] | dict[str, str] = os.environ) -> Options:
    """Build Options from the environment; a bad value is one clear error naming the variable."""
    values = {}
    for field in fields(Options):
        raw = environ.get(f"BULLETIN_{field.name.upper()}")
        if raw is not None and raw != "":
            kind = type(field.default)
            values[field.name] = _parse(field.name, raw, kind)
    return Options(**values)  # type: ignore[arg-type]


def options() -> Options:
    from django.conf import settings

    return settings.BULLETIN  # type: ignore[no-any-return]


def secret(name: str, environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """A secret from ``NAME`` or from the file ``NAME_FILE`` names ("" when neither is set).

    Secrets are never logged: callers keep them out of log records and error messages.
    """
    if value := environ.get(name):
        return value
    path = environ.get(f"{name}_FILE")
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ImproperlyConfigured(f"{name}_FILE: {path} is empty")
    return value
