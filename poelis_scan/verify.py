"""Is a found key live? One harmless authenticated GET per distinct key (DESIGN §7).

The key is secret material, so this module is strict about where it goes: only to the
configured base URL, only over HTTPS (plain HTTP only to a loopback address, for tests), only
in the ``Authorization`` header of a GET, never through a redirect, never into a log line or an
exception. It is also polite: bounded concurrency, timeouts, retries with backoff and jitter,
``Retry-After`` and ``X-RateLimit-*`` honoured across all workers.

The standard library's ``http.client`` does all of it without a dependency: it never follows
redirects, takes an explicit timeout, and keeps headers out of its exception messages.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ScanError
from .findings import VERIFICATION_STATUSES, Finding, Verdict
from .version import __version__

DEFAULT_BASE_URL = "https://api.poelis.com"
PROBE_PATH = "/v1/public/workspaces?limit=1"
STATUSES = VERIFICATION_STATUSES
_MAX_THROTTLED = 20  # 429 answers one key may receive before it is given up as unknown
_SAME_WINDOW = 0.5  # seconds: two reset times closer than this name the same window


class VerifyConfigError(ScanError, ValueError):
    """A base URL or setting that would send keys somewhere unsafe; one line of text."""


@dataclass(frozen=True, slots=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 10.0
    concurrency: int = 4
    retries: int = 3  # extra attempts after the first, for 5xx and connection failures
    backoff: float = 0.5  # first retry delay in seconds, doubled each time, with jitter
    retry_after_cap: float = 60.0  # longest wait a 429 or a rate-limit reset may impose
    rate_limit_budget: float = 120.0  # total time one key may spend waiting on rate limits


def resolve_base_url(option: str | None, config: str | None = None) -> str:
    """``--base-url``, then ``POELIS_BASE_URL``, then configuration, then the default."""
    return option or os.environ.get("POELIS_BASE_URL") or config or DEFAULT_BASE_URL


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of a base URL that is safe to send keys to."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise VerifyConfigError(f"base URL must be https://HOST[:PORT][/PATH], not {url!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise VerifyConfigError(
            f"refusing to send keys over plain HTTP to {host}: use https (plain HTTP is only "
            "allowed to a loopback address, for tests)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise VerifyConfigError("base URL must not hold credentials, a query or a fragment")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, host, port, parts.path.rstrip("/")


class _RateGate:
    """Shared by all workers, so that the API's pacing holds for the whole run.

    - Nobody sends before ``not_before`` (a 429's ``Retry-After``).
    - ``X-RateLimit-Remaining`` is a budget: requests already in flight spend it too, and at
      zero everyone waits for ``X-RateLimit-Reset``.
    - Slow start: until the first answer arrives, one request at a time, so even the first
      burst never exceeds a budget we have not been told yet.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._not_before = 0.0
        self._budget: int | None = None
        self._reset_at: float | None = None
        self._inflight = 0
        self._answered = False

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds spent waiting."""
        started = time.monotonic()
        with self._cond:
            while True:
                now = time.monotonic()
                if now < self._not_before:
                    self._cond.wait(self._not_before - now)
                    continue
                if self._reset_at is not None and now >= self._reset_at:
                    self._budget, self._reset_at = None, None
                if not self._answered and self._inflight:
                    self._cond.wait(0.05)
                    continue
                if self._budget is not None and self._budget <= 0:
                    if self._reset_at is None:
                        self._budget = None  # exhausted, but no reset time given: go on
                    else:
                        self._cond.wait(self._reset_at - now)
                        continue
                self._inflight += 1
                if self._budget is not None:
                    self._budget -= 1
                return time.monotonic() - started

    def release(self, headers: dict[str, str] | None, retry_after: float | None = None) -> None:
        """Record an answer (``headers``) or a failure (``None``) of a sent request."""
        with self._cond:
            self._inflight -= 1
            now = time.monotonic()
            if headers is not None:
                self._answered = True
                remaining = _int(headers.get("x-ratelimit-remaining"))
                reset = _reset_delay(headers.get("x-ratelimit-reset"), time.time())
                if remaining is not None:
                    budget = remaining - self._inflight  # those in flight will spend it too
                    reset_at = now + reset if reset is not None else None
                    same_window = (self._budget is not None and self._reset_at is not None
                                   and reset_at is not None
                                   and reset_at <= self._reset_at + _SAME_WINDOW)
                    if same_window:
                        # Answers overtake each other: within one window a budget only shrinks.
                        self._budget = min(self._budget, budget)  # type: ignore[type-var]
                    else:
                        self._budget, self._reset_at = budget, reset_at
            if retry_after is not None:
                self._not_before = max(self._not_before, now + retry_after)
            self._cond.notify_all()


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _reset_delay(value: str | None, now_epoch: float) -> float | None:
    """``X-RateLimit-Reset`` as seconds to wait: a delta, or an epoch time if it is one."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(number - now_epoch, 0.0) if number > 1e9 else max(number, 0.0)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _error_is(payload: Any, code: str) -> bool:
    return isinstance(payload, dict) and payload.get("error") == code


def _looks_like_list(payload: Any) -> bool:
    """The documented list answer: a JSON array, or an object that holds one."""
    if isinstance(payload, list):
        return True
    return isinstance(payload, dict) and any(isinstance(v, list) for v in payload.values())


# The answers the public docs describe: (body test, verdict, meaning, meaning if the body
# does not match). A 403 or 200 whose body is not the documented one is a proxy's, not the API's.
_DOCUMENTED: dict[int, tuple[Callable[[Any], bool], str, str, str]] = {
    200: (_looks_like_list, "live", "the key lists workspaces",
          "HTTP 200 without the documented JSON list (a proxy or captive portal?)"),
    403: (lambda payload: _error_is(payload, "forbidden"), "live",
          "the key works but may not list workspaces",
          "HTTP 403 without the documented body (a proxy or firewall?)"),
    401: (lambda payload: _error_is(payload, "unauthorized"), "revoked",
          "the API rejects the key (invalid or revoked)",
          "HTTP 401 without the documented body"),
}


class Verifier:
    """Checks keys against the Poelis API; ``verify_many`` asks once per distinct key."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.scheme, self.host, self.port, self.prefix = check_base_url(self.settings.base_url)
        self._gate = _RateGate()
        self._ssl = ssl.create_default_context() if self.scheme == "https" else None

    def _connection(self) -> http.client.HTTPConnection:
        timeout = self.settings.timeout
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self._ssl)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _request(self, key: str) -> tuple[int, dict[str, str], bytes]:
        connection = self._connection()
        try:
            connection.request("GET", self.prefix + PROBE_PATH, headers={
                "Authorization": f"Bearer {key}",
                "Accept": "application/json",
                "User-Agent": f"poelis-scan/{__version__}",
            })
            response = connection.getresponse()
            body = response.read(1 << 20)
            headers = {k.lower(): v for k, v in response.getheaders()}
            return response.status, headers, body
        finally:
            connection.close()

    def verify(self, key: str) -> Verdict:
        """One key's verdict. Every failure ends as ``unknown`` with a reason, never raises."""
        s = self.settings
        attempt = 0
        throttled = 0
        rate_waited = 0.0
        while True:
            rate_waited += self._gate.acquire()
            headers: dict[str, str] | None = None
            retry_after: float | None = None
            try:
                status, headers, body = self._request(key)
            except TimeoutError:  # socket.timeout is an alias
                last = Verdict("unknown", detail=f"timed out after {s.timeout:g} s")
            except ssl.SSLError as error:
                self._gate.release(None)
                return Verdict("unknown", detail=f"TLS failure: {error.reason or 'handshake'}")
            except (OSError, http.client.HTTPException) as error:
                last = Verdict("unknown", detail=f"connection failed: {type(error).__name__}")
            else:
                request_id = headers.get("x-request-id")
                verdict = self._judge(status, body, request_id)
                if status == 429:
                    retry_after = _retry_after(headers.get("retry-after"))
                    retry_after = s.backoff if retry_after is None else retry_after
                self._gate.release(headers, retry_after)
                if verdict is not None:
                    return verdict
                if retry_after is not None:
                    throttled += 1
                    if (retry_after > s.retry_after_cap or throttled > _MAX_THROTTLED
                            or rate_waited + retry_after > s.rate_limit_budget):
                        return Verdict("unknown", 429, "rate limited longer than the retry "
                                       "budget allows", request_id)
                    continue  # a 429 is the server's pacing, not a failed attempt
                last = Verdict("unknown", status, f"server error HTTP {status} after "
                               f"{attempt + 1} attempts", request_id)
            if headers is None:
                self._gate.release(None)
            if attempt >= s.retries:
                return last
            time.sleep(s.backoff * (2 ** attempt) * (0.5 + random.random()))
            attempt += 1

    @staticmethod
    def _judge(status: int, body: bytes, request_id: str | None) -> Verdict | None:
        """A final verdict, or ``None`` when the answer calls for a retry (429, 5xx)."""
        if status in _DOCUMENTED:
            proves, verdict, meaning, otherwise = _DOCUMENTED[status]
            if proves(_json(body)):
                return Verdict(verdict, status, meaning, request_id)
            return Verdict("unknown", status, otherwise, request_id)
        if 300 <= status < 400:
            return Verdict("unknown", status, f"redirect (HTTP {status}) not followed: the "
                           "key was not sent on", request_id)
        if status == 429 or 500 <= status < 600:
            return None
        return Verdict("unknown", status, f"unexpected answer HTTP {status}", request_id)

    def verify_many(self, keys: Iterable[str]) -> dict[str, Verdict]:
        """Verdicts by key; each distinct key is asked about once, ``concurrency`` at a time."""
        distinct = list(dict.fromkeys(keys))
        if not distinct:
            return {}
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            return dict(zip(distinct, pool.map(self.verify, distinct), strict=True))


def apply_verdicts(findings: Iterable[Finding], verifier: Verifier) -> None:
    """Verify the distinct keys of ``findings`` and record each verdict on them."""
    findings = list(findings)
    verdicts = verifier.verify_many(f.secret for f in findings)
    for finding in findings:
        finding.verification = verdicts[finding.secret]
