"""Archives and compressed files: scan every member through the same content pipeline.

An archive is an *extra* view of bytes that are always scanned as they are too (``readers``
does that for a file, a blob or standard input; ``_scan_member`` for a nested member): text
that merely starts like an archive (``BZh9 notes``) hides nothing. A key seen both ways (a
stored zip member, an uncompressed tar) is reported once, as the member: that location names
the file a person opens, and its line counts that file's lines, not the archive's headers.

A member is streamed, never extracted to disk whole; only a nested archive is spooled (zip
needs to seek), up to the member cap. Limits guard against bombs: bytes per member, bytes per
outer file, the expansion ratio of a member (decompressed / compressed), and entries per outer
file (``max_members``, counted before a member is opened; a zip's central-directory entries
that point at a member already listed are counted and read once). When one trips, the scan
keeps what it read within the limit, says so once, and moves on. Damage (a truncated zip,
gzip or tar) ends a member, never silently: every byte decompressed before it is scanned, and
a warning says what was not read. Modules for each format are imported only when a file of
that format turns up.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..settings import DEFAULT, Limits, ScanSettings
from .magic import HEAD_SIZE, container_kind
from .stream import (
    LocatedMatch,
    ReadInto,
    StreamResult,
    prefixed,
    read_head,
    scan_stream,
)

if TYPE_CHECKING:
    from .zipfmt import Entry

SPOOL_IN_MEMORY = 8 << 20




class _Source(Protocol):
    def readinto(self, buffer: memoryview) -> int: ...


# A match, and where it starts in the bytes of the container being read when those bytes hold
# it as it is (a stored member, a plain tar's member): how a raw-bytes match is recognised as
# the same sighting. ``None`` when the member was decompressed.
_Hit = tuple[LocatedMatch, "int | None"]


@dataclass(slots=True)
class _Budget:
    """What is left of the limits for one outer file, and what was seen."""

    settings: ScanSettings
    remaining: int
    top_name: str = ""
    members: int = 0
    expanded: int = 0
    entries_left: int = 0
    entries_noted: bool = False
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

    def take_entry(self, where: str) -> bool:
        """Count one archive entry against ``max_members`` before it is opened; False (noted
        once) when the limit is reached."""
        if self.entries_left > 0:
            self.entries_left -= 1
            return True
        if not self.entries_noted:
            self.entries_noted = True
            self.note("archive_limit", f"{where}: more than {self.limits.max_members} archive "
                                       "entries in one file: the rest were not read as members")
        return False


class _LimitedReader:
    """``readinto`` over a member that stops, and says why, when a limit is reached. Damage
    met while reading ends the member (``damage`` says what) instead of raising, so that the
    bytes already read are scanned."""

    def __init__(self, source: _Source, head: bytes, compressed: int | None,
                 budget: _Budget, name: str, *, whole_archive: bool = False) -> None:
        self._read = prefixed(head, source.readinto)
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
        self.damage: str | None = None

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
            if self.stopped is None and self.damage is None and self._more_to_read():
                self._trip()
            return 0
        try:
            n = self._read(buffer[: min(len(buffer), allowed)]) or 0
        except _corrupt() as error:
            self.damage = _describe(error)
            return 0
        self.read_bytes += n
        if not self.whole_archive:
            self.budget.remaining -= n
            self.budget.expanded += n
        return n

    def _more_to_read(self) -> bool:
        try:
            return bool(self._read(memoryview(bytearray(1))))
        except _corrupt():
            return False

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

    def report_damage(self) -> None:
        if self.damage is not None:
            self.budget.note("corrupt_archive", f"{self.name}: cannot be read to its end "
                                                f"({self.damage}); the {self.read_bytes} "
                                                "bytes before the damage were scanned")


def _describe(error: BaseException) -> str:
    """An error in one short phrase, never quoting content (messages of the format modules
    name offsets and fields, not bytes)."""
    text = str(error).splitlines()[0][:120] if str(error) else ""
    return text or type(error).__name__


def _join(outer: str | None, inner: str) -> str:
    return f"{outer}!/{inner}" if outer else inner


def _named(matches: list[LocatedMatch], name: str, base: int | None) -> list[_Hit]:
    """Matches of one member, named after it; ``base``: where the member's bytes sit, as they
    are, in the container's (``None``: they do not, the member was decompressed)."""
    return [(replace(lm, member=name), None if base is None else base + lm.offset)
            for lm in matches]


def merge(raw: list[_Hit], members: list[_Hit]) -> list[_Hit]:
    """Member matches, and the raw-bytes matches that are not another sighting of one of them.

    A raw match is the same sighting as a member's when the member's bytes are the
    container's, as they are, and the two overlap with the same secret. A decompressed
    member's key can show in the compressed bytes too (a stored deflate block, an
    uncompressed LZMA2 chunk): each such member match accounts for one raw match of its
    secret.
    """
    spans: dict[str, list[tuple[int, int]]] = {}
    decompressed: dict[str, int] = {}
    for lm, at in members:
        secret = lm.match.secret
        if at is None:
            decompressed[secret] = decompressed.get(secret, 0) + 1
        else:
            spans.setdefault(secret, []).append((at, at + lm.match.end - lm.match.start))
    if not spans and not decompressed:
        return members + raw
    kept = list(members)
    for lm, at in raw:
        secret = lm.match.secret
        width = lm.match.end - lm.match.start
        same = spans.get(secret, ())
        if at is not None and any(s < at + width and at < e for s, e in same):
            continue
        if decompressed.get(secret):
            decompressed[secret] -= 1
            continue
        kept.append((lm, at))
    return kept


def _tee(readinto: ReadInto, spool: IO[bytes], cap: int | None = None) -> tuple[ReadInto,
                                                                                  list[int]]:
    """A ``readinto`` that also copies what it delivers into ``spool``, up to ``cap`` bytes;
    the list holds [bytes kept, bytes seen]."""
    counts = [0, 0]

    def read(buffer: memoryview) -> int:
        n = readinto(buffer)
        if n:
            keep = n if cap is None else max(0, min(n, cap - counts[0]))
            if keep:
                spool.write(buffer[:keep])
                counts[0] += keep
            counts[1] += n
        return n

    return read, counts


def _scan_member(source: _Source, name: str, compressed: int | None, budget: _Budget,
                 depth: int, found: list[_Hit], base: int | None) -> None:
    """One member: its bytes are scanned; a nested container is also opened, one level down."""
    budget.members += 1
    head = read_head(source.readinto, HEAD_SIZE)
    reader = _LimitedReader(source, head, compressed, budget, name)
    kind = container_kind(head)
    if kind is not None and depth >= budget.limits.max_depth:
        budget.note("archive_depth", f"{name}: nested deeper than {budget.limits.max_depth} "
                                     "levels, scanned as bytes")
        kind = None
    if kind is None:
        result = scan_stream(reader.readinto, settings=budget.settings)
        reader.report_damage()
        found.extend(_named(result.matches, name, base))
        return
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        tee, _ = _tee(reader.readinto, spool)
        raw = scan_stream(tee, settings=budget.settings)
        reader.report_damage()
        spool.seek(0)
        inner: list[_Hit] = []
        _scan_container(spool, kind, name, budget, depth + 1, inner)
    merged = merge(_named(raw.matches, name, 0), inner)
    found.extend((lm, None if at is None or base is None else base + at) for lm, at in merged)


def _scan_container(stream: IO[bytes], kind: str, outer: str | None, budget: _Budget,
                    depth: int, found: list[_Hit]) -> None:
    """Scan every member of the container in ``stream``; errors become notes, not exceptions."""
    try:
        if kind == "zip":
            _scan_zip(stream, outer, budget, depth, found)
        elif kind == "tar":
            _scan_tar(stream, outer, budget, depth, found, identity=True)
        else:
            _scan_compressed(stream, kind, outer, budget, depth, found)
    except _corrupt() as error:
        where = outer or "archive"
        budget.note("corrupt_archive", f"{where}: {kind} is corrupt or truncated "
                                       f"({_describe(error)}); members before the damage were "
                                       "scanned, and its bytes as they are")


@functools.cache
def _corrupt() -> tuple[type[BaseException], ...]:
    """What damage raises, made on first use: no format module is imported by a scan that
    meets no archive."""
    import lzma
    import tarfile
    import zlib

    from .zipfmt import ZipDamage

    return (ZipDamage, tarfile.TarError, EOFError, lzma.LZMAError, zlib.error,
            NotImplementedError, ValueError, OSError, RuntimeError)


def _scan_zip(stream: IO[bytes], outer: str | None, budget: _Budget, depth: int,
              found: list[_Hit]) -> None:
    from . import zipfmt

    where = outer or "archive"
    size = stream.seek(0, os.SEEK_END)
    directory = zipfmt.find_directory(stream, size)
    if directory is None:
        _scan_zip_local(stream, outer, budget, depth, found)
        return
    seen: set[int] = set()
    repeats = 0
    for entry in zipfmt.central_entries(stream, directory):
        if not budget.take_entry(where):
            break
        if entry.header_offset in seen:
            repeats += 1
            continue
        seen.add(entry.header_offset)
        if entry.is_dir:
            continue
        name = _join(outer, entry.name)
        if budget.exhausted(name):
            break
        try:
            start = zipfmt.local_data_start(stream, entry)
        except zipfmt.ZipDamage as error:
            budget.note("corrupt_archive", f"{name}: cannot be read ({error})")
            continue
        _scan_zip_member(stream, entry, start, name, budget, depth, found)
    if repeats:
        budget.note("archive_overlap", f"{where}: {repeats} central-directory entries point at "
                                       "a member already listed (a zip bomb?): each member was "
                                       "read once")


def _scan_zip_local(stream: IO[bytes], outer: str | None, budget: _Budget, depth: int,
                    found: list[_Hit]) -> None:
    """A zip without its central directory (a truncated download): follow the local headers
    from the start. One warning says so, and what ended the walk."""
    from . import zipfmt

    where = outer or "archive"
    pos = 0
    read = 0
    damage: list[str] = []
    while (local := zipfmt.local_entry(stream, pos)) is not None:
        entry, start = local
        if not budget.take_entry(where):
            break
        name = _join(outer, entry.name)
        if entry.is_dir and entry.compressed is not None:
            end: int | None = start + entry.compressed
        elif budget.exhausted(name):
            break
        else:
            read += 1
            end = _scan_zip_member(stream, entry, start, name, budget, depth, found, damage)
        if end is None:
            if not damage:
                damage.append(f"the end of {name} cannot be found")
            break
        pos = zipfmt.after_data(stream, end, entry)
    budget.note("corrupt_archive", f"{where}: zip has no central directory (truncated?): "
                                   f"{read} members read from their local headers, in order"
                                   + (f"; then {damage[0]}, later members not read as members"
                                      if damage else ""))


def _scan_zip_member(stream: IO[bytes], entry: Entry, start: int, name: str, budget: _Budget,
                     depth: int, found: list[_Hit], damage: list[str] | None = None
                     ) -> int | None:
    """One zip member from its data; returns where its data ends, when that is known.
    Damage is noted, or added to ``damage`` when the caller words the warning."""

    def hurt(message: str) -> None:
        if damage is None:
            budget.note("corrupt_archive", message)
        else:
            damage.append(message)

    from .decompress import Decompressing
    from .zipfmt import BZIP2, DEFLATED, FLAG_ENCRYPTED, STORED, Slice, stored_length

    compressed = entry.compressed
    if entry.method == STORED:
        # Stored bytes are plain, whatever the "encrypted" flag claims: read them as they are.
        length = compressed if compressed is not None else stored_length(stream, start)
        piece = Slice(stream, start, length)
        _scan_member(piece, name, None, budget, depth, found, start)
        if piece.short:
            hurt(f"{name}: truncated; the bytes before the end were scanned")
            return None
        return start + length
    if entry.flags & FLAG_ENCRYPTED:
        budget.note("encrypted_member", f"{name}: encrypted, not scanned as a member (the "
                                        "archive's bytes were)")
        return None if compressed is None else start + compressed
    if entry.method not in (DEFLATED, BZIP2):
        budget.note("unsupported_member", f"{name}: compression method {entry.method} is not "
                                          "supported, not scanned as a member")
        return None if compressed is None else start + compressed
    available = compressed if compressed is not None else stream.seek(0, os.SEEK_END) - start
    source = Decompressing(Slice(stream, start, available),
                           "deflate" if entry.method == DEFLATED else "bzip2")
    _scan_member(source, name, compressed, budget, depth, found, None)
    if source.error is not None:
        hurt(f"{name}: {source.error}; every byte decompressed before it was scanned")
        return None
    if compressed is not None:
        return start + compressed
    return start + source.consumed if source.finished else None


@functools.cache
def _recording_header() -> Any:
    """A ``TarInfo`` that remembers why tarfile stopped reading headers: past the first
    header, tarfile ends the iteration at a damaged one without a word. Made on first use."""
    import tarfile as tarfile_module

    class Recording(tarfile_module.TarInfo):
        @classmethod
        def fromtarfile(cls, tarfile: Any) -> Any:  # the name tarfile gives it
            try:
                return super().fromtarfile(tarfile)
            except tarfile_module.HeaderError as error:
                end_of_archive = getattr(tarfile_module, "EOFHeaderError", ())
                if not isinstance(error, end_of_archive):
                    tarfile.poelis_damage = (tarfile.offset, _describe(error))
                raise

    return Recording


class _TarData:
    """A tar member's bytes read straight from tarfile's stream: tarfile's own member reader
    raises at a cut and loses the bytes it was reading, this one ends (``short``) after
    delivering them."""

    def __init__(self, stream: Any, size: int) -> None:
        self._stream = stream
        self._left = size
        self.short = False

    def readinto(self, buffer: memoryview) -> int:
        if self._left <= 0:
            return 0
        data = self._stream.read(min(len(buffer), self._left, 1 << 20))
        if not data:
            self.short = True
            self._left = 0
            return 0
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


def _scan_tar(stream: Any, outer: str | None, budget: _Budget, depth: int,
              found: list[_Hit], identity: bool, damage: list[str] | None = None) -> None:
    """``identity``: the tar's bytes are the container's (not decompressed from it), so a
    member's match can be matched with the raw scan's. Damage is one warning, added to
    ``damage`` when the caller words it."""
    import tarfile

    where = outer or "archive"
    problems: list[str] = [] if damage is None else damage
    archive: Any = None
    try:
        # Closed in ``finally``, which also reads why it stopped: no ``with`` here.
        archive = tarfile.open(  # noqa: SIM115
            fileobj=stream, mode="r|", tarinfo=_recording_header())
        while (info := archive.next()) is not None:
            archive.members.clear()  # stream mode keeps every header: not 100k of them
            if not budget.take_entry(where):
                break
            if not info.isfile():
                continue
            name = _join(outer, info.name)
            if budget.exhausted(name):
                break
            base = info.offset_data if identity else None
            if info.issparse():
                member = archive.extractfile(info)
                if member is not None:
                    _scan_member(member, name, None, budget, depth, found, base)
                continue
            piece = _TarData(archive.fileobj, info.size)
            _scan_member(piece, name, None, budget, depth, found, base)
            if piece.short:
                problems.append(f"{name} is cut short (the bytes before the cut were scanned)")
                break
    except _corrupt() as error:
        problems.append(_describe(error))
    finally:
        if archive is not None:
            archive.close()
            header = getattr(archive, "poelis_damage", None)
            if header is not None:
                problems.append(f"the header at offset {header[0]} is damaged ({header[1]}): "
                                "tarfile stops there")
    if damage is None and problems:
        plain = " (their bytes were scanned as they are)" if identity and not outer else ""
        budget.note("corrupt_archive", f"{where}: tar: {'; '.join(problems)}; later members "
                                       f"were not read as members{plain}")


def _scan_compressed(stream: IO[bytes], kind: str, outer: str | None, budget: _Budget,
                     depth: int, found: list[_Hit]) -> None:
    """gzip, bzip2 or xz: one stream inside; a tar inside is the same level (``.tar.gz``)."""
    from .decompress import Decompressing

    compressed_size = _remaining_size(stream)
    source = Decompressing(stream, kind)
    name = _join(outer, _inner_name(outer or budget.top_name, kind))
    head = read_head(source.readinto, HEAD_SIZE)
    if container_kind(head) == "tar":
        whole = _LimitedReader(source, head, compressed_size, budget, name, whole_archive=True)
        problems: list[str] = []
        _scan_tar(_ReaderFile(whole), outer, budget, depth, found, False, problems)
        if source.error is None and problems:
            budget.note("corrupt_archive", f"{name}: tar: {'; '.join(problems)}; later members "
                                           "were not read as members")
        _report_stream_damage(source, kind, name, budget)
        return
    budget.members += 1
    reader = _LimitedReader(source, head, compressed_size, budget, name)
    result = scan_stream(reader.readinto, settings=budget.settings)
    found.extend(_named(result.matches, name, None))
    _report_stream_damage(source, kind, name, budget)


def _report_stream_damage(source: Any, kind: str, name: str, budget: _Budget) -> None:
    if source.error is not None:
        budget.note("corrupt_archive", f"{name}: {kind} stream {source.error}; every byte "
                                       "decompressed before it was scanned, nothing after it")


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
                   settings: ScanSettings = DEFAULT,
                   raw: list[LocatedMatch] | None = None) -> StreamResult:
    """Scan an archive or compressed file, given as a seekable binary file at offset 0.

    ``name`` is the file's own name: a compressed file's content is named after it. ``raw``:
    what the scan of the same bytes as they are found; a key the members show at the same
    place is reported once, as the member (see the module's docstring).
    """
    limits = settings.limits
    floor = settings.hidden_below
    budget = _Budget(replace(settings, hidden_below=0), limits.max_total_bytes,
                     name.rsplit("/", 1)[-1], entries_left=limits.max_members)
    found: list[_Hit] = []
    size = _remaining_size(stream) or 0
    _scan_container(stream, kind, None, budget, 1, found)
    merged = [lm for lm, _ in merge([(lm, lm.offset) for lm in raw or ()], found)]
    kept = [lm for lm in merged if lm.match.confidence.rank >= floor] if floor else merged
    return StreamResult(kept, size, budget.notes, budget.members, budget.expanded,
                        hidden=len(merged) - len(kept))


def scan_spooled_stream(readinto: ReadInto, head: bytes, kind: str, name: str,
                        settings: ScanSettings = DEFAULT) -> StreamResult:
    """A container arriving on a pipe (standard input, a large git blob): every byte is
    scanned as it arrives, and copied to a spool file (memory, then ``$TMPDIR``) for the
    archive view, up to ``Limits.max_spool_bytes``. Past that, the rest is still scanned as
    bytes, and a warning says how much the archive view did not see."""
    cap = settings.limits.max_spool_bytes
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        tee, counts = _tee(prefixed(head, readinto), spool, cap)
        raw = scan_stream(tee, settings=replace(settings, hidden_below=0))
        spool.seek(0)
        result = scan_container(spool, kind, name, settings, raw.matches)
    result.size = raw.size
    kept, seen = counts
    if seen > kept:
        message = (f"{name or 'stream'}: only its first {kept} bytes were read as a {kind} "
                   f"(spool limit {cap} bytes); the other {seen - kept} bytes were scanned as "
                   "they are, not as an archive")
        result.notes.append(("archive_limit", message))
    return result
