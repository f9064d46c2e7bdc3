"""The literal needles for every encoding of the key prefix, and the engines that find them.

Every way a key can be written has its own literal: ``poelis_api_`` itself, its UTF-16 form,
its base64 form at each of the three alignments a 3-byte group allows, and a stretch of its hex
form. Finding literals is the only work done on every byte; decoding happens around hits.

Two engines find them. Hyperscan (an optional, binary dependency) finds all needles in one
pass at about 5 GB/s, faster than ``bytes.find`` finds the plain needle alone. Without it each
needle costs one ``bytes.find`` pass, and the UTF-16 needle is only searched in windows that
hold a NUL byte (text never does). Both engines return the same hits; the tests check that.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .grammar import PREFIX

# How far around a needle's first byte a decoder may look. A scanner that streams must keep
# LOOKBEHIND bytes before, and have LOOKAHEAD bytes after, every needle it judges.
LOOKBEHIND = 32
LOOKAHEAD = 200


@dataclass(frozen=True, slots=True)
class Needle:
    """One literal. ``encoding`` names its decoder; ``offset`` says where, relative to the hit,
    the encoded key begins (base64: the start of the 4-character group that holds the prefix's
    first byte; hex: the prefix's first hex digit), and ``align`` how many decoded bytes of that
    group come before the prefix."""

    pattern: bytes
    encoding: str
    offset: int = 0
    align: int = 0


def _base64_needles() -> list[Needle]:
    """The stable middle of base64(prefix) at alignments 0, 1 and 2, in two halves each.

    With ``a`` unknown bytes before the prefix in its group, the first characters mix unknown
    bits (2 of them for a=1, 3 for a=2) and the last one mixes in the byte after the prefix, so
    only the 14 characters in between are the same in every encoding of every key. They are
    searched as two halves of 7: wrapped base64 (``base64 FILE`` breaks lines every 76
    characters) may cut the 14, but never both halves, and 7 fixed characters still occur by
    chance about once in 4 * 10^12 positions of random base64.
    """
    needles = []
    for align, unstable in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(b"\0" * align + PREFIX)
        stable = encoded[unstable : ((align + len(PREFIX)) * 8) // 6]
        needles.append(Needle(stable[:7], "base64", -unstable, align))
        needles.append(Needle(stable[7:], "base64", -unstable - 7, align))
    return needles


def _hex_needle() -> Needle:
    """A stretch of hex(prefix) that has no letter digits, so upper and lower case share it."""
    full = binascii.hexlify(PREFIX)
    middle = b"6170695"  # "ap" + high nibble of "i": digits only
    return Needle(middle, "hex", -full.index(middle))


ALL_NEEDLES: tuple[Needle, ...] = (
    Needle(PREFIX, "plain"),
    Needle(PREFIX.decode("ascii").encode("utf-16-le"), "utf-16"),  # also finds UTF-16BE text
    *_base64_needles(),
    _hex_needle(),
)
NEEDLES = ALL_NEEDLES  # what this process searches for: see use_decoders()
_NUL = b"\x00"

Hit = tuple[int, Needle]  # (offset of the needle's first byte, which needle)
Searcher = Callable[[bytes | bytearray, int, int, int], list[Hit]]


def _find_search(data: bytes | bytearray, start: int, stop: int, end: int) -> list[Hit]:
    """All needles beginning in ``data[start:stop]`` (reading no byte at ``end`` or beyond)."""
    hits: list[Hit] = []
    has_nul: bool | None = None
    for needle in NEEDLES:
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


_preference = "auto"


def prefer_light_engine(light: bool) -> None:
    """For a small scan (a pre-commit hook's few files), ``bytes.find`` finishes before
    Hyperscan would even be imported (11 ms): skip the import."""
    global _preference
    _preference = "find" if light else "auto"


def _hyperscan_searcher() -> Searcher | None:
    """A one-pass searcher if the ``hyperscan`` module is installed and works here."""
    forced = os.environ.get("POELIS_SCAN_ENGINE", "auto")
    if forced == "find" or (_preference == "find" and forced != "hyperscan"):
        return None
    try:
        import hyperscan
    except ImportError:
        return None
    needles = NEEDLES
    try:
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        database.compile(
            expressions=[_escape(n.pattern) for n in needles],
            ids=list(range(len(needles))),
            elements=len(needles),
            flags=[0] * len(needles),
        )
    except Exception:  # an unsupported CPU or a broken build: the pure-Python engine still works
        return None
    longest = max(len(n.pattern) for n in needles)

    def search(data: bytes | bytearray, start: int, stop: int, end: int) -> list[Hit]:
        search_end = min(end, stop + longest - 1)
        if search_end <= start:
            return []
        hits: list[Hit] = []

        def on_match(index: int, _from: int, to: int, _flags: int, _context: object) -> None:
            needle = needles[index]
            pos = start + to - len(needle.pattern)
            if pos < stop:
                hits.append((pos, needle))

        with memoryview(data) as view:
            database.scan(view[start:search_end], match_event_handler=on_match)
        if len(hits) > 1:
            hits.sort(key=lambda hit: hit[0])
        return hits

    return search


def _escape(pattern: bytes) -> bytes:
    """Hyperscan takes regular expressions: write every byte as ``\\xHH``."""
    return b"".join(b"\\x%02x" % byte for byte in pattern)


_local = threading.local()  # a Hyperscan database's scratch space serves one thread at a time


def searcher() -> Searcher:
    """The fastest engine available here, built once per thread for the current needles."""
    key = (NEEDLES, _preference)
    built: tuple[Any, Searcher] | None = getattr(_local, "searcher", None)
    if built is None or built[0] != key:
        built = (key, _hyperscan_searcher() or _find_search)
        _local.searcher = built
    return built[1]


def use_decoders(enabled: bool) -> None:
    """Search for every encoding (the default) or for the plain prefix only."""
    global NEEDLES
    NEEDLES = ALL_NEEDLES if enabled else ALL_NEEDLES[:1]


find_search = _find_search  # the pure-Python engine, for tests that compare the two
