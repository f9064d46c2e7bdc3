"""A real HTTP server on 127.0.0.1 that answers like the Poelis API (DESIGN §7), for tests.

Each key's behaviour is planned by the test; every request is recorded; an optional window
(N requests per W seconds) answers 429 with ``Retry-After`` and ``X-RateLimit-*`` like the real
API, counts the requests of each window, and records any request that arrives while the client
was told to wait.

A live key's workspaces and products are served with pagination (``limit``/``offset``,
``{"items": [...], "count": N}``) from ``workspaces`` (key -> list of ``Workspace``).

Hostile plans (issue 11) play a broken or malicious server: ``drip_headers`` / ``drip_body``
send one byte every ``drip_seconds``; ``deep_body`` sends ``deep_bytes`` of ``[``; ``huge_body``
streams ``huge_bytes``; ``custom`` answers ``custom[key]`` = (status, body, headers) verbatim;
``echo`` puts the ``Authorization`` header into ``X-Request-ID``, the error ``detail`` and the
workspace names; ``hang`` answers nothing for a long time. Every slow plan ends when the
emulator stops, so a test never leaves a thread sending.

``RawServer`` is a plain TCP server that sends fixed bytes, for answers no HTTP library would
produce.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(repr=False)
class Recorded:
    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    key: str | None

    def __repr__(self) -> str:  # a failing test must not print a key, even a generated one
        return f"Recorded(at={self.at:.3f}, {self.method} {self.path}, key=<redacted>)"


@dataclass
class Workspace:
    id: str
    name: str
    products: int


def workspaces(count: int, products: int = 2, name: str = "Workspace {n}") -> list[Workspace]:
    """``count`` workspaces of ``products`` products each, named from ``name``."""
    return [Workspace(f"ws_{n}", name.format(n=n), products) for n in range(1, count + 1)]


@dataclass(repr=False)
class Emulator:
    """Plans: key -> behaviour name (see ``_answer``); unknown keys get 401."""

    plans: dict[str, str] = field(default_factory=dict)
    window: tuple[int, float] | None = None  # (requests, seconds)
    slow_seconds: float = 2.0
    redirect_to: str = ""
    drip_seconds: float = 0.8
    drip_bytes: int = 400  # a dripping answer ends after this many bytes (~5 min at 0.8 s)
    deep_bytes: int = 1 << 20
    huge_bytes: int = 16 << 20
    send_limit: bool = True  # False: the window's answers omit X-RateLimit-Limit
    page_max: int = 50  # the largest page the server hands out, whatever ``limit`` asks
    custom: dict[str, tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    workspaces: dict[str, list[Workspace]] = field(default_factory=dict)
    base_url: str = ""  # set by start()
    requests: list[Recorded] = field(default_factory=list)
    violations: list[Recorded] = field(default_factory=list)
    window_counts: list[int] = field(default_factory=list)  # requests that reached each window
    limited: int = 0  # requests the window answered with 429
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _count: dict[str, int] = field(default_factory=dict)
    _window_start: float = -math.inf
    _window_used: int = 0
    _wait_until: float = 0.0

    def __repr__(self) -> str:  # the plans hold keys: a failing test must not print them
        return (f"Emulator({len(self.plans)} plans, {len(self.requests)} requests, "
                f"limited={self.limited}, windows={self.window_counts})")

    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                emulator._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                emulator._handle(self)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        self._closing.set()  # ends every drip, hang and stream still going
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_for(self, key: str) -> list[Recorded]:
        return [r for r in self.requests if r.key == key]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        now = time.monotonic()
        auth = handler.headers.get("Authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        parts = urlsplit(handler.path)
        record = Recorded(now, handler.command, parts.path, parse_qs(parts.query),
                          {k: v for k, v in handler.headers.items()}, key)
        with self._lock:
            self.requests.append(record)
            if now < self._wait_until:
                self.violations.append(record)
            n = self._count[key or ""] = self._count.get(key or "", 0) + 1
            limited, rate_headers = self._window_answer(now)
        if limited is not None:
            self._send(handler, *limited)
            return
        plan = self.plans.get(key or "", "revoked")
        if plan.startswith("drip_") or plan in ("deep_body", "huge_body", "hang"):
            self._hostile(handler, plan)
            return
        status, body, headers = self._answer(plan, n, record, auth)
        self._send(handler, status, body, {**rate_headers, **headers})

    def _window_answer(self, now: float) -> tuple[tuple[int, Any, dict[str, str]] | None,
                                                   dict[str, str]]:
        """(a 429 answer, or None) and the X-RateLimit headers for a normal answer."""
        if self.window is None:
            return None, {}
        limit, seconds = self.window
        if now - self._window_start >= seconds:
            self._window_start, self._window_used = now, 0
            self.window_counts.append(0)
        self.window_counts[-1] += 1
        # Rounded up, as a real server does with whole seconds: the client is never told the
        # window ends earlier than it does.
        reset = math.ceil((self._window_start + seconds - now) * 1000) / 1000
        headers = {"X-RateLimit-Reset": f"{reset:.3f}"}
        if self.send_limit:
            headers["X-RateLimit-Limit"] = str(limit)
        end = self._window_start + seconds  # the header rounds up; the check does not
        if self._window_used >= limit:
            self.limited += 1
            self._wait_until = max(self._wait_until, end)
            return (429, {"error": "rate_limit_exceeded"},
                    {**headers, "Retry-After": f"{reset:.3f}", "X-RateLimit-Remaining": "0"}), {}
        self._window_used += 1
        remaining = limit - self._window_used
        if remaining == 0:  # the client is told to wait for the reset before its next request
            self._wait_until = max(self._wait_until, end)
        return None, {**headers, "X-RateLimit-Remaining": str(remaining)}

    def _listing(self, record: Recorded, key: str | None, echo: str) -> tuple[int, Any]:
        """A live key's answer for the path asked: workspaces (paginated) or products."""
        spaces = self.workspaces.get(key or "", [Workspace("ws_1", "Workspace", 0)])
        if echo:
            spaces = [Workspace(w.id, f"{w.name} {echo}", w.products) for w in spaces]

        def number(name: str, default: int) -> int:
            try:
                return int(record.query.get(name, [str(default)])[0])
            except ValueError:
                return default

        if record.path == "/v1/public/workspaces":
            limit = max(0, min(number("limit", self.page_max), self.page_max))
            offset = max(0, number("offset", 0))
            page = spaces[offset:offset + limit]
            return 200, {"items": [{"id": w.id, "name": w.name} for w in page],
                         "count": len(spaces)}
        if record.path == "/v1/public/products":
            wanted = record.query.get("workspace_id", [""])[0]
            for w in spaces:
                if w.id == wanted:
                    shown = min(w.products, self.page_max)
                    return 200, {"items": [{"id": f"{w.id}_p{i}"} for i in range(shown)],
                                 "count": w.products}
            return 404, {"error": "not_found"}
        return 404, {"error": "not_found"}

    def _answer(self, plan: str, n: int, record: Recorded,
                auth: str) -> tuple[int, Any, dict[str, str]]:
        if record.method != "GET":
            return 405, {"error": "method_not_allowed"}, {}
        key = record.key
        if plan in ("live", "echo"):
            echo = auth if plan == "echo" else ""
            status, body = self._listing(record, key, echo)
            return status, body, ({"X-Request-ID": echo} if echo else {})
        if plan == "echo401":
            return 401, {"error": "invalid_token", "detail": f"bad credentials: {auth}"}, {
                "X-Request-ID": f"req_{auth}"}
        if plan == "custom":
            return self.custom[key or ""]
        ok: tuple[int, Any, dict[str, str]] = (
            200, {"items": [{"id": "ws_1", "name": "Workspace"}], "count": 1}, {})
        if plan == "revoked":
            return 401, {"error": "unauthorized"}, {}
        if plan == "forbidden":
            return 403, {"error": "forbidden"}, {}
        if plan == "proxy403":
            return 403, "<html><body>Access denied by proxy</body></html>", {}
        if plan == "flaky500":
            return (500, {"error": "internal"}, {}) if n == 1 else ok
        if plan == "always503":
            return 503, {"error": "unavailable"}, {}
        if plan == "throttled":
            if n <= 2:
                return 429, {"error": "rate_limit_exceeded"}, {"Retry-After": "1"}
            return ok
        if plan == "slow":
            self._closing.wait(self.slow_seconds)
            return ok
        if plan == "redirect":
            return 302, "", {"Location": self.redirect_to + "/v1/public/workspaces?limit=1"}
        if plan == "nonjson200":
            return 200, "<html>Welcome to the hotel Wi-Fi</html>", {}
        raise AssertionError(f"unknown plan {plan}")

    def _hostile(self, handler: BaseHTTPRequestHandler, plan: str) -> None:
        """Answers no well-behaved server gives; each ends when the client or the test quits."""
        out = handler.wfile
        try:
            if plan == "hang":
                self._closing.wait(120)
                return
            if plan == "drip_headers":
                head = b"HTTP/1.1 200 OK\r\n" + b"X-Padding: " + b"a" * self.drip_bytes
                self._drip(out, head)
                return
            if plan == "drip_body":
                out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % (self.drip_bytes + 2))
                self._drip(out, b"[" + b" " * self.drip_bytes + b"]")
                return
            if plan == "deep_body":
                out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % self.deep_bytes)
                self._stream(out, b"[", self.deep_bytes)
                return
            if plan == "huge_body":  # no Content-Length: the body ends when the server closes
                out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
                out.write(b'{"items": [], "count": 0, "pad": "')
                self._stream(out, b"x", self.huge_bytes)
                return
        except (BrokenPipeError, ConnectionResetError, OSError):
            return  # the client gave up: that is what the test wants

    def _drip(self, out: Any, data: bytes) -> None:
        for i in range(len(data)):
            if self._closing.wait(self.drip_seconds if i else 0):
                return
            out.write(data[i:i + 1])
            out.flush()

    def _stream(self, out: Any, unit: bytes, total: int) -> None:
        block = unit * 65536
        sent = 0
        while sent < total and not self._closing.is_set():
            piece = block[: min(len(block), total - sent)]
            out.write(piece)
            sent += len(piece)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str]) -> None:
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json"
                                if not isinstance(body, str) else "text/html")
            handler.send_header("Content-Length", str(len(data)))
            if "X-Request-ID" not in headers:
                handler.send_header("X-Request-ID", f"req_{uuid.uuid4().hex[:12]}")
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer


class RawServer:
    """A TCP server on 127.0.0.1 that answers every connection with ``script``'s bytes.

    ``script`` is a list of (bytes, seconds to wait before sending them); the connection is
    closed at the end. It records how many connections it accepted.
    """

    def __init__(self, script: list[tuple[bytes, float]]) -> None:
        self.script = script
        self.connections = 0
        self._closing = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)  # the request; its content does not matter here
                for data, delay in self.script:
                    if self._closing.wait(delay):
                        return
                    conn.sendall(data)
            except OSError:
                return

    def stop(self) -> None:
        self._closing.set()
        self._sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
