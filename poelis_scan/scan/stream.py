"""A stream of bytes, read in bounded windows, in; located matches (line, column) out.

Every source (files, standard input, archive members, git objects) has its bytes read here,
so that what is found, and where it is said to be, never depends on where the bytes came from
or on how they were cut into reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..detect.matches import LOOKAHEAD, LOOKBEHIND, Match, find_matches, plainness
from ..settings import DEFAULT, ScanSettings
from . import meter
from .allow import allowed_in_comment
from .newlines import count_newlines

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
class LineState:
    """Where lines stand at stream offset ``offset``: its line number, the stream offset of
    the last newline before it (-1: none yet), and the UTF-8 characters between the two.

    A state counted from the start of a piece of the stream (as if the piece were a stream of
    its own) is completed by the state where the piece begins: ``then``. That is what lets
    workers count the lines of a file's ranges at the same time.
    """

    offset: int = 0
    line: int = 1
    newline: int = -1
    chars: int = 0

    def advance(self, data: bytes | bytearray, start: int, stop: int) -> None:
        """Move the state over ``data[start:stop]``, the bytes that follow ``offset``."""
        newlines = count_newlines(data, start, stop)
        if newlines:
            last = data.rfind(b"\n", start, stop)
            self.line += newlines
            self.newline = self.offset + last - start
            self.chars = _char_count(memoryview(data)[last + 1 : stop])
        else:
            self.chars += _char_count(memoryview(data)[start:stop])
        self.offset += stop - start

    def then(self, later: LineState) -> LineState:
        """The state at ``later.offset``, given ``later`` was counted from ``self.offset`` on
        (line 1, no newline) and ``self`` is the state there."""
        if later.newline == -1:
            return LineState(later.offset, self.line, self.newline, self.chars + later.chars)
        return LineState(later.offset, self.line + later.line - 1, later.newline, later.chars)


def _char_count(data: bytes | bytearray | memoryview) -> int:
    """Characters in UTF-8 ``data``: every byte that does not continue a character.

    Unlike decoding, this adds up across a window boundary that splits a character.
    """
    return len(bytes(data).translate(None, _UTF8_CONTINUATION))


def locate(data: bytes | bytearray, matches: list[Match]) -> list[LocatedMatch]:
    """Give matches found in one in-memory buffer (from its first byte) a line and column."""
    return list(locate_in(data, matches, 0, LineState(), starts_with_bom(data)))


_BOMS = (b"\xff\xfe", b"\xfe\xff")


def starts_with_bom(head: bytes | bytearray) -> bool:
    """Whether a stream starting with ``head`` starts with a UTF-16 byte order mark (the first
    line's UTF-16 columns are then counted after it)."""
    return bytes(head[:2]) in _BOMS


def locate_in(buf: bytes | bytearray, matches: list[Match], base: int, state: LineState,
              bom: bool, valid: int | None = None) -> Iterator[LocatedMatch]:
    """Positions of ``matches`` (offsets relative to ``buf``, whose first byte is at stream
    offset ``base``; in order, none before ``state.offset``) given the line state at
    ``state.offset``. Lines and characters are counted from one match to the next, never
    again from the window's start: 500,000 keys in a file cost 500,000 short counts, not a
    quadratic."""
    origin = state.offset - base
    valid = len(buf) if valid is None else valid
    at = LineState(state.offset, state.line, state.newline, state.chars)
    prev = origin
    for match in matches:
        pos = match.start
        if pos < prev:  # out of order: count again from the start
            at = LineState(state.offset, state.line, state.newline, state.chars)
            prev = origin
        at.advance(buf, prev, pos)
        prev = pos
        yield located(match.shifted(base), at, bom, _allowed_inline(buf, pos, match.end, valid))


def located(match: Match, at: LineState, bom: bool, inline_allow: bool) -> LocatedMatch:
    """``match`` (stream offsets) with its line and column, ``at`` being the state at its start.

    Columns count characters: UTF-8 characters for text, UTF-16 code units for a key found in
    UTF-16 (whose newline is ``\n\0`` or ``\0\n``, one ``\n`` byte either way; its line starts
    after both bytes).
    """
    pos = match.start
    if match.encoding.startswith("utf-16"):
        if at.newline != -1:
            line_start = at.newline + 1 + (match.encoding == "utf-16le")
        else:
            line_start = 2 if bom else 0
        column = (pos - line_start) // 2 + 1
    else:
        column = at.chars + 1
    return LocatedMatch(match, pos, at.line, column, inline_allow=inline_allow)


def join(kept: list[LocatedMatch], new: list[LocatedMatch]) -> None:
    """Append ``new`` (matches judged after those in ``kept``) to ``kept``, keeping one key seen
    twice across the boundary once, as ``find_matches`` does within one buffer: the plainest
    sighting, else the first.

    Two windows (or two spans) meet between two needles of one key read two ways (UTF-16 text
    read one byte early is UTF-16BE of the same key; a plain key inside base64-looking text):
    each side judges its own needle, and without this both would be reported.
    """
    if not kept or not new:
        kept.extend(new)
        return
    horizon = new[0].match.start - LOOKAHEAD  # no match starting before this reaches a new one
    tail = len(kept)
    while tail and kept[tail - 1].match.start >= horizon:
        tail -= 1
    recent = range(tail, len(kept))
    for lm in new:
        for index in recent:
            old = kept[index].match
            if old.secret == lm.match.secret and lm.match.start < old.end:
                if plainness(lm.match.encoding) < plainness(old.encoding):
                    kept[index] = lm
                break
        else:
            kept.append(lm)


_LINE_LIMIT = 4096  # how far from a key its line and the line before are read for a marker


def _allowed_inline(buf: bytes | bytearray, start: int, end: int, valid: int) -> bool:
    """Whether the key's line, or the line before it, carries an allow marker in a comment
    (``scan/allow.py``: a marker in a string literal or a longer word does not count).

    The lines are read at most ``_LINE_LIMIT`` bytes from the key either way (and before the
    key's line start), never past ``valid`` (a reused window buffer holds stale bytes there):
    the same bytes whichever window or span the key was judged in (``BEHIND``, ``AHEAD``).
    """
    floor = max(start - _LINE_LIMIT, 0)
    newline = buf.rfind(b"\n", floor, start)
    if newline == -1:
        first = floor
    else:
        before = max(newline - _LINE_LIMIT, 0)
        first = buf.rfind(b"\n", before, newline) + 1 or before
    ceiling = min(valid, end + _LINE_LIMIT)
    line_end = buf.find(b"\n", end, ceiling)
    lines = bytes(buf[first : line_end if line_end != -1 else ceiling]).split(b"\n")
    return any(allowed_in_comment(line) for line in lines[-2:])


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

# What a window keeps before the needles it judges and reads after them: what decoders look at
# (``LOOKBEHIND``, ``LOOKAHEAD``) and the lines an allow marker may be on (``_allowed_inline``).
# Even, like every window's start: the UTF-16 decoder reads the byte order off the parity of
# an offset in the buffer.
BEHIND = max(LOOKBEHIND, 2 * _LINE_LIMIT)
AHEAD = LOOKAHEAD + _LINE_LIMIT
CARRY = BEHIND + AHEAD
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


def _catch_up(state: LineState, target: int, pread: PRead) -> None:
    """Advance ``state`` to stream offset ``target`` by reading the skipped bytes again."""
    while state.offset < target:
        piece = pread(state.offset, min(_CATCH_UP_PIECE, target - state.offset))
        if not piece:  # the file shrank under us: keep what we know rather than fail
            return
        state.advance(piece, 0, len(piece))


_CATCH_UP_PIECE = 8 << 20  # re-read in large pieces: one system call and one count each


def scan_windows(
    readinto: ReadInto, pread: PRead | None, buf: bytearray, view: memoryview, filled: int,
    settings: ScanSettings,
) -> StreamResult:
    """The window loop; ``buf[:filled]`` already holds the stream's first bytes."""
    mark = meter.mark()
    try:
        return window_loop(readinto, pread, buf, view, filled, settings)[0]
    finally:
        meter.rewind(mark)  # the stream's size now travels with its result


def window_loop(
    readinto: ReadInto, pread: PRead | None, buf: bytearray, view: memoryview, filled: int,
    settings: ScanSettings, origin: int = 0, first: int = 0, last: int | None = None,
) -> tuple[StreamResult, LineState]:
    """Every key that starts at stream offsets ``first`` to ``last`` (or the end).

    ``buf[:filled]`` holds the stream from offset ``origin`` on, and ``readinto`` delivers
    the rest. For a span of a file (``first > 0`` or ``last`` given; ``spans.py``) needles up to
    ``LOOKBEHIND`` bytes either side are judged too, since a key may start that far before its
    needle, and only keys whose first byte is inside the span are kept: each key belongs to
    exactly one span. ``buf`` must then start ``BEHIND`` bytes before the first needle judged,
    and ``readinto`` deliver ``LOOKBEHIND + AHEAD`` bytes past ``last``.

    Lines are counted from ``first`` as if the stream began there; the state at the end
    (``last`` or the end of the stream) is returned with the result, whose size is the bytes
    the range covers.
    """
    spanned = first > 0 or last is not None
    judge_to = None if last is None else last + LOOKBEHIND
    found: list[LocatedMatch] = []
    hidden = 0
    base = origin  # stream offset of buf[0]
    start = max(first - LOOKBEHIND, 0) if spanned else first  # first needle judged, in buf
    start -= origin
    state = LineState(offset=first)  # known at state.offset: >= base, < base unless deferred
    bom = False
    size = len(buf)
    while True:
        eof = False
        while filled < size:
            n = readinto(view[filled:])
            if not n:
                eof = True
                break
            filled += n
        if first == 0 and base == 0:
            bom = starts_with_bom(buf)
        limit = filled if eof else filled - AHEAD
        done = eof
        if judge_to is not None and base + limit >= judge_to:
            limit, done = judge_to - base, True
        matches = find_matches(buf, start, limit, filled, settings)
        if spanned:
            matches = [m for m in matches
                       if first <= base + m.start and (last is None or base + m.start < last)]
        matches, below = visible(matches, settings)
        hidden += below
        if matches and state.offset < base:
            assert pread is not None
            _catch_up(state, base, pread)
        join(found, list(locate_in(buf, matches, base, state, bom, filled)))
        if done:
            end = base + limit if last is None else min(base + limit, last)
            end = max(end, first)  # a stream that ended before the span: an empty span
            if pread is None and end > state.offset:  # (deferred: left to whoever needs it)
                state.advance(buf, state.offset - base, end - base)
            return StreamResult(found, end - first, hidden=hidden), state
        # Slide: keep buf[limit - BEHIND : filled], what the next window may look back at.
        drop = limit - BEHIND
        if pread is None and base + drop > state.offset:
            state.advance(buf, state.offset - base, drop)
        view[: filled - drop] = view[drop:filled]
        meter.add(drop)
        base += drop
        filled -= drop
        start = BEHIND
