"""Bytes read so far inside streams still being scanned: what lets the progress line move
within one large file or blob, not only when a whole batch of work comes back.

The window loop calls ``add`` as each window slides by and takes its bytes back when the
stream ends (the finished stream's size then arrives with its batch). In this process (serial
or threaded scans) the count is a locked integer and a watcher may redraw on the spot; forked
workers each write their own slot of a small shared memory map, created before the fork, that
the parent sums when it redraws.
"""

from __future__ import annotations

import mmap
import struct
import threading
import time
from collections.abc import Callable

from .parallel import worker_start_hooks

_SLOTS = 64
_SLOT = struct.Struct("<q")
_ALL = struct.Struct(f"<{_SLOTS}q")
WATCH_SECONDS = 0.1



class _Meter:
    """The process's meter (one per process: a forked worker resets its copy)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = 0
        self.shared: mmap.mmap | None = None
        self.slot = -1  # this forked worker's slot; -1 in the scanning process itself
        self.watcher: Callable[[], None] | None = None
        self.watched_at = 0.0
        self.thread = threading.local()  # what this thread added and has not taken back


_meter = _Meter()


def share() -> None:
    """Called in the parent before forking workers: a zeroed shared slot per worker."""
    if _meter.shared is None:
        _meter.shared = mmap.mmap(-1, _ALL.size)
    _ALL.pack_into(_meter.shared, 0, *([0] * _SLOTS))


def watch(watcher: Callable[[], None] | None) -> None:
    """``watcher`` is called (at most every ``WATCH_SECONDS``) as streams in this process
    advance: a serial scan of one large file has no other moment to redraw."""
    _meter.watcher = watcher


def mark() -> int:
    """Where this thread's count stands: ``rewind(mark)`` takes back what was added since."""
    total: int = getattr(_meter.thread, "total", 0)
    return total


def rewind(point: int) -> None:
    add(point - mark())


def add(count: int) -> None:
    m = _meter
    m.thread.total = getattr(m.thread, "total", 0) + count
    if m.slot >= 0:
        assert m.shared is not None
        offset = m.slot * _SLOT.size
        _SLOT.pack_into(m.shared, offset, _SLOT.unpack_from(m.shared, offset)[0] + count)
        return
    with m.lock:
        m.pending += count
    watcher = m.watcher
    if watcher is not None and count > 0:
        now = time.monotonic()
        if now - m.watched_at >= WATCH_SECONDS and m.lock.acquire(blocking=False):
            try:
                m.watched_at = now
                watcher()
            finally:
                m.lock.release()


def pending() -> int:
    """Bytes read inside unfinished streams, in this process and in every worker."""
    total = _meter.pending
    if _meter.shared is not None:
        total += sum(_ALL.unpack_from(_meter.shared, 0))
    return max(total, 0)


def _worker_started(index: int) -> None:
    m = _meter
    m.pending, m.watcher, m.thread = 0, None, threading.local()
    if m.shared is not None:
        m.slot = index % _SLOTS
        _SLOT.pack_into(m.shared, m.slot * _SLOT.size, 0)


worker_start_hooks.append(_worker_started)
