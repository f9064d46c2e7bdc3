"""The engines that find needles: Hyperscan, or ``bytes.find``.

Hyperscan (an optional, binary dependency) finds all needles in one pass at about 5 GB/s,
faster than ``bytes.find`` finds the plain needle alone. Without it each needle costs one
``bytes.find`` pass, and the UTF-16 needle is only searched in windows that hold a NUL byte
(text never does). Both engines return the same hits; the tests check that.

Which needles and which engine are arguments (``ScanSettings``), never process state: a
searcher is built once per thread for each combination asked for.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ..settings import DEFAULT, ScanSettings
from .encodings import Needle, needles

_NUL = b"\x00"

Hit = tuple[int, Needle]  # (offset of the needle's first byte, which needle)
Searcher = Callable[[bytes | bytearray, int, int, int], list[Hit]]


def find_searcher(wanted: tuple[Needle, ...]) -> Searcher:
    """The pure-Python engine over ``wanted``: one ``bytes.find`` pass per needle."""

    def search(data: bytes | bytearray, start: int, stop: int, end: int) -> list[Hit]:
        """All needles beginning in ``data[start:stop]`` (reading no byte at ``end`` or beyond)."""
        hits: list[Hit] = []
        has_nul: bool | None = None
        for needle in wanted:
            if needle.encoding == "utf-16":
                if has_nul is None:  # memchr: nearly free, and text never holds a NUL
                    has_nul = data.find(_NUL, start, end) != -1
                if not has_nul:
                    continue
            pattern = needle.pattern
            search_end = min(end, stop + len(pattern) - 1)
            pos = data.find(pattern, start, search_end)
            while pos != -1:
                hits.append((pos, needle))
                pos = data.find(pattern, pos + 1, search_end)
        if len(hits) > 1:
            hits.sort(key=lambda hit: hit[0])
        return hits

    return search


def _hyperscan_searcher(wanted: tuple[Needle, ...], engine: str) -> Searcher | None:
    """A one-pass searcher if the ``hyperscan`` module is installed and works here."""
    forced = os.environ.get("POELIS_SCAN_ENGINE", "auto")
    if forced == "find" or (engine == "find" and forced != "hyperscan"):
        return None
    try:
        import hyperscan
    except ImportError:
        return None
    try:
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        database.compile(
            expressions=[_escape(n.pattern) for n in wanted],
            ids=list(range(len(wanted))),
            elements=len(wanted),
            flags=[0] * len(wanted),
        )
    except Exception:  # an unsupported CPU or a broken build: the pure-Python engine still works
        return None
    longest = max(len(n.pattern) for n in wanted)

    def search(data: bytes | bytearray, start: int, stop: int, end: int) -> list[Hit]:
        search_end = min(end, stop + longest - 1)
        if search_end <= start:
            return []
        hits: list[Hit] = []

        def on_match(index: int, _from: int, to: int, _flags: int, _context: object) -> None:
            needle = wanted[index]
            pos = start + to - len(needle.pattern)
            if pos < stop:
                hits.append((pos, needle))

        with memoryview(data) as view:
            # Any buffer will do (the stubs say bytes or str): a memoryview slice copies nothing.
            database.scan(view[start:search_end],  # type: ignore[type-var]
                          match_event_handler=on_match)
        if len(hits) > 1:
            hits.sort(key=lambda hit: hit[0])
        return hits

    return search


def _escape(pattern: bytes) -> bytes:
    """Hyperscan takes regular expressions: write every byte as ``\\xHH``."""
    return b"".join(b"\\x%02x" % byte for byte in pattern)


_local = threading.local()  # a Hyperscan database's scratch space serves one thread at a time


def searcher(settings: ScanSettings = DEFAULT) -> Searcher:
    """The engine ``settings`` ask for (the fastest one here, for ``auto``), built once per
    thread and per (needles, engine) combination."""
    key = (settings.decode, settings.engine)
    cache: dict[tuple[bool, str], Searcher] | None = getattr(_local, "searchers", None)
    if cache is None:
        cache = _local.searchers = {}
    found = cache.get(key)
    if found is None:
        wanted = needles(settings.decode)
        found = cache[key] = _hyperscan_searcher(wanted, settings.engine) or find_searcher(wanted)
    return found
