"""Local image forms: an OCI image layout (a directory or a tar of one) and a ``docker save``
/ ``podman save`` archive (a directory or a tar).

Nothing is extracted: a directory's blobs are opened in place, and a tar is indexed once and
each blob read as a byte range of the tar file through its own file handle, so several layers
can be read at once by different threads. Every path named by the image's JSON is treated as
hostile (DESIGN §10): digests are checked against their grammar before they become file names,
and names that climb out of the layout are refused.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from .manifest import (
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    SNIFF,
    Descriptor,
    VerifiedStream,
    check_digest,
    config_entries,
    index_entries,
    load_json,
    make_layers,
    verify_bytes,
    walk_index,
)
from .model import BlobError, Image, ImageError, ImageRef, Layer, Platform

Warn = Callable[[BlobError], None]


def _clean(name: str) -> str | None:
    """A member or file name relative to the layout root, or None if it leaves it."""
    normal = posixpath.normpath(name.lstrip("/"))
    if normal.startswith("../") or normal == ".." or normal == ".":
        return None
    return normal


class _Slice(io.RawIOBase):
    """``size`` bytes of an open file from ``offset``: one tar member, read in place."""

    def __init__(self, handle: IO[bytes], offset: int, size: int) -> None:
        self.handle = handle
        self.position = offset
        self.remaining = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        want = min(len(buffer), self.remaining)
        data = os.pread(self.handle.fileno(), want, self.position)
        if not data:
            raise BlobError("tar member is truncated", "", "layer_error")
        buffer[: len(data)] = data
        self.position += len(data)
        self.remaining -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.handle.close()
        super().close()


class Store:
    """Named files of a layout or archive, as a directory or inside a tar."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.is_dir = os.path.isdir(path)
        self.members: dict[str, tarfile.TarInfo] = {}
        self.compressed = False
        if not self.is_dir:
            self._index_tar()

    def _index_tar(self) -> None:
        try:
            with tarfile.open(self.path, "r:") as archive:
                infos = archive.getmembers()
        except tarfile.ReadError:
            try:  # `docker save | gzip`: readable, but each blob costs a pass of decompression
                with tarfile.open(self.path, "r:*") as archive:
                    infos = archive.getmembers()
                self.compressed = True
            except (tarfile.TarError, OSError, EOFError) as error:
                raise ImageError(f"{self.path}: not a readable tar ({error})") from None
        except OSError as error:
            raise ImageError(f"{self.path}: {error.strerror or error}") from None
        for info in infos:
            name = _clean(info.name)
            if name is not None:
                self.members[name] = info

    def _member(self, name: str) -> tarfile.TarInfo | None:
        info = self.members.get(name)
        for _ in range(8):  # follow links inside the tar (docker save links shared layers)
            if info is None or info.isfile():
                return info
            if info.islnk():
                target = _clean(info.linkname)
            elif info.issym():
                target = _clean(posixpath.join(posixpath.dirname(name), info.linkname))
            else:
                return None
            if target is None:
                return None
            name, info = target, self.members.get(target)
        return None

    def exists(self, name: str) -> bool:
        clean = _clean(name)
        if clean is None:
            return False
        if self.is_dir:
            return os.path.isfile(os.path.join(self.path, clean))
        return self._member(clean) is not None

    def open(self, name: str) -> IO[bytes]:
        """The named file, for reading; ``FileNotFoundError`` if it is not there."""
        clean = _clean(name)
        if clean is None:
            raise FileNotFoundError(name)
        if self.is_dir:
            full = os.path.join(self.path, clean)
            if os.path.islink(full) and not os.path.realpath(full).startswith(
                    os.path.realpath(self.path) + os.sep):
                raise FileNotFoundError(name)
            return open(full, "rb")
        info = self._member(clean)
        if info is None:
            raise FileNotFoundError(name)
        if self.compressed:
            archive = tarfile.open(self.path, "r:*")  # noqa: SIM115 - lives as long as the member
            member = archive.extractfile(info.name)
            if member is None:
                raise FileNotFoundError(name)
            return member
        if info.sparse:
            raise FileNotFoundError(f"{name} (sparse tar member)")
        handle = open(self.path, "rb")  # noqa: SIM115 - the returned stream closes it
        return io.BufferedReader(_Slice(handle, info.offset_data, info.size), 1 << 20)

    def read(self, name: str, limit: int) -> bytes:
        with self.open(name) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"{name} is larger than {limit} bytes")
        return data


def blob_name(digest: str) -> str:
    algorithm, _, hexa = check_digest(digest, "blob").partition(":")
    return f"blobs/{algorithm}/{hexa}"


def _read_blob(store: Store, descriptor: Descriptor, limit: int, what: str) -> bytes:
    try:
        data = store.read(blob_name(descriptor.digest), limit)
    except FileNotFoundError:
        raise BlobError(f"{what} {descriptor.digest} is missing from the layout",
                        descriptor.digest, "missing_blob") from None
    except ImageError as error:
        raise BlobError(f"{what} {descriptor.digest}: {error}", descriptor.digest,
                        "image_error") from None
    verify_bytes(data, descriptor.digest, what)
    return data


def _layer_opener(store: Store, where: str) -> Callable[[Layer], IO[bytes]]:
    def open_layer(layer: Layer) -> IO[bytes]:
        try:
            raw = store.open(blob_name(layer.digest))
        except FileNotFoundError:
            raise BlobError(f"{where}: layer {layer.digest} is missing", layer.digest,
                            "missing_blob") from None
        return VerifiedStream(raw, layer.digest)  # type: ignore[return-value]

    return open_layer


def oci_images(ref: ImageRef, store: Store, platform: Platform | None,
               warn: Warn) -> Iterator[Image]:
    """Every image (per platform) an OCI layout's ``index.json`` leads to."""
    where = ref.text
    try:
        index = load_json(store.read("index.json", MAX_MANIFEST_BYTES), f"{where}: index.json")
    except FileNotFoundError:
        raise ImageError(f"{where}: index.json is missing") from None

    def load(descriptor: Descriptor) -> dict[str, Any]:
        data = _read_blob(store, descriptor, MAX_MANIFEST_BYTES, "manifest")
        return load_json(data, f"{where}: manifest {descriptor.digest}")

    opener = _layer_opener(store, where)
    for descriptor, manifest in walk_index(load, index_entries(index, where), platform, where,
                                           warn):
        try:
            yield _oci_image(ref, store, descriptor, manifest, opener)
        except BlobError as error:
            warn(error)
        except ImageError as error:
            warn(BlobError(str(error), descriptor.digest, "image_error"))


def _oci_image(ref: ImageRef, store: Store, descriptor: Descriptor, manifest: dict[str, Any],
               opener: Callable[[Layer], IO[bytes]]) -> Image:
    from .manifest import manifest_parts

    config_desc, layer_descs = manifest_parts(manifest, f"{ref.text}: {descriptor.digest}")
    config = load_json(_read_blob(store, config_desc, MAX_CONFIG_BYTES, "config"),
                       f"{ref.text}: config {config_desc.digest}")
    annotations = manifest.get("annotations")
    return Image(
        ref=ref, manifest_digest=descriptor.digest,
        platform=descriptor.platform or Platform.from_json(config),
        config_digest=config_desc.digest,
        layers=make_layers([(d.digest, d.media_type, d.size) for d in layer_descs], config),
        config=config_entries(config, annotations if isinstance(annotations, dict) else None),
        open_layer=opener,
    )


_HEX_NAME = re.compile(r"(?:^|/)(?:blobs/sha256/)?([a-f0-9]{64})(?:\.json|/layer\.tar)?$")


def _digest_from_name(name: str) -> str | None:
    """``blobs/sha256/HEX`` and ``HEX.json`` name their content; ``ID/layer.tar`` does not
    (the directory is a legacy v1 id), so for those the config's diff_id is the digest."""
    if name.endswith("/layer.tar"):
        return None
    match = _HEX_NAME.search(name)
    return f"sha256:{match.group(1)}" if match else None


def docker_images(ref: ImageRef, store: Store, platform: Platform | None,
                  warn: Warn) -> Iterator[Image]:
    """Every image a ``docker save`` archive's ``manifest.json`` lists."""
    where = ref.text
    import json

    try:
        entries = json.loads(store.read("manifest.json", MAX_MANIFEST_BYTES))
    except (ValueError, UnicodeDecodeError):
        raise ImageError(f"{where}: manifest.json is not valid JSON") from None
    if not isinstance(entries, list):
        raise ImageError(f"{where}: manifest.json is not a list of images")
    manifest_digests = _oci_manifest_digests(store)
    for n, entry in enumerate(entries):
        try:
            image = _docker_image(ref, store, entry, n, manifest_digests)
        except BlobError as error:
            warn(error)
            continue
        except ImageError as error:
            warn(BlobError(str(error), "", "image_error"))
            continue
        if platform is not None and image.platform and not image.platform.matches(platform):
            continue
        yield image


def _docker_image(ref: ImageRef, store: Store, entry: Any, n: int,
                  manifest_digests: dict[str, str]) -> Image:
    where = f"{ref.text}: manifest.json[{n}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
            or not isinstance(entry.get("Layers"), list):
        raise ImageError(f"{where}: entry needs Config and Layers")
    config_name = entry["Config"]
    config_digest = _digest_from_name(config_name)
    try:
        data = store.read(config_name, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise BlobError(f"{where}: config {config_name} is missing", config_digest or "",
                        "missing_blob") from None
    if config_digest:
        verify_bytes(data, config_digest, f"{where}: config")
    config = load_json(data, f"{where}: config")
    from .manifest import diff_ids

    ids = diff_ids(config)
    triples: list[tuple[str, str, int | None]] = []
    names: dict[str, str] = {}
    for i, name in enumerate(entry["Layers"]):
        if not isinstance(name, str):
            raise ImageError(f"{where}: layer {i} is not a file name")
        digest = _digest_from_name(name) or (ids[i] if i < len(ids) else None)
        if digest is None:
            raise ImageError(f"{where}: layer {i} ({name[:80]}) has no digest to check "
                             "it against")
        names[digest] = name
        triples.append((digest, SNIFF, None))

    def open_layer(layer: Layer) -> IO[bytes]:
        try:
            raw = store.open(names[layer.digest])
        except FileNotFoundError:
            raise BlobError(f"{ref.text}: layer {layer.digest} ({names[layer.digest][:80]}) "
                            "is missing", layer.digest, "missing_blob") from None
        return VerifiedStream(raw, layer.digest)  # type: ignore[return-value]

    return Image(
        ref=ref, manifest_digest=manifest_digests.get(config_digest or ""),
        platform=Platform.from_json(config), config_digest=config_digest,
        layers=make_layers(triples, config), config=config_entries(config),
        open_layer=open_layer,
    )


def _oci_manifest_digests(store: Store) -> dict[str, str]:
    """Config digest → manifest digest, when the archive also holds an OCI index (Docker 25+
    writes both), so a docker archive's findings can name the manifest too."""
    if not store.exists("index.json"):
        return {}
    out: dict[str, str] = {}
    try:
        index = load_json(store.read("index.json", MAX_MANIFEST_BYTES), "index.json")
        for entry in index_entries(index, "index.json"):
            manifest = load_json(store.read(blob_name(entry.digest), MAX_MANIFEST_BYTES), "m")
            config = manifest.get("config")
            if isinstance(config, dict) and isinstance(config.get("digest"), str):
                out[config["digest"]] = entry.digest
    except (ImageError, OSError):
        return out  # only a nicety: the manifest.json route reads the image either way
    return out
