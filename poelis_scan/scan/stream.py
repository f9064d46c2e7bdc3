"""A stream of bytes, read in bounded windows, in; located matches (line, column) out.

Every source (files, standard input, archive members, git objects) has its bytes read here,
so that what is found, and where it is said to be, never depends on where the bytes came from
or on how they were cut into reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..detect.matches import LOOKAHEAD, LOOKBEHIND, Match, find_matches
from ..settings import DEFAULT, ScanSettings
from . import meter
from .allow import allowed_in_comment

# One read. Large enough that per-read overhead vanishes, small enough that memory stays
# bounded whatever the file size: a stream is scanned through one buffer of this size.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class LocatedMatch:
    """A match with its human position: 1-based line, 1-based column in characters."""

    match: Match
    offset: int
    line: int
    column: int
    member: str | None = None  # inside an archive: the member's path
    inline_allow: bool = False  # an allow comment on its line or the line before

    @property
    def end_column(self) -> int:
        """One past the last character of the key as written (encoded forms are ASCII, so one
        column a byte, except UTF-16: two bytes a column)."""
        width = self.match.end - self.match.start
        return self.column + (width // 2 if self.match.encoding.startswith("utf-16") else width)


_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))


@dataclass(slots=True)
class _LineState:
    """Where lines stand at stream offset ``offset``: the line number, the offset just after
    the last newline, and the UTF-8 characters between that and ``offset``."""

    offset: int = 0
    line: int = 1
    line_start: int = 0
    chars: int = 0

    def advance(self, data: bytes | bytearray, length: int) -> None:
        """Move the state over ``data[:length]``, the bytes that follow ``offset``."""
        newlines = data.count(b"\n", 0, length)
        if newlines:
            last = data.rfind(b"\n", 0, length)
            self.line += newlines
            self.line_start = self.offset + last + 1
            self.chars = _char_count(memoryview(data)[last + 1 : length])
        else:
            self.chars += _char_count(memoryview(data)[:length])
        self.offset += length


def _char_count(data: bytes | bytearray | memoryview) -> int:
    """Characters in UTF-8 ``data``: every byte that does not continue a character.

    Unlike decoding, this adds up across a window boundary that splits a character.
    """
    return len(bytes(data).translate(None, _UTF8_CONTINUATION))


def locate(data: bytes | bytearray, matches: list[Match]) -> list[LocatedMatch]:
    """Give matches found in one in-memory buffer (from its first byte) a line and column."""
    return list(_locate_all(data, matches, 0, _LineState()))


_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _locate_all(buf: bytes | bytearray, matches: list[Match], base: int, state: _LineState
                ) -> Iterator[LocatedMatch]:
    """Positions of ``matches`` (offsets relative to ``buf``, in order) given the line state at
    ``buf[0]``. Lines and characters are counted from one match to the next, never again from
    the window's start: 500,000 keys in a file cost 500,000 short counts, not a quadratic."""
    prev, line, newline, chars = 0, state.line, -1, state.chars
    for match in matches:
        pos = match.start
        if pos < prev:  # out of order: count again from the start
            prev, line, newline, chars = 0, state.line, -1, state.chars
        newlines = buf.count(b"\n", prev, pos)
        if newlines:
            line += newlines
            newline = buf.rfind(b"\n", prev, pos)
            chars = _char_count(memoryview(buf)[newline + 1 : pos])
        else:
            chars += _char_count(memoryview(buf)[prev:pos])
        prev = pos
        yield _locate_at(buf, match, base, state, line, newline, chars)


def _locate_at(buf: bytes | bytearray, match: Match, base: int, state: _LineState, line: int,
               newline: int, chars: int) -> LocatedMatch:
    """Position of ``match``: ``line`` is its line, ``newline`` the last newline before it in
    ``buf`` (-1: none), ``chars`` the characters between its line's start and it.

    Columns count characters: UTF-8 characters for text, UTF-16 code units for a key found in
    UTF-16 (whose newline is ``\n\0`` or ``\0\n``, one ``\n`` byte either way).
    """
    pos = match.start
    if match.encoding.startswith("utf-16"):
        if newline != -1:
            line_start = newline + 1 + (match.encoding == "utf-16le")
        elif base == 0 and state.line_start == 0 and bytes(buf[:2]) in _BOMS:
            line_start = 2
        else:
            line_start = state.line_start - base
        column = (pos - line_start) // 2 + 1
    else:
        column = chars + 1
    return LocatedMatch(match.shifted(base), base + pos, line, column,
                        inline_allow=_allowed_inline(buf, pos, match.end))


_LINE_LIMIT = 4096


def _allowed_inline(buf: bytes | bytearray, start: int, end: int) -> bool:
    """Whether the key's line, or the line before it, carries an allow marker in a comment
    (``scan/allow.py``: a marker in a string literal or a longer word does not count)."""
    line_start = buf.rfind(b"\n", max(start - _LINE_LIMIT, 0), start) + 1
    previous_start = buf.rfind(b"\n", max(line_start - 1 - _LINE_LIMIT, 0), max(line_start - 1, 0))
    first = previous_start + 1 if line_start > 0 else line_start
    line_end = buf.find(b"\n", end, end + _LINE_LIMIT)
    last = line_end if line_end != -1 else min(len(buf), end + _LINE_LIMIT)
    lines = bytes(buf[first:last]).split(b"\n")
    return any(allowed_in_comment(line) for line in lines[-2:])


_PLAIN_PREFIX = b"poelis_api_"
_DENSE = 64  # plain prefixes in a window above which it is searched in pieces
_PLAINNESS = {"plain": 0, "utf-16le": 1, "utf-16be": 1, "hex": 2, "base64": 3, "base64url": 3}


def find_window(buf: bytes | bytearray, start: int, stop: int, end: int,
                settings: ScanSettings = DEFAULT) -> list[Match]:
    """``find_matches`` over ``buf[start:stop]``, in pieces when candidates are dense.

    The detector's cost per call grows faster than its matches (it compares each with those
    of the same secret before it): a window of 18,000 copies of one key took minutes. A cheap
    count of the plain prefix (``bytes.count`` runs at memory speed) says when to cut the
    window into pieces of about 32 candidates; the pieces' matches are then merged as
    ``find_matches`` would (a key found plainly and through a decoding at overlapping bytes is
    kept once, plainest first), comparing each only with the last kept of its secret.
    """
    dense = buf.count(_PLAIN_PREFIX, start, stop)
    if dense <= _DENSE:
        return find_matches(buf, start, stop, end, settings)
    piece = max(2048, (stop - start) * 32 // dense)
    matches: list[Match] = []
    for at in range(start, stop, piece):
        matches += find_matches(buf, at, min(at + piece, stop), end, settings)
    return _drop_repeats(matches)


def _drop_repeats(matches: list[Match]) -> list[Match]:
    """Overlapping sightings of one secret (from neighbouring pieces), the plainest kept."""
    matches.sort(key=lambda m: m.start)
    last: dict[str, int] = {}  # secret -> index in kept of its last kept match
    kept: list[Match] = []
    for match in matches:
        index = last.get(match.secret)
        if index is not None and match.start < kept[index].end:
            if _PLAINNESS.get(match.encoding, 9) < _PLAINNESS.get(kept[index].encoding, 9):
                kept[index] = match
            continue
        last[match.secret] = len(kept)
        kept.append(match)
    return kept


@dataclass(slots=True)
class StreamResult:
    """What one stream held: its matches, how many bytes were read from it, and for an archive
    the notes (limits, damage) and how many members and expanded bytes were scanned."""

    matches: list[LocatedMatch]
    size: int
    notes: list[tuple[str, str]] = field(default_factory=list)
    members: int = 0
    expanded: int = 0
    hidden: int = 0  # matches below ``ScanSettings.hidden_below``: counted, not kept


def visible(matches: list[Match], settings: ScanSettings) -> tuple[list[Match], int]:
    """The matches to keep, and how many were below ``settings.hidden_below``."""
    floor = settings.hidden_below
    if not floor or not matches:
        return matches, 0
    kept = [m for m in matches if m.confidence.rank >= floor]
    return kept, len(matches) - len(kept)


ReadInto = Callable[[memoryview], int]
PRead = Callable[[int, int], bytes]  # (offset, size) -> bytes, like os.pread

# Bytes carried from one window into the next: enough to judge a needle that starts just before
# the window's decision limit, and the bytes before it that a decoder may look back at.
CARRY = LOOKBEHIND + LOOKAHEAD
_buffers = threading.local()


def take_buffer(size: int) -> bytearray:
    """A window buffer reused across the streams a thread scans: no allocation (and no fresh
    pages to fault in) per file. Nested scans (a member inside an archive) take another one."""
    free: list[bytearray] = _buffers.__dict__.setdefault("free", [])
    if free and len(free[-1]) == size:
        return free.pop()
    return bytearray(size)


def give_back(buf: bytearray) -> None:
    free: list[bytearray] = _buffers.__dict__.setdefault("free", [])
    if len(free) < 4:
        free.append(buf)


def scan_stream(
    readinto: ReadInto, chunk_size: int = CHUNK_SIZE, pread: PRead | None = None,
    settings: ScanSettings = DEFAULT,
) -> StreamResult:
    """Scan everything ``readinto`` delivers until it returns 0, in bounded memory.

    The window holds at most ``chunk_size`` bytes; consecutive windows overlap by ``CARRY``
    bytes and each needle is judged in exactly one window (the first that holds every byte
    needed to judge it), so no key is lost or reported twice where two reads meet. Short reads
    (pipes) are fine: the window is filled until it is full or the stream ends.

    Lines are counted as windows slide by, unless ``pread(offset, size)`` can read the stream
    again (a regular file): then they are counted only when a later window holds a key, which
    spares a pass over every large file without one.
    """
    if chunk_size <= CARRY:
        raise ValueError(f"chunk_size must exceed {CARRY}")
    buf = take_buffer(chunk_size)
    view = memoryview(buf)
    try:
        return scan_windows(readinto, pread, buf, view, 0, settings)
    finally:
        view.release()
        give_back(buf)


def prefixed(head: bytes, readinto: ReadInto) -> ReadInto:
    """A ``readinto`` that first delivers ``head`` (bytes already read), then the rest."""
    pending = memoryview(head)

    def read(buffer: memoryview) -> int:
        nonlocal pending
        if pending:
            n = min(len(buffer), len(pending))
            buffer[:n] = pending[:n]
            pending = pending[n:]
            return n
        return readinto(buffer)

    return read


def read_head(readinto: ReadInto, size: int) -> bytes:
    """Up to ``size`` first bytes of a stream that may deliver them in pieces (a pipe)."""
    head = bytearray(size)
    view = memoryview(head)
    filled = 0
    while filled < size and (n := readinto(view[filled:])):
        filled += n
    view.release()
    return bytes(head[:filled])


def _catch_up(state: _LineState, target: int, pread: PRead) -> None:
    """Advance ``state`` to stream offset ``target`` by reading the skipped bytes again."""
    while state.offset < target:
        piece = pread(state.offset, min(CHUNK_SIZE, target - state.offset))
        if not piece:  # the file shrank under us: keep what we know rather than fail
            return
        state.advance(piece, len(piece))


def scan_windows(
    readinto: ReadInto, pread: PRead | None, buf: bytearray, view: memoryview, filled: int,
    settings: ScanSettings,
) -> StreamResult:
    """The window loop; ``buf[:filled]`` already holds the stream's first bytes."""
    mark = meter.mark()
    try:
        return _scan_windows(readinto, pread, buf, view, filled, settings)
    finally:
        meter.rewind(mark)  # the stream's size now travels with its result


def _scan_windows(
    readinto: ReadInto, pread: PRead | None, buf: bytearray, view: memoryview, filled: int,
    settings: ScanSettings,
) -> StreamResult:
    found: list[LocatedMatch] = []
    hidden = 0
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
        matches, below = visible(find_window(buf, start, limit, filled, settings), settings)
        hidden += below
        if matches and state.offset < base:
            assert pread is not None
            _catch_up(state, base, pread)
        found.extend(_locate_all(buf, matches, base, state))
        if eof:
            return StreamResult(found, base + filled, hidden=hidden)
        # Slide: keep buf[limit - LOOKBEHIND : filled], what the next window may look back at.
        drop = limit - LOOKBEHIND
        if pread is None:
            state.advance(buf, drop)
        view[: filled - drop] = view[drop:filled]
        meter.add(drop)
        base += drop
        filled -= drop
        start = LOOKBEHIND
