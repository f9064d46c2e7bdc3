"""Bytes in, matches out: the needle-first detection engine.

Literal needles (``encodings.py``, found by ``engines.py``) are the only search over every
byte; decoders (``encodings.py``) and the randomness judgement (``grammar.py``) run only
around hits.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ..settings import DEFAULT, ScanSettings
from .encodings import LOOKAHEAD, LOOKBEHIND, decode
from .engines import searcher
from .grammar import Confidence, classify_body, redact, rule_of

__all__ = ["LOOKAHEAD", "LOOKBEHIND", "Match", "find_matches", "scan_bytes"]

_PREFIX_LEN = len("poelis_api_")
# The plainer the encoding, the better a name for a key found twice in the same bytes.
_PLAINNESS = {"plain": 0, "utf-16le": 1, "utf-16be": 1, "hex": 2, "base64": 3, "base64url": 3}


def plainness(encoding: str) -> int:
    """Rank of an encoding when one key is seen several ways: lower is plainer, kept first."""
    return _PLAINNESS.get(encoding, 9)


@dataclass(frozen=True, slots=True)
class Match:
    """One key found in a byte string: ``data[start:end]`` holds it, as ``encoding`` says."""

    start: int
    end: int
    secret: str
    confidence: Confidence
    reason: str
    encoding: str = "plain"
    # Other plausible keys in the same bytes (a key glued to a suffix: the whole run), tried
    # by verification; never shown, never in a report.
    alternatives: tuple[str, ...] = ()

    @property
    def rule_id(self) -> str:
        return rule_of(self.secret)

    def __repr__(self) -> str:  # never print the secret itself, even in a debugger or a test
        return (
            f"Match(start={self.start}, end={self.end}, secret={redact(self.secret)!r}, "
            f"confidence={self.confidence.value!r}, encoding={self.encoding!r})"
        )

    def shifted(self, delta: int) -> Match:
        return Match(self.start + delta, self.end + delta, self.secret, self.confidence,
                     self.reason, self.encoding, self.alternatives)


def find_matches(
    data: bytes | bytearray, start: int = 0, stop: int | None = None, end: int | None = None,
    settings: ScanSettings = DEFAULT,
) -> list[Match]:
    """Every key whose needle begins in ``data[start:stop]``, reading no byte at ``end`` or after.

    Bytes between ``stop`` and ``end`` are read to finish judging a needle that begins before
    ``stop``; a streaming caller leaves the undecided tail to its next window that way, and
    passes ``end`` because its reused buffer holds stale bytes after the valid ones. A key found
    twice in the same bytes (plainly and through a decoding) is reported once, plainest first.
    """
    if end is None:
        end = len(data)
    if stop is None:
        stop = end
    matches: list[Match] = []
    for hit, needle in searcher(settings)(data, start, stop, end):
        found = decode(data, hit, end, needle)
        if found is None:
            continue
        secret = found.key.decode("ascii")
        reading = found.reading
        if reading is None:  # a decoder outside this package: judge the body as it is
            confidence, reason = classify_body(secret[_PREFIX_LEN:])
            alternatives: tuple[str, ...] = ()
        else:
            confidence, reason = reading.confidence, reading.reason
            prefix = secret[: len(secret) - len(reading.body)]
            alternatives = tuple(prefix + body for body in reading.alternatives)
        matches.append(Match(found.start, found.end, secret, confidence, reason, found.encoding,
                             alternatives))
    if len(matches) > 1:
        matches = _drop_overlapping_duplicates(matches)
    return matches


def _drop_overlapping_duplicates(matches: list[Match]) -> list[Match]:
    """Each secret once per stretch of bytes: the plainest sighting kept, in order of start.

    Matches are taken plainest first and kept unless they overlap one already kept of the same
    secret. Kept matches of one secret never overlap each other, so sorted by start they are
    sorted by end too, and only the last one starting before a match's end can overlap it: one
    binary search per match, not a comparison with every match kept before (a flood of 50,000
    copies of one key took minutes that way).
    """
    kept: dict[str, list[Match]] = {}
    spans: dict[str, tuple[list[int], list[int]]] = {}  # secret -> kept starts, kept ends
    for match in sorted(matches, key=lambda m: _PLAINNESS.get(m.encoding, 9)):
        starts, ends = spans.setdefault(match.secret, ([], []))
        before = bisect.bisect_left(starts, match.end)  # kept ones starting before its end
        if before and ends[before - 1] > match.start:
            continue
        starts.insert(before, match.start)
        ends.insert(before, match.end)
        kept.setdefault(match.secret, []).append(match)
    return sorted((m for group in kept.values() for m in group), key=lambda m: m.start)


def scan_bytes(
    data: bytes | bytearray, min_confidence: Confidence | str = Confidence.LOW,
    *, decode: bool = True,
) -> list[Match]:
    """Find every Poelis key (API keys and legacy credentials) in ``data``; offsets are byte
    offsets into ``data``.

    Keys are found plainly and (unless ``decode`` is false) in UTF-16, base64 and hex.
    Archives are not opened: this is the detector alone. ``min_confidence`` drops matches
    below it; the default keeps everything, including placeholders and the documented example,
    each marked ``low``.
    """
    floor = Confidence(min_confidence).rank
    settings = DEFAULT if decode else ScanSettings(decode=False)
    return [m for m in find_matches(data, settings=settings) if m.confidence.rank >= floor]
