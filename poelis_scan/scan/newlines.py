"""Counting newlines fast: what line numbers in a multi-gigabyte file cost.

``bytes.count`` of one byte is a scalar loop (about 1 GB/s here); NumPy's vectorised
comparison runs at about 8 GB/s, which is what lets a huge log with a key in it be scanned
near the speed of ripgrep (``benchmarks/bench_files.py``, the ``big`` workload). NumPy is
imported only once a process has counted enough bytes to earn its import (about 0.15 s) back,
so a pre-commit hook or a tree of small files never imports it; where it is missing, the
plain count gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

Counter = Callable[[bytes | bytearray, int, int], int]

IMPORT_AFTER = 64 << 20  # bytes counted in this process before NumPy is worth importing
_SMALL = 4096  # below this, bytes.count beats NumPy's call overhead


def plain_count(data: bytes | bytearray, start: int, stop: int) -> int:
    return data.count(b"\n", start, stop)


def numpy_counter() -> Counter | None:
    """A vectorised counter, or None where NumPy cannot be imported."""
    try:
        import numpy
    except ImportError:
        return None
    newline = numpy.uint8(10)

    def count(data: bytes | bytearray, start: int, stop: int) -> int:
        if stop - start < _SMALL:
            return data.count(b"\n", start, stop)
        view = numpy.frombuffer(data, dtype=numpy.uint8, count=stop - start, offset=start)
        return int(numpy.count_nonzero(view == newline))

    return count


class _Lazy:
    """The process's counter: the plain one until ``IMPORT_AFTER`` bytes, then NumPy's."""

    def __init__(self) -> None:
        self.counted = 0
        self.fast: Counter | None = None

    def __call__(self, data: bytes | bytearray, start: int, stop: int) -> int:
        fast = self.fast
        if fast is not None:
            return fast(data, start, stop)
        self.counted += stop - start
        if self.counted >= IMPORT_AFTER:
            self.counted = -(1 << 62)  # import once, whatever comes of it
            self.fast = numpy_counter()
        return data.count(b"\n", start, stop)


_lazy = _Lazy()
count_newlines: Counter = _lazy


def prepare() -> None:
    """Import NumPy now (before forking workers that will count a large file's lines), so
    that each worker does not pay for the import."""
    if _lazy.fast is None and _lazy.counted >= 0:
        _lazy.counted = -(1 << 62)
        _lazy.fast = numpy_counter()
