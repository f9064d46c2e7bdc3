"""A real HTTP server on 127.0.0.1 that answers like the Poelis API (DESIGN §7), for tests.

Each key's behaviour is planned by the test; every request is recorded; an optional window
(N requests per W seconds) answers 429 with ``Retry-After`` and ``X-RateLimit-*`` like the real
API, and records any request that arrives while the client was told to wait.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
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
class Emulator:
    """Plans: key -> behaviour name (see ``_answer``); unknown keys get 401."""

    plans: dict[str, str] = field(default_factory=dict)
    window: tuple[int, float] | None = None  # (requests, seconds)
    slow_seconds: float = 2.0
    redirect_to: str = ""
    requests: list[Recorded] = field(default_factory=list)
    violations: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: dict[str, int] = field(default_factory=dict)
    _window_start: float = 0.0
    _window_used: int = 0
    _wait_until: float = 0.0

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
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
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
        status, body, headers = self._answer(self.plans.get(key or "", "revoked"), n)
        self._send(handler, status, body, {**rate_headers, **headers})

    def _window_answer(self, now: float) -> tuple[tuple[int, Any, dict[str, str]] | None,
                                                   dict[str, str]]:
        """(a 429 answer, or None) and the X-RateLimit headers for a normal answer."""
        if self.window is None:
            return None, {}
        limit, seconds = self.window
        if now - self._window_start >= seconds:
            self._window_start, self._window_used = now, 0
        reset = self._window_start + seconds - now
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Reset": f"{reset:.3f}"}
        if self._window_used >= limit:
            self._wait_until = max(self._wait_until, now + reset)
            return (429, {"error": "rate_limit_exceeded"},
                    {**headers, "Retry-After": f"{reset:.3f}", "X-RateLimit-Remaining": "0"}), {}
        self._window_used += 1
        remaining = limit - self._window_used
        if remaining == 0:  # the client is told to wait for the reset before its next request
            self._wait_until = max(self._wait_until, now + reset)
        return None, {**headers, "X-RateLimit-Remaining": str(remaining)}

    def _answer(self, plan: str, n: int) -> tuple[int, Any, dict[str, str]]:
        ok = (200, {"data": [{"id": "ws_1", "name": "Workspace"}], "has_more": False}, {})
        if plan == "live":
            return ok
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
            time.sleep(self.slow_seconds)
            return ok
        if plan == "redirect":
            return 302, "", {"Location": self.redirect_to + "/v1/public/workspaces?limit=1"}
        if plan == "nonjson200":
            return 200, "<html>Welcome to the hotel Wi-Fi</html>", {}
        raise AssertionError(f"unknown plan {plan}")

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str]) -> None:
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json"
                                if not isinstance(body, str) else "text/html")
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("X-Request-ID", f"req_{uuid.uuid4().hex[:12]}")
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer
