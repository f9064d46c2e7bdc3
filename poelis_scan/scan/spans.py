"""One large regular file cut into spans that workers scan at the same time.

A single multi-gigabyte log used to keep one core busy while the others idled. Each span is
scanned by the window loop every stream uses (``stream.window_loop``), with the same boundary
rule as between two windows: a span reads the bytes a decoder or an allow marker may need
around it, judges the needles near it, and keeps exactly the keys whose first byte is inside
it (``window_loop``), so no key is lost or reported twice where two spans meet.

Each span counts its lines as if it were a file of its own; ``assemble`` then walks the spans
in order, carrying the line state from one to the next (``LineState.then``), and gives every
match the line and column a single pass would have given it. Counting every span's lines
(rather than only up to a key, as a single pass does) is what makes the spans independent;
with NumPy that costs about an eighth of the search (``newlines.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..detect.matches import LOOKBEHIND
from ..settings import ScanSettings
from . import meter
from .stream import (
    AHEAD,
    BEHIND,
    CHUNK_SIZE,
    LineState,
    LocatedMatch,
    give_back,
    join,
    located,
    take_buffer,
    window_loop,
)

SPAN_MIN = 32 << 20  # no span is smaller: a span costs a task, a window buffer and a seek
SPLIT_FROM = 2 * SPAN_MIN  # files this large are cut (when there are several workers)
SPANS_PER_JOB = 4  # several spans a worker: one slow span (a key flood) does not hold the rest


def plan(size: int, jobs: int) -> list[tuple[int, int | None]]:
    """The spans ``[first, last)`` of a file of ``size`` bytes for ``jobs`` workers, or ``[]``
    when it is not worth cutting (one worker, or too small). The last span runs to the end of
    the file, whatever its size is by then (a log still being written is read to its end)."""
    if jobs < 2 or size < SPLIT_FROM:
        return []
    count = max(2, min(size // SPAN_MIN, jobs * SPANS_PER_JOB))
    cuts = [size * i // count & ~1 for i in range(count)]  # even: see scan_span
    return [(first, cuts[i + 1] if i + 1 < count else None) for i, first in enumerate(cuts)]


@dataclass(slots=True)
class SpanResult:
    """What one span held: matches with lines counted from the span's start, and the line
    state at its end (which the next span's lines continue from)."""

    first: int
    matches: list[LocatedMatch]
    end: LineState
    size: int  # bytes judged
    hidden: int  # matches below the confidence floor: counted, not kept


def scan_span(fd: int, first: int, last: int | None, settings: ScanSettings,
              chunk_size: int = CHUNK_SIZE) -> SpanResult:
    """Scan the needles starting in ``[first, last)`` of the open regular file ``fd``;
    ``OSError`` if the file no longer reaches that far.

    ``first`` must be even, as must ``chunk_size``: the UTF-16 decoder tells the byte order
    by the parity of a needle's offset in the buffer, which is its parity in the file only
    while every window starts at an even offset.
    """
    if first % 2 or chunk_size % 2:
        raise ValueError("spans start at even offsets and windows have an even size")
    origin = max(0, first - LOOKBEHIND - BEHIND)
    stop = None if last is None else last + LOOKBEHIND + AHEAD
    position = origin
    os.lseek(fd, origin, os.SEEK_SET)

    def readinto(window: memoryview) -> int:
        nonlocal position
        want = len(window) if stop is None else min(len(window), stop - position)
        if want <= 0:
            return 0
        n = os.readv(fd, [window[:want]])
        position += n
        return n

    buf = take_buffer(chunk_size)
    view = memoryview(buf)
    mark = meter.mark()
    try:
        result, end = window_loop(readinto, None, buf, view, 0, settings, origin, first, last)
    finally:
        meter.rewind(mark)  # the span's size travels with its result
        view.release()
        give_back(buf)
    if result.size < (int(first > 0) if last is None else last - first):
        # The file ended before the span did: it shrank since it was cut (a rotated log).
        raise OSError(0, "changed while it was read")
    return SpanResult(first, result.matches, end, result.size, result.hidden)


def assemble(spans: list[SpanResult], bom: bool) -> list[LocatedMatch]:
    """Every span's matches with the lines and columns of one pass over the whole file.

    ``spans`` are the file's spans, all of them, in any order; ``bom`` says whether the file
    starts with a UTF-16 byte order mark (UTF-16 columns on its first line count after it).
    """
    state = LineState()
    found: list[LocatedMatch] = []
    for span in sorted(spans, key=lambda s: s.first):
        if span.first != state.offset:
            raise ValueError(f"spans do not meet: one ends at {state.offset}, "
                             f"the next starts at {span.first}")
        join(found, [_continued(lm, state, bom) for lm in span.matches])
        state = state.then(span.end)
    return found


def _continued(lm: LocatedMatch, before: LineState, bom: bool) -> LocatedMatch:
    """``lm`` (lines counted from its span's start) given the line state where the span starts."""
    if lm.line > 1:  # a newline lies between the span's start and the key: only the line moves
        return LocatedMatch(lm.match, lm.offset, before.line + lm.line - 1, lm.column,
                            lm.member, lm.inline_allow)
    # On the span's first line: the column continues the line the previous span ended in.
    local = LineState(lm.offset, 1, -1, lm.column - 1)
    return located(lm.match, before.then(local), bom, lm.inline_allow)
