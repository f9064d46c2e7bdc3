"""Container images built by the tests with the standard library only (tar + gzip + JSON).

No docker daemon: layers are tars made here, configs and manifests are written as the OCI
image spec and Docker's ``save`` format describe them, and a registry gets them through the
Registry HTTP API v2 push flow (POST an upload, PUT the blob, PUT the manifest).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

WHITEOUT = object()  # a layer entry that deletes the path from the layers below


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, Any]) -> bytes:
    """An uncompressed layer: path → bytes, or ``WHITEOUT`` for ``.wh.NAME``, or ``"opaque"``
    for ``DIR/.wh..wh..opq`` (key = DIR)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, content in files.items():
            if content is WHITEOUT:
                parent, _, base = path.rpartition("/")
                path, content = f"{parent}/.wh.{base}" if parent else f".wh.{base}", b""
            elif content == "opaque":
                path, content = f"{path}/.wh..wh..opq", b""
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def jar(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


@dataclass
class ImageSpec:
    """Layers (bottom first, each path → content) and config fields."""

    layers: list[dict[str, Any]]
    env: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    platform: tuple[str, str] = ("linux", "amd64")
    compress: bool = True

    def build(self) -> Built:
        tars = [layer_tar(files) for files in self.layers]
        blobs = [gz(t) if self.compress else t for t in tars]
        config = {
            "architecture": self.platform[1], "os": self.platform[0],
            "config": {"Env": self.env, "Labels": self.labels or None,
                       "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
            "history": self.history,
        }
        config_bytes = json.dumps(config).encode()
        manifest = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config_bytes),
                       "size": len(config_bytes)},
            "layers": [{"mediaType": LAYER_GZIP if self.compress else LAYER_TAR,
                        "digest": sha256(b), "size": len(b)} for b in blobs],
        }
        manifest_bytes = json.dumps(manifest).encode()
        return Built(tars, blobs, config_bytes, manifest_bytes, self.platform)


@dataclass
class Built:
    tars: list[bytes]  # uncompressed layers
    blobs: list[bytes]  # as stored in a layout or registry
    config: bytes
    manifest: bytes
    platform: tuple[str, str]

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)

    def blob_map(self) -> dict[str, bytes]:
        blobs = {sha256(b): b for b in self.blobs}
        blobs[sha256(self.config)] = self.config
        blobs[sha256(self.manifest)] = self.manifest
        return blobs


def write_oci_layout(root: Path, images: list[Built], index_extra: list[dict[str, Any]]
                     | None = None) -> Path:
    """An OCI image layout directory holding ``images`` (one index entry each)."""
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entries = []
    for image in images:
        for digest, data in image.blob_map().items():
            (root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
        entries.append({"mediaType": OCI_MANIFEST, "digest": image.manifest_digest,
                        "size": len(image.manifest),
                        "platform": {"os": image.platform[0],
                                     "architecture": image.platform[1]}})
    entries += index_extra or []
    (root / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
    return root


def tar_of(directory: Path, out: Path) -> Path:
    """A tar of a directory's contents (member names relative to it, as ``tar -C dir .``)."""
    with tarfile.open(out, "w") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return out


def write_docker_archive(out: Path, image: Built, tag: str = "test/app:1") -> Path:
    """A ``docker save`` archive (legacy layout: ``ID/layer.tar`` plain tars,
    ``HEX.json`` config, ``manifest.json``)."""
    config_hex = sha256(image.config).split(":")[1]
    layer_names = []
    with tarfile.open(out, "w") as archive:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))

        for n, tar in enumerate(image.tars):
            layer_id = hashlib.sha256(f"v1-id-{n}".encode() + tar[:64]).hexdigest()
            layer_names.append(f"{layer_id}/layer.tar")
            add(f"{layer_id}/layer.tar", tar)
        add(f"{config_hex}.json", image.config)
        add("manifest.json", json.dumps([{"Config": f"{config_hex}.json", "RepoTags": [tag],
                                          "Layers": layer_names}]).encode())
    return out


def push(address: str, name: str, tag: str, image: Built) -> str:
    """Push ``image`` to the registry at ``address`` (plain HTTP, loopback); its digest."""
    host, port = address.rsplit(":", 1)
    for digest, data in image.blob_map().items():
        if digest == image.manifest_digest:
            continue
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", f"/v2/{name}/blobs/uploads/")
        response = conn.getresponse()
        response.read()
        assert response.status == 202, response.status
        location = response.getheader("Location") or ""
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        sep = "&" if "?" in location else "?"
        conn.request("PUT", f"{location}{sep}digest={digest}", body=data,
                     headers={"Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        response.read()
        assert response.status == 201, response.status
        conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("PUT", f"/v2/{name}/manifests/{tag}", body=image.manifest,
                  headers={"Content-Type": OCI_MANIFEST})
    response = conn.getresponse()
    response.read()
    assert response.status == 201, response.status
    conn.close()
    return image.manifest_digest


@dataclass
class Planted:
    """An image with four keys: in a file a later layer deletes, in a jar inside a layer,
    in an ``ENV``, and as a build argument in ``history[].created_by``."""

    spec: ImageSpec
    deleted_key: str
    jar_key: str
    env_key: str
    arg_key: str


def planted(make_key: Any, compress: bool = True) -> Planted:
    deleted_key, jar_key, env_key, arg_key = (make_key() for _ in range(4))
    spec = ImageSpec(
        layers=[
            {"etc/os-release": b"NAME=test\n",
             "app/secret.env": f"# build secret\nPOELIS_KEY={deleted_key}\n".encode()},
            {"app/lib/service.jar": jar({
                "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
                "BOOT-INF/classes/application.properties":
                    f"poelis.url=https://api.poelis.com\npoelis.key={jar_key}\n".encode()})},
            {"app/secret.env": WHITEOUT, "app/README": b"nothing here\n"},
        ],
        env=["PATH=/usr/local/bin:/usr/bin", f"POELIS_API_KEY={env_key}"],
        history=[
            {"created_by": "COPY etc app /"},
            {"created_by": "COPY service.jar /app/lib/"},
            {"created_by": "ARG POELIS_BUILD_TOKEN", "empty_layer": True},
            {"created_by": f"|1 POELIS_BUILD_TOKEN={arg_key} /bin/sh -c rm /app/secret.env"},
        ],
        compress=compress,
    )
    return Planted(spec, deleted_key, jar_key, env_key, arg_key)


class LoopbackServers:
    """A registry front that demands a Bearer token, its token server, and a "CDN" its blob
    answers redirect to, all on 127.0.0.1 and all stdlib: the front proxies to a real
    registry. Each records the requests it saw (path and headers) for the test to check."""

    def __init__(self, upstream: str, user: str, password: str,
                 fail_blob: str | None = None) -> None:
        import base64
        import secrets
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.upstream = upstream
        self.token = secrets.token_urlsafe(24)
        self.expected_basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.seen: dict[str, list[tuple[str, dict[str, str]]]] = {"front": [], "token": [],
                                                                   "cdn": []}
        servers = self

        def proxy(handler: BaseHTTPRequestHandler, path: str) -> None:
            host, port = servers.upstream.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            accept = handler.headers.get("Accept")
            conn.request("GET", path, headers={"Accept": accept} if accept else {})
            answer = conn.getresponse()
            body = answer.read()
            handler.send_response(answer.status)
            for name in ("Content-Type", "Docker-Content-Digest"):
                if answer.getheader(name):
                    handler.send_header(name, answer.getheader(name) or "")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            conn.close()

        class Quiet(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, status: int, body: bytes = b"", headers: dict[str, str]
                       | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Front(Quiet):
            def do_GET(self) -> None:
                servers.seen["front"].append((self.path, dict(self.headers)))
                if self.headers.get("Authorization") != f"Bearer {servers.token}":
                    realm = f"http://127.0.0.1:{servers.token_port}/token"
                    name = self.path[len("/v2/"):].split("/manifests/")[0].split("/blobs/")[0]
                    self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {
                        "WWW-Authenticate": f'Bearer realm="{realm}",service="test-registry",'
                                            f'scope="repository:{name}:pull"'})
                    return
                if "/blobs/" in self.path:
                    if fail_blob and self.path.endswith(fail_blob):
                        self.answer(500, b"boom")
                        return
                    self.answer(307, headers={
                        "Location": f"http://127.0.0.1:{servers.cdn_port}/cdn{self.path}"})
                    return
                proxy(self, self.path)

        class Token(Quiet):
            def do_GET(self) -> None:
                servers.seen["token"].append((self.path, dict(self.headers)))
                if self.headers.get("Authorization") != servers.expected_basic:
                    self.answer(401, b'{"details":"bad credentials"}')
                    return
                self.answer(200, json.dumps({"token": servers.token}).encode(),
                            {"Content-Type": "application/json"})

        class Cdn(Quiet):
            def do_GET(self) -> None:
                servers.seen["cdn"].append((self.path, dict(self.headers)))
                proxy(self, self.path[len("/cdn"):])

        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), cls)
                         for cls in (Front, Token, Cdn)]
        self.front_port, self.token_port, self.cdn_port = (
            s.server_address[1] for s in self._servers)
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True)
                         for s in self._servers]
        for thread in self._threads:
            thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.front_port}"

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
