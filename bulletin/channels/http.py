"""What the two HTTP transports share: one httpx client per drain, and one reading of failures.

Teams workflows and signed webhooks both POST a JSON body to a URL an admin pasted in. They
differ in the body and in how they read a 2xx; everything else lives here:

- **One client per drain** (a dispatcher's run of batches). ``open()`` makes an
  ``httpx.Client`` (keep-alive, so sends to one endpoint reuse its connection), ``close()``
  drops it. ``send()`` opens lazily, because the dispatcher calls ``send`` and ``close`` but
  not necessarily ``open``.
- **No hidden retries.** httpx never resends a request by itself (its transport's ``retries``
  is 0 and only ever covers connecting) and redirects are not followed; a retry is dispatch's
  decision, recorded as an attempt.
- **Timeouts** from ``options().http_timeout`` (``BULLETIN_HTTP_TIMEOUT``, seconds, default
  10) for connect, write, read and pool alike, read when a drain opens its client.
- **Where it broke decides the outcome.** Failing to connect (refused, DNS, TLS, connect
  timeout, no pooled connection) means nothing was sent: ``TransientError``. A bad URL or a
  header httpx refuses to write: ``PermanentError``. Anything after the connection was made —
  a write failing half way, no answer in time, the peer hanging up or answering garbage — may
  have been acted on: ``AmbiguousError``. (A keep-alive connection the server had just closed
  lands here too; that errs on the side of "maybe", never on the side of "twice".)
- **Status codes** (``status_error``): 2xx is the transport's to judge; 3xx is not followed and
  is permanent (fix the URL); 408, 409, 425 and 429 are transient, 429 (and 503 with a
  Retry-After) naming the endpoint's pace key so every worker backs off; 410 and every other
  4xx are permanent; 5xx transient; anything else ambiguous.
- **Secrets stay out.** Webhook URLs carry credentials (a Teams workflow URL's ``sig=`` query
  parameter *is* its password; generic webhook paths often embed tokens). Pace keys and logs
  use ``url_digest``/``redact``; error messages never contain the URL, and any text quoted from
  a response or an exception goes through ``scrub`` first. httpx logs every request's full URL
  at INFO; importing this module installs a filter on the ``httpx`` logger that redacts it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx

from bulletin.channels.base import (
    AmbiguousError,
    PermanentError,
    TransientError,
    Transport,
    TransportError,
)
from bulletin.conf import options

log = logging.getLogger(__name__)

USER_AGENT = "Bulletin"
# How much of an answer is read: enough for any error text, bounded against a hostile receiver.
MAX_BODY_BYTES = 64 * 1024
# Status codes that mean "not now" rather than "never" (RFC 9110: 408 Request Timeout, 409
# Conflict, RFC 8470: 425 Too Early, RFC 6585: 429 Too Many Requests).
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


def timeout_seconds() -> float:
    return options().http_timeout


def interval(per_second: float) -> float:
    """Seconds between two sends from a per-second rate (a positive number: bulletin.conf)."""
    return 1.0 / per_second


def url_digest(url: str, *, with_query: bool = True) -> str:
    """A short stable name for an endpoint that reveals nothing of it (for keys and logs).

    Teams leaves the query out: it holds only the API version and the signature, so the key
    stays the same if the workflow's URL is re-issued with a new ``sig``.
    """
    if not with_query:
        parts = urlsplit(url.strip())
        url = f"{parts.hostname or ''}:{parts.port or ''}{parts.path}"
    return hashlib.sha256(url.strip().encode("utf-8", "surrogatepass")).hexdigest()[:16]


_LONG_SEGMENT = 12


def redact(url: str) -> str:
    """The URL as it may appear in a log: scheme, host and path, never its credentials.

    Drops user info, the query and the fragment; shortens long path segments (ids and tokens)
    to their first four characters, and appends the digest so log lines can still be matched.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"<unparseable url #{url_digest(url)}>"
    segments = [s if len(s) <= _LONG_SEGMENT else f"{s[:4]}…" for s in parts.path.split("/")]
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{'/'.join(segments)}{query} #{url_digest(url)}"


class RedactUrls(logging.Filter):
    """Redacts the URL in httpx's own records ("HTTP Request: POST <url> …", INFO level), which
    would otherwise write every webhook's credentials to the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def _redact_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrls) for f in logger.filters):
        logger.addFilter(RedactUrls())


_redact_httpx_logs()


def scrub(text: str, *, url: str = "", secrets: Iterable[str] = ()) -> str:
    """``text`` with the URL, its query values, its user info and any secret blanked out."""
    sensitive = {s for s in secrets if s}
    if url:
        sensitive.add(url.strip())
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            parts = None
        if parts is not None:
            sensitive.update(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
            sensitive.update(v for v in (parts.username, parts.password, parts.query) if v)
            sensitive.update(s for s in parts.path.split("/") if len(s) > _LONG_SEGMENT)
    for value in sorted((s for s in sensitive if len(s) >= 6), key=len, reverse=True):
        text = text.replace(value, "…")
    return text


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def error_text(body: str | None, limit: int = 300) -> str:
    """The useful part of an error answer: a JSON ``error``/``message``, or the text, shortened."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            words = [str(error[k]) for k in ("code", "message") if error.get(k)]
            if words:
                body = ": ".join(words)
        elif isinstance(error, str):
            body = error
    text = " ".join(body.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Answer:
    """What came back: the status, headers and (up to MAX_BODY_BYTES of) the body.

    ``body`` is None when the status line and headers arrived but the body was cut off.
    """

    status: int
    headers: httpx.Headers
    body: str | None

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


def status_error(
    answer: Answer,
    *,
    service: str,
    pace_key: str,
    url: str,
    secrets: Iterable[str] = (),
    throttle_default: float | None = None,
) -> TransportError | None:
    """The outcome a non-2xx status means (None for 2xx: the transport judges the body).

    ``throttle_default`` is the wait assumed when a 429 comes without a Retry-After.
    """
    status = answer.status
    if 200 <= status < 300:
        return None
    # Scrub before shortening: a secret cut in half by the limit would no longer match.
    said = error_text(scrub(answer.body or "", url=url, secrets=secrets))
    detail = f"{service} answered HTTP {status}" + (f": {said}" if said else "")
    if status == 429 or (status == 503 and answer.retry_after is not None):
        wait = answer.retry_after
        if wait is None:
            wait = throttle_default
        return TransientError(f"{detail} (rate limited)", retry_after=wait, pace_key=pace_key)
    if 300 <= status < 400:
        return PermanentError(f"{detail} (a redirect, not followed: correct the URL)")
    if status in RETRYABLE_4XX:
        return TransientError(detail, retry_after=answer.retry_after)
    if 400 <= status < 500:
        return PermanentError(detail)
    if 500 <= status < 600:
        return TransientError(detail)
    return AmbiguousError(f"{detail} (not a status Bulletin understands)")


class HttpTransport(Transport):
    """Base of the transports that POST JSON: client lifecycle and network-failure outcomes."""

    # How error messages name the receiver ("Teams", "the webhook").
    service: ClassVar[str] = "the receiver"

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._timeout = 0.0  # set by open(), which every post() calls first

    def open(self) -> None:
        if self._client is not None:
            return
        seconds = self._timeout = timeout_seconds()
        try:
            self._client = httpx.Client(
                timeout=httpx.Timeout(seconds),
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            )
        except (OSError, ValueError) as exc:  # e.g. unreadable CA bundle or proxy settings
            raise TransientError(f"cannot set up an HTTP client: {exc!r}") from exc

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # the client is being thrown away; nothing to learn from it
                log.debug("closing the HTTP client failed", exc_info=True)

    def post(
        self,
        url: str,
        content: bytes,
        headers: Mapping[str, str],
        *,
        secrets: Iterable[str] = (),
    ) -> Answer:
        """POST once; a failure to get a status line becomes the matching TransportError."""
        checked = check_url(url, self.service)
        self.open()
        assert self._client is not None
        secrets = tuple(secrets)

        def why(exc: Exception) -> str:
            return scrub(f"{type(exc).__name__}: {exc}", url=url, secrets=secrets)

        try:
            with self._client.stream("POST", checked, content=content, headers=headers) as r:
                body: str | None
                try:
                    body = read_limited(r)
                except httpx.HTTPError:
                    body = None
                answer = Answer(r.status_code, r.headers, body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing left this machine: safe to try again later.
            raise TransientError(f"cannot connect to {self.service}: {why(exc)}") from None
        except httpx.ProxyError as exc:
            raise TransientError(f"the proxy refused: {why(exc)}") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
            raise PermanentError(f"cannot send to {self.service}: {why(exc)}") from None
        except httpx.TimeoutException as exc:
            raise AmbiguousError(
                f"{self.service} did not answer within {self._timeout:g}s "
                f"after the request was sent ({why(exc)})"
            ) from None
        except httpx.HTTPError as exc:
            raise AmbiguousError(
                f"connection to {self.service} lost after the request was sent: {why(exc)}"
            ) from None
        log.debug(
            "posted",
            extra={
                "channel": getattr(self, "name", "http"),
                "endpoint": redact(url),
                "status": answer.status,
            },
        )
        return answer


def check_url(url: str, service: str) -> httpx.URL:
    """The target as an httpx URL; a malformed or non-HTTP(S) one is a permanent failure."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError):
        raise PermanentError(f"the URL for {service} is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PermanentError(f"the URL for {service} must be an http(s) URL with a host")
    return parsed


def read_limited(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> str:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    data = b"".join(chunks)[:limit]
    try:
        return data.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")
