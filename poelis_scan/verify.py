"""Is a found key live, and what does it open? Harmless authenticated GETs (DESIGN §7, §13).

The key is secret material, so this module is strict about where it goes: only to the
configured base URL, only over HTTPS (plain HTTP only to a loopback address, for tests), only
in the ``Authorization`` header of a GET, never through a redirect, never into a log line or an
exception. A legacy ``poelis_live_…`` credential is never sent at all: it was exchanged for
tokens elsewhere, and the REST API cannot prove it live.

It is polite: bounded concurrency, one rate gate shared by all workers that honours
``Retry-After`` and ``X-RateLimit-*`` across reset windows, backoff that is never zero, at most
``max_attempts`` requests per key for the liveness question and ``access_requests`` more for
the access count.

And it assumes the server may be hostile or broken (issue 11): every wait is capped (a server
asking for more than ``retry_after_cap`` seconds gets the key marked ``unknown``, not a long
sleep), numbers in headers are parsed defensively (``nan``, ``inf``, ``1e300``, garbage),
``timeout`` is a deadline for the whole exchange rather than for each read (``httpget``),
bodies are read up to 64 KiB and JSON nesting is bounded before parsing, and every string that
came from the server is stripped of control characters and redacted before it reaches a
verdict.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import queue
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from .detect.redaction import clean_external
from .errors import ScanError
from .findings import VERIFICATION_STATUSES, Finding, Verdict
from .httpget import Answer, DeadlineExceeded, HttpError, get
from .version import __version__

DEFAULT_BASE_URL = "https://api.poelis.com"
API_PREFIX = "poelis_api_"
LEGACY_PREFIX = "poelis_live_"
PROBE_PATH = "/v1/public/workspaces?limit=1"
WORKSPACES_PATH = "/v1/public/workspaces"
PRODUCTS_PATH = "/v1/public/products"
STATUSES = VERIFICATION_STATUSES
BODY_LIMIT = 64 * 1024  # a documented answer is a few hundred bytes; the rest is never read
MAX_JSON_DEPTH = 32  # the documented answers nest 3 deep; json.loads recurses per level
ACCESS_PAGE = 100  # workspaces asked for per page of the access count
ACCESS_NAMES = 5  # workspace names kept in ``verification.access``
_SAME_WINDOW = 0.5  # seconds: two reset times closer than this name the same window
_NO_RESET_WINDOW = 1.0  # a budget spent with no (usable) reset time: wait this, then probe
_STORM = 20  # 429s in a row, run-wide, after which no key is sent any more
_FAR = 1e7  # seconds (~4 months): any longer wait is "absurd", and time arithmetic stays finite
_MAX_COUNT = 10**9  # a count beyond this from the server is reported as this
_EPOCH = 1e9  # an X-RateLimit-Reset above this is a Unix time, not a number of seconds
LEGACY_REASON = ("legacy poelis_live_ credential: it was exchanged for tokens elsewhere and "
                 "the REST API cannot prove it live; it was not sent")


class VerifyConfigError(ScanError, ValueError):
    """A base URL or setting that would send keys somewhere unsafe; one line of text."""


@dataclass(frozen=True, slots=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 10.0  # deadline in seconds for one whole request: connect to last byte
    concurrency: int = 4
    retries: int = 3  # extra attempts after the first, for 5xx and connection failures
    backoff: float = 0.5  # first retry delay in seconds, doubled each time, with jitter
    retry_after_cap: float = 60.0  # longest wait a 429 or a rate-limit reset may impose
    rate_limit_budget: float = 120.0  # total time one key may spend waiting on rate limits
    max_attempts: int = 5  # requests per key for the liveness question, 429s and 5xx included
    min_wait: float = 1.0  # floor of a 429's wait (before jitter): Retry-After 0, -1, nan
    access_check: bool = True  # after a live verdict, count what the key opens
    access_requests: int = 10  # requests per live key for that count, retries included

    def check(self) -> None:
        """Refuse settings that would hang, spin or overflow (nan, inf, zero, negative)."""
        def finite(name: str, value: float, low: float, high: float) -> None:
            if not (isinstance(value, int | float) and math.isfinite(value)
                    and low <= value <= high):
                raise VerifyConfigError(f"verify {name} must be a number from {low:g} to "
                                        f"{high:g}, not {value!r}")

        finite("timeout", self.timeout, 0.1, 3600)
        finite("backoff", self.backoff, 0.01, 60)
        finite("retry-after cap", self.retry_after_cap, 0, 3600)
        finite("rate-limit budget", self.rate_limit_budget, 0, 86400)
        finite("minimum wait", self.min_wait, 0.01, 60)
        for name, count, low, high in (("concurrency", self.concurrency, 1, 64),
                                       ("retries", self.retries, 0, 10),
                                       ("attempts", self.max_attempts, 1, 10),
                                       ("access requests", self.access_requests, 0, 100)):
            if not isinstance(count, int) or not low <= count <= high:
                raise VerifyConfigError(f"verify {name} must be a whole number from {low} to "
                                        f"{high}, not {count!r}")


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


_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


def check_base_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of a base URL that is safe to send keys to."""
    shape = f"base URL must be https://HOST[:PORT][/PATH], not {url!r}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a port of 99999 or "abc", an unclosed "[::1"
        raise VerifyConfigError(shape) from None
    if parts.scheme not in ("https", "http") or not host:
        raise VerifyConfigError(shape)
    if not _HOST_NAME.fullmatch(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise VerifyConfigError(shape) from None
    if not _PATH.fullmatch(parts.path) or not url.isascii() or url != url.strip():
        raise VerifyConfigError(shape)
    if parts.scheme == "http" and not _is_loopback(host):
        raise VerifyConfigError(
            f"refusing to send keys over plain HTTP to {host}: use https (plain HTTP is only "
            "allowed to a loopback address, for tests)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise VerifyConfigError("base URL must not hold credentials, a query or a fragment")
    if port == 0:
        raise VerifyConfigError(shape)
    port = port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, host, port, parts.path.rstrip("/")


# ---- numbers from headers ------------------------------------------------------------------

def _number(value: str | None) -> float | None:
    """A header's number, or None for absent, garbage or nan; +inf becomes ``_FAR``."""
    if value is None or len(value) > 64:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if math.isnan(number):
        return None
    return max(min(number, _FAR), -_FAR)


def _count(value: str | None) -> int | None:
    """A non-negative header count (``X-RateLimit-Remaining``/``-Limit``), or None."""
    number = _number(value)
    if number is None or number != int(number):
        return None
    return max(int(number), 0)


def parse_reset(value: str | None, now_epoch: float) -> float | None:
    """``X-RateLimit-Reset`` as seconds to wait (0 to ``_FAR``): a delta or a Unix time."""
    number = _number(value)
    if number is None:
        return None
    if number > _EPOCH:
        number -= now_epoch
    return min(max(number, 0.0), _FAR)


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """``Retry-After`` as seconds (0 to ``_FAR``): delay-seconds or an HTTP date."""
    number = _number(value)
    if number is None and value is not None and 0 < len(value) <= 64:
        try:
            number = parsedate_to_datetime(value).timestamp() - now_epoch
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if number is None:
        return None
    return min(max(number, 0.0), _FAR)


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < _FAR else "forever"


# ---- bodies ---------------------------------------------------------------------------------

def _too_deep(text: str, limit: int) -> bool:
    """True if ``text`` nests arrays or objects deeper than ``limit`` (strings are skipped).

    ``json.loads`` recurses once per level and dies of ``RecursionError`` near 1,000 levels; a
    body of 64 KiB of ``[`` is a cheap way to get there, so depth is measured first.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def parse_json(body: bytes) -> Any:
    """The JSON value of a body, or None for anything else (including too deep a nesting)."""
    try:
        text = body.decode("utf-8")
        if _too_deep(text, MAX_JSON_DEPTH):
            return None
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _error_is(payload: Any, code: str) -> bool:
    return isinstance(payload, dict) and payload.get("error") == code


def _looks_like_list(payload: Any) -> bool:
    """The documented list answer: a JSON array, or an object that holds one."""
    if isinstance(payload, list):
        return True
    return isinstance(payload, dict) and any(isinstance(v, list) for v in payload.values())


def _server_says(payload: Any) -> str:
    """The server's own error words (``error``/``detail``/``message``), for an unknown verdict.

    They are quoted only after cleaning (``Verdict`` cleans ``detail``); a server echoing the
    ``Authorization`` header here is exactly the case issue 11 names.
    """
    if not isinstance(payload, dict):
        return ""
    words = [f"{name}: {payload[name]}" for name in ("error", "detail", "message")
             if isinstance(payload.get(name), str)]
    return f" ({'; '.join(words)[:200]})" if words else ""


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


# ---- the rate gate -----------------------------------------------------------------------

class _TooLong(Exception):
    """The server asks for a wait longer than this key may still wait; the text says so."""


class _Stopped(Exception):
    """Verification was cancelled (Ctrl-C): stop at once."""


class _RateGate:
    """Shared by all workers, so that the API's pacing holds for the whole run.

    - Nobody sends before ``not_before`` (a 429's ``Retry-After``).
    - ``X-RateLimit-Remaining`` is a budget: requests already in flight spend it too, and at
      zero everyone waits for ``X-RateLimit-Reset``.
    - A reset opens a new window with the last ``X-RateLimit-Limit`` as its budget (less the
      requests still in flight), or, with no limit known, with slow start again: never
      ``concurrency`` requests at once into a window whose size we do not know.
    - Slow start: until an answer of the window arrives, one request at a time.
    - A wait longer than the caller may spend raises ``_TooLong`` at once instead of sleeping:
      ``X-RateLimit-Reset: 3600`` makes keys ``unknown`` now, not in an hour.
    - A 429 storm (``_STORM`` answers in a row, whatever the key) ends verification: every
      key still waiting becomes ``unknown`` rather than 5 more requests each.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._not_before = 0.0
        self._budget: int | None = None
        self._reset_at: float | None = None  # end of the window the budget belongs to
        self._last_end: float | None = None  # latest window end any answer has named
        self._limit: int | None = None
        self._inflight = 0
        self._answered = False
        self._stopped = False
        self._throttled_in_a_row = 0  # 429s since the last other answer, run-wide

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def acquire(self, max_wait: float) -> float:
        """Block until a request may be sent; returns the seconds spent waiting."""
        started = time.monotonic()
        with self._cond:
            while True:
                if self._stopped:
                    raise _Stopped
                if self._throttled_in_a_row >= _STORM:
                    raise _TooLong(f"the API answered HTTP 429 to the last {_STORM} requests "
                                   "in a row: verification gave up to stop adding to the load")
                now = time.monotonic()
                if self._reset_at is not None and now >= self._reset_at:
                    self._new_window()
                if now < self._not_before:
                    need = self._not_before - now
                    if need > max_wait:
                        raise _TooLong(f"the API asks to wait {_seconds(need)} before the next "
                                       f"request, longer than this key may wait "
                                       f"({_seconds(max_wait)})")
                    self._cond.wait(need)
                    continue
                if self._budget is not None and self._budget <= 0:
                    if self._reset_at is None:  # spent, and no usable reset time: a short pause
                        self._reset_at = now + _NO_RESET_WINDOW
                    need = self._reset_at - now
                    if need > max_wait:
                        raise _TooLong(f"the API's rate limit resets in {_seconds(need)}, "
                                       f"longer than this key may wait ({_seconds(max_wait)})")
                    self._cond.wait(need)
                    continue
                if not self._answered and self._inflight:
                    self._cond.wait(0.05)  # woken by the answer; the timeout is a safety net
                    continue
                self._inflight += 1
                if self._budget is not None:
                    self._budget -= 1
                return time.monotonic() - started

    def _new_window(self) -> None:
        self._reset_at = None
        if self._limit is not None:
            self._budget = self._limit - self._inflight  # in-flight requests may land in it
        else:
            self._budget = None
            self._answered = False  # slow start again: the window's size is not known

    def _record(self, headers: dict[str, str], now: float) -> None:
        """Take an answer's ``X-RateLimit-*`` into the budget (the lock is held)."""
        limit = _count(headers.get("x-ratelimit-limit"))
        if limit:
            self._limit = limit
        remaining = _count(headers.get("x-ratelimit-remaining"))
        if remaining is None:
            self._answered = True
            return
        reset = parse_reset(headers.get("x-ratelimit-reset"), time.time())
        budget = remaining - self._inflight  # those in flight will spend it too
        reset_at = now + (reset if reset is not None else _NO_RESET_WINDOW)
        if self._last_end is None or reset_at > self._last_end + _SAME_WINDOW:
            # The first answer of a new window.
            self._budget, self._reset_at, self._last_end = budget, reset_at, reset_at
            self._answered = True
        elif self._reset_at is not None and self._budget is not None:
            # Answers overtake each other: within one window a budget only shrinks.
            self._budget = min(self._budget, budget)
            self._answered = True
        # Else a late answer of a window that is over: ignored. Taking its reset time would
        # open a second "new window" inside the server's current one with a full budget (or
        # end slow start there): the overrun issue 11 measured.

    def release(self, headers: dict[str, str] | None, wait: float | None = None,
                throttled: bool = False) -> None:
        """Record an answer (``headers``; ``throttled`` for a 429) or a failure (``None``)."""
        with self._cond:
            self._inflight -= 1
            now = time.monotonic()
            if headers is not None:
                self._record(headers, now)
            if throttled:
                self._throttled_in_a_row += 1
            elif headers is not None:
                self._throttled_in_a_row = 0
            if wait is not None:
                self._not_before = max(self._not_before, now + min(wait, _FAR))
            self._cond.notify_all()


# ---- the verifier ------------------------------------------------------------------------

@dataclass(slots=True)
class _Spend:
    """One key's account: rate-limit waiting so far (against ``rate_limit_budget``)."""

    waited: float = 0.0


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why no usable answer came (the last one's status and request id, if any)."""

    detail: str
    http_status: int | None = None
    request_id: str | None = None


class Verifier:
    """Checks keys against the Poelis API; ``verify_many`` asks once per distinct key."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.settings.check()
        self.scheme, self.host, self.port, self.prefix = check_base_url(self.settings.base_url)
        self._gate = _RateGate()
        self._stop = threading.Event()
        self._ssl = ssl.create_default_context() if self.scheme == "https" else None

    def cancel(self) -> None:
        """Stop every worker at its next wait (Ctrl-C); later ``verify`` calls send nothing."""
        self._stop.set()
        self._gate.stop()

    def _send(self, key: str, target: str) -> Answer:
        return get(self.scheme, self.host, self.port, self.prefix + target, {
            "Authorization": f"Bearer {key}",
            "Accept": "application/json",
            "User-Agent": f"poelis-scan/{__version__}",
        }, deadline=time.monotonic() + self.settings.timeout, context=self._ssl,
            max_body=BODY_LIMIT)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _exchange(self, key: str, target: str, max_requests: int,
                  spend: _Spend) -> tuple[Answer | _Failure, int]:
        """(the first answer that is neither a 429 nor a 5xx, or why none came; requests sent).

        A 429 or 5xx is retried after a wait that is never zero (``min_wait`` for a 429,
        ``backoff`` doubling for a 5xx, or the server's ``Retry-After`` if longer) and never
        longer than the key may still wait; ``max_requests`` bounds the attempts.
        """
        s = self.settings
        sent = failures = 0
        last = _Failure("no request was sent")
        while sent < max_requests:
            max_wait = max(min(s.retry_after_cap, s.rate_limit_budget - spend.waited), 0.0)
            try:
                spend.waited += self._gate.acquire(max_wait)
            except _TooLong as error:
                return _Failure(str(error), last.http_status, last.request_id), sent
            sent += 1
            try:
                answer = self._send(key, target)
            except DeadlineExceeded:
                self._gate.release(None)
                # Not retried: the user's timeout bounds the key, not each of its attempts.
                return _Failure(f"timed out after {s.timeout:g} s"), sent
            except ssl.SSLError as error:
                self._gate.release(None)
                return _Failure(f"TLS failure: {error.reason or 'handshake'}"), sent
            except HttpError as error:
                self._gate.release(None)
                return _Failure(f"not a usable HTTP answer: {error}"), sent
            except OSError as error:
                self._gate.release(None)
                last = _Failure(f"connection failed: {type(error).__name__}")
                delay = s.backoff * (2 ** failures) * (0.5 + random.random())
            else:
                status, request_id = answer.status, answer.headers.get("x-request-id")
                if status != 429 and not 500 <= status < 600:
                    self._gate.release(answer.headers)
                    return answer, sent
                asked = parse_retry_after(answer.headers.get("retry-after"), time.time())
                if asked is not None and asked > max_wait:
                    self._gate.release(answer.headers, asked, throttled=status == 429)
                    return _Failure(f"HTTP {status}: the API asks to wait {_seconds(asked)}, "
                                    f"longer than this key may wait ({_seconds(max_wait)})",
                                    status, request_id), sent
                if status == 429:
                    floor = s.min_wait * (1 + 0.25 * random.random())
                    wait = max(asked or 0.0, floor)
                    self._gate.release(answer.headers, wait, throttled=True)  # all wait
                    last = _Failure(f"rate limited (HTTP 429) {sent} times", status,
                                    request_id)
                    continue
                self._gate.release(answer.headers)
                last = _Failure(f"server error HTTP {status} after {sent} attempts", status,
                                request_id)
                delay = max(s.backoff * (2 ** failures) * (0.5 + random.random()), asked or 0.0)
            failures += 1
            if failures > s.retries:
                return last, sent
            self._sleep(min(delay, s.retry_after_cap))
        return last, sent

    def verify(self, key: str) -> Verdict:
        """One key's verdict. Every failure ends as ``unknown`` with a reason, never raises."""
        if not key.startswith(API_PREFIX):
            reason = (LEGACY_REASON if key.startswith(LEGACY_PREFIX)
                      else "not a poelis_api_ key: it was not sent")
            return Verdict("unknown", detail=reason)
        spend = _Spend()
        try:
            result, _ = self._exchange(key, PROBE_PATH, self.settings.max_attempts, spend)
            if isinstance(result, _Failure):
                return Verdict("unknown", result.http_status, result.detail, result.request_id)
            verdict = self._judge(result.status, result.body, result.headers.get("x-request-id"))
            if verdict.status == "live" and result.status == 200 and self.settings.access_check:
                verdict = replace(verdict, access=self._access(key, spend))
            return verdict
        except _Stopped:
            return Verdict("unknown", detail="verification was interrupted")

    @staticmethod
    def _judge(status: int, body: bytes, request_id: str | None) -> Verdict:
        """The verdict for an answer that is neither a 429 nor a 5xx."""
        payload = parse_json(body)
        if status in _DOCUMENTED:
            proves, verdict, meaning, otherwise = _DOCUMENTED[status]
            if proves(payload):
                return Verdict(verdict, status, meaning, request_id)
            return Verdict("unknown", status, otherwise + _server_says(payload), request_id)
        if 300 <= status < 400:
            return Verdict("unknown", status, f"redirect (HTTP {status}) not followed: the "
                           "key was not sent on", request_id)
        return Verdict("unknown", status,
                       f"unexpected answer HTTP {status}{_server_says(payload)}", request_id)

    # ---- what a live key opens ------------------------------------------------------------

    def _access(self, key: str, spend: _Spend) -> dict[str, Any]:
        """Workspaces and products the key can list, in at most ``access_requests`` GETs.

        ``workspaces`` is the API's ``count`` (or the workspaces seen, without one);
        ``products`` sums the product counts of the workspaces asked about; ``complete`` is
        false when the request limit, an error or an odd answer stopped the count, and
        ``reason`` then says which.
        """
        budget = self.settings.access_requests
        used = 0
        names: list[str] = []
        ids: list[str] = []
        total: int | None = None
        reason: str | None = None

        def ask(target: str) -> Any:
            nonlocal used, reason
            if used >= budget:
                reason = f"stopped at the limit of {budget} requests per key"
                return None
            result, sent = self._exchange(key, target, budget - used, spend)
            used += sent
            if isinstance(result, _Failure):
                reason = result.detail
                return None
            payload = parse_json(result.body) if result.status == 200 else None
            if not (isinstance(payload, dict) and isinstance(payload.get("items"), list)):
                reason = f"HTTP {result.status} without the documented list"
                return None
            return payload

        offset = 0
        while True:
            page = ask(f"{WORKSPACES_PATH}?limit={ACCESS_PAGE}&offset={offset}")
            if page is None:
                break
            count = page.get("count")
            if total is None and isinstance(count, int) and not isinstance(count, bool):
                total = min(max(count, 0), _MAX_COUNT)
            for item in page["items"]:
                if not isinstance(item, dict):
                    continue
                ident = item.get("id")
                if isinstance(ident, str | int) and not isinstance(ident, bool):
                    ids.append(str(ident)[:200])
                name = item.get("name")
                if isinstance(name, str) and len(names) < ACCESS_NAMES:
                    names.append(clean_external(name, 100))
            offset += len(page["items"])
            if not page["items"] or (total is not None and offset >= total) or (
                    total is None and len(page["items"]) < ACCESS_PAGE):
                break
        listed = reason is None
        products = 0
        counted = 0
        for ident in ids if listed else []:
            page = ask(f"{PRODUCTS_PATH}?workspace_id={quote(ident, safe='')}")
            if page is None:
                break
            count = page.get("count")
            valid = isinstance(count, int) and not isinstance(count, bool) and count >= 0
            products = min(products + (count if valid else len(page["items"])), _MAX_COUNT)
            counted += 1
        if reason is None and total is not None and len(ids) < total:
            reason = f"the API counts {total} workspaces but listed {len(ids)}"
        workspaces = total if total is not None else len(ids)
        complete = reason is None and counted == len(ids)
        return {"workspaces": workspaces, "products": products, "workspace_names": names,
                "complete": complete, "reason": reason}

    # ---- many keys ------------------------------------------------------------------------

    def verify_many(self, keys: Iterable[str]) -> dict[str, Verdict]:
        """Verdicts by key; each distinct key is asked about once, ``concurrency`` at a time.

        Workers are daemon threads and the calling thread waits in short, interruptible
        steps: Ctrl-C stops verification at the first press (the workers are told to stop at
        their next wait, and a request in flight can no longer hold the process).
        """
        distinct = list(dict.fromkeys(keys))
        if not distinct:
            return {}
        todo: queue.SimpleQueue[str] = queue.SimpleQueue()
        for key in distinct:
            todo.put(key)
        done: queue.SimpleQueue[tuple[str, Verdict]] = queue.SimpleQueue()

        def work() -> None:
            while not self._stop.is_set():
                try:
                    key = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    verdict = self.verify(key)
                except Exception as error:
                    verdict = Verdict("unknown", detail=f"internal error: {type(error).__name__}")
                done.put((key, verdict))

        workers = [threading.Thread(target=work, name=f"poelis-verify-{n}", daemon=True)
                   for n in range(min(self.settings.concurrency, len(distinct)))]
        for worker in workers:
            worker.start()
        verdicts: dict[str, Verdict] = {}
        try:
            while len(verdicts) < len(distinct):
                try:
                    key, verdict = done.get(timeout=0.2)
                except queue.Empty:
                    continue
                verdicts[key] = verdict
        except BaseException:
            self.cancel()
            raise
        return {key: verdicts[key] for key in distinct}


def describe_access(access: dict[str, Any] | None) -> str:
    """``opens 3 workspaces, 6 products`` for text and HTML reports ('' without a count).

    An incomplete count says "at least", so a number stopped by the request limit is never
    read as the whole reach of the key.
    """
    if not access:
        return ""

    def plural(n: Any, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    text = (f"opens {plural(access.get('workspaces'), 'workspace')}, "
            f"{plural(access.get('products'), 'product')}")
    return text if access.get("complete") else text.replace("opens ", "opens at least ", 1)


def apply_verdicts(findings: Iterable[Finding], verifier: Verifier) -> None:
    """Verify the distinct keys of ``findings`` and record each verdict on them.

    A finding with other plausible readings (a key glued to a suffix) whose main reading is
    not live has them tried next, each distinct key at most once in the whole run; a live
    reading wins and becomes the finding's key.
    """
    findings = list(findings)
    verdicts = verifier.verify_many(f.secret for f in findings)
    pending = [f for f in findings if f.alternatives and verdicts[f.secret].status != "live"]
    if pending:
        more = [k for f in pending for k in f.alternatives if k not in verdicts]
        verdicts.update(verifier.verify_many(more))
    for finding in findings:
        finding.verification = verdicts[finding.secret]
        if finding.verification.status == "live" or not finding.alternatives:
            continue
        live = next((k for k in finding.alternatives if verdicts[k].status == "live"), None)
        if live is not None:
            others = tuple(k for k in (finding.secret, *finding.alternatives) if k != live)
            finding.secret, finding.alternatives = live, others
            finding.verification = verdicts[live]
