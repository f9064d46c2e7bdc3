"""The zip format, read just far enough to scan members, with a bounded cost per entry.

Why not ``zipfile``: it builds a ``ZipInfo`` for every central-directory entry before the first
member can be read (1.4 million entries pointing at one local header: 586 MB and 70 s), it
cannot read an archive whose central directory is gone (a truncated download), and it refuses
a stored member whose "encrypted" flag is set, although its bytes are there to read. Here the
central directory is walked one entry at a time (the caller decides when to stop), and when it
is missing the local headers are read one after another from the start.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

LOCAL = struct.Struct("<4sHHHHHLLLHH")
CENTRAL = struct.Struct("<4sHHHHHHLLLHHHHHLL")
END = struct.Struct("<4sHHHHLLH")
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_END = struct.Struct("<4sQHHLLQQQQ")
LOCAL_MAGIC = b"PK\x03\x04"
CENTRAL_MAGIC = b"PK\x01\x02"
END_MAGIC = b"PK\x05\x06"
DESCRIPTOR_MAGIC = b"PK\x07\x08"

STORED, DEFLATED, BZIP2 = 0, 8, 12
FLAG_ENCRYPTED, FLAG_DESCRIPTOR, FLAG_UTF8 = 0x1, 0x8, 0x800
_MAX32 = 0xFFFFFFFF


class ZipDamage(Exception):
    """The zip structure cannot be followed; the message says where."""


@dataclass(slots=True)
class Entry:
    """One member as the archive describes it. ``compressed`` is ``None`` when a local header
    does not say (sizes in a data descriptor after the data)."""

    name: str
    flags: int
    method: int
    compressed: int | None
    size: int | None
    header_offset: int

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass(frozen=True, slots=True)
class Directory:
    """Where the central directory is, how many entries it claims, and ``shift``: bytes before
    the archive proper (a self-extracting stub), added to every offset it records."""

    start: int
    size: int
    entries: int
    shift: int


def _name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & FLAG_UTF8 else "cp437", "replace")


def _zip64_sizes(extra: bytes, size: int, compressed: int, offset: int
                 ) -> tuple[int, int, int]:
    """The true values of fields set to 0xFFFFFFFF, from the zip64 extra field."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            values = extra[pos + 4 : pos + 4 + length]
            fields = [size, compressed, offset]
            index = 0
            for i, value in enumerate(fields):
                if value == _MAX32 and index + 8 <= len(values):
                    fields[i] = struct.unpack_from("<Q", values, index)[0]
                    index += 8
            return fields[0], fields[1], fields[2]
        pos += 4 + length
    return size, compressed, offset


def find_directory(stream: IO[bytes], size: int) -> Directory | None:
    """The central directory's place, or ``None`` when there is no end record (truncated)."""
    tail_size = min(size, END.size + 0xFFFF)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    at = tail.rfind(END_MAGIC)
    while at != -1 and at + END.size > len(tail):
        at = tail.rfind(END_MAGIC, 0, at)
    if at == -1:
        return None
    _, _, _, _, entries, cd_size, cd_offset, _ = END.unpack_from(tail, at)
    end_pos = size - tail_size + at
    locator_at = at - ZIP64_LOCATOR.size
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == b"PK\x06\x07":
        _, _, z64_offset, _ = ZIP64_LOCATOR.unpack_from(tail, locator_at)
        stream.seek(z64_offset)
        record = stream.read(ZIP64_END.size)
        if len(record) == ZIP64_END.size and record[:4] == b"PK\x06\x06":
            _, _, _, _, _, _, _, entries, cd_size, cd_offset = ZIP64_END.unpack(record)
            end_pos = z64_offset
    shift = max(end_pos - cd_size - cd_offset, 0)
    return Directory(cd_offset + shift, cd_size, entries, shift)


def central_entries(stream: IO[bytes], directory: Directory) -> Iterator[Entry]:
    """The central directory's entries in order, parsed one at a time from a bounded buffer.

    The stream may be moved between two entries (members are read in between): the reader
    keeps its own position.
    """
    pos = directory.start
    end = directory.start + directory.size
    buf = b""
    at = 0
    while True:
        if len(buf) - at < CENTRAL.size + 0xFFFF * 3 and pos < end:
            stream.seek(pos)
            more = stream.read(min(1 << 20, end - pos))
            if not more:
                pos = end
            pos += len(more)
            buf = buf[at:] + more
            at = 0
        if len(buf) - at < CENTRAL.size:
            return
        fields = CENTRAL.unpack_from(buf, at)
        if fields[0] != CENTRAL_MAGIC:
            raise ZipDamage("central directory entry damaged")
        flags, method, compressed, size = fields[3], fields[4], fields[8], fields[9]
        name_len, extra_len, comment_len, offset = fields[10], fields[11], fields[12], fields[16]
        name_at = at + CENTRAL.size
        extra = buf[name_at + name_len : name_at + name_len + extra_len]
        if _MAX32 in (size, compressed, offset):
            size, compressed, offset = _zip64_sizes(extra, size, compressed, offset)
        name = _name(buf[name_at : name_at + name_len], flags)
        at = name_at + name_len + extra_len + comment_len
        if at > len(buf):
            raise ZipDamage("central directory ends mid-entry")
        yield Entry(name, flags, method, compressed, size, offset + directory.shift)


def local_data_start(stream: IO[bytes], entry: Entry) -> int:
    """Where ``entry``'s data begins, from its local header (which the central directory only
    points at)."""
    stream.seek(entry.header_offset)
    header = stream.read(LOCAL.size)
    if len(header) < LOCAL.size or header[:4] != LOCAL_MAGIC:
        raise ZipDamage(f"no local header at offset {entry.header_offset}")
    name_len, extra_len = LOCAL.unpack(header)[9:11]
    return entry.header_offset + LOCAL.size + int(name_len) + int(extra_len)


def local_entry(stream: IO[bytes], offset: int) -> tuple[Entry, int] | None:
    """The member whose local header sits at ``offset``, and where its data starts; ``None``
    when no local header is there (the end of the members, or damage)."""
    stream.seek(offset)
    header = stream.read(LOCAL.size)
    if len(header) < LOCAL.size or header[:4] != LOCAL_MAGIC:
        return None
    _, _, flags, method, _, _, _, compressed, size, name_len, extra_len = LOCAL.unpack(header)
    raw_name = stream.read(name_len)
    extra = stream.read(extra_len)
    if _MAX32 in (size, compressed):
        size, compressed, _ = _zip64_sizes(extra, size, compressed, 0)
    known = not flags & FLAG_DESCRIPTOR
    entry = Entry(_name(raw_name, flags), flags, method, compressed if known else None,
                  size if known else None, offset)
    return entry, offset + LOCAL.size + name_len + extra_len


def stored_length(stream: IO[bytes], start: int) -> int:
    """A stored member without sizes in its header ends where the next zip record begins."""
    pos = start
    carry = b""
    while True:
        stream.seek(pos)
        piece = stream.read(1 << 20)
        if not piece:
            return pos - start
        window = carry + piece
        hits = [i for i in (window.find(m) for m in (DESCRIPTOR_MAGIC, LOCAL_MAGIC,
                                                     CENTRAL_MAGIC)) if i != -1]
        if hits:
            return pos - len(carry) + min(hits) - start
        carry = window[-3:]
        pos += len(piece)


def after_data(stream: IO[bytes], data_end: int, entry: Entry) -> int:
    """Where the next local header starts: past the data, and past a data descriptor if the
    member has one (with or without its optional signature, 32- or 64-bit sizes)."""
    if not entry.flags & FLAG_DESCRIPTOR:
        return data_end
    stream.seek(data_end)
    head = stream.read(28)
    at = 4 if head[:4] == DESCRIPTOR_MAGIC else 0
    for width in (12, 20):  # crc + 32-bit sizes, or crc + 64-bit sizes
        if head[at + width : at + width + 4] in (LOCAL_MAGIC, CENTRAL_MAGIC, END_MAGIC):
            return data_end + at + width
    return data_end + at + 12


class Slice:
    """``readinto`` over ``length`` bytes of ``stream`` from ``start`` (a stored member)."""

    def __init__(self, stream: IO[bytes], start: int, length: int) -> None:
        self._stream = stream
        self._pos = start
        self._left = length
        self.short = False  # the stream ended before ``length`` bytes (truncated)

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._left:
            size = self._left
        if size <= 0:
            return b""
        self._stream.seek(self._pos)
        data = self._stream.read(size) or b""
        if not data:
            self.short = True
            self._left = 0
        self._pos += len(data)
        self._left -= len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
