"""Log formatting and redaction.

The text format shows each event's ids as key=value after the message. Every handler carries
``RedactSecrets``, so a configured secret (``settings.REDACTED_SECRETS``), a password inside a
URL, a Slack token, a webhook signing secret or a Teams ``sig=`` never reaches a log line, in
the message, its arguments, its extras or a traceback, whichever format writes it.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

MASK = "***"

# Secrets that have a recognisable shape, wherever they come from (a place's secret is in the
# database, a Teams URL carries its signature).
_SHAPES = (
    # scheme://user:password@host → scheme://user:***@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), rf"\g<1>{MASK}@"),
    (re.compile(r"\b(xox[a-z]-)[A-Za-z0-9-]+"), rf"\g<1>{MASK}"),
    (re.compile(r"\b(whsec_)[A-Za-z0-9+/=]+"), rf"\g<1>{MASK}"),
    (re.compile(r"([?&]sig=)[^&\s\"'>]+"), rf"\g<1>{MASK}"),
)


class TextFormatter(logging.Formatter):
    _stamp: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The standard ``asctime``, its date and time worked out once a second: dispatch
        logs a few events per email, and ``strftime`` was a tenth of each."""
        if datefmt:
            return super().formatTime(record, datefmt)
        second, stamp = self._stamp
        if int(record.created) != second:
            second = int(record.created)
            stamp = time.strftime(self.default_time_format, self.converter(second))
            self._stamp = second, stamp  # one assignment: a racing thread sees old or new
        return (self.default_msec_format or "%s,%03d") % (stamp, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if not extras:
            return line
        return line + " " + " ".join(f"{key}={value}" for key, value in extras.items())


def url_password(url: str) -> str:
    """The password in a URL such as ``redis://:pw@host/0`` ("" when it has none)."""
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


@lru_cache(maxsize=8)
def _secret_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    # Longest first, so a secret containing another is masked whole.
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret and every secret-shaped value masked."""
    if pattern := _secret_pattern(tuple(secrets)):
        text = pattern.sub(MASK, text)
    for shape, replacement in _SHAPES:
        text = shape.sub(replacement, text)
    return text


# Events repeat the same short texts (their messages, states, a batch's lease token): each is
# redacted once, not once per event (five regular expressions each time, a third of an event).
_redact_short = lru_cache(maxsize=4096)(redact)
_SHORT = 256


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` unchanged when it shows no secret; otherwise its redacted text (containers
    are scrubbed item by item, so a JSON log keeps their shape)."""
    if isinstance(value, str):
        if not value:
            return value
        return _redact_short(value, secrets) if len(value) <= _SHORT else redact(value, secrets)
    if isinstance(value, int | float | None):  # ids and counts: nothing to hide
        return value
    if isinstance(value, list | tuple) and all(type(item) is int for item in value):
        return value  # a batch's delivery ids, on every dispatch event: the hot case
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(item, secrets) for item in value)
    shown = str(value)
    cleaned = redact(shown, secrets)
    return value if cleaned == shown else cleaned


class RedactSecrets(logging.Filter):
    """Masks secrets in a record before any formatter sees it (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = tuple(getattr(settings, "REDACTED_SECRETS", ()))
        record.msg = _scrub(record.msg, secrets)
        if record.args:
            record.args = _scrub(record.args, secrets)
        for key in [k for k in record.__dict__ if k not in _STANDARD]:
            setattr(record, key, _scrub(record.__dict__[key], secrets))
        if record.exc_info:
            # Formatters reuse exc_text once set; dropping exc_info stops the JSON formatter
            # from formatting the original (unredacted) traceback again.
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info))
            record.exc_text, record.exc_info = redact(text.rstrip("\n"), secrets), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


class SafeReporterFilter(SafeExceptionReporterFilter):
    """Django's error reports also mask a password inside a URL-valued setting or header
    (``CELERY_BROKER_URL``, ``DATABASE_URL`` in a development server's environment)."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        # str() as well: a lazy setting (axes' username field) passes isinstance but no regex.
        return redact(str(cleansed)) if isinstance(cleansed, str) else cleansed
