"""Bytes in, matches out: the needle-first detection engine.

``bytes.find`` on the literal prefix runs at memory speed (about 2.4 GB/s here, as fast as
``re``/``regex`` prefiltering and 40x faster than a full pattern over the data), so the grammar
and the randomness judgement only ever run around a hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .grammar import (
    GLUE_BEFORE,
    MAX_BODY,
    MAX_KEY,
    MIN_BODY,
    PREFIX,
    Confidence,
    classify_body,
)

# Capped at MAX_BODY + 1 characters: a run longer than MAX_BODY is not a key, and the cap keeps
# the work per hit constant even inside megabytes of base64.
_BODY_RUN = re.compile(rb"[A-Za-z0-9_-]{0,%d}" % (MAX_BODY + 1))

# Bytes a scanner must still see after a needle's first byte to judge it: the prefix, the
# longest body and one byte proving the body ended.
LOOKAHEAD = MAX_KEY + 1


@dataclass(frozen=True, slots=True)
class Match:
    """One key found in a byte string: ``data[start:end]`` is the key."""

    start: int
    end: int
    secret: str
    confidence: Confidence
    reason: str

    def __repr__(self) -> str:  # never print the secret itself, even in a debugger or a test
        from .findings import redact

        return (
            f"Match(start={self.start}, end={self.end}, secret={redact(self.secret)!r}, "
            f"confidence={self.confidence.value!r})"
        )


def _match_at(data: bytes | bytearray, pos: int, end: int) -> Match | None:
    """Judge the needle at ``pos`` (``data[:end]`` is valid): a key if the grammar holds."""
    if pos > 0 and data[pos - 1] in GLUE_BEFORE:
        return None
    body_start = pos + len(PREFIX)
    run = _BODY_RUN.match(data, body_start, end)
    assert run is not None  # the pattern also matches the empty run
    length = run.end() - body_start
    if not MIN_BODY <= length <= MAX_BODY:
        return None
    body = bytes(data[body_start : run.end()]).decode("ascii")
    confidence, reason = classify_body(body)
    return Match(pos, run.end(), PREFIX.decode("ascii") + body, confidence, reason)


def find_matches(
    data: bytes | bytearray, start: int = 0, stop: int | None = None, end: int | None = None
) -> list[Match]:
    """Every key whose prefix begins in ``data[start:stop]``, reading no byte at ``end`` or after.

    Bytes between ``stop`` and ``end`` are read to finish judging a needle that begins before
    ``stop``; a streaming caller leaves the undecided tail to its next window that way, and
    passes ``end`` because its reused buffer holds stale bytes after the valid ones.
    """
    if end is None:
        end = len(data)
    if stop is None:
        stop = end
    matches: list[Match] = []
    search_end = min(end, stop + len(PREFIX) - 1)
    pos = data.find(PREFIX, start, search_end)
    while pos != -1:
        match = _match_at(data, pos, end)
        if match is not None:
            matches.append(match)
        pos = data.find(PREFIX, pos + 1, search_end)
    return matches


def scan_bytes(data: bytes | bytearray, min_confidence: Confidence | str = Confidence.LOW) -> list[Match]:
    """Find every Poelis API key in ``data``; offsets are byte offsets into ``data``.

    ``min_confidence`` drops matches below it; the default keeps everything, including
    placeholders and the documented example, each marked ``low``.
    """
    floor = Confidence(min_confidence).rank
    return [m for m in find_matches(data) if m.confidence.rank >= floor]
