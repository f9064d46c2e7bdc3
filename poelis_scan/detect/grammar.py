"""The Poelis API key grammar and the judgement of how random a candidate body looks.

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
from collections import Counter
from enum import Enum

PREFIX = b"poelis_api_"
MIN_BODY = 29
MAX_BODY = 49
MAX_KEY = len(PREFIX) + MAX_BODY
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
    # Names are (almost) single-case: snake_case, SCREAMING_CASE, or camelCase humps.
    dominant = max(lower, len(letters) - lower) / len(letters)
    return dominant >= 0.8


def classify_body(body: str) -> tuple[Confidence, str]:
    """Return the confidence for a candidate body and the reason in a few words."""
    if body == DOCUMENTED_EXAMPLE_BODY:
        return Confidence.LOW, "documented example key"
    folded = body.lower()
    for word in _PLACEHOLDER_WORDS:
        if word in folded:
            return Confidence.LOW, "placeholder text"
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


def redact(secret: str) -> str:
    """``poelis_api_yyRC…CIE``: enough to recognise a key you hold, not enough to use it."""
    if not secret.startswith(_PREFIX_TEXT):
        return "…"
    body = secret[len(_PREFIX_TEXT) :]
    return f"{_PREFIX_TEXT}{body[:4]}…{body[-3:]}"


def secret_sha256(secret: str) -> str:
    """The key's identity in reports, baselines and allow-lists: shareable, never reversible."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()
