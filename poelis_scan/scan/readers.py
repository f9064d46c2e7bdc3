"""Whatever holds the bytes (an open file, memory, a pipe): read the head once, scan the bytes
as they are, and open them as an archive too when they start like one.

These three are the only places that make that choice for a source, so a new source (a
container image layer, another repository host) picks the one that fits how its bytes arrive
and gets archives, limits and line numbers for free. The raw bytes are always scanned: an
archive is an extra view, never a replacement (text that starts with ``PK\\3\\4`` or ``BZh9``
is still text), and ``archives.merge`` reports a key seen both ways once.
"""

from __future__ import annotations

import io
import os
from dataclasses import replace

from ..detect.matches import find_matches
from ..settings import DEFAULT, ScanSettings
from .magic import HEAD_SIZE, container_kind
from .stream import (
    CHUNK_SIZE,
    ReadInto,
    StreamResult,
    give_back,
    locate,
    prefixed,
    read_head,
    scan_stream,
    scan_windows,
    take_buffer,
    visible,
)


def scan_fd(fd: int, name: str = "", settings: ScanSettings = DEFAULT) -> StreamResult:
    """Scan an open regular file: the hot path of a directory scan.

    A regular file reads short only at its end, so a file that fits in one window costs one
    ``readv`` and one ``find``, and a file with no needle allocates nothing. An archive or
    compressed file (recognised by its first bytes, not its name) is also scanned member by
    member.
    """
    buf = take_buffer(CHUNK_SIZE)
    try:
        filled = os.readv(fd, [buf])
        kind = container_kind(bytes(buf[: min(filled, HEAD_SIZE)]))
        # An archive's two views are merged before anything is hidden (a key seen both ways
        # is one finding, and counted once).
        raw_settings = settings if kind is None else replace(settings, hidden_below=0)
        if filled < CHUNK_SIZE:
            matches, hidden = visible(find_matches(buf, 0, filled, filled, settings),
                                      raw_settings)
            raw = StreamResult(locate(buf, matches) if matches else [], filled, hidden=hidden)
        else:
            view = memoryview(buf)
            try:
                raw = scan_windows(lambda b: os.readv(fd, [b]), lambda o, n: os.pread(fd, n, o),
                                   buf, view, filled, raw_settings)
            finally:
                view.release()
    finally:
        give_back(buf)
    if kind is None:
        return raw
    with os.fdopen(fd, "rb", closefd=False) as stream:
        stream.seek(0)
        from .archives import scan_container

        result = scan_container(stream, kind, name, settings, raw.matches)
    result.size = raw.size
    return result


def scan_buffer(data: bytes, name: str = "", settings: ScanSettings = DEFAULT,
                archives: bool = True) -> StreamResult:
    """Scan bytes already in memory (a git object). ``archives=False`` for content that is
    never an archive even if it starts like one (a commit message)."""
    kind = container_kind(data[:HEAD_SIZE]) if archives else None
    matches = find_matches(data, 0, len(data), len(data), settings)
    hidden = 0
    if kind is None:
        matches, hidden = visible(matches, settings)
    raw = locate(data, matches) if matches else []
    if kind is None:
        return StreamResult(raw, len(data), hidden=hidden)
    from .archives import scan_container

    result = scan_container(io.BytesIO(data), kind, name, settings, raw)
    result.size = len(data)
    return result


def scan_pipe(readinto: ReadInto, name: str = "", settings: ScanSettings = DEFAULT,
              archives: bool = True) -> StreamResult:
    """Scan a stream that cannot seek (standard input, a large git object) as it arrives; an
    archive is also spooled (``Limits.max_spool_bytes``) and opened."""
    head = read_head(readinto, HEAD_SIZE)
    kind = container_kind(head) if archives else None
    if kind is not None:  # `cat release.tar.gz | poelis-scan scan -`
        from .archives import scan_spooled_stream

        return scan_spooled_stream(readinto, head, kind, name, settings)
    return scan_stream(prefixed(head, readinto), settings=settings)
