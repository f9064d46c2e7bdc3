"""The typed vocabulary of images: references, platforms, layers and config text.

Plain dataclasses with no I/O, so the reading code (layouts, archives, registries) and the
scanning code agree on one shape, and a finding's provenance (``findings.ImageOrigin``) is
built from values, never from a live connection or an open file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from ...errors import ScanError
from ...findings import ImageOrigin

RefKind = Literal["oci-dir", "oci-tar", "docker-archive", "registry"]

# A digest as the OCI spec allows it for the algorithms we can check. Anything else is refused
# before it is used as a file name (a crafted index.json must not open ``../../etc/passwd``).
DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


class ImageError(ScanError):
    """An image (one reference) that cannot be read at all; one line of text, no secrets
    (a ``ScanError``: a reference that names no image ends the run with that line)."""


class BlobError(ImageError):
    """One blob (layer or config) that cannot be read, or is not what its digest says."""

    def __init__(self, message: str, digest: str, kind: str = "layer_error") -> None:
        super().__init__(message)
        self.digest = digest
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Platform:
    """``os/architecture[/variant]`` as image indexes name them."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform must be OS/ARCH[/VARIANT], not {text!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, data: Any) -> Platform | None:
        if not isinstance(data, dict):
            return None
        os_name, arch = data.get("os"), data.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str):
            return None
        variant = data.get("variant")
        return cls(os_name, arch, variant if isinstance(variant, str) and variant else None)

    def matches(self, wanted: Platform) -> bool:
        """Whether this platform is the one asked for (no variant asked: any variant)."""
        return (self.os == wanted.os and self.architecture == wanted.architecture
                and (wanted.variant is None or self.variant == wanted.variant))

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True)
class ImageRef:
    """What the user named, classified. ``text`` is exactly what they typed (for reports)."""

    text: str
    kind: RefKind
    path: str | None = None  # local forms
    registry: str | None = None  # host[:port] as contacted
    repository: str | None = None  # e.g. library/python
    tag: str | None = None
    digest: str | None = None
    plain_http: bool = False  # registry only: loopback registries speak plain HTTP

    @property
    def manifest_reference(self) -> str:
        """The tag or digest to ask the registry for."""
        return self.digest or self.tag or "latest"


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of one image: ``digest`` names the blob as stored (compressed or not),
    ``diff_id`` the uncompressed tar (the config's ``rootfs.diff_ids``), which is what two
    forms of one image share and so what a layer is deduplicated on."""

    digest: str
    media_type: str
    size: int | None
    index: int
    created_by: str | None = None
    diff_id: str | None = None

    @property
    def identity(self) -> str:
        """The key a layer is read once under: its uncompressed digest when known."""
        return self.diff_id or self.digest


@dataclass(frozen=True, slots=True)
class ImageConfigEntry:
    """Text from the image config or manifest, one value a line, named like ``<config:Env>``."""

    location: str
    text: str


BlobOpener = Callable[[Layer], IO[bytes]]


@dataclass(slots=True)
class Image:
    """One platform's image of one reference, resolved: its layers, its config text, and how
    to open a layer's blob (the stream it returns checks the digest as it is read)."""

    ref: ImageRef
    manifest_digest: str | None
    platform: Platform | None
    config_digest: str | None
    layers: list[Layer]
    config: list[ImageConfigEntry]
    open_layer: BlobOpener = field(repr=False)

    @property
    def name(self) -> str:
        """The reference as shown in reports, with the platform when an index had several."""
        return self.ref.text

    def origin(self, layer: Layer | None, deleted: bool = False,
               verified: bool = True) -> ImageOrigin:
        return ImageOrigin(
            reference=self.ref.text,
            manifest_digest=self.manifest_digest,
            platform=str(self.platform) if self.platform else None,
            layer_digest=layer.digest if layer else None,
            layer_index=layer.index if layer else None,
            created_by=layer.created_by if layer else None,
            deleted=deleted,
            digest_verified=verified,
        )
