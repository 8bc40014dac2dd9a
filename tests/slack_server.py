"""A loopback Slack Web API: a real HTTP server answering the way Slack documents.

It serves ``POST /api/<method>`` (form or JSON bodies, ``Authorization: Bearer <token>`` or a
``token`` parameter) on 127.0.0.1 in a background thread, records every request, and answers
``chat.postMessage``, ``conversations.open``, ``users.lookupByEmail`` and ``auth.test`` with
Slack's documented shapes: ``{"ok": true, ...}`` or ``{"ok": false, "error": "<code>"}``
(``not_authed``, ``invalid_auth`` for a wrong token, ``users_not_found`` for an unknown email,
``user_not_found``, ``channel_not_found``, ``no_text``, ``invalid_blocks`` past Block Kit's
limits, ``invalid_post_type`` for JSON sent to ``users.lookupByEmail``)::

    with SlackServer(users={"ada@example.com": "U0ADA"}) as slack:
        env["SLACK_API_URL"] = slack.url          # http://127.0.0.1:PORT/api/
        env["SLACK_BOT_TOKEN"] = slack.token      # "xoxb-loopback-token" unless given
        ...
        [call] = slack.calls("chat.postMessage")  # Call: method, params, headers, body, blocks
        call.at                                   # its arrival, in time.monotonic() seconds
        slack.users["ada@example.com"] = "U0ADA2" # people change: look-ups answer what is there

Scripting, per method, first in first out: each scripted reply answers one request of that
method, and requests beyond the script get the normal answer::

    slack.fail("chat.postMessage", "channel_not_found")   # HTTP 200 {"ok": false, "error": …}
    slack.rate_limit("chat.postMessage", retry_after=7)   # HTTP 429, Retry-After: 7, ratelimited
    slack.status("users.lookupByEmail", 500)              # any status; the body: an HTML page
    slack.malformed("chat.postMessage")                   # HTTP 200 with truncated JSON
    slack.malformed("chat.postMessage", b"<html>...")     # ... or any body
    slack.delay("chat.postMessage", 2.0)                  # the normal answer, 2 s late
    slack.reset("chat.postMessage")                       # read the request, record it, send RST
    slack.script("chat.postMessage", Reply(...))          # any combination of the above

Holding a request, e.g. to kill the sending process while its post is in flight::

    hold = slack.hold("chat.postMessage")   # the next chat.postMessage waits, unanswered
    ...start the sender...
    call = hold.wait(timeout=10)            # it arrived and was recorded (raises if it did not)
    ...kill the sender...
    hold.release()                          # answer it normally (or hold.release(Reply(...)))

A held request counts as received: like Slack, the server may have acted on a request whose
answer never reached the client. Closing the server releases every hold. The server checks
Block Kit's limits (50 blocks, 3000 characters per section, 150 per header, rich text elements of
known kinds with no empty text) the way Slack rejects them, with ``invalid_blocks``, and refuses
a message whose blocks hold more than ``TOTAL_TEXT_LIMIT`` characters of text with
``msg_blocks_too_long``, as Slack does near 12,000.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_TOKEN = "xoxb-loopback-token"
TEAM_ID = "T0BULLETIN"
BOT_ID = "B0BULLETIN"


@dataclass(frozen=True)
class Call:
    """One request as the server received it."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    content_type: str
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic())

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """``blocks`` decoded, whether it came as JSON or as a form field holding JSON."""
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    @property
    def bearer(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ").strip()


@dataclass
class Hold:
    """A request that is recorded on arrival and answered only when released."""

    method: str
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    call: Call | None = None
    reply: Reply | None = None

    def wait(self, timeout: float = 10.0) -> Call:
        if not self.arrived.wait(timeout) or self.call is None:
            raise TimeoutError(f"no {self.method} request arrived within {timeout} s")
        return self.call

    def release(self, reply: Reply | None = None) -> None:
        """Answer the held request: normally, or with ``reply`` (a status, an error…)."""
        self.reply = reply
        self.released.set()


@dataclass(frozen=True)
class Reply:
    """A scripted answer. ``payload`` (JSON) or ``body`` (raw bytes) replaces the normal
    answer; ``delay`` comes first; ``reset`` drops the connection instead of answering."""

    status: int = 200
    payload: dict[str, Any] | None = None
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    reset: bool = False
    hold: Hold | None = None


ERROR_PAGE = b"<html><body><h1>500 Internal Server Error</h1></body></html>"


class SlackServer:
    """The loopback Slack Web API; a context manager. See the module docstring."""

    def __init__(self, token: str = DEFAULT_TOKEN, users: dict[str, str] | None = None) -> None:
        self.token = token
        self.users = {email.lower(): uid for email, uid in (users or {}).items()}
        self._calls: list[Call] = []
        self._script: dict[str, deque[Reply]] = defaultdict(deque)
        self._holds: list[Hold] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self.closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.slack = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    # -- what it received --------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [call for call in self._calls if method in (None, call.method)]

    @property
    def methods(self) -> list[str]:
        """The methods called, in order."""
        return [call.method for call in self.calls()]

    # -- scripting ---------------------------------------------------------------------------

    def script(self, method: str, *replies: Reply) -> None:
        with self._lock:
            self._script[method].extend(replies)

    def fail(self, method: str, error: str, status: int = 200) -> None:
        self.script(method, Reply(status=status, payload={"ok": False, "error": error}))

    def rate_limit(self, method: str, retry_after: int = 30) -> None:
        payload = {"ok": False, "error": "ratelimited"}
        headers = (("Retry-After", str(retry_after)),)
        self.script(method, Reply(status=429, payload=payload, headers=headers))

    def status(self, method: str, status: int, body: bytes = ERROR_PAGE) -> None:
        self.script(
            method, Reply(status=status, body=body, headers=(("Content-Type", "text/html"),))
        )

    def malformed(self, method: str, body: bytes = b'{"ok": true, "channel": "C0') -> None:
        self.script(method, Reply(body=body))

    def delay(self, method: str, seconds: float) -> None:
        self.script(method, Reply(delay=seconds))

    def reset(self, method: str) -> None:
        self.script(method, Reply(reset=True))

    def hold(self, method: str) -> Hold:
        hold = Hold(method)
        with self._lock:
            self._holds.append(hold)
        self.script(method, Reply(hold=hold))
        return hold

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving and release every hold; closing twice is harmless."""
        if self.closing.is_set():
            return
        self.closing.set()
        with self._lock:
            for hold in self._holds:
                hold.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlackServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the server side ---------------------------------------------------------------------

    def _received(self, call: Call) -> Reply | None:
        with self._lock:
            self._calls.append(call)
            queue = self._script.get(call.method)
            return queue.popleft() if queue else None

    def answer(self, call: Call) -> tuple[int, dict[str, Any]]:
        """The normal answer, as Slack gives it: HTTP 200 and ok true or false."""
        token = call.bearer or str(call.params.get("token", ""))
        if not token:
            return 200, {"ok": False, "error": "not_authed"}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}
        handler = _METHODS.get(call.method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": call.method}
        return 200, handler(self, call)

    def _post(self, call: Call) -> dict[str, Any]:
        channel = str(call.params.get("channel", ""))
        text = str(call.params.get("text", ""))
        if not channel or channel[0] not in "CDGU":
            return {"ok": False, "error": "channel_not_found"}
        try:
            blocks = call.blocks
        except (ValueError, TypeError):
            return {"ok": False, "error": "invalid_blocks_format"}
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if problem := _check_blocks(blocks):
            return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        if blocks_too_long(blocks):
            return {"ok": False, "error": "msg_blocks_too_long"}
        ts = f"1700000000.{next(self._ts):06d}"
        message = {"type": "message", "subtype": "bot_message", "bot_id": BOT_ID, "text": text}
        return {"ok": True, "channel": channel, "ts": ts, "message": {**message, "ts": ts}}

    def _lookup(self, call: Call) -> dict[str, Any]:
        if call.content_type == "application/json":
            # Slack documents form encodings only for this method.
            return {"ok": False, "error": "invalid_post_type"}
        email = str(call.params.get("email", "")).lower()
        if email not in self.users:
            return {"ok": False, "error": "users_not_found"}
        user = {"id": self.users[email], "team_id": TEAM_ID, "profile": {"email": email}}
        return {"ok": True, "user": user}

    def _open(self, call: Call) -> dict[str, Any]:
        users = [u for u in str(call.params.get("users", "")).split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if any(user not in self.users.values() for user in users):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": "D" + users[0][1:]}}

    def _auth_test(self, call: Call) -> dict[str, Any]:
        return {"ok": True, "team_id": TEAM_ID, "user_id": "U0BOT", "bot_id": BOT_ID}


_METHODS = {
    "chat.postMessage": SlackServer._post,
    "users.lookupByEmail": SlackServer._lookup,
    "conversations.open": SlackServer._open,
    "auth.test": SlackServer._auth_test,
}


# Slack refuses a message whose blocks carry too much text with ``msg_blocks_too_long``: not
# documented, observed near 12,000 characters ("12,000 text characters with a buffer for block
# containers"; refusals reported from 11,341). The loopback refuses past 11,000 characters of
# text (link targets not counted), stricter than Slack so a margin is kept.
TOTAL_TEXT_LIMIT = 11_000
_RICH_CONTAINERS = {
    "rich_text_section",
    "rich_text_list",
    "rich_text_quote",
    "rich_text_preformatted",
}
_RICH_LEAVES = {"text", "link", "emoji", "user", "usergroup", "channel", "broadcast", "date"}


def _texts(value: Any) -> list[str]:
    """Every ``text`` string in a block, however deep."""
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    if not isinstance(value, dict):
        return []
    own = [value["text"]] if isinstance(value.get("text"), str) else []
    return own + [text for key, item in value.items() if key != "text" for text in _texts(item)]


def _check_rich_text(elements: list[Any], pointer: str) -> str | None:
    """Slack's rich text shapes: containers of leaves; a text leaf is never empty."""
    for number, element in enumerate(elements):
        where, kind = f"{pointer}/{number}", element.get("type")
        if kind in _RICH_CONTAINERS:
            if problem := _check_rich_text(element.get("elements") or [], f"{where}/elements"):
                return problem
        elif kind not in _RICH_LEAVES:
            return f"[json-pointer:{where}/type] unknown rich text element {kind!r}"
        elif not element.get({"text": "text", "link": "url"}.get(kind, "type")):
            return f"[json-pointer:{where}] must not be empty"
    return None


def _check_blocks(blocks: list[dict[str, Any]]) -> str | None:
    if len(blocks) > 50:
        return "too many blocks"
    for number, block in enumerate(blocks):
        text = str((block.get("text") or {}).get("text", ""))
        limit = {"header": 150, "section": 3000}.get(str(block.get("type")), 0)
        if limit and not 0 < len(text) <= limit:
            return f"[json-pointer:/blocks/{number}/text] must be 1 to {limit} characters"
        if block.get("type") == "rich_text":
            pointer = f"/blocks/{number}/elements"
            if problem := _check_rich_text(block.get("elements") or [], pointer):
                return problem
    return None


def blocks_too_long(blocks: list[dict[str, Any]]) -> bool:
    return sum(len(text) for text in _texts(blocks)) > TOTAL_TEXT_LIMIT


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    slack: SlackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is routine here, not worth a trace."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``calls()``, not a log."""

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        call = self._read()
        if call is None:
            return self._send(404, {"ok": False, "error": "unknown_method"})
        slack = self.server.slack
        reply = slack._received(call) or Reply()
        if reply.hold is not None:
            reply.hold.call = call
            reply.hold.arrived.set()
            reply.hold.released.wait()
            reply = reply.hold.reply or Reply()
        if reply.delay:
            slack.closing.wait(reply.delay)
        if reply.reset:
            return self._reset()
        if reply.body is not None:
            return self._write(reply.status, reply.body, reply.headers)
        status, payload = (reply.status, reply.payload) if reply.payload else slack.answer(call)
        self._send(status, payload, reply.headers)

    def _read(self) -> Call | None:
        url = urlsplit(self.path)
        if not url.path.startswith("/api/"):
            return None
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get_content_type()
        params: dict[str, Any] = dict(parse_qsl(url.query))
        if content_type == "application/json" and body:
            params.update(json.loads(body))
        elif body:
            params.update(parse_qsl(body.decode("utf-8")))
        headers = {key.lower(): value for key, value in self.headers.items()}
        return Call(url.path.removeprefix("/api/"), params, headers, body, content_type)

    def _send(
        self, status: int, payload: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        body = json.dumps(payload).encode()
        headers = (("Content-Type", "application/json; charset=utf-8"), *headers)
        self._write(status, body, headers)

    def _write(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...]) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (a timeout) or was killed: nobody to answer

    def _reset(self) -> None:
        """Close with RST: the client sees 'connection reset by peer' after sending."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
