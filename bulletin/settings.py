"""Django settings, driven by the environment. SQLite in ./var is the default database.

Every knob is read once, by bulletin.conf (``BULLETIN``); secrets through ``_secret``.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from bulletin import conf, conf_sso, logs

# First: a bad value of any knob stops every command here, with one line naming it.
BULLETIN = conf.load()
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(BULLETIN.var_dir or BASE_DIR / "var")


def _secret(name: str, default: str = "") -> str:
    """``NAME``, or the contents of the file ``NAME_FILE`` names (Docker and Kubernetes
    secrets); a ``NAME_FILE`` that is missing or empty stops start-up naming the variable."""
    return conf.secret(name) or default


def _secret_key() -> str:
    """Use SECRET_KEY (or SECRET_KEY_FILE); otherwise make one and keep it in var/.

    The one made here is Django's get_random_secret_key(): 50 characters from a 50-letter
    alphabet, which is what `check --deploy` asks of a key.
    """
    if key := _secret("SECRET_KEY"):
        return key
    stored = VAR_DIR / "secret_key"
    if not stored.exists():
        from django.core.management.utils import get_random_secret_key

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        stored.write_text(get_random_secret_key())
        stored.chmod(0o600)
    return stored.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = BULLETIN.debug
ALLOWED_HOSTS = [host for host in BULLETIN.allowed_hosts.split(",") if host]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "bulletin.domain",
    "bulletin.interfaces",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "bulletin.urls"
# A login without ?next= (the admin's, typed by hand) lands on the home page, which sends HR to
# the HR screens and everyone else to their inbox.
LOGIN_REDIRECT_URL = "/"
WSGI_APPLICATION = "bulletin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_db = f"sqlite:///{VAR_DIR / 'bulletin.sqlite3'}"
try:
    DATABASES = {
        "default": dj_database_url.parse(
            _secret("DATABASE_URL", _default_db),
            conn_max_age=BULLETIN.conn_max_age,
            conn_health_checks=True,
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not usable: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on the busy timeout instead of failing with "database is locked" mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
# What employees read around an announcement's text (bulletin.channels.locale_text): the
# catalogs shipped in bulletin/locale, and any other language HR may write in (its text is
# shown in the default language's frame). Each page an employee sees is in their own
# language, whatever their browser asks for; HR's screens stay English (no LocaleMiddleware).
LANGUAGES = [
    (tag.lower(), tag)
    for tag in dict.fromkeys(["en", "de", "fr", "es", "pt", "ja", *BULLETIN.language_list()])
]
LOCALE_PATHS = [Path(__file__).resolve().parent / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
with contextlib.suppress(OSError):  # WhiteNoise warns on every request if it is missing
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# The embedded server serves admin assets straight from the apps; no collectstatic step.
WHITENOISE_USE_FINDERS = True

# Email: console by default (each message printed on stdout); SMTP as soon as EMAIL_HOST is set.
EMAIL_HOST = BULLETIN.email_host
EMAIL_PORT = BULLETIN.email_port
EMAIL_HOST_USER = BULLETIN.email_host_user
EMAIL_HOST_PASSWORD = _secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = BULLETIN.email_use_tls
EMAIL_USE_SSL = BULLETIN.email_use_ssl
EMAIL_TIMEOUT = BULLETIN.email_timeout
if BULLETIN.email_backend:
    EMAIL_BACKEND = BULLETIN.email_backend
elif BULLETIN.email_file_path:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = BULLETIN.email_file_path
elif EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Whether psycopg may prepare the statements dispatch asks it to (bulletin.dispatch.ledger.
    # cursors); it never prepares on its own count (the threshold is out of reach), and
    # Django's own cursors bind on the client, which never prepares, whatever this says.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        2**31 - 1 if BULLETIN.prepared_statements else None
    )
DEFAULT_FROM_EMAIL = BULLETIN.default_from_email or BULLETIN.from_email

# Mail providers' bounce and complaint webhooks (bulletin.interfaces.bounce_webhooks): each
# provider's URL answers 404 until its credential is set. WEBHOOK_SECRET is "user:password",
# the HTTP basic auth every provider's webhook URL carries.
ANYMAIL = {
    "WEBHOOK_SECRET": _secret("BULLETIN_ANYMAIL_WEBHOOK_SECRET"),
    "MAILGUN_WEBHOOK_SIGNING_KEY": _secret("BULLETIN_MAILGUN_WEBHOOK_SIGNING_KEY"),
    "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": _secret(
        "BULLETIN_SENDGRID_WEBHOOK_VERIFICATION_KEY"
    ),
}

# Celery (scale-out only; `bulletin run` does not use it). Why each setting: README, "Running on
# several machines".
CELERY_BROKER_URL = _secret("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BULLETIN.celery_visibility_timeout}
CELERY_WORKER_CONCURRENCY = BULLETIN.celery_worker_concurrency or os.cpu_count() or 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Generous: a hard kill mid-send turns that delivery into `unknown`.
CELERY_TASK_TIME_LIMIT = 600
CELERY_BEAT_SCHEDULE = {
    "plan": {"task": "bulletin.tick", "schedule": float(BULLETIN.tick_seconds)},
    "sweep": {"task": "bulletin.sweep", "schedule": float(BULLETIN.sweep_seconds)},
}

# --- Security. Why each setting: README, "Security". ---------------------------------------------
# The production switch: Bulletin is reached over HTTPS only. Off by default, so that
# http://127.0.0.1 (`bulletin run`, the tests) keeps working.
HTTPS = BULLETIN.https
SECURE_SSL_REDIRECT = HTTPS
# Load balancers call these over plain HTTP; patterns match the path without its leading "/".
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^metrics/?$"]
SECURE_HSTS_SECONDS = BULLETIN.hsts_seconds if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = BULLETIN.hsts_include_subdomains
# Preloading commits the whole domain to HTTPS in browsers' built-in lists, for months; an
# operator opts in knowingly, so its deploy-check reminder (W021) is silenced until then.
SECURE_HSTS_PRELOAD = BULLETIN.hsts_preload
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True  # hr.js reads the token from the form
# Lax, not Strict: a link to an inbox item in an email must open it logged in.
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
if _proxy_header := BULLETIN.proxy_ssl_header.strip():
    # Only when a proxy in front sets this header (and strips it from clients): otherwise
    # anyone could claim to be on HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# The one inline script (hr/base.html marks the page as having JavaScript before it paints) is
# allowed by its hash; any other inline script or style is refused.
_HR_JS_FLAG = "'sha256-WZRJfWvsnNCPcxzZwvyhovnZGqhZaC+8gPGPRbx6wTk='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", _HR_JS_FLAG],
        "style-src": ["'self'"],
        # data: for the blank favicon; https: for images HR puts in announcement bodies.
        "img-src": ["'self'", "data:", "https:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        # And the identity provider's, where logging out continues (sso.views.LogOut).
        "form-action": ["'self'", *conf_sso.logout_origins(BULLETIN.oidc_issuer)],
        "frame-ancestors": ["'none'"],
    },
}

# Login throttling (django-axes): a username from one address is locked out after
# BULLETIN_LOGIN_FAILURE_LIMIT wrong passwords for BULLETIN_LOGIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # BULLETIN_PASSWORD_LOGIN=false: stops every password but a superuser's, before ModelBackend.
    "bulletin.interfaces.sso.backend.PasswordSwitch",
    "django.contrib.auth.backends.ModelBackend",
    # Single sign-on (README, "Single sign-on (OpenID Connect)"); it answers only the callback.
    "bulletin.interfaces.sso.backend.SingleSignOn",
]
AXES_FAILURE_LIMIT = BULLETIN.login_failure_limit
AXES_COOLOFF_TIME = timedelta(minutes=BULLETIN.login_lockout_minutes)
# Username and address together: an attacker elsewhere cannot lock a colleague out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "bulletin.interfaces.security.locked_out"
AXES_VERBOSE = False  # no banner on every command; lockouts are still logged
# Behind proxies every login arrives from their address; how many there are says which
# X-Forwarded-For entry is the client's (bulletin.interfaces.security.client_address).
PROXY_COUNT = BULLETIN.proxy_count
AXES_CLIENT_IP_CALLABLE = "bulletin.interfaces.security.client_address"

# Single sign-on: the client secret, read here like every secret; the rest of
# mozilla-django-oidc's settings are given by bulletin.interfaces.sso.config (some follow
# BULLETIN, which tests replace) and the provider's endpoints come from its discovery document.
OIDC_RP_CLIENT_SECRET = _secret("OIDC_CLIENT_SECRET")
if BULLETIN.oidc_issuer and not OIDC_RP_CLIENT_SECRET:
    raise ImproperlyConfigured(
        "OIDC_CLIENT_SECRET (or OIDC_CLIENT_SECRET_FILE) must be set when OIDC_ISSUER is"
    )

# Values the log filter blanks out wherever they appear (bulletin.logs.RedactSecrets). Its name
# holds "SECRET", so Django's error reports hide this setting itself.
REDACTED_SECRETS = tuple(
    value
    for value in (
        SECRET_KEY,
        DATABASES["default"].get("PASSWORD"),
        EMAIL_HOST_PASSWORD,
        logs.url_password(CELERY_BROKER_URL),
        _secret("SLACK_BOT_TOKEN"),
        _secret("BULLETIN_METRICS_TOKEN"),
        _secret("OIDC_CLIENT_SECRET"),
        _secret("BULLETIN_IMAP_PASSWORD"),  # fetch_bounces --imap
        *ANYMAIL.values(),
    )
    if value
)
DEFAULT_EXCEPTION_REPORTER_FILTER = "bulletin.logs.SafeReporterFilter"

LOG_FORMAT = BULLETIN.log_format
LOG_LEVEL = BULLETIN.log_level
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {
            "()": "bulletin.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"redact_secrets": {"()": "bulletin.logs.RedactSecrets"}},
    "handlers": {
        # stderr, so that the console email backend's stdout stays readable and pipeable.
        # Every handler takes the redact_secrets filter.
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # httpx logs every request URL at INFO; a Teams workflow URL carries its signature.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Its INFO lines narrate each check; failures and lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}
