"""What every image form shares: manifests, indexes, configs, and digest-checked blob streams.

An OCI layout, a ``docker save`` archive and a registry all end in the same JSON documents;
parsing them once here means a layer has the same identity, ``created_by`` and config text
whichever way the image arrived.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Self

from .model import DIGEST, BlobError, ImageConfigEntry, ImageError, Layer, Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)

# Layer media types we can read, and how the tar inside is compressed ("" = not at all).
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": "",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd",
}
# docker save archives carry no media types: the bytes say what they are.
SNIFF = "(sniffed)"

# Bounds on the JSON documents (distribution itself refuses manifests over 4 MiB).
MAX_MANIFEST_BYTES = 4 << 20
MAX_CONFIG_BYTES = 16 << 20
MAX_INDEX_DEPTH = 4


def check_digest(digest: Any, where: str) -> str:
    """``digest`` if it is a well-formed digest we can verify, else a clear error."""
    if not isinstance(digest, str) or not DIGEST.match(digest):
        shown = digest if isinstance(digest, str) and len(digest) < 100 else "(malformed)"
        raise ImageError(f"{where}: unsupported or malformed digest {shown!r}")
    return digest


def load_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ImageError(f"{what} is not valid JSON ({error.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a JSON object")
    return value


def verify_bytes(data: bytes, digest: str, what: str) -> None:
    """Documents (manifests, configs) are small: checked whole, and a mismatch is fatal for
    the image, since every layer and all provenance hang off them."""
    algorithm, _, expected = digest.partition(":")
    if hashlib.new(algorithm, data).hexdigest() != expected:
        raise BlobError(f"{what} does not match its digest {digest}", digest, "digest_mismatch")


def media_type(document: dict[str, Any], fallback: str | None = None) -> str:
    value = document.get("mediaType")
    if isinstance(value, str) and value:
        return value
    if "manifests" in document:
        return OCI_INDEX
    if "layers" in document:
        return fallback or OCI_MANIFEST
    raise ImageError("document is neither an image index nor an image manifest")


@dataclass(frozen=True, slots=True)
class Descriptor:
    digest: str
    media_type: str
    size: int | None
    platform: Platform | None


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ImageError(f"{where}: descriptor is not an object")
    size = value.get("size")
    mtype = value.get("mediaType")
    return Descriptor(check_digest(value.get("digest"), where),
                      mtype if isinstance(mtype, str) else "",
                      size if isinstance(size, int) and size >= 0 else None,
                      Platform.from_json(value.get("platform")))


def _is_attestation(value: dict[str, Any]) -> bool:
    """BuildKit's provenance/SBOM manifests ride in the index as platform ``unknown/unknown``:
    they describe an image, they are not one."""
    annotations = value.get("annotations")
    return isinstance(annotations, dict) and "vnd.docker.reference.type" in annotations


def index_entries(index: dict[str, Any], where: str) -> list[Descriptor]:
    manifests = index.get("manifests")
    if not isinstance(manifests, list):
        raise ImageError(f"{where}: image index has no manifests list")
    return [_descriptor(m, where) for m in manifests
            if not (isinstance(m, dict) and _is_attestation(m))]


def select(entries: list[Descriptor], platform: Platform | None) -> list[Descriptor]:
    """Every entry, or those of ``platform`` (nested indexes kept: they are resolved later)."""
    if platform is None:
        return entries
    return [e for e in entries
            if e.media_type in INDEX_TYPES or (e.platform and e.platform.matches(platform))]


def manifest_parts(manifest: dict[str, Any], where: str) -> tuple[Descriptor, list[Descriptor]]:
    """The config descriptor and layer descriptors of an image manifest."""
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{where}: image manifest has no layers list")
    return (_descriptor(manifest.get("config"), f"{where} config"),
            [_descriptor(d, f"{where} layer {i}") for i, d in enumerate(layers)])


def diff_ids(config: dict[str, Any]) -> list[str | None]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        return []
    return [d if isinstance(d, str) and DIGEST.match(d) else None for d in ids]


def layer_history(config: dict[str, Any]) -> list[str | None]:
    """``created_by`` of the history steps that made a layer, in layer order (steps marked
    ``empty_layer`` made none: ``ENV``, ``ARG``, ``LABEL``)."""
    history = config.get("history")
    if not isinstance(history, list):
        return []
    out: list[str | None] = []
    for step in history:
        if not isinstance(step, dict) or step.get("empty_layer"):
            continue
        created = step.get("created_by")
        out.append(created if isinstance(created, str) else None)
    return out


def make_layers(descriptors: list[tuple[str, str, int | None]],
                config: dict[str, Any]) -> list[Layer]:
    """Layers from (digest, media type, size) triples plus what the config says of each."""
    ids = diff_ids(config)
    history = layer_history(config)
    aligned = len(history) == len(descriptors)  # else a step-to-layer mapping would be a guess
    return [Layer(digest, mtype, size, i,
                  history[i] if aligned else None,
                  ids[i] if i < len(ids) else None)
            for i, (digest, mtype, size) in enumerate(descriptors)]


def _lines(value: Any) -> str | None:
    if isinstance(value, list) and value:
        return "\n".join(str(v) for v in value)
    if isinstance(value, str) and value:
        return value
    return None


def _pairs(value: Any) -> str | None:
    if isinstance(value, dict) and value:
        return "\n".join(f"{k}={v}" for k, v in value.items())
    return None


def config_entries(config: dict[str, Any],
                   annotations: dict[str, Any] | None = None) -> list[ImageConfigEntry]:
    """The config text a key can hide in, one value a line so a finding has a useful line:
    ``Env``, ``Labels``, ``Cmd``, ``Entrypoint``, ``OnBuild``, each history step (build
    arguments appear in ``RUN`` steps' ``created_by``), and the manifest's annotations."""
    out: list[ImageConfigEntry] = []
    inner = config.get("config") or config.get("container_config") or {}
    if isinstance(inner, dict):
        for name, text in (("Env", _lines(inner.get("Env"))),
                           ("Labels", _pairs(inner.get("Labels"))),
                           ("Cmd", _lines(inner.get("Cmd"))),
                           ("Entrypoint", _lines(inner.get("Entrypoint"))),
                           ("OnBuild", _lines(inner.get("OnBuild")))):
            if text:
                out.append(ImageConfigEntry(f"<config:{name}>", text))
    history = config.get("history")
    if isinstance(history, list):
        for i, step in enumerate(history):
            if isinstance(step, dict):
                text = "\n".join(str(step[k]) for k in ("created_by", "comment")
                                 if isinstance(step.get(k), str) and step[k])
                if text:
                    out.append(ImageConfigEntry(f"<config:history[{i}]>", text))
    if annotations:
        text = _pairs(annotations)
        if text:
            out.append(ImageConfigEntry("<manifest:annotations>", text))
    return out


class VerifiedStream:
    """A read-only stream over a blob that hashes what passes through it.

    ``finish()`` reads whatever the consumer left (a tar ends before its blob does: padding),
    then says whether the bytes were the blob the digest names. A layer is checked as it is
    scanned, in one pass, instead of being spooled and hashed first.
    """

    def __init__(self, raw: IO[bytes], digest: str, limit: int | None = None,
                 on_close: Any = None) -> None:
        self.raw = raw
        self.digest = digest
        algorithm, _, self.expected = digest.partition(":")
        self.hash = hashlib.new(algorithm)
        self.read_bytes = 0
        self.limit = limit
        self.on_close = on_close

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.limit is not None and self.read_bytes > self.limit:
            raise BlobError(f"blob {self.digest} is larger than {self.limit} bytes",
                            self.digest, "layer_too_large")
        data = self.raw.read(size if size is not None and size >= 0 else -1)
        self.hash.update(data)
        self.read_bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def finish(self) -> bool:
        while self.read(1 << 20):
            pass
        return self.hash.hexdigest() == self.expected

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            if self.on_close is not None:
                self.on_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def walk_index(load: Any, entries: list[Descriptor], platform: Platform | None,
               where: str, warn: Any, depth: int = 0
               ) -> Iterator[tuple[Descriptor, dict[str, Any]]]:
    """Every image manifest reachable from index ``entries`` (nested indexes followed, to a
    bounded depth), with its parsed document. ``load(descriptor)`` returns the document; a
    manifest that cannot be read goes to ``warn(BlobError)`` and the others are still read."""
    for entry in select(entries, platform):
        try:
            document = load(entry)
        except BlobError as error:
            warn(error)
            continue
        except ImageError as error:
            warn(BlobError(str(error), entry.digest, "image_error"))
            continue
        mtype = media_type(document, entry.media_type or None)
        if mtype in INDEX_TYPES:
            if depth >= MAX_INDEX_DEPTH:
                raise ImageError(f"{where}: image indexes nested deeper than {MAX_INDEX_DEPTH}")
            yield from walk_index(load, index_entries(document, where), platform, where,
                                  warn, depth + 1)
        elif mtype in MANIFEST_TYPES:
            yield entry, document
        else:
            warn(BlobError(f"{where}: manifest {entry.digest} has unknown media type "
                           f"{mtype[:80]!r}, not scanned", entry.digest, "unknown_media_type"))
