"""Every knob, read once from the environment into one frozen ``Options`` value.

Bulletin's own ``BULLETIN_*`` variables, the channels' paces and timeouts, and the Django and
Celery switches and numbers that Bulletin parses (``DEBUG``, ``EMAIL_PORT``, ``CONN_MAX_AGE``…)
are all read here, with one vocabulary for booleans (``BOOLEANS``); a bad value is one
``ImproperlyConfigured`` naming the variable, raised while settings load, so it stops every
command. Settings hold the value (``settings.BULLETIN``); code reads it through ``options()``,
so a test changes any knob with ``settings.BULLETIN = replace(conf.load({}), …)``.

Only secrets (``secret()``, with their ``NAME_FILE`` twins) are read later, when used.
"""

from __future__ import annotations

import math
import os
from dataclasses import Field, dataclass, field, fields
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.core.exceptions import ImproperlyConfigured


def _named(variable: str, default: Any, **bounds: int) -> Any:
    """A knob whose variable is not ``BULLETIN_<FIELD>`` (Django's, Celery's, Slack's names)."""
    return field(default=default, metadata={"variable": variable, **bounds})


def _bounded(default: Any, **bounds: int) -> Any:
    """A number allowed other bounds than "positive" (``minimum=0``, ``maximum=…``)."""
    return field(default=default, metadata=bounds)


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
    # bulletin.dispatch.ledger.cursors). Off behind a pooler that does not keep them (PgBouncer
    # before 1.21 in transaction mode).
    prepared_statements: bool = True
    # The working week of employees without a location (see bulletin.scheduling.working).
    working_week: str = "Mon-Fri 08:00-18:00"
    # Where the SQLite file, the generated secret key and static files live ("": ./var).
    var_dir: str = ""
    # An address is suppressed (no more email to it) after this many soft bounces (4.x.x:
    # mailbox full, greylisted too long…) within this many days (bulletin.dispatch.bounces).
    soft_bounce_limit: int = 3
    soft_bounce_days: int = 7
    # Languages (bulletin.domain.languages, bulletin.dispatch.translations): what a person
    # without a language of their own reads, and the languages HR may write in (comma-separated
    # BCP 47 tags, kept canonical, the default always among them and first).
    default_language: str = "en"
    languages: str = "en,de,fr,es,pt,ja"

    # --- The channels: paces shared by all workers (bulletin.dispatch.pacing), timeouts.
    slack_per_minute: float = 100.0
    # Slack's Tier 3 budget, for users.lookupByEmail and for conversations.open each.
    slack_lookups_per_minute: float = 50.0
    teams_per_second: float = 4.0
    webhook_per_second: float = 20.0
    # Seconds, for Teams and webhooks: connect, write, read and pool alike.
    http_timeout: float = 10.0
    slack_timeout: float = _named("SLACK_TIMEOUT", 10.0)
    # Kept with one trailing slash: slack_sdk appends the method name.
    slack_api_url: str = _named("SLACK_API_URL", "https://slack.com/api/")

    # --- Security (README, "Security").
    https: bool = False
    hsts_seconds: int = _bounded(365 * 24 * 3600, minimum=0)
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    # The header a proxy in front sets to "https" (and strips from clients); "": none.
    proxy_ssl_header: str = ""
    proxy_count: int = _bounded(0, minimum=0)
    login_failure_limit: int = 5
    login_lockout_minutes: int = 15
    # Days an email's "Open in Bulletin" link signs its person in (dispatch/signed_links.py).
    sign_in_link_days: int = 14

    # --- Django's and Celery's names, parsed here so a bad value is one line naming it.
    debug: bool = _named("DEBUG", False)
    allowed_hosts: str = _named("ALLOWED_HOSTS", "127.0.0.1,localhost")
    conn_max_age: int = _named("CONN_MAX_AGE", 0, minimum=0)
    email_host: str = _named("EMAIL_HOST", "")
    email_port: int = _named("EMAIL_PORT", 25, maximum=65535)
    email_host_user: str = _named("EMAIL_HOST_USER", "")
    email_use_tls: bool = _named("EMAIL_USE_TLS", False)
    email_use_ssl: bool = _named("EMAIL_USE_SSL", False)
    email_timeout: int = _named("EMAIL_TIMEOUT", 30)
    email_backend: str = _named("EMAIL_BACKEND", "")
    email_file_path: str = _named("EMAIL_FILE_PATH", "")
    # "": BULLETIN_FROM_EMAIL (from_email above).
    default_from_email: str = _named("DEFAULT_FROM_EMAIL", "")
    celery_visibility_timeout: int = _named("CELERY_VISIBILITY_TIMEOUT", 300)
    # 0: the machine's CPU count (a value given must be positive).
    celery_worker_concurrency: int = _named("CELERY_WORKER_CONCURRENCY", 0)
    log_format: str = _named("LOG_FORMAT", "text")
    log_level: str = _named("LOG_LEVEL", "INFO")

    # --- The announcement email's look (bulletin.channels.email_layout) and its senders.
    org_name: str = "Bulletin"
    # Absolute http(s) URL of the logo shown above every email ("": the name alone).
    logo_url: str = ""
    # The header bar's and the Acknowledge button's colour, "#rrggbb".
    brand_color: str = "#1f4e8c"
    # Plain text at the foot of every email (an address, a help desk); "": none.
    email_footer: str = ""
    # The Froms an announcement may choose, comma- or newline-separated RFC 5322 addresses
    # ("People Team <people@example.com>"), kept one a line; "": only DEFAULT_FROM_EMAIL.
    senders: str = ""
    # Bounces (bulletin.channels.verp): the address bounces come back to; each email's envelope
    # sender is its "local+<key>@domain" (VERP). "": the sender's own address, no VERP.
    bounce_address: str = ""
    # A returned message bigger than this is kept truncated and shown as unreadable.
    bounce_max_bytes: int = 10 * 1024 * 1024

    # --- Single sign-on (README, "Single sign-on (OpenID Connect)"; bulletin.interfaces.sso).
    # Empty: no single sign-on. The issuer's endpoints come from its discovery document.
    oidc_issuer: str = _named("OIDC_ISSUER", "")
    oidc_client_id: str = _named("OIDC_CLIENT_ID", "")
    # The button says "Sign in with <name>".
    oidc_provider_name: str = _named("OIDC_PROVIDER_NAME", "single sign-on")
    oidc_scopes: str = _named("OIDC_SCOPES", "openid email profile")
    oidc_groups_claim: str = _named("OIDC_GROUPS_CLAIM", "groups")
    # "idp-group=Role,…" with Bulletin's role names (domain/roles.py); kept one pair a line.
    oidc_group_roles: str = _named("OIDC_GROUP_ROLES", "")
    # False: the login page offers single sign-on only (superusers keep ?password=1).
    password_login: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "site_url", _site_url(self.site_url))
        object.__setattr__(self, "slack_api_url", _slack_api_url(self.slack_api_url))
        object.__setattr__(self, "log_level", self.log_level.strip().upper())
        _check_look(self)
        object.__setattr__(self, "bounce_address", _bounce_address(self.bounce_address))
        _check_sso(self)
        _check_working_week(self.working_week)
        _check_languages(self)
        _check_choice("LOG_FORMAT", self.log_format, LOG_FORMATS)
        _check_choice("LOG_LEVEL", self.log_level, LOG_LEVELS)
        if self.email_use_tls and self.email_use_ssl:
            raise ImproperlyConfigured(
                "EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on: choose one"
            )

    def language_list(self) -> tuple[str, ...]:
        """BULLETIN_LANGUAGES, one tag each, the default first."""
        return tuple(self.languages.split(","))

    def sender_list(self) -> tuple[str, ...]:
        """BULLETIN_SENDERS, one address each, as configured."""
        return tuple(line for line in self.senders.split("\n") if line)


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _check_choice(variable: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        words = " or ".join(allowed) if len(allowed) == 2 else f"one of {', '.join(allowed)}"
        raise ImproperlyConfigured(f"{variable} must be {words}, got {value!r}")


def _check_look(chosen: Options) -> None:
    """The email's settings: checked and kept in one canonical form (see conf_email)."""
    from bulletin.conf_email import brand_color, email_footer, logo_url, org_name, senders

    object.__setattr__(chosen, "org_name", org_name(chosen.org_name))
    object.__setattr__(chosen, "logo_url", logo_url(chosen.logo_url))
    object.__setattr__(chosen, "brand_color", brand_color(chosen.brand_color))
    object.__setattr__(chosen, "email_footer", email_footer(chosen.email_footer))
    object.__setattr__(chosen, "senders", senders(chosen.senders))


# RFC 5321 section 4.5.3.1.1: a local part has at most 64 octets; the bounce address's own
# leaves room for VERP's "+<id>-<mac>" (bulletin.channels.verp.KEY_LONGEST: 34).
BOUNCE_LOCAL_PART_LONGEST = 30


def _bounce_address(raw: str) -> str:
    """BULLETIN_BOUNCE_ADDRESS: one plain address whose local part leaves room for the VERP
    key, so every return path is a legal address."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    address = raw.strip()
    if not address:
        return ""
    try:
        validate_email(address)
    except ValidationError:
        problem = "a plain address (bounces@example.com)"
    else:
        local = address.rpartition("@")[0]
        if len(local) <= BOUNCE_LOCAL_PART_LONGEST and local.isascii():
            return address
        longest = BOUNCE_LOCAL_PART_LONGEST
        problem = f"an address whose local part has at most {longest} ASCII characters"
    raise ImproperlyConfigured(f"BULLETIN_BOUNCE_ADDRESS must be {problem}, got {raw!r}")


def _check_sso(chosen: Options) -> None:
    """Single sign-on's settings: checked and kept in one canonical form (see conf_sso)."""
    from bulletin.conf_sso import checked

    for name, value in checked(chosen).items():
        object.__setattr__(chosen, name, value)


def _slack_api_url(raw: str) -> str:
    raw = raw.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or not _port_ok(parts):
        raise ImproperlyConfigured(
            f"SLACK_API_URL must be an absolute http:// or https:// URL, got {raw!r}"
        )
    return raw if raw.endswith("/") else f"{raw}/"


# Where links point when BULLETIN_SITE_URL is unset: `bulletin run`'s default address, which
# works only on the machine itself (`bulletin run` warns about it).
SITE_URL_FALLBACK = "http://127.0.0.1:8000"


def _check_languages(chosen: Options) -> None:
    """BULLETIN_DEFAULT_LANGUAGE and BULLETIN_LANGUAGES: BCP 47 tags, kept canonical."""
    from bulletin.domain.languages import UnknownLanguage, canonical

    try:
        default = canonical(chosen.default_language)
    except UnknownLanguage as exc:
        raise ImproperlyConfigured(f"BULLETIN_DEFAULT_LANGUAGE: {exc}") from None
    if not default:
        raise ImproperlyConfigured("BULLETIN_DEFAULT_LANGUAGE must name a language, e.g. 'en'")
    tags = [default]
    for raw in chosen.languages.split(","):
        try:
            tag = canonical(raw)
        except UnknownLanguage as exc:
            raise ImproperlyConfigured(f"BULLETIN_LANGUAGES: {exc}") from None
        if tag and tag not in tags:
            tags.append(tag)
    object.__setattr__(chosen, "default_language", default)
    object.__setattr__(chosen, "languages", ",".join(tags))


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


# The one vocabulary for switches, in the environment and in HR's files alike (any case).
BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "y": True,  # HR files often say Y/N
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "n": False,
    "off": False,
}
BOOLEAN_WORDS = "true/false, yes/no, y/n, on/off or 1/0"


def boolean(raw: str) -> bool | None:
    """True or False for a word of ``BOOLEANS`` (surrounding spaces and case ignored), else None."""
    return BOOLEANS.get(raw.strip().lower())


def variable(knob: Field[Any]) -> str:
    """The environment variable a field of Options is read from."""
    return str(knob.metadata.get("variable", f"BULLETIN_{knob.name.upper()}"))


def variables() -> dict[str, str]:
    """Each field of Options and its environment variable."""
    return {knob.name: variable(knob) for knob in fields(Options)}


def _number(name: str, raw: str, kind: type) -> int | float:
    try:
        value = kind(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        number = "a whole number" if kind is int else "a number"
        raise ImproperlyConfigured(f"{name} must be {number}, got {raw!r}")
    return value  # type: ignore[no-any-return]


def _check_bounds(name: str, raw: str, value: float, bounds: Any) -> None:
    minimum = bounds.get("minimum")
    if minimum is None and value <= 0:
        raise ImproperlyConfigured(f"{name} must be positive, got {raw!r}")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be {minimum} or more, got {raw!r}")
    # A billion (seconds: 31 years) is past any sane knob, and short of the overflows that
    # timedelta and socket timeouts would raise mid-run instead of at start.
    maximum = bounds.get("maximum", 10**9)
    if value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {raw!r}")


def _parse(knob: Field[Any], raw: str) -> object:
    name, kind = variable(knob), type(knob.default)
    if kind is bool:
        if (switch := boolean(raw)) is None:
            raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")
        return switch
    if kind is str:
        return raw
    value = _number(name, raw, kind)
    _check_bounds(name, raw, value, knob.metadata)
    return value


def load(environ: os._Environ[str] | dict[str, str] = os.environ) -> Options:
    """Build Options from the environment; a bad value is one clear error naming the variable.

    An empty variable counts as unset."""
    values: dict[str, Any] = {}
    for knob in fields(Options):
        raw = environ.get(variable(knob))
        if raw is not None and raw != "":
            values[knob.name] = _parse(knob, raw)
    return Options(**values)


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
