"""Loopback HTTP receivers: a real threaded HTTP/1.1 server that records every request and
answers as a test scripts it — politely, slowly, rudely, or not until it is told to.

Used by the transport tests (Teams workflows, signed webhooks) and reusable end to end: a
Bulletin subprocess can post to it like to any endpoint. Importable without pytest.

    from tests.http_receiver import HttpReceiver, Reply

    with HttpReceiver(default=Reply.teams_accepted()) as receiver:
        url = receiver.url("/workflows/abc/triggers/manual/paths/invoke?sig=SECRET")
        receiver.script(Reply.teams_error(429), Reply(202))     # the next two requests
        ...                                                      # send something to `url`
        [first, second, *_] = receiver.wait_for(2)
        first.json()["attachments"], first.headers["content-type"], first.body  # bytes

Replies (``Reply`` is a frozen value; build once, use many times)
    ``Reply(status=200, body=b"", headers={}, delay=0.0)``
        answer with this status, body (bytes or str) and headers after ``delay`` seconds;
        Content-Length is always set, Content-Type defaults to text/plain for a non-empty body.
    ``Reply.json(status, obj, headers=None)``       a JSON body, e.g. ``400 {"error": …}``.
    ``Reply.teams_accepted()``                       202 with an empty body (a Workflows webhook).
    ``Reply.teams_error(code=429)``                  200 whose body is the old connectors' error
        text: "Webhook message delivery failed with error: Microsoft Teams endpoint returned
        HTTP error 429 with ContextId tcid=0,…".
    ``Reply.rate_limited(retry_after="2")``          429 with a Retry-After (seconds or a date).
    ``Reply.slam(reset=False)``                      read the request, then close the connection
        without a word (``reset=True``: an RST instead of a FIN).
    ``Reply.garbage(data=b"…")``                     write bytes that are not HTTP, then close.
    ``Reply.hold(then=Reply(202))``                  record the request, then do not answer until
        ``release()``; ``then`` is the answer given on release.

Which reply a request gets: the next one scripted for its path (``script(*replies, path=…)``,
the path without its query), else the next one scripted for any path (``script(*replies)``),
else the route for its path (``route(path, reply)``), else ``default`` — a ``Reply`` or a
callable ``(Request) -> Reply`` (a receiver that verifies signatures or de-duplicates).

Hold and release — a sender killed mid-request
    ``receiver.script(Reply.hold())``; start the sender; ``receiver.wait_held(1, timeout=10)``
    returns once the request is fully received and being held (the sender is now blocked
    waiting for an answer); kill the sender; then ``receiver.release()`` answers (writing to a
    dead peer is ignored) or ``stop()`` closes held connections unanswered.
    ``held`` is how many are held now; ``release(count=None, reply=None)`` answers the oldest
    ``count`` (all by default) with ``reply`` or their own ``then`` and returns how many.

Records
    ``requests`` (a snapshot list of ``Request``: method, target, path, query, headers with
    lower-case names, body bytes, ``.json()``, ``.text``), ``wait_for(count, timeout)``,
    ``clear()``. Every request is recorded once its body is read, before any delay, hold or
    slam, so a test can always see what reached the receiver.

``closed_url(path)`` is a URL on a loopback port nobody listens on (connection refused).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

TEAMS_ERROR_TEXT = (
    "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error "
    "{code} with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,"
    "cv=Xb9eP0G0d0yB2Q7c1YjH2g.0.."
)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: str = "answer"  # answer | slam | garbage | hold
    then: Reply | None = None
    data: bytes = b""
    reset: bool = False

    @property
    def content(self) -> bytes:
        return self.body.encode() if isinstance(self.body, str) else self.body

    @classmethod
    def json(
        cls, status: int, obj: Any, headers: Mapping[str, str] | None = None, delay: float = 0.0
    ) -> Reply:
        merged = {"Content-Type": "application/json", **(headers or {})}
        return cls(status, json.dumps(obj), merged, delay)

    @classmethod
    def teams_accepted(cls) -> Reply:
        return cls(202)

    @classmethod
    def teams_error(cls, code: int = 429) -> Reply:
        return cls(200, TEAMS_ERROR_TEXT.format(code=code), {"Content-Type": "text/plain"})

    @classmethod
    def rate_limited(cls, retry_after: str = "2", body: bytes | str = b"") -> Reply:
        return cls(429, body, {"Retry-After": retry_after})

    @classmethod
    def slam(cls, reset: bool = False) -> Reply:
        return cls(action="slam", reset=reset)

    @classmethod
    def garbage(cls, data: bytes = b"this is not HTTP\r\n\r\n") -> Reply:
        return cls(action="garbage", data=data)

    @classmethod
    def hold(cls, then: Reply | None = None) -> Reply:
        return cls(action="hold", then=then or cls(202))


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # as sent: path and query
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Reply | Callable[[Request], Reply]


class _Held:
    def __init__(self, request: Request, then: Reply) -> None:
        self.request = request
        self.answer = then
        self.released = threading.Event()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: HttpReceiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.receiver._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.receiver._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, self.path, headers, body)
        receiver = self.server.receiver
        reply = receiver._record(request)
        if reply.action == "hold":
            held = _Held(request, reply.then or Reply(202))
            receiver._hold(held)
            while not held.released.wait(0.05):
                if receiver._stopping.is_set():
                    self._slam(reset=False)
                    return
            reply = held.answer
        self._perform(reply)

    def _perform(self, reply: Reply) -> None:
        receiver = self.server.receiver
        if reply.delay and receiver._stopping.wait(reply.delay):
            self._slam(reset=False)
            return
        if reply.action == "slam":
            self._slam(reply.reset)
            return
        if reply.action == "garbage":
            self.close_connection = True
            try:
                self.wfile.write(reply.data)
                self.wfile.flush()
            except OSError:
                pass
            return
        if reply.action == "hold":  # a hold released into another hold: answer its `then`
            self._perform(reply.then or Reply(202))
            return
        content = reply.content
        names = {name.lower() for name in reply.headers}
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(content)))
            if content and "content-type" not in names:
                self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)
            self.wfile.flush()
        except OSError:  # the sender is gone (killed while held): nothing to answer
            self.close_connection = True

    def _slam(self, reset: bool) -> None:
        self.close_connection = True
        try:
            if reset:
                # SO_LINGER 0 and no shutdown(): the descriptor's close (once the handler's
                # files let go of it) sends an RST instead of a FIN.
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class HttpReceiver:
    """A threaded HTTP server on 127.0.0.1 (a free port) that records and answers requests."""

    def __init__(self, default: Responder | None = None, host: str = "127.0.0.1") -> None:
        self.default: Responder = default if default is not None else Reply(200)
        self._host = host
        self._lock = threading.Condition()
        self._requests: list[Request] = []
        self._scripts: dict[str | None, deque[Reply]] = {}
        self._routes: dict[str, Responder] = {}
        self._held: list[_Held] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> HttpReceiver:
        server = _Server((self._host, 0), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; held requests and open keep-alive connections are closed unanswered."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the receiver first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- scripting --------------------------------------------------------------------------

    def script(self, *replies: Reply, path: str | None = None) -> None:
        """Answer the next requests (to ``path`` only, if given) with these, in order."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(replies)

    def route(self, path: str, reply: Responder) -> None:
        """The standing answer for ``path`` once its scripts are used up."""
        with self._lock:
            self._routes[path] = reply

    # -- records ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Request]:
        """Block until at least ``count`` requests arrived; all of them (AssertionError if not)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(
                    f"expected {count} request(s) within {timeout}s, got {len(self._requests)}"
                )
            return list(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and unused scripts (held requests stay held)."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()

    # -- hold and release -------------------------------------------------------------------

    @property
    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def wait_held(self, count: int = 1, timeout: float = 5.0) -> list[Request]:
        """Block until ``count`` requests are being held; those requests, oldest first."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._held) >= count, timeout):
                raise AssertionError(
                    f"expected {count} held request(s) within {timeout}s, got {len(self._held)}"
                )
            return [h.request for h in self._held]

    def release(self, count: int | None = None, reply: Reply | None = None) -> int:
        """Answer held requests (the oldest ``count``, default all); returns how many."""
        with self._lock:
            chosen = self._held if count is None else self._held[:count]
            self._held = [] if count is None else self._held[count:]
        for held in chosen:
            if reply is not None:
                held.answer = reply
            held.released.set()
        return len(chosen)

    # -- called from handler threads --------------------------------------------------------

    def _record(self, request: Request) -> Reply:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            for key in (request.path, None):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
            responder = self._routes.get(request.path, self.default)
        return responder(request) if callable(responder) else responder

    def _hold(self, held: _Held) -> None:
        with self._lock:
            self._held.append(held)
            self._lock.notify_all()

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


def closed_url(path: str = "/") -> str:
    """A loopback URL whose port nobody listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path if path.startswith('/') else '/' + path}"
