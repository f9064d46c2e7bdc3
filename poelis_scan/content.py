"""The content pipeline: a stream of bytes, read in bounded windows, in; located matches out.

Every source (files, standard input, later git blobs) hands its bytes to this module, so that
what is found, and where it is said to be, never depends on where the bytes came from or on
how they were cut into reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .detect import LOOKAHEAD, Match, find_matches

# One read. Large enough that per-read overhead vanishes, small enough that memory stays
# bounded whatever the file size: a scan holds at most CHUNK_SIZE + LOOKAHEAD bytes per file.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class LocatedMatch:
    """A match with its human position: 1-based line, 1-based column in characters."""

    match: Match
    offset: int
    line: int
    column: int

    @property
    def end_column(self) -> int:
        """One past the key's last character (the key is ASCII, so one column a byte)."""
        return self.column + (self.match.end - self.match.start)


_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))


def _char_count(data: bytes | bytearray | memoryview) -> int:
    """Characters in UTF-8 ``data``: every byte that does not continue a character.

    Unlike decoding, this adds up across a window boundary that splits a character.
    """
    return len(bytes(data).translate(None, _UTF8_CONTINUATION))


def locate(data: bytes | bytearray, matches: list[Match]) -> list[LocatedMatch]:
    """Give matches found in one in-memory buffer their line and column."""
    return [_locate_in(data, m, 0, 1, 0) for m in matches]


def _locate_in(
    buf: bytes | bytearray, match: Match, base: int, line_at_base: int, chars_before_base: int
) -> LocatedMatch:
    """Position of ``match`` (offsets relative to ``buf``) given the state at ``buf[0]``.

    ``chars_before_base`` counts the characters between the start of the line that is open at
    ``buf[0]`` and ``buf[0]``: it matters only when no newline precedes the match in ``buf``.
    """
    pos = match.start
    line = line_at_base + buf.count(b"\n", 0, pos)
    newline = buf.rfind(b"\n", 0, pos)
    if newline == -1:
        column = chars_before_base + _char_count(memoryview(buf)[:pos]) + 1
    else:
        column = _char_count(memoryview(buf)[newline + 1 : pos]) + 1
    shifted = Match(
        match.start + base, match.end + base, match.secret, match.confidence, match.reason
    )
    return LocatedMatch(shifted, base + pos, line, column)


@dataclass(slots=True)
class StreamResult:
    """What one stream held: its matches, and how many bytes were read from it."""

    matches: list[LocatedMatch]
    size: int


def scan_stream(read: Callable[[int], bytes], chunk_size: int = CHUNK_SIZE) -> StreamResult:
    """Scan everything ``read`` returns until it returns ``b""``, in bounded memory.

    Consecutive windows overlap by ``LOOKAHEAD`` bytes, and each needle is judged in exactly
    one window (the first one that holds all the bytes needed to judge it), so no key is lost
    or reported twice at a read boundary.
    """
    first = read(chunk_size)
    if not first:
        return StreamResult([], 0)
    second = read(chunk_size)
    if not second:  # the common case: the whole stream fit in one read
        return StreamResult(locate(first, find_matches(first)), len(first))

    buf = bytearray(first)
    buf += second
    base = 0  # stream offset of buf[0]
    decided = 0  # needles starting before this stream offset have been judged
    line_at_base = 1
    chars_before_base = 0
    found: list[LocatedMatch] = []
    eof = False
    while True:
        end = base + len(buf)
        limit = end if eof else end - LOOKAHEAD
        if limit > decided:
            for m in find_matches(buf, decided - base, limit - base):
                found.append(_locate_in(buf, m, base, line_at_base, chars_before_base))
            decided = limit
        if eof:
            return StreamResult(found, end)
        # Keep one byte before the next needle position: it decides whether a key is glued.
        drop = decided - 1 - base
        if drop > 0:
            newlines = buf.count(b"\n", 0, drop)
            if newlines:
                line_at_base += newlines
                chars_before_base = _char_count(buf[buf.rfind(b"\n", 0, drop) + 1 : drop])
            else:
                chars_before_base += _char_count(buf[:drop])
            del buf[:drop]
            base += drop
        chunk = read(chunk_size)
        if chunk:
            buf += chunk
        else:
            eof = True
