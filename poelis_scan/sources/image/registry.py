"""Pulling from a registry over the Registry HTTP API v2 (the OCI distribution spec).

Only ``GET`` requests, through ``http.client`` (no dependency; it never follows a redirect on
its own, takes explicit timeouts, and keeps headers out of its exception messages). Not
``httpget.py``, which verification uses: it reads a capped body into memory under one deadline
for the whole exchange, right for a small API answer, wrong for a layer, which is streamed into
the scan as it arrives (up to ``MAX_LAYER_BYTES``) and whose download time grows with its size;
here each socket operation is bounded by ``TIMEOUT`` instead. The rules that keep credentials
where they belong:

- HTTPS always; plain HTTP only to a loopback address (a local test registry), and that
  check is made before any connection is opened, for the registry, a token realm and a
  redirect alike.
- Redirects are followed only for blob downloads (registries send blobs from a CDN), at most
  five, and the ``Authorization`` header is dropped as soon as the host, port or scheme
  differs from the registry's: a CDN never sees the registry's credentials.
- Credentials come from ``POELIS_SCAN_REGISTRY_AUTH`` (``user:password``) or the Docker
  client's ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``), never from the command line
  or the image, and never appear in an error.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit

from .manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    VerifiedStream,
    config_entries,
    index_entries,
    load_json,
    make_layers,
    manifest_parts,
    media_type,
    verify_bytes,
    walk_index,
)
from .model import BlobError, Image, ImageError, ImageRef, Layer, Platform

ACCEPT = f"{OCI_INDEX}, {OCI_MANIFEST}, {DOCKER_LIST}, {DOCKER_MANIFEST}"
TIMEOUT = 30.0
MAX_REDIRECTS = 5
MAX_LAYER_BYTES = 16 << 30  # a blob larger than this is refused part-way (a hostile server)
_USER_AGENT = "poelis-scan (image scanner)"

Warn = Callable[[BlobError], None]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RegistryError(ImageError):
    """A registry answer that stops one image (401, 404, 5xx, refused connection…)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class _Endpoint:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> _Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise RegistryError(f"refusing to fetch {parts.scheme or '?'}:// URL (only https)")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise RegistryError(f"refusing plain HTTP to {parts.hostname}: use https (plain HTTP "
                                "is only allowed to a loopback address)")
        return cls(parts.scheme, parts.hostname,
                   parts.port or (443 if parts.scheme == "https" else 80))

    def connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)


def credentials(registry: str) -> tuple[str, str] | None:
    """(user, password) for ``registry``: ``POELIS_SCAN_REGISTRY_AUTH``, then the Docker
    client's ``auths`` entry (base64 ``user:password``). Credential helpers are not run."""
    env = os.environ.get("POELIS_SCAN_REGISTRY_AUTH")
    if env:
        user, sep, password = env.partition(":")
        if not sep:
            raise ImageError("POELIS_SCAN_REGISTRY_AUTH must be USER:PASSWORD")
        return user, password
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    try:
        with open(os.path.join(directory, "config.json"), "rb") as handle:
            config = json.loads(handle.read(1 << 20))
    except (OSError, ValueError):
        return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    names = [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/",
             f"https://{registry}/v1/"]
    if registry in ("registry-1.docker.io", "docker.io", "index.docker.io"):
        names += ["https://index.docker.io/v1/", "index.docker.io", "docker.io"]
    for name in names:
        entry = auths.get(name)
        if isinstance(entry, dict) and isinstance(entry.get("auth"), str):
            try:
                user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise ImageError(f"{directory}/config.json: auths[{name!r}].auth is not "
                                 "base64 of USER:PASSWORD") from None
            if sep:
                return user, password
    return None


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…",scope="…"`` → ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq == -1:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = i + 1
            value = []
            while end < len(rest) and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < len(rest):
                    end += 1
                value.append(rest[end])
                end += 1
            params[name] = "".join(value)
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end == -1 else end
            params[name] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


class _Response:
    """A response body that closes its connection with it."""

    def __init__(self, connection: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        self.connection = connection
        self.response = response

    def read(self, size: int = -1) -> bytes:
        return self.response.read(None if size < 0 else size)

    def close(self) -> None:
        self.response.close()
        self.connection.close()


class Registry:
    """One registry host: its endpoint, credentials and the token of each repository."""

    def __init__(self, host: str, plain_http: bool) -> None:
        self.host = host
        self.base = f"{'http' if plain_http else 'https'}://{host}"
        self.endpoint = _Endpoint.of(self.base)  # refuses non-loopback plain HTTP, no traffic
        self._credentials: tuple[str, str] | bool | None = False  # False: not looked up yet
        self._authorization: dict[str, str] = {}  # repository → Authorization header value
        self._lock = threading.Lock()

    def _creds(self) -> tuple[str, str] | None:
        if self._credentials is False:
            self._credentials = credentials(self.host)
        return self._credentials  # type: ignore[return-value]

    def _send(self, endpoint: _Endpoint, path: str, headers: dict[str, str]) -> _Response:
        connection = endpoint.connection()
        try:
            connection.request("GET", path, headers={"User-Agent": _USER_AGENT, **headers})
            return _Response(connection, connection.getresponse())
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            reason = getattr(error, "strerror", None) or error.__class__.__name__
            raise RegistryError(f"cannot reach {endpoint.host}:{endpoint.port} ({reason})") \
                from None

    def _authenticate(self, repository: str, challenge: str) -> None:
        scheme, params = _parse_challenge(challenge)
        creds = self._creds()
        if scheme == "basic":
            if creds is None:
                raise RegistryError(f"{self.host} asks for credentials (401): set "
                                    "POELIS_SCAN_REGISTRY_AUTH or docker login", 401)
            token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            self._authorization[repository] = f"Basic {token}"
            return
        if scheme != "bearer" or not params.get("realm"):
            raise RegistryError(f"{self.host} answered 401 with an authentication scheme we "
                                f"do not speak ({scheme[:20]!r})", 401)
        realm = params["realm"]
        endpoint = _Endpoint.of(realm)
        query = {k: params[k] for k in ("service",) if k in params}
        query["scope"] = params.get("scope") or f"repository:{repository}:pull"
        split = urlsplit(realm)
        path = (split.path or "/") + "?" + (f"{split.query}&" if split.query else "") + \
            urlencode(query)
        headers = {}
        if creds is not None:
            token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        response = self._send(endpoint, path, headers)
        try:
            status = response.response.status
            body = response.read(1 << 20)
        finally:
            response.close()
        if status != 200:
            raise RegistryError(f"token server {endpoint.host} refused a token for "
                                f"{repository} ({status})", 401)
        try:
            answer = json.loads(body)
            value = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"token server {endpoint.host} answered without a token", 401)
        self._authorization[repository] = f"Bearer {value}"

    def get(self, repository: str, path: str, accept: str | None = None,
            follow: bool = False) -> _Response:
        """GET ``path`` with this repository's credentials; one authentication round on 401;
        redirects only when ``follow`` (blobs), credentials only to the registry itself."""
        headers = {"Accept": accept} if accept else {}
        for attempt in range(2):
            with self._lock:
                auth = self._authorization.get(repository)
            response = self._send(self.endpoint, path,
                                  {**headers, **({"Authorization": auth} if auth else {})})
            status = response.response.status
            if status == 401 and attempt == 0:
                challenge = response.response.getheader("WWW-Authenticate") or ""
                response.close()
                with self._lock:
                    self._authenticate(repository, challenge)
                continue
            break
        if follow:
            response = self._follow(response, headers, auth)
        status = response.response.status
        if status != 200:
            response.close()
            what = {401: "unauthorized", 403: "forbidden", 404: "not found",
                    429: "rate limited"}.get(status, "server error" if status >= 500 else "")
            raise RegistryError(f"{self.host} answered {status} {what} for "
                                f"{path.split('?')[0][:200]}", status)
        return response

    def _follow(self, response: _Response, headers: dict[str, str],
                auth: str | None) -> _Response:
        endpoint, url = self.endpoint, self.base
        for _ in range(MAX_REDIRECTS):
            if response.response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.response.getheader("Location") or ""
            response.close()
            url = urljoin(url, location)
            endpoint = _Endpoint.of(url)  # the same https / loopback-only rule
            split = urlsplit(url)
            path = (split.path or "/") + (f"?{split.query}" if split.query else "")
            same = endpoint == self.endpoint
            response = self._send(endpoint, path,
                                  {**headers, **({"Authorization": auth} if auth and same
                                                 else {})})
        if response.response.status in (301, 302, 303, 307, 308):
            response.close()
            raise RegistryError(f"{self.host}: more than {MAX_REDIRECTS} redirects for a blob")
        return response


def _read_limited(response: _Response, limit: int, what: str) -> bytes:
    try:
        data = response.read(limit + 1)
    finally:
        response.close()
    if len(data) > limit:
        raise ImageError(f"{what} is larger than {limit} bytes")
    return data


_registries: dict[tuple[str, bool], Registry] = {}  # one per host in a scan: one token each


def forget_registries() -> None:
    _registries.clear()


def registry_images(ref: ImageRef, platform: Platform | None, warn: Warn) -> Iterator[Image]:
    """Every image (per platform) a registry reference leads to."""
    assert ref.registry is not None and ref.repository is not None
    key = (ref.registry, ref.plain_http)
    registry = _registries.get(key) or _registries.setdefault(
        key, Registry(ref.registry, ref.plain_http))
    repo = ref.repository
    where = ref.text

    def fetch_manifest(reference: str, expected: str | None) -> tuple[str, dict[str, Any], str]:
        response = registry.get(repo, f"/v2/{repo}/manifests/{reference}", ACCEPT)
        header_type = (response.response.getheader("Content-Type") or "").split(";")[0].strip()
        header_digest = response.response.getheader("Docker-Content-Digest")
        data = _read_limited(response, MAX_MANIFEST_BYTES, f"{where}: manifest")
        digest = expected or (header_digest if header_digest and header_digest.startswith(
            "sha256:") else None)
        if digest is None:
            import hashlib

            digest = "sha256:" + hashlib.sha256(data).hexdigest()
        verify_bytes(data, digest, f"{where}: manifest")
        return digest, load_json(data, f"{where}: manifest"), header_type

    top_digest, top, header_type = fetch_manifest(ref.manifest_reference, ref.digest)
    mtype = media_type(top, header_type or None)
    opener = _layer_opener(registry, repo, where)
    if mtype in MANIFEST_TYPES:
        pairs: Iterator[tuple[Descriptor, dict[str, Any]]] = iter(
            [(Descriptor(top_digest, mtype, None, None), top)])
    elif mtype in INDEX_TYPES:
        def load(descriptor: Descriptor) -> dict[str, Any]:
            return fetch_manifest(descriptor.digest, descriptor.digest)[1]

        pairs = walk_index(load, index_entries(top, where), platform, where, warn)
    else:
        raise BlobError(f"{where}: manifest has unknown media type {mtype[:80]!r}",
                        top_digest, "unknown_media_type")
    for descriptor, manifest in pairs:
        try:
            config_desc, layer_descs = manifest_parts(manifest, f"{where}: {descriptor.digest}")
            response = registry.get(repo, f"/v2/{repo}/blobs/{config_desc.digest}", follow=True)
            data = _read_limited(response, MAX_CONFIG_BYTES, f"{where}: config")
            verify_bytes(data, config_desc.digest, f"{where}: config")
            config = load_json(data, f"{where}: config {config_desc.digest}")
        except BlobError as error:
            warn(error)
            continue
        except ImageError as error:
            warn(BlobError(str(error), descriptor.digest, "image_error"))
            continue
        image_platform = descriptor.platform or Platform.from_json(config)
        if platform is not None and image_platform and not image_platform.matches(platform):
            continue
        annotations = manifest.get("annotations")
        yield Image(
            ref=ref, manifest_digest=descriptor.digest, platform=image_platform,
            config_digest=config_desc.digest,
            layers=make_layers([(d.digest, d.media_type, d.size) for d in layer_descs], config),
            config=config_entries(config, annotations if isinstance(annotations, dict) else None),
            open_layer=opener,
        )


def _layer_opener(registry: Registry, repo: str, where: str) -> Callable[[Layer], IO[bytes]]:
    def open_layer(layer: Layer) -> IO[bytes]:
        try:
            response = registry.get(repo, f"/v2/{repo}/blobs/{layer.digest}", follow=True)
        except RegistryError as error:
            kind = "missing_blob" if error.status == 404 else "layer_error"
            raise BlobError(f"{where}: layer {layer.digest}: {error}", layer.digest,
                            kind) from None
        return VerifiedStream(response, layer.digest, MAX_LAYER_BYTES)  # type: ignore[arg-type,return-value]

    return open_layer
