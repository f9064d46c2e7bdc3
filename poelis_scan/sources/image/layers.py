"""Reading one layer: its regular files as streams, and what it deletes from the layers below.

A layer is a tar (plain, gzip, or zstd where the interpreter has it: ``compression.zstd`` is
in the standard library from Python 3.14; on older interpreters a zstd layer is reported as
unreadable rather than pulling in a dependency). It is read once, front to back, as a stream.

Whiteouts (OCI image spec, "Whiteouts"): ``DIR/.wh.NAME`` deletes ``DIR/NAME`` (and all below
it) from the layers beneath; ``DIR/.wh..wh..opq`` makes ``DIR`` opaque, hiding everything the
layers beneath put in it. A file hidden that way is still in every pull of the image, which is
why it is scanned, and why its findings are marked ``deleted``.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from .manifest import LAYER_TYPES, SNIFF
from .model import BlobError, Image, Layer

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_GZIP = b"\x1f\x8b"
try:
    from compression.zstd import ZstdError  # type: ignore[import-not-found]

    _ZSTD_ERRORS: tuple[type[Exception], ...] = (ZstdError,)
except ImportError:  # before Python 3.14: zstd layers are reported, not read
    _ZSTD_ERRORS = ()
# What a damaged tar or compressed stream raises while being read.
_DAMAGE: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, zlib.error, OSError,
                                        ValueError, *_ZSTD_ERRORS)
_ZSTD = b"\x28\xb5\x2f\xfd"


def layer_path(name: str) -> str:
    """A tar member name as a path inside the image: no ``./``, no leading ``/``."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return path


@dataclass(slots=True)
class Removals:
    """What one layer removes from the layers below it."""

    paths: set[str] = field(default_factory=set)  # each with everything below it
    opaque_dirs: set[str] = field(default_factory=set)  # "" is the root

    def hides(self, path: str) -> bool:
        if path in self.paths:
            return True
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in self.paths or prefix in self.opaque_dirs:
                return True
        return "" in self.opaque_dirs


@dataclass(slots=True)
class LayerFile:
    """One regular file of a layer: its path inside the image and a stream of its bytes."""

    path: str
    size: int
    stream: io.BufferedIOBase


def compression_of(layer: Layer, head: bytes) -> str:
    """"gzip", "zstd" or "" (plain tar); ``BlobError`` for a media type that is no layer."""
    if layer.media_type != SNIFF and layer.media_type not in LAYER_TYPES:
        raise BlobError(f"layer {layer.digest} has unknown media type "
                        f"{layer.media_type[:80]!r}, not scanned", layer.digest,
                        "unknown_media_type")
    # The bytes decide, not the label: tools mislabel, and docker save gives no label at all.
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZSTD):
        return "zstd"
    return ""


class _Peek:
    """A stream whose first bytes were already read to sniff its compression."""

    def __init__(self, head: bytes, raw: Any) -> None:
        self.head = head
        self.raw = raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size is None or size < 0:
                data, self.head = self.head + self.raw.read(), b""
                return bytes(data)
            data, self.head = self.head[:size], self.head[size:]
            if len(data) < size:
                data += self.raw.read(size - len(data))
            return bytes(data)
        return bytes(self.raw.read(size))


class _Hashing:
    """The decompressed tar, hashed as it is read: checked against the config's diff_id, so a
    layer is deduplicated on an identity its bytes were shown to have."""

    def __init__(self, inner: Any, algorithm: str) -> None:
        import hashlib

        self.inner = inner
        self.hash = hashlib.new(algorithm)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.hash.update(data)
        return bytes(data)


def _decompressed(layer: Layer, raw: Any) -> Any:
    head = raw.read(4)
    kind = compression_of(layer, head)
    peek = _Peek(head, raw)
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=peek, mode="rb")  # type: ignore[call-overload]
    if kind == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            raise BlobError(f"layer {layer.digest} is zstd-compressed, which needs Python "
                            "3.14 or later; not scanned", layer.digest,
                            "unsupported_compression") from None
        return zstd.ZstdFile(peek)
    return peek


class LayerReader:
    """Iterate a layer's regular files; afterwards ``removals`` says what it deletes below.

    Errors in the tar or its compression raise ``BlobError`` (``layer_error``) from the
    iteration: files yielded before the damage were read and their findings stand.
    """

    def __init__(self, layer: Layer, raw: Any) -> None:
        self.layer = layer
        self.raw = raw
        self.removals = Removals()
        self.files = 0
        self._hashing: _Hashing | None = None

    def finish(self) -> tuple[bool, bool]:
        """After a complete iteration: (blob digest matched, diff_id matched). Reads what the
        tar left unread (end padding) so that both hashes cover every byte."""
        diff_ok = True
        if self._hashing is not None and self.layer.diff_id:
            while self._hashing.read(1 << 20):
                pass
            diff_ok = self._hashing.hash.hexdigest() == self.layer.diff_id.partition(":")[2]
        finish = getattr(self.raw, "finish", None)
        blob_ok = bool(finish()) if finish is not None else True
        return blob_ok, diff_ok

    def __iter__(self) -> Iterator[LayerFile]:
        stream = _decompressed(self.layer, self.raw)
        if self.layer.diff_id and self.layer.diff_id != self.layer.digest:
            stream = self._hashing = _Hashing(stream, self.layer.diff_id.partition(":")[0])
        try:
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for info in archive:
                    path = layer_path(info.name)
                    base = posixpath.basename(path)
                    if base.startswith(WHITEOUT):
                        parent = posixpath.dirname(path)
                        if base == OPAQUE:
                            self.removals.opaque_dirs.add(parent)
                        else:
                            self.removals.paths.add(posixpath.join(parent, base[len(WHITEOUT):]))
                        continue
                    if not info.isfile():
                        continue
                    member = archive.extractfile(info)
                    if member is None:
                        continue
                    self.files += 1
                    yield LayerFile(path, info.size, cast(io.BufferedIOBase, member))
        except _DAMAGE as error:
            if isinstance(error, BlobError):
                raise
            raise BlobError(f"layer {self.layer.digest} is corrupt or truncated "
                            f"({error.__class__.__name__}: {str(error)[:120]}); files before "
                            "the damage were scanned", self.layer.digest, "layer_error") \
                from None


def deleted(stack: list[Removals | None], index: int, path: str) -> bool:
    """Whether a layer above ``index`` in ``stack`` (one image's layers, bottom first)
    removes ``path`` that layer ``index`` holds. A layer whose removals are unknown (it could
    not be read) removes nothing."""
    return any(r is not None and r.hides(path) for r in stack[index + 1:])


@dataclass(slots=True)
class LayerUse:
    """One distinct layer and every (image, position) that holds it."""

    layer: Layer
    holders: list[tuple[Image, int]]


def iter_unique_layers(images: Iterable[Image]) -> Iterator[LayerUse]:
    """Each distinct layer of ``images`` once, keyed on its uncompressed digest (diff_id)
    when known, so an OCI layout (gzip) and a docker archive (plain) of one image, or two
    images on one base, share their layers. The first holder is the one read."""
    uses: dict[str, LayerUse] = {}
    for image in images:
        for layer in image.layers:
            use = uses.get(layer.identity)
            if use is None:
                uses[layer.identity] = LayerUse(layer, [(image, layer.index)])
            else:
                use.holders.append((image, layer.index))
    yield from uses.values()
