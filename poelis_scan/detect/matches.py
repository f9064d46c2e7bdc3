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
    groups: set[tuple[int, int]] = set()
    for hit, needle in searcher(settings)(data, start, stop, end):
        if needle.encoding == "base64":
            # Both halves of a base64 literal name one 4-character group, and the decoder
            # reads the same characters from it for either: the second half would only add a
            # copy of the first one's match, which the duplicate drop below removes. Skipping
            # it halves the work on a flood of encoded prefixes (1.4 M hits in 10 MB).
            group = (hit + needle.offset, needle.align)
            if group in groups:
                continue
            groups.add(group)
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
    sorted by end too, and only the last one starting before a match's end can overlap it.

    The cost is O(n log n) in the matches, whatever their order: one encoding (plainness level)
    at a time, each match is looked up by binary search among the earlier levels' kept spans of
    its secret, and compared with the last span kept at its own level (matches arrive in order
    of position, so that one is enough; out of order, a sorted insert keeps it exact). Each
    level's spans are then merged into the earlier ones in one linear pass. Inserting every
    span into one sorted list instead moved O(n) entries per insert when a key was seen both
    plainly and encoded many times over (100,000 of each: minutes).
    """
    kept: dict[str, list[Match]] = {}
    earlier: dict[str, tuple[list[int], list[int]]] = {}  # secret -> kept starts, kept ends
    ordered = sorted(matches, key=lambda m: plainness(m.encoding))
    at = 0
    while at < len(ordered):
        level = plainness(ordered[at].encoding)
        now: dict[str, tuple[list[int], list[int]]] = {}  # this level's kept spans
        while at < len(ordered) and plainness(ordered[at].encoding) == level:
            match = ordered[at]
            at += 1
            spans = earlier.get(match.secret)
            if spans is not None:
                before = bisect.bisect_left(spans[0], match.end)
                if before and spans[1][before - 1] > match.start:
                    continue
            starts, ends = now.setdefault(match.secret, ([], []))
            if not starts or starts[-1] < match.end:  # only the last one can overlap
                if starts and ends[-1] > match.start:
                    continue
                starts.append(match.start)
                ends.append(match.end)
            else:
                before = bisect.bisect_left(starts, match.end)
                if before and ends[before - 1] > match.start:
                    continue
                starts.insert(before, match.start)
                ends.insert(before, match.end)
            kept.setdefault(match.secret, []).append(match)
        for secret, (starts, ends) in now.items():
            if secret in earlier:
                old_starts, old_ends = earlier[secret]
                merged = sorted(zip(old_starts + starts, old_ends + ends, strict=True))
                earlier[secret] = ([s for s, _ in merged], [e for _, e in merged])
            else:
                earlier[secret] = (starts, ends)
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
