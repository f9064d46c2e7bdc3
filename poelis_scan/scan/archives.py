"""Archives and compressed files: scan every member through the same content pipeline.

A member is streamed, never extracted to disk whole; only a nested archive is spooled (zip
needs to seek), up to the member cap. Three limits guard against bombs: bytes per member,
bytes per outer file, and the expansion ratio of a member (decompressed / compressed). When one
trips, the scan keeps what it read within the limit, says so once, and moves on. Modules for
each format are imported only when a file of that format turns up.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import IO, cast

from ..settings import DEFAULT, Limits, ScanSettings
from .stream import LocatedMatch, ReadInto, StreamResult, prefixed, scan_stream

HEAD_SIZE = 512  # enough to recognise every format below (tar's magic sits at offset 257)
SPOOL_IN_MEMORY = 8 << 20


def container_kind(head: bytes | bytearray | memoryview) -> str | None:
    """The archive or compression format that ``head`` (a file's first bytes) starts, if any."""
    start = bytes(head[:8])
    if start.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if start.startswith(b"\x1f\x8b"):
        return "gzip"
    if start.startswith(b"BZh") and start[3:4].isdigit():
        return "bzip2"
    if start.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if bytes(head[257:262]) == b"ustar":
        return "tar"
    return None




@dataclass(slots=True)
class _Budget:
    """What is left of ``max_total_bytes`` for one outer file, and what was seen."""

    settings: ScanSettings
    remaining: int
    top_name: str = ""
    members: int = 0
    expanded: int = 0
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def limits(self) -> Limits:
        return self.settings.limits

    def note(self, kind: str, message: str) -> None:
        self.notes.append((kind, message))

    def exhausted(self, next_member: str) -> bool:
        """True (and noted) when the total cap leaves nothing for ``next_member`` on."""
        if self.remaining > 0:
            return False
        self.note("archive_limit", f"{next_member} and later members not scanned: total "
                                   "expanded size limit reached")
        return True


class _LimitedReader:
    """``readinto`` over a member that stops, and says why, when a limit is reached."""

    def __init__(self, stream: IO[bytes] | io.BufferedIOBase, head: bytes,
                 compressed: int | None, budget: _Budget, name: str, *,
                 whole_archive: bool = False) -> None:
        # Every stream that reaches here (a zip or tar member, a decompressor, a spooled file)
        # is an io.BufferedIOBase, whose readinto typeshed's IO[bytes] does not declare.
        self._read = prefixed(head, cast("io.BufferedIOBase", stream).readinto)
        self.compressed = compressed
        self.budget = budget
        self.name = name
        # A .tar.gz's decompressed stream holds many members, each charged on its own: the
        # stream itself is bounded only by the total and by the expansion ratio.
        self.whole_archive = whole_archive
        limits = budget.limits
        self.cap = limits.max_total_bytes if whole_archive else limits.max_member_bytes
        self.read_bytes = 0
        self.stopped: str | None = None

    def _allowance(self) -> int:
        limits = self.budget.limits
        allowed = self.cap - self.read_bytes
        if not self.whole_archive:
            allowed = min(allowed, self.budget.remaining)
        if self.compressed is not None:
            ratio_cap = max(limits.ratio_free, self.compressed * limits.max_ratio)
            allowed = min(allowed, ratio_cap - self.read_bytes)
        return allowed

    def readinto(self, buffer: memoryview) -> int:
        allowed = self._allowance()
        if allowed <= 0:
            if self.stopped is None and self._more_to_read():
                self._trip()
            return 0
        n = self._read(buffer[: min(len(buffer), allowed)]) or 0
        self.read_bytes += n
        if not self.whole_archive:
            self.budget.remaining -= n
            self.budget.expanded += n
        return n

    def _more_to_read(self) -> bool:
        return bool(self._read(memoryview(bytearray(1))))

    def _trip(self) -> None:
        limits = self.budget.limits
        if self.budget.remaining <= 0 or self.read_bytes >= limits.max_total_bytes:
            self.stopped = f"total expanded size reached {limits.max_total_bytes} bytes"
        elif self.read_bytes >= self.cap:
            self.stopped = f"member larger than {limits.max_member_bytes} bytes"
        else:
            self.stopped = f"expands more than {limits.max_ratio} times (compression bomb?)"
        self.budget.note("archive_limit", f"{self.name}: scanned the first {self.read_bytes} "
                                          f"bytes only: {self.stopped}")


def _join(outer: str | None, inner: str) -> str:
    return f"{outer}!/{inner}" if outer else inner


def _scan_member(stream: IO[bytes], name: str, compressed: int | None, budget: _Budget,
                 depth: int, found: list[LocatedMatch]) -> None:
    """One member: a nested container goes one level down, anything else is scanned."""
    budget.members += 1
    head = stream.read(HEAD_SIZE)
    reader = _LimitedReader(stream, head, compressed, budget, name)
    kind = container_kind(head)
    if kind is None:
        result = scan_stream(reader.readinto, settings=budget.settings)
        found.extend(_with_member(result.matches, name))
        return
    if depth >= budget.limits.max_depth:
        budget.note("archive_depth", f"{name}: nested deeper than {budget.limits.max_depth} "
                                     "levels, scanned as bytes")
        result = scan_stream(reader.readinto, settings=budget.settings)
        found.extend(_with_member(result.matches, name))
        return
    with _spool(reader.readinto) as spooled:
        _scan_container(spooled, kind, name, budget, depth + 1, found)


def _with_member(matches: list[LocatedMatch], name: str) -> Iterator[LocatedMatch]:
    for lm in matches:
        yield replace(lm, member=name)


def _spool(readinto: ReadInto, limit: int | None = None, head: bytes = b"") -> IO[bytes]:
    """Copy a stream (``head`` first) to a seekable file, for zip, which must seek: in memory
    up to SPOOL_IN_MEMORY, on disk past it, and no further than ``limit`` bytes."""
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (returned)
    spooled.write(head)
    total = len(head)
    view = memoryview(bytearray(1 << 20))
    while (limit is None or total < limit) and (n := readinto(view)):
        spooled.write(view[:n])
        total += n
    spooled.seek(0)
    return spooled


def _scan_container(stream: IO[bytes], kind: str, outer: str | None, budget: _Budget,
                    depth: int, found: list[LocatedMatch]) -> None:
    """Scan every member of the container in ``stream``; errors become notes, not exceptions."""
    try:
        if kind == "zip":
            _scan_zip(stream, outer, budget, depth, found)
        elif kind == "tar":
            _scan_tar(stream, outer, budget, depth, found)
        else:
            _scan_compressed(stream, kind, outer, budget, depth, found, budget.top_name)
    except _corrupt_errors() as error:
        where = outer or "archive"
        budget.note("corrupt_archive", f"{where}: {kind} is corrupt or truncated ({error}); "
                                       "members before the damage were scanned")


@functools.cache
def _corrupt_errors() -> tuple[type[BaseException], ...]:
    """What a damaged archive raises; the modules are imported only once an archive fails."""
    import lzma
    import tarfile
    import zipfile
    import zlib

    return (zipfile.BadZipFile, tarfile.TarError, EOFError, lzma.LZMAError, zlib.error,
            NotImplementedError, ValueError, OSError)


def _scan_zip(stream: IO[bytes], outer: str | None, budget: _Budget, depth: int,
              found: list[LocatedMatch]) -> None:
    import zipfile

    with zipfile.ZipFile(stream) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = _join(outer, info.filename)
            if budget.exhausted(name):
                return
            if info.flag_bits & 0x1:
                budget.note("encrypted_member", f"{name}: encrypted, not scanned")
                continue
            try:
                with archive.open(info) as member:
                    _scan_member(member, name, info.compress_size, budget, depth, found)
            except _corrupt_errors() as error:
                budget.note("corrupt_archive", f"{name}: cannot be read ({error})")


def _scan_tar(stream: IO[bytes], outer: str | None, budget: _Budget, depth: int,
              found: list[LocatedMatch]) -> None:
    import tarfile

    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for info in archive:
            if not info.isfile():
                continue
            name = _join(outer, info.name)
            if budget.exhausted(name):
                return
            member = archive.extractfile(info)
            if member is not None:
                _scan_member(member, name, None, budget, depth, found)


def _scan_compressed(stream: IO[bytes], kind: str, outer: str | None, budget: _Budget,
                     depth: int, found: list[LocatedMatch], top_name: str) -> None:
    """gzip, bzip2 or xz: one stream inside; a tar inside is the same level (``.tar.gz``)."""
    compressed_size = _remaining_size(stream)
    if kind == "gzip":
        import gzip

        inner: io.BufferedIOBase = gzip.GzipFile(fileobj=stream, mode="rb")
    elif kind == "bzip2":
        import bz2

        inner = bz2.BZ2File(stream)
    else:
        import lzma

        inner = lzma.LZMAFile(stream)  # noqa: SIM115 (closed by the with below)
    name = _join(outer, _inner_name(outer or top_name, kind))
    with inner:
        head = inner.read(HEAD_SIZE)
        if container_kind(head) == "tar":
            whole = _LimitedReader(inner, head, compressed_size, budget, name, whole_archive=True)
            _scan_tar(_ReaderFile(whole), outer, budget, depth, found)  # type: ignore[arg-type]
            return
        budget.members += 1
        reader = _LimitedReader(inner, head, compressed_size, budget, name)
        result = scan_stream(reader.readinto, settings=budget.settings)
        found.extend(_with_member(result.matches, name))


class _ReaderFile:
    """A minimal read-only file over a ``_LimitedReader`` (for tarfile's stream mode)."""

    def __init__(self, reader: _LimitedReader) -> None:
        self.reader = reader

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 20
        buffer = bytearray(size)
        n = self.reader.readinto(memoryview(buffer))
        return bytes(buffer[:n])



def _remaining_size(stream: IO[bytes]) -> int | None:
    try:
        here = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(here)
        return end - here
    except (OSError, AttributeError, ValueError):
        return None


def _inner_name(outer_name: str, kind: str) -> str:
    """The name of what a compressed file holds: its own name minus the suffix."""
    name = outer_name.rsplit("/", 1)[-1]
    for suffix in {"gzip": (".gz", ".tgz"), "bzip2": (".bz2",), "xz": (".xz",)}[kind]:
        if name.endswith(suffix):
            return name[: -len(suffix)] + (".tar" if suffix == ".tgz" else "")
    return name or f"({kind} content)"


def scan_container(stream: IO[bytes], kind: str, name: str,
                   settings: ScanSettings = DEFAULT) -> StreamResult:
    """Scan an archive or compressed file, given as a seekable binary file at offset 0.

    ``name`` is the file's own name: a compressed file's content is named after it.
    """
    budget = _Budget(settings, settings.limits.max_total_bytes, name.rsplit("/", 1)[-1])
    found: list[LocatedMatch] = []
    size = _remaining_size(stream) or 0
    _scan_container(stream, kind, None, budget, 1, found)
    return StreamResult(found, size, budget.notes, budget.members, budget.expanded)


def scan_spooled_stream(readinto: ReadInto, head: bytes, kind: str, name: str,
                        settings: ScanSettings = DEFAULT) -> StreamResult:
    """A container arriving on a pipe (standard input, a large git blob): spool it, bounded,
    then scan it. Whatever lies past the limit is left unread in the pipe."""
    with _spool(readinto, settings.limits.max_total_bytes, head) as spooled:
        return scan_container(spooled, kind, name, settings)
