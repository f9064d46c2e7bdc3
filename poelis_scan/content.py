"""The content pipeline: a stream of bytes, read in bounded windows, in; located matches out.

Every source (files, standard input, later git blobs) hands its bytes to this module, so that
what is found, and where it is said to be, never depends on where the bytes came from or on
how they were cut into reads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .detect import LOOKAHEAD, Match, find_matches
from .grammar import PREFIX

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
    """Give matches found in one in-memory buffer (from its first byte) a line and column."""
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


ReadInto = Callable[[memoryview], int]
PRead = Callable[[int, int], bytes]  # (offset, size) -> bytes, like os.pread

# Bytes carried from one window into the next: enough to judge a needle that starts just before
# the window's decision limit, plus the byte before it (which decides whether a key is glued).
_CARRY = LOOKAHEAD + 1
_buffers = threading.local()


def _take_buffer(size: int) -> bytearray:
    """A window buffer reused across the streams a thread scans: no allocation (and no fresh
    pages to fault in) per file. Nested scans (a member inside an archive) take another one."""
    free: list[bytearray] = _buffers.__dict__.setdefault("free", [])
    if free and len(free[-1]) == size:
        return free.pop()
    return bytearray(size)


def _give_back(buf: bytearray) -> None:
    free: list[bytearray] = _buffers.__dict__.setdefault("free", [])
    if len(free) < 4:
        free.append(buf)


@dataclass(slots=True)
class _LineState:
    """Line number and characters since that line's start, at stream offset ``offset``."""

    offset: int = 0
    line: int = 1
    chars: int = 0

    def advance(self, data: bytes | bytearray, length: int) -> None:
        """Move the state over ``data[:length]``, the bytes that follow ``offset``."""
        newlines = data.count(b"\n", 0, length)
        if newlines:
            self.line += newlines
            self.chars = _char_count(memoryview(data)[data.rfind(b"\n", 0, length) + 1 : length])
        else:
            self.chars += _char_count(memoryview(data)[:length])
        self.offset += length


def scan_stream(
    readinto: ReadInto, chunk_size: int = CHUNK_SIZE, pread: PRead | None = None
) -> StreamResult:
    """Scan everything ``readinto`` delivers until it returns 0, in bounded memory.

    The window holds at most ``chunk_size`` bytes; consecutive windows overlap by ``_CARRY``
    bytes and each needle is judged in exactly one window (the first that holds every byte
    needed to judge it), so no key is lost or reported twice where two reads meet. Short reads
    (pipes) are fine: the window is filled until it is full or the stream ends.

    Lines are counted as windows slide by, unless ``pread(offset, size)`` can read the stream
    again (a regular file): then they are counted only when a later window holds a key, which
    spares a pass over every large file without one.
    """
    if chunk_size <= _CARRY:
        raise ValueError(f"chunk_size must exceed {_CARRY}")
    buf = _take_buffer(chunk_size)
    view = memoryview(buf)
    try:
        return _scan_windows(readinto, pread, buf, view, 0)
    finally:
        view.release()
        _give_back(buf)


def scan_fd(fd: int) -> StreamResult:
    """Scan an open regular file: the hot path of a directory scan.

    A regular file reads short only at its end, so a file that fits in one window costs one
    ``readv`` and one ``find``, and a file with no needle allocates nothing.
    """
    buf = _take_buffer(CHUNK_SIZE)
    try:
        filled = os.readv(fd, [buf])
        if filled < CHUNK_SIZE:
            if buf.find(PREFIX, 0, filled) == -1:
                return StreamResult([], filled)
            return StreamResult(locate(buf, find_matches(buf, 0, filled, filled)), filled)
        view = memoryview(buf)
        try:
            return _scan_windows(
                lambda b: os.readv(fd, [b]), lambda o, n: os.pread(fd, n, o), buf, view, filled
            )
        finally:
            view.release()
    finally:
        _give_back(buf)


def _catch_up(state: _LineState, target: int, pread: PRead) -> None:
    """Advance ``state`` to stream offset ``target`` by reading the skipped bytes again."""
    while state.offset < target:
        piece = pread(state.offset, min(CHUNK_SIZE, target - state.offset))
        if not piece:  # the file shrank under us: keep what we know rather than fail
            return
        state.advance(piece, len(piece))


def _scan_windows(
    readinto: ReadInto, pread: PRead | None, buf: bytearray, view: memoryview, filled: int
) -> StreamResult:
    """The window loop; ``buf[:filled]`` already holds the stream's first bytes."""
    found: list[LocatedMatch] = []
    base = 0  # stream offset of buf[0]
    start = 0  # needles starting before buf[start] were judged in an earlier window
    state = _LineState()  # known at state.offset, which is base unless pread defers it
    size = len(buf)
    while True:
        eof = False
        while filled < size:
            n = readinto(view[filled:])
            if not n:
                eof = True
                break
            filled += n
        limit = filled if eof else filled - LOOKAHEAD
        matches = find_matches(buf, start, limit, filled)
        if matches and state.offset < base:
            assert pread is not None
            _catch_up(state, base, pread)
        for m in matches:
            found.append(_locate_in(buf, m, base, state.line, state.chars))
        if eof:
            return StreamResult(found, base + filled)
        # Slide: keep buf[limit - 1 : filled] (the byte before the next needle position on).
        drop = limit - 1
        if pread is None:
            state.advance(buf, drop)
        view[: filled - drop] = view[drop:filled]
        base += drop
        filled -= drop
        start = 1
