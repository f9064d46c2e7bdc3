"""The Poelis key grammars (API keys and legacy ``poelis_live_`` credentials) and the
judgement of how random a candidate body looks.

A key is ``poelis_api_`` followed by a URL-safe base64 body (the documented key has 43 body
characters, i.e. 32 random bytes). The grammar alone cannot tell a key from
``poelis_api_base_url_for_production_environment``; what tells them apart is that a real body
is random. Every rule below that demotes a body to ``low`` was sized by simulation
(``benchmarks/confidence_false_low.py``) so that random bodies are almost never demoted.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from enum import Enum

PREFIX = b"poelis_api_"
MIN_BODY = 29
MAX_BODY = 49
MAX_KEY = len(PREFIX) + MAX_BODY
# Real keys have 43 body characters (32 random bytes); a longer run may be such a key glued
# to a suffix (``…_prod``, ``…-2026-11-28-rotated``). Runs are read up to MAX_RUN characters.
KEY_BODY = 43
MAX_RUN = 100
# 43 characters carry 258 bits for 256: the last one of a real body has its two low bits zero,
# so it is one of these 16. A 44–49 run is read as a glued key only when its 43-character head
# ends so, which keeps random bodies of those lengths read as themselves 4 times more often.
_LAST_OF_32_BYTES = frozenset("AEIMQUYcgkosw048")

# The second rule: the ``poelis_live_org_<env>_<client_id>_<client_secret>`` credentials the
# Poelis Python SDK documented in October 2025 (Auth0 client credentials: client ids of 32
# alphanumerics, client secrets of 64 URL-safe characters).
LEGACY_PREFIX = b"poelis_live_"
API_RULE_ID = "poelis-api-key"
LEGACY_RULE_ID = "poelis-legacy-key"
MIN_LEGACY_BODY = 6  # ``poelis_live_abc`` is a word, not a candidate; ``…A1B2C3`` is (low)
# org_ + environment (up to 20) + _ + 32 + _ + 64, plus room for a glued suffix.
MAX_LEGACY_BODY = 4 + 20 + 1 + 32 + 1 + 64 + 40
_LEGACY_SHAPE = re.compile(
    r"org_(?P<env>[A-Za-z0-9-]{1,20})_(?P<client_id>[A-Za-z0-9]{32})_"
    r"(?P<client_secret>[A-Za-z0-9_-]{64})")
_LEGACY_TEXT = LEGACY_PREFIX.decode("ascii")
_PREFIX_TEXT = PREFIX.decode("ascii")
# A key glued to a preceding letter or digit is part of a longer word, not a key.
GLUE_BEFORE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

# The example key printed in the public Poelis documentation: never a live secret.
DOCUMENTED_EXAMPLE_BODY = "yyRCEbuLi8ugnBWNixCZQL4xKlLKBh-Gi_6zFf4CCIE"

# Words that mark a body as a stand-in. Each is long enough that a random body contains it
# with negligible probability (seven or more specific letters: about 1 in 10^10).
_PLACEHOLDER_WORDS = (
    "your_key",
    "yourkey",
    "your-key",
    "your_api",
    "placeholder",
    "example",
    "changeme",
    "change_me",
    "redacted",
    "replace_me",
    "replaceme",
    "insert_key",
    "dummy_key",
    "fake_key",
    "test_key",
    "xxxxxxx",
    "0000000",
)


class Confidence(str, Enum):  # noqa: UP042 (StrEnum would change str(), which callers see)
    """How sure we are that a candidate is a real key (ordered: low < high)."""

    LOW = "low"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Confidence.LOW: 0, Confidence.HIGH: 1}


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` measured on its own character frequencies."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _sequential_fraction(text: str) -> float:
    """Share of neighbouring pairs that step by one code point (``abcd``, ``1234``, ``dcba``)."""
    steps = sum(1 for a, b in itertools.pairwise(text) if abs(ord(a) - ord(b)) == 1)
    return steps / (len(text) - 1)


def _looks_like_identifier(body: str) -> bool:
    """True for names such as ``base_url_for_production`` or ``YOUR_KEY_HERE_PLEASE``.

    A random base64url body of 29+ characters holds no digit with probability below 1%, and
    its letters switch case constantly; a name has no digits and long single-case runs.
    """
    if any(c.isdigit() for c in body):
        return False
    letters = [c for c in body if c.isalpha()]
    if not letters:
        return True
    lower = sum(1 for c in letters if c.islower())
    return _single_case(lower, len(letters))


def _single_case(lower: int, letters: int) -> bool:
    """Names are (almost) single-case: snake_case, SCREAMING_CASE, or camelCase humps."""
    dominant = max(lower, letters - lower) / letters
    return dominant >= 0.8


# The ASCII fast path: every body the grammars read is ASCII (``[A-Za-z0-9_-]``), where
# ``isdigit``/``isalpha``/``islower`` are exactly these byte classes. Counting them with
# ``bytes.translate``, distinct characters with a set and the neighbour test with one XOR of
# two big integers runs in C: the
# per-character generators above cost 35 us a body, most of a flood of 200,000 real keys.
_DIGITS = b"0123456789"
_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_UP_ONE = bytes((b + 1) % 256 for b in range(256))  # each byte stepped up by one code point
_DOWN_ONE = bytes((b - 1) % 256 for b in range(256))
# The entropy needs counting every character (a Counter: a third of the judgement's time),
# but how many distinct characters there are (a set, in C) often settles it: n characters with
# d distinct ones hold at least the entropy of one character seen n-d+1 times and d-1 seen
# once (the most concentrated way to spread them). A random 43-character body has about 31
# distinct characters; from 25 on, that minimum clears 3.5 bits, and the count is skipped.
_SURE_DISTINCT: dict[int, int] = {}
_SURE_UP_TO = 2 * MAX_RUN  # longer bodies (no grammar reads one) are always counted


def _least_entropy(distinct: int, n: int) -> float:
    """The smallest entropy of ``n`` characters of which ``distinct`` differ."""
    p = (n - distinct + 1) / n
    return -p * math.log2(p) + (distinct - 1) / n * math.log2(n)


def _sure_distinct(n: int) -> int:
    """From how many distinct characters on ``n`` characters surely hold 3.5 bits or more
    (with a margin far above any rounding error of the exact sum); ``n + 1``: never."""
    sure = _SURE_DISTINCT.get(n)
    if sure is None:
        sure = n + 1
        while sure > 1 and _least_entropy(sure - 1, n) >= 3.5 + 1e-9:
            sure -= 1
        _SURE_DISTINCT[n] = sure
    return sure


def _equal_bytes(a: bytes, b: bytes) -> int:
    """How many positions hold the same byte in two strings of one length."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return x.to_bytes(len(a), "big").count(0)


def _classify_ascii(body: str) -> tuple[Confidence, str]:
    """``classify_body`` for an ASCII body, the same judgement in C-speed operations."""
    raw = body.encode("ascii")
    n = len(raw)
    if len(raw.translate(None, _DIGITS)) == n:  # no digit: maybe an identifier
        upper = n - len(raw.translate(None, _UPPER))
        lower = n - len(raw.translate(None, _LOWER))
        if not upper + lower or _single_case(lower, upper + lower):
            return Confidence.LOW, "identifier-like body"
    distinct = len(set(body))
    if distinct < n * 0.4:
        return Confidence.LOW, "repetitive body"
    if (n > _SURE_UP_TO or distinct < _sure_distinct(n)) and shannon_entropy(body) < 3.5:
        return Confidence.LOW, "low-entropy body"
    head, tail = raw[:-1], raw[1:]
    steps = (_equal_bytes(head.translate(_UP_ONE), tail)
             + _equal_bytes(head.translate(_DOWN_ONE), tail))
    if steps / (n - 1) > 0.4:
        return Confidence.LOW, "sequential body"
    return Confidence.HIGH, "random-looking body"


def classify_body(body: str) -> tuple[Confidence, str]:
    """Return the confidence for a candidate body and the reason in a few words."""
    if body == DOCUMENTED_EXAMPLE_BODY:
        return Confidence.LOW, "documented example key"
    folded = body.lower()
    for word in _PLACEHOLDER_WORDS:
        if word in folded:
            return Confidence.LOW, "placeholder text"
    if body.isascii():
        return _classify_ascii(body)
    if _looks_like_identifier(body):
        return Confidence.LOW, "identifier-like body"
    distinct = len(set(body))
    if distinct < len(body) * 0.4:
        return Confidence.LOW, "repetitive body"
    if shannon_entropy(body) < 3.5:
        return Confidence.LOW, "low-entropy body"
    if _sequential_fraction(body) > 0.4:
        return Confidence.LOW, "sequential body"
    return Confidence.HIGH, "random-looking body"


# A suffix someone glued to a key: separated words, numbers and dates (``_prod``, ``_v2``,
# ``-2026-11-28-rotated``, ``_OLD``). Each part is single-case letters, digits, or letters then
# digits, so a random tail (mixed case, digits anywhere) rarely reads as one.
_WORD = r"(?:[a-z]+[0-9]*|[A-Z][a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+)"
_SUFFIX = re.compile(rf"(?:[_-]{_WORD})+")


def is_word_suffix(text: str) -> bool:
    """True for ``_prod`` or ``-2026-11-28-rotated``: a separator, then word-like parts."""
    return len(text) >= 3 and _SUFFIX.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Reading:
    """How a candidate run is read: the key (``body`` after the prefix), its judgement, and
    the other plausible keys the same bytes could be (verification tries them too)."""

    body: str
    confidence: Confidence
    reason: str
    alternatives: tuple[str, ...] = ()  # other bodies, never shown


def read_api_run(run: str) -> Reading | None:
    """The key a maximal body run after ``poelis_api_`` holds, or None for no candidate.

    A 29–49 character run is one body, judged as it is, unless it is a 43-character random
    head glued to a word suffix (``<43>_prod``): then the head is the key and the whole run the
    alternative reading. A longer run is reported as its 43-character head when a word
    suffix follows it, and otherwise still reported (low) when its head looks random, so that
    no key is dropped silently because something was glued to it.
    """
    n = len(run)
    if n < MIN_BODY:
        return None
    if n > KEY_BODY + 2 and is_word_suffix(run[KEY_BODY:]) and (
            n > MAX_BODY or run[KEY_BODY - 1] in _LAST_OF_32_BYTES):
        head = run[:KEY_BODY]
        confidence, reason = classify_body(head)
        if confidence is Confidence.HIGH:
            others = (run,) if n <= MAX_BODY else ()
            return Reading(head, confidence, f"{reason}, glued to a suffix", others)
    if n <= MAX_BODY:
        return Reading(run, *classify_body(run))
    head = run[:KEY_BODY]
    confidence, reason = classify_body(head)
    if confidence is not Confidence.HIGH:
        return None  # a long identifier (``poelis_api_base_url_for_…``): not a key
    return Reading(head, Confidence.LOW, f"random-looking head of a {n}+ character run")


def read_legacy_run(run: str) -> Reading | None:
    """The legacy credential a body run after ``poelis_live_`` holds, or None.

    The documented shape with random client id and secret is ``high``; anything else that is
    long enough to be a credential (``poelis_live_A1B2C3...``, templates) is ``low``.
    """
    if len(run) < MIN_LEGACY_BODY:
        return None
    shape = _LEGACY_SHAPE.match(run)
    if shape is None:
        return Reading(run, Confidence.LOW, "not the legacy credential shape")
    body = shape.group(0)
    rest = run[shape.end():]
    if rest and not is_word_suffix(rest):
        return Reading(body, Confidence.LOW, "legacy credential glued to a longer run")
    for part in ("client_id", "client_secret"):
        confidence, reason = classify_body(shape.group(part))
        if confidence is Confidence.LOW:
            return Reading(body, Confidence.LOW, f"{part.replace('_', ' ')}: {reason}")
    return Reading(body, Confidence.HIGH, "random-looking legacy client credentials")


def rule_of(secret: str) -> str:
    """The rule a key belongs to, told by its prefix."""
    return LEGACY_RULE_ID if secret.startswith(_LEGACY_TEXT) else API_RULE_ID


def redact(secret: str) -> str:
    """``poelis_api_yyRC…CIE``: enough to recognise a key you hold, not enough to use it.

    Legacy credentials keep their environment: ``poelis_live_org_prod_AbCd…x9Z``.
    """
    if secret.startswith(_LEGACY_TEXT):
        body = secret[len(_LEGACY_TEXT) :]
        shape = _LEGACY_SHAPE.match(body)
        if shape is not None:
            return (f"{_LEGACY_TEXT}org_{shape.group('env')}_{shape.group('client_id')[:4]}…"
                    f"{shape.group('client_secret')[-3:]}")
        return f"{_LEGACY_TEXT}{body[:2]}…" if len(body) >= 8 else f"{_LEGACY_TEXT}…"
    if not secret.startswith(_PREFIX_TEXT):
        return "…"
    body = secret[len(_PREFIX_TEXT) :]
    return f"{_PREFIX_TEXT}{body[:4]}…{body[-3:]}"


def secret_sha256(secret: str) -> str:
    """The key's identity in reports, baselines and allow-lists: shareable, never reversible."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()
