"""Compressed streams (gzip, bzip2, xz, a zip member's deflate) read without losing a byte.

The standard library's ``GzipFile`` and friends raise at a truncated or damaged stream, and the
bytes they had decompressed for that read are lost with the exception: for a gzip cut at 80 %,
the last window before the damage was never scanned. Here a decompressor object is driven
directly, with a bound on each output piece (so a bomb costs no memory), every byte it produced
is delivered, and damage only ends the stream: ``error`` says what happened.
"""

from __future__ import annotations

from typing import Any, Protocol

INPUT_PIECE = 64 << 10
OUTPUT_PIECE = 1 << 20

# Where one stream of a format may be followed by another (``cat a.gz b.gz``): its magic.
_NEXT_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}


class Readable(Protocol):
    """Where compressed bytes come from: a file, or a slice of one (a zip member)."""

    def read(self, size: int = -1, /) -> bytes: ...


def _decompressor(kind: str) -> Any:
    if kind in ("gzip", "deflate"):
        import zlib

        return zlib.decompressobj(31 if kind == "gzip" else -15)
    if kind == "bzip2":
        import bz2

        return bz2.BZ2Decompressor()
    import lzma

    return lzma.LZMADecompressor()


def _errors() -> tuple[type[BaseException], ...]:
    import lzma
    import zlib

    return (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError)


class Decompressing:
    """``readinto`` over the decompressed content of ``stream`` (read from where it stands).

    ``limit`` is how many compressed bytes belong to this stream (a zip member), ``None`` for
    "to the end". After the end, ``error`` is ``None`` for a complete stream, else why it
    ended early; ``consumed`` is how many compressed bytes the content took (a zip member
    without sizes in its header ends where its deflate stream does).
    """

    def __init__(self, stream: Readable, kind: str, limit: int | None = None) -> None:
        self._stream = stream
        self._kind = kind
        self._left = limit
        self._decomp = _decompressor(kind)
        self._zlib = kind in ("gzip", "deflate")
        self._input = b""  # compressed bytes read but not yet given to the decompressor
        self._output = memoryview(b"")
        self._done = False
        self._read_in = 0
        self.error: str | None = None
        self.finished = False  # the end-of-stream marker was seen

    @property
    def consumed(self) -> int:
        unused = len(self._input)
        if self._decomp.eof:
            unused += len(self._decomp.unused_data)
        elif self._zlib:
            unused += len(self._decomp.unconsumed_tail)
        return int(self._read_in - unused)

    def _read_input(self) -> bytes:
        size = INPUT_PIECE if self._left is None else min(INPUT_PIECE, self._left)
        if size <= 0:
            return b""
        data = self._stream.read(size) or b""
        self._read_in += len(data)
        if self._left is not None:
            self._left -= len(data)
        return data

    def _end(self, error: str | None) -> None:
        self._done = True
        if error is not None and self.error is None:
            self.error = error

    def _next_stream(self) -> bool:
        """After one stream's end: start the next one if more of the same format follows."""
        self.finished = True
        magic = _NEXT_MAGIC.get(self._kind)
        if magic is None:  # a zip member: whatever follows is not ours
            return False
        rest = self._decomp.unused_data + self._input
        self._input = b""
        if len(rest) < len(magic):
            rest += self._read_input()
        if not rest.startswith(magic):
            self._input = rest
            return False
        self._decomp = _decompressor(self._kind)
        self._input = rest
        self.finished = False
        return True

    def _produce(self) -> bytes:
        decomp = self._decomp
        if self._zlib:
            data = self._input or decomp.unconsumed_tail or self._read_input()
            self._input = b""
            if not data:
                tail = decomp.flush()
                self._end("truncated: the compressed data ends before its end marker")
                return bytes(tail)
            out = decomp.decompress(data, OUTPUT_PIECE)
            return bytes(out)
        data = b""
        if decomp.needs_input:
            data = self._input or self._read_input()
            self._input = b""
            if not data:
                self._end("truncated: the compressed data ends before its end marker")
                return b""
        return bytes(decomp.decompress(data, OUTPUT_PIECE))

    def readinto(self, buffer: memoryview) -> int:
        while not self._output:
            if self._done:
                return 0
            if self._decomp.eof and not self._next_stream():
                self._end(None)
                return 0
            try:
                self._output = memoryview(self._produce())
            except _errors() as error:
                self._end(f"damaged: {error}")
                return 0
        n = min(len(buffer), len(self._output))
        buffer[:n] = self._output[:n]
        self._output = self._output[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        """For readers that want ``read`` (tarfile's stream mode)."""
        buffer = bytearray(size if size is not None and size >= 0 else OUTPUT_PIECE)
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer) and (n := self.readinto(view[filled:])):
            filled += n
        view.release()
        return bytes(buffer[:filled])
