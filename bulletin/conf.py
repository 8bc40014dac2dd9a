"""Bulletin's own knobs, read once from ``BULLETIN_*`` environment variables.

Settings hold one frozen ``Options`` value (``settings.BULLETIN``); code reads it through
``options()`` so tests can swap it with Django's ``override_settings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from urllib.parse import SplitResult, urlsplit

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
    # The domain after the "@" of every Message-ID. Empty: BULLETIN_SITE_URL's host, else
    # DEFAULT_FROM_EMAIL's domain (see message_id_domain()).
    message_id_domain: str = ""
    # The public base URL every link in a message starts with (web view, one-click
    # unsubscribe…): absolute http(s), no query or fragment, kept without a trailing slash.
    # Empty: links point at SITE_URL_FALLBACK, which only works on the machine itself.
    site_url: str = ""
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
    # The working week of employees without a location (see bulletin.scheduling.working).
    working_week: str = "Mon-Fri 08:00-18:00"

    def __post_init__(self) -> None:
        object.__setattr__(self, "site_url", _site_url(self.site_url))
        _check_working_week(self.working_week)


# Where links point when BULLETIN_SITE_URL is unset: `bulletin run`'s default address, which
# works only on the machine itself (`bulletin run` warns about it).
SITE_URL_FALLBACK = "http://127.0.0.1:8000"


def _check_working_week(raw: str) -> None:
    from bulletin.scheduling.working import WorkingWeek, WorkingWeekError

    try:
        WorkingWeek.parse(raw)
    except WorkingWeekError as exc:
        raise ImproperlyConfigured(f"BULLETIN_WORKING_WEEK: {exc}") from None


def _port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - it raises ValueError for a port that is not one
    except ValueError:
        return False
    return True


def _site_url(raw: str) -> str:
    """BULLETIN_SITE_URL checked: an absolute http(s) URL, no query or fragment, no trailing
    slash (every link is ``site_url + "/path"``)."""
    raw = raw.strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
        problem = "an absolute http:// or https:// URL"
    elif parts.query or parts.fragment or "?" in raw or "#" in raw:
        problem = "a base URL without a query (?) or fragment (#)"
    elif parts.username is not None or parts.password is not None:
        problem = "a URL without a user name or password (every email would carry them)"
    else:
        return raw.rstrip("/")
    shown = raw.replace(f":{parts.password}@", ":***@") if parts.password else raw
    raise ImproperlyConfigured(f"BULLETIN_SITE_URL must be {problem}, got {shown!r}")


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


def site_link(path: str) -> str:
    """The absolute URL of ``path`` (e.g. "/unsubscribe/…") under BULLETIN_SITE_URL, or under
    SITE_URL_FALLBACK when it is unset."""
    base = options().site_url or SITE_URL_FALLBACK
    return f"{base}/{path.lstrip('/')}"


def message_id_domain(from_email: str) -> str:
    """The Message-ID domain: BULLETIN_MESSAGE_ID_DOMAIN, else BULLETIN_SITE_URL's host, else
    the domain of ``from_email`` (DEFAULT_FROM_EMAIL, "Name <addr>" or "addr")."""
    chosen = options()
    if chosen.message_id_domain:
        return chosen.message_id_domain
    host = urlsplit(chosen.site_url).hostname or ""
    if host and ":" not in host:  # a name or IPv4 (an IPv6 host cannot follow the "@")
        return host
    address = from_email.rsplit("<", 1)[-1].rstrip("> ")
    return address.rpartition("@")[2] or "localhost"


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
