"""What REF names: a local OCI layout or ``docker save`` archive (directory or tar), or a
registry reference.

A path that exists always wins, so ``./app.tar`` is never mistaken for a registry name.
Registry references follow the grammar of the distribution project's ``reference`` package:
``[host[:port]/]name[:tag][@algorithm:hex]``, where the first component is a host only if it
holds a ``.`` or a ``:`` or is ``localhost``; ``docker.io`` names are normalised the way the
Docker client does (``python`` → ``registry-1.docker.io/library/python``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

from .model import BlobError, Image, ImageError, ImageRef, Platform

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE = re.compile(
    rf"^(?:(?P<host>{_HOST})/)?(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_NAME_MAX = 255
_TRANSPORTS = {"oci:": "dir-or-tar", "oci-archive:": "dir-or-tar",
               "docker-archive:": "dir-or-tar", "docker://": "registry"}


def _is_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or \
        component.startswith("[")


def classify(text: str) -> ImageRef:
    """The ``ImageRef`` for what the user typed; ``ImageError`` if it is neither a readable
    local image nor a well-formed registry reference."""
    original = text
    forced: str | None = None
    for prefix, kind in _TRANSPORTS.items():  # skopeo's transport names, for copy-paste
        if text.startswith(prefix):
            text, forced = text[len(prefix):], kind
            break
    if forced != "registry" and os.path.exists(text):
        return ImageRef(original, _local_kind(text), path=text)  # type: ignore[arg-type]
    if forced == "dir-or-tar":
        raise ImageError(f"{original}: no such file or directory")
    plain_http = False
    if text.startswith(("http://", "https://")):
        plain_http = text.startswith("http://")
        text = text.split("://", 1)[1]
    return _registry_ref(original, text, plain_http)


def _registry_ref(original: str, text: str, plain_http: bool) -> ImageRef:
    match = REFERENCE.match(text)
    if not match:
        raise ImageError(f"{original}: not an existing path, nor a registry reference "
                         "HOST[:PORT]/NAME[:TAG|@sha256:HEX]")
    host, name = match.group("host"), match.group("name")
    if host is not None and not _is_host(host):  # "library/python": no host after all
        name, host = f"{host}/{name}", None
    if host is None or host in ("docker.io", "index.docker.io"):
        host = "registry-1.docker.io"
        if "/" not in name:
            name = f"library/{name}"
    if len(name) > _NAME_MAX:
        raise ImageError(f"{original}: repository name longer than {_NAME_MAX} characters")
    digest = match.group("digest")
    if digest is not None and not re.fullmatch(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}",
                                               digest):
        raise ImageError(f"{original}: only sha256 and sha512 digests can be checked")
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    from .registry import is_loopback

    loopback = is_loopback(hostname)
    if plain_http and not loopback:
        raise ImageError(f"{original}: refusing plain HTTP to {hostname}: registries are pulled "
                         "over HTTPS (plain HTTP is only allowed to a loopback address)")
    return ImageRef(original, "registry", registry=host, repository=name,
                    tag=match.group("tag") if match.group("tag") or digest else "latest",
                    digest=digest, plain_http=plain_http or loopback)


_stores: dict[str, object] = {}  # path → layout.Store: a tar is indexed once per run


def _local_kind(path: str) -> str:
    """``docker-archive`` when a ``manifest.json`` is there (even next to an ``index.json``:
    Docker 25+ writes both), else an OCI layout, as a directory or a tar."""
    from .layout import Store

    store = _stores.get(path) or _stores.setdefault(path, Store(path))
    assert isinstance(store, Store)
    if store.exists("manifest.json"):
        return "docker-archive"
    if store.exists("index.json") and store.exists("oci-layout"):
        return "oci-dir" if store.is_dir else "oci-tar"
    raise ImageError(f"{path}: not an image (no oci-layout + index.json, nor a docker save "
                     "manifest.json)")


def open_reference(ref: ImageRef, platform: Platform | None,
                   warn: Callable[[BlobError], None]) -> Iterator[Image]:
    """Every image ``ref`` holds (one per platform of an index), resolved; blobs that fail
    go to ``warn`` and the rest are still yielded. ``ImageError``: nothing could be read."""
    if ref.kind == "registry":
        from .registry import registry_images

        yield from registry_images(ref, platform, warn)
        return
    from .layout import Store, docker_images, oci_images

    assert ref.path is not None
    store = _stores.get(ref.path) or Store(ref.path)
    assert isinstance(store, Store)
    if ref.kind == "docker-archive":
        yield from docker_images(ref, store, platform, warn)
    else:
        yield from oci_images(ref, store, platform, warn)


def forget() -> None:
    """Drop the indexed tars and the registry connections (with their tokens) of this scan:
    a later scan in the same process re-reads a changed archive and fresh credentials. The
    images already resolved keep what they use."""
    from .registry import forget_registries

    _stores.clear()
    forget_registries()


def describe(ref: ImageRef) -> str:
    """Where the reference points, for messages."""
    if ref.kind == "registry":
        scheme = "http" if ref.plain_http else "https"
        return f"{scheme}://{ref.registry}/v2/{ref.repository} ({ref.manifest_reference})"
    return ref.path or ref.text


__all__ = ["REFERENCE", "classify", "describe", "forget", "open_reference"]
