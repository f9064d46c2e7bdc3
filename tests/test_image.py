"""``poelis-scan image``: images built here with the standard library, in every form, and a
real Distribution registry on 127.0.0.1 (``tests/services.py``)."""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_key, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from images import (
    WHITEOUT,
    ImageSpec,
    LoopbackServers,
    Planted,
    gz,
    planted,
    push,
    sha256,
    tar_of,
    write_docker_archive,
    write_oci_layout,
)
from services import registry_address

from poelis_scan.detect.grammar import secret_sha256
from poelis_scan.sources.image import ImageError, Layer, classify
from poelis_scan.sources.image.layers import LayerReader, deleted

FORMS = ("oci-dir", "oci-tar", "docker-archive")


def make_form(form: str, image: Planted, where: Path) -> str:
    built = image.spec.build()
    if form == "oci-dir":
        return str(write_oci_layout(where / "layout", [built]))
    if form == "oci-tar":
        write_oci_layout(where / "layout-src", [built])
        return str(tar_of(where / "layout-src", where / "layout.tar"))
    return str(write_docker_archive(where / "docker.tar", built))


def by_key(findings: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["secret_sha256"] == secret_sha256(key)]


def check_planted(findings: list[dict[str, Any]], image: Planted, reference: str) -> None:
    """The four planted keys, each once for ``reference``, with their provenance."""
    mine = [f for f in findings if f["image"]["reference"] == reference]
    (gone,) = by_key(mine, image.deleted_key)
    assert gone["location"]["path"] == "app/secret.env"
    assert gone["location"]["line"] == 2
    assert gone["image"]["deleted"] is True
    assert gone["image"]["layer_index"] == 0
    assert gone["image"]["created_by"] == "COPY etc app /"
    assert gone["image"]["layer_digest"].startswith("sha256:")
    assert gone["image"]["platform"] == "linux/amd64"
    (in_jar,) = by_key(mine, image.jar_key)
    assert in_jar["location"]["path"] == "app/lib/service.jar"
    assert in_jar["location"]["member"] == "BOOT-INF/classes/application.properties"
    assert in_jar["image"]["layer_index"] == 1 and in_jar["image"]["deleted"] is False
    (env,) = by_key(mine, image.env_key)
    assert env["location"]["path"] == "<config:Env>" and env["location"]["line"] == 2
    assert env["image"]["layer_digest"] is None and env["image"]["layer_index"] is None
    (arg,) = by_key(mine, image.arg_key)
    assert arg["location"]["path"] == "<config:history[3]>"
    # The build argument is in layer 2's created_by too: provenance shows it redacted.
    everything = json.dumps(findings)
    for key in (image.deleted_key, image.jar_key, image.env_key, image.arg_key):
        assert key not in everything


@pytest.mark.parametrize("form", FORMS)
def test_four_planted_keys_in_every_local_form(form: str, tmp_path: Path) -> None:
    image = planted(make_key)
    ref = make_form(form, image, tmp_path)
    run = run_cli("image", "--format", "json", ref)
    assert run.status == 1, run.stderr
    check_planted(run.findings(), image, ref)
    stats = run.json()["stats"]
    assert stats["images_scanned"] == 1 and stats["layers_scanned"] == 3
    assert stats["files_scanned"] == 4  # the whiteout is no file


@pytest.mark.parametrize("form", FORMS)
def test_text_output_names_image_layer_and_deleted(form: str, tmp_path: Path) -> None:
    image = planted(make_key)
    ref = make_form(form, image, tmp_path)
    run = run_cli("image", ref, env={"NO_COLOR": "1"})
    assert run.status == 1
    lines = run.stdout.splitlines()
    (gone,) = [line for line in lines if line.startswith(f"{ref}@layer[0]:app/secret.env:2:12:")]
    assert "deleted" in gone
    assert any(line.startswith(f"{ref}@layer[1]:app/lib/service.jar[") for line in lines)
    assert any(line.startswith(f"{ref}@<config:Env>:2:") for line in lines)
    assert "4 findings" in run.stderr and "1 image, 3 layers" in run.stderr


def test_two_forms_of_one_image_read_each_layer_once(tmp_path: Path) -> None:
    image = planted(make_key)
    layout = make_form("oci-dir", image, tmp_path)
    archive = make_form("docker-archive", image, tmp_path)
    run = run_cli("image", "--format", "json", layout, archive)
    assert run.status == 1, run.stderr
    stats = run.json()["stats"]
    assert stats["images_scanned"] == 2
    assert stats["layers_scanned"] == 3  # gzip in one, plain in the other: same diff_ids
    assert stats["files_scanned"] == 4
    for ref in (layout, archive):  # findings of the shared layers go to both
        check_planted(run.findings(), image, ref)


def test_images_sharing_a_base_layer(tmp_path: Path) -> None:
    key_base, key_a, key_b = make_key(), make_key(), make_key()
    base = {"usr/lib/base.conf": f"token={key_base}\n".encode()}
    one = ImageSpec([base, {"app/a": f"{key_a}\n".encode()}]).build()
    two = ImageSpec([base, {"app/b": f"{key_b}\n".encode()}]).build()
    ref = str(write_oci_layout(tmp_path / "two", [one, two]))
    run = run_cli("image", "--format", "json", ref)
    stats = run.json()["stats"]
    assert stats["images_scanned"] == 2 and stats["layers_scanned"] == 3
    shared = by_key(run.findings(), key_base)
    assert sorted(f["image"]["manifest_digest"] for f in shared) == sorted(
        [one.manifest_digest, two.manifest_digest])
    assert len(by_key(run.findings(), key_a)) == 1 and len(by_key(run.findings(), key_b)) == 1


def _layout_with(tmp_path: Path) -> tuple[Planted, Path, list[str]]:
    image = planted(make_key)
    built = image.spec.build()
    root = write_oci_layout(tmp_path / "layout", [built])
    return image, root, [sha256(b) for b in built.blobs]


def _blob(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.split(":")[1]


def test_truncated_layer_is_a_warning_naming_it_and_the_rest_is_scanned(tmp_path: Path) -> None:
    image, root, digests = _layout_with(tmp_path)
    blob = _blob(root, digests[1])  # the jar's layer
    blob.write_bytes(blob.read_bytes()[: len(blob.read_bytes()) // 2])
    run = run_cli("image", "--format", "json", str(root))
    assert run.status == 2
    assert digests[1] in run.stderr and "corrupt or truncated" in run.stderr
    found = run.findings()
    assert by_key(found, image.deleted_key) and by_key(found, image.env_key)
    assert by_key(found, image.arg_key) and not by_key(found, image.jar_key)
    assert run.json()["stats"]["layers_scanned"] == 2
    assert "Traceback" not in run.stderr


def test_missing_blob_is_a_warning_and_the_rest_is_scanned(tmp_path: Path) -> None:
    image, root, digests = _layout_with(tmp_path)
    _blob(root, digests[0]).unlink()
    run = run_cli("image", "--format", "json", str(root))
    assert run.status == 2
    assert f"layer {digests[0]} is missing" in run.stderr
    found = run.findings()
    assert not by_key(found, image.deleted_key)
    assert by_key(found, image.jar_key) and by_key(found, image.env_key)


def test_layer_not_matching_its_digest_is_scanned_but_flagged(tmp_path: Path) -> None:
    image, root, digests = _layout_with(tmp_path)
    intruder = make_key()
    from images import layer_tar

    _blob(root, digests[1]).write_bytes(gz(layer_tar({"x/swapped": f"{intruder}\n".encode()})))
    run = run_cli("image", "--format", "json", str(root))
    assert run.status == 2
    assert f"layer {digests[1]}: blob does not match its digest" in run.stderr
    (swapped,) = by_key(run.findings(), intruder)
    assert swapped["image"]["digest_verified"] is False
    (honest,) = by_key(run.findings(), image.deleted_key)
    assert "digest_verified" not in honest["image"]
    assert run.json()["stats"]["layers_scanned"] == 2


def test_unknown_layer_media_type(tmp_path: Path) -> None:
    key = make_key()
    built = ImageSpec([{"a": f"{key}\n".encode()}, {"b": b"x"}]).build()
    manifest = json.loads(built.manifest)
    manifest["layers"][1]["mediaType"] = "application/vnd.example.not-a-layer"
    built.manifest = json.dumps(manifest).encode()
    root = write_oci_layout(tmp_path / "layout", [built])
    run = run_cli("image", "--format", "json", str(root))
    assert run.status == 2
    assert manifest["layers"][1]["digest"] in run.stderr and "unknown media type" in run.stderr
    assert by_key(run.findings(), key)


def test_zstd_layer_is_read_or_said_unreadable(tmp_path: Path) -> None:
    import sys

    key = make_key()
    built = ImageSpec([{"a": f"{key}\n".encode()}, {"b": b"x"}]).build()
    manifest = json.loads(built.manifest)
    fake = b"\x28\xb5\x2f\xfd" + os.urandom(64)  # zstd magic, then damage
    manifest["layers"][1].update(mediaType="application/vnd.oci.image.layer.v1.tar+zstd",
                                 digest=sha256(fake), size=len(fake))
    built.blobs[1] = fake
    built.manifest = json.dumps(manifest).encode()
    root = write_oci_layout(tmp_path / "layout", [built])
    run = run_cli("image", "--format", "json", str(root))
    assert run.status == 2 and sha256(fake) in run.stderr
    expected = "corrupt" if sys.version_info >= (3, 14) else "needs Python 3.14"
    assert expected in run.stderr and "Traceback" not in run.stderr
    assert by_key(run.findings(), key)


def test_not_an_image_and_bad_platform_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    run = run_cli("image", str(tmp_path / "plain"))
    assert run.status == 2 and "not an image" in run.stderr and "Traceback" not in run.stderr
    run = run_cli("image", "--platform", "linux", str(tmp_path / "plain"))
    assert run.status == 2 and "OS/ARCH" in run.stderr


def test_platform_selects_from_a_multi_platform_layout(tmp_path: Path) -> None:
    key_amd, key_arm = make_key(), make_key()
    amd = ImageSpec([{"a": f"{key_amd}\n".encode()}], platform=("linux", "amd64")).build()
    arm = ImageSpec([{"a": f"{key_arm}\n".encode()}], platform=("linux", "arm64")).build()
    root = str(write_oci_layout(tmp_path / "multi", [amd, arm]))
    every = run_cli("image", "--format", "json", root)
    assert {f["image"]["platform"] for f in every.findings()} == {"linux/amd64", "linux/arm64"}
    arm_only = run_cli("image", "--format", "json", "--platform", "linux/arm64", root)
    assert [f["image"]["platform"] for f in arm_only.findings()] == ["linux/arm64"]
    assert by_key(arm_only.findings(), key_arm)


def test_sarif_and_gitlab_name_the_image(tmp_path: Path) -> None:
    image = planted(make_key)
    ref = make_form("oci-dir", image, tmp_path)
    sarif = json.loads(run_cli("image", "--format", "sarif", ref).stdout)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"]}
    prefix = "image/" + ref.lstrip("/")
    assert any(u.endswith("/layer-0/app/secret.env") and prefix in u for u in uris)
    assert any(u.endswith("/config/Env") and prefix in u for u in uris)
    gitlab = json.loads(run_cli("image", "--format", "gitlab", ref).stdout)
    files = {v["location"]["file"] for v in gitlab["vulnerabilities"]}
    assert f"image/{ref.lstrip('/')}/layer-1/app/lib/service.jar" in files


# ---- whiteouts: the reader against a model of the overlay filesystem ------------------------

_NAMES = st.sampled_from(["a", "b", "c"])
_ENTRY = st.tuples(st.sampled_from(["file", "file", "whiteout", "opaque", "root-opaque"]),
                   _NAMES, _NAMES)


def _layer_files(entries: list[tuple[str, str, str]]) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for kind, directory, name in entries:
        if kind == "file":
            files[f"{directory}/{name}"] = b"x"
        elif kind == "whiteout":  # of a file, or (name "c") of the whole directory
            files[directory if name == "c" else f"{directory}/{name}"] = WHITEOUT
        elif kind == "opaque":
            files[directory] = "opaque"
        else:  # the root itself made opaque: everything below is hidden
            files[""] = "opaque"
    return files


def _visible(layers: list[dict[str, Any]]) -> dict[str, int]:
    """The overlay model: apply layers bottom up; path → the layer whose file is seen."""
    state: dict[str, int] = {}
    for i, files in enumerate(layers):
        for path, content in files.items():
            if content is WHITEOUT or content == "opaque":
                for seen in [p for p in state
                             if not path or p == path or p.startswith(path + "/")]:
                    del state[seen]
        for path, content in files.items():
            if isinstance(content, bytes):
                state[path] = i
    return state


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_ENTRY, max_size=6), min_size=1, max_size=4))
def test_deleted_matches_an_overlay_model(spec: list[list[tuple[str, str, str]]]) -> None:
    from images import layer_tar

    layers = [_layer_files(entries) for entries in spec]
    removals = []
    held: list[set[str]] = []
    for i, files in enumerate(layers):
        data = layer_tar(files)
        reader = LayerReader(Layer(sha256(data), "application/vnd.oci.image.layer.v1.tar",
                                   len(data), i), _Bytes(data))
        held.append({entry.path for entry in reader})
        removals.append(reader.removals)
    visible = _visible(layers)
    for i, paths in enumerate(held):
        for path in paths:
            shadowed = any(path in later for later in held[i + 1:])
            gone = deleted(removals, i, path)  # type: ignore[arg-type]
            assert (visible.get(path) == i) == (not gone and not shadowed), (i, path)


class _Bytes:
    def __init__(self, data: bytes) -> None:
        import io

        self.stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)


# ---- references --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("127.0.0.1:5000/app:1", "127.0.0.1:5000", "app", "1", None),
    ("localhost/team/app", "localhost", "team/app", "latest", None),
    ("ghcr.io/org/tool@sha256:" + "a" * 64, "ghcr.io", "org/tool", None, "sha256:" + "a" * 64),
    ("python:3.11-slim", "registry-1.docker.io", "library/python", "3.11-slim", None),
    ("docker.io/bitnami/redis", "registry-1.docker.io", "bitnami/redis", "latest", None),
    ("org/app:v2", "registry-1.docker.io", "org/app", "v2", None),
    ("[::1]:5000/app:t", "[::1]:5000", "app", "t", None),
])
def test_registry_references(text: str, registry: str, repository: str, tag: str | None,
                             digest: str | None) -> None:
    ref = classify(text)
    assert (ref.kind, ref.registry, ref.repository, ref.tag, ref.digest) == (
        "registry", registry, repository, tag, digest)


@pytest.mark.parametrize("text", ["Upper/Case", "app:", "app@sha256:abc", "a//b", "-app",
                                  "host:99999999999999/app:tag:tag"])
def test_malformed_references(text: str) -> None:
    with pytest.raises(ImageError):
        classify(text)


def test_existing_path_wins_over_a_registry_name(tmp_path: Path, monkeypatch: Any) -> None:
    image = planted(make_key)
    write_docker_archive(tmp_path / "app:1", image.spec.build())
    monkeypatch.chdir(tmp_path)
    assert classify("app:1").kind == "docker-archive"
    write_oci_layout(tmp_path / "localhost" / "app", [image.spec.build()])
    assert classify("localhost/app").kind == "oci-dir"


def test_plain_http_to_a_non_loopback_registry_is_refused() -> None:
    run = run_cli("image", "http://registry.invalid/app:1")
    assert run.status == 2
    assert "refusing plain HTTP to registry.invalid" in run.stderr
    assert "Traceback" not in run.stderr


# ---- a real registry on 127.0.0.1 --------------------------------------------------------

@pytest.fixture
def registry() -> str:
    return registry_address()


def _name(prefix: str) -> str:
    return f"poelis-test/{prefix}-{base64.b32encode(os.urandom(5)).decode().lower()}"


def test_registry_by_tag_and_by_digest(registry: str) -> None:
    image = planted(make_key)
    name = _name("planted")
    digest = push(registry, name, "v1", image.spec.build())
    by_tag, by_digest = f"{registry}/{name}:v1", f"{registry}/{name}@{digest}"
    run = run_cli("image", "--format", "json", by_tag, by_digest)
    assert run.status == 1, run.stderr
    for ref in (by_tag, by_digest):
        check_planted(run.findings(), image, ref)
    assert {f["image"]["manifest_digest"] for f in run.findings()} == {digest}
    stats = run.json()["stats"]
    assert stats["images_scanned"] == 2 and stats["layers_scanned"] == 3


def test_registry_and_local_forms_share_layers(registry: str, tmp_path: Path) -> None:
    image = planted(make_key)
    name = _name("shared")
    push(registry, name, "v1", image.spec.build())
    archive = make_form("docker-archive", image, tmp_path)
    run = run_cli("image", "--format", "json", f"{registry}/{name}:v1", archive)
    assert run.json()["stats"]["layers_scanned"] == 3
    check_planted(run.findings(), image, archive)


def test_registry_multi_platform_index(registry: str) -> None:
    from images import OCI_INDEX, OCI_MANIFEST

    keys = {"amd64": make_key(), "arm64": make_key()}
    name = _name("multi")
    entries = []
    for arch, key in keys.items():
        built = ImageSpec([{"k": f"{key}\n".encode()}], platform=("linux", arch)).build()
        push(registry, name, arch, built)
        entries.append({"mediaType": OCI_MANIFEST, "digest": built.manifest_digest,
                        "size": len(built.manifest),
                        "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": entries}).encode()
    _put_manifest(registry, name, "multi", index, OCI_INDEX)
    ref = f"{registry}/{name}:multi"
    every = run_cli("image", "--format", "json", ref)
    assert {f["image"]["platform"] for f in every.findings()} == {"linux/amd64", "linux/arm64"}
    one = run_cli("image", "--format", "json", "--platform", "linux/arm64", ref)
    assert [f["secret_sha256"] for f in one.findings()] == [secret_sha256(keys["arm64"])]
    assert one.json()["stats"]["images_scanned"] == 1


def _put_manifest(registry: str, name: str, tag: str, body: bytes, media_type: str) -> None:
    import http.client

    host, port = registry.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("PUT", f"/v2/{name}/manifests/{tag}", body=body,
                 headers={"Content-Type": media_type})
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 201


def test_registry_404_is_a_warning_and_other_references_are_scanned(registry: str) -> None:
    image = planted(make_key)
    name = _name("present")
    push(registry, name, "v1", image.spec.build())
    missing = f"{registry}/{name}:no-such-tag"
    run = run_cli("image", "--format", "json", missing, f"{registry}/{name}:v1")
    assert run.status == 2
    assert f"{missing}: " in run.stderr and "404" in run.stderr
    assert by_key(run.findings(), image.env_key)


@pytest.fixture
def front(registry: str) -> Iterator[LoopbackServers]:
    servers = LoopbackServers(registry, "ci-bot", "s3cret-pass")
    yield servers
    servers.close()


def test_bearer_token_auth_and_blob_redirect_without_credentials(
        registry: str, front: LoopbackServers) -> None:
    image = planted(make_key)
    name = _name("token")
    push(registry, name, "v1", image.spec.build())
    run = run_cli("image", "--format", "json", f"{front.address}/{name}:v1",
                  env={"POELIS_SCAN_REGISTRY_AUTH": "ci-bot:s3cret-pass",
                       "DOCKER_CONFIG": "/nonexistent"})
    assert run.status == 1, run.stderr
    check_planted(run.findings(), image, f"{front.address}/{name}:v1")
    token_paths = [path for path, _ in front.seen["token"]]
    assert token_paths and f"scope=repository%3A{name.replace('/', '%2F')}%3Apull" in \
        token_paths[0]
    assert all(h.get("Authorization") == front.expected_basic for _, h in front.seen["token"])
    blobs = [h for path, h in front.seen["front"] if "/blobs/" in path]
    assert blobs and all(h.get("Authorization") == f"Bearer {front.token}" for h in blobs)
    assert len(front.seen["cdn"]) == 4  # config + 3 layers, all through the redirect
    for _, headers in front.seen["cdn"]:
        assert not any(k.lower() == "authorization" for k in headers)
    assert "s3cret-pass" not in run.stdout + run.stderr


def test_credentials_from_docker_config(registry: str, front: LoopbackServers,
                                        tmp_path: Path) -> None:
    image = planted(make_key)
    name = _name("dockercfg")
    push(registry, name, "v1", image.spec.build())
    auth = base64.b64encode(b"ci-bot:s3cret-pass").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {front.address: {"auth": auth}}}))
    env = {k: v for k, v in os.environ.items() if k != "POELIS_SCAN_REGISTRY_AUTH"}
    env["DOCKER_CONFIG"] = str(tmp_path)
    run = run_cli("image", "--format", "json", f"{front.address}/{name}:v1", env=env)
    assert run.status == 1, run.stderr
    assert by_key(run.findings(), image.jar_key)


def test_refused_token_is_a_clear_401(registry: str, front: LoopbackServers) -> None:
    name = _name("refused")
    push(registry, name, "v1", planted(make_key).spec.build())
    run = run_cli("image", f"{front.address}/{name}:v1",
                  env={"POELIS_SCAN_REGISTRY_AUTH": "ci-bot:wrong", "DOCKER_CONFIG": "/none"})
    assert run.status == 2
    assert "refused a token" in run.stderr and "wrong" not in run.stderr


def test_registry_500_on_a_layer_names_it_and_the_rest_is_scanned(registry: str) -> None:
    image = planted(make_key)
    built = image.spec.build()
    bad = sha256(built.blobs[1])
    name = _name("five-hundred")
    push(registry, name, "v1", built)
    servers = LoopbackServers(registry, "u", "p", fail_blob=bad)
    try:
        run = run_cli("image", "--format", "json", f"{servers.address}/{name}:v1",
                      env={"POELIS_SCAN_REGISTRY_AUTH": "u:p"})
    finally:
        servers.close()
    assert run.status == 2
    assert f"layer {bad}" in run.stderr and "500" in run.stderr
    assert by_key(run.findings(), image.deleted_key) and not by_key(run.findings(),
                                                                    image.jar_key)


def test_layer_reader_handles_gzip_and_sniffs_unlabelled(tmp_path: Path) -> None:
    from images import layer_tar

    key = make_key()
    data = layer_tar({"./etc/conf": f"{key}\n".encode(), "dir/.keep": b""})
    packed = gzip.compress(data)
    for blob, mtype in ((packed, "(sniffed)"), (data, "(sniffed)"),
                        (packed, "application/vnd.docker.image.rootfs.diff.tar.gzip")):
        reader = LayerReader(Layer(sha256(blob), mtype, len(blob), 0, diff_id=sha256(data)),
                             _Bytes(blob))
        entries = [(e.path, e.stream.read()) for e in reader]
        assert entries[0] == ("etc/conf", f"{key}\n".encode())
        assert reader.finish() == (True, True)


# ---- the library: one orchestration, every executor -----------------------------------------

@pytest.mark.parametrize("executor", ["process", "thread", "serial"])
def test_scan_image_from_the_library_in_every_executor(executor: str, tmp_path: Path) -> None:
    """A docker archive gives no layer sizes, so its three layers go to workers (two jobs)."""
    from poelis_scan import ImageOrigin, scan_image

    image = planted(make_key)
    ref = make_form("docker-archive", image, tmp_path)
    warnings: list[Any] = []
    result = scan_image([ref], jobs=2, executor=executor,  # type: ignore[arg-type]
                        on_warning=warnings.append)
    assert warnings == []
    found = {f.secret: f for f in result.findings}
    assert set(found) == {image.deleted_key, image.jar_key, image.env_key, image.arg_key}
    gone = found[image.deleted_key].origin
    assert isinstance(gone, ImageOrigin) and gone.deleted and gone.layer_index == 0
    assert found[image.jar_key].location.member == "BOOT-INF/classes/application.properties"
    counts = result.stats.image
    assert counts is not None and (counts.images, counts.layers, counts.unread) == (1, 3, 0)
    assert result.stats.files_scanned == 4 and result.stats.items_scanned == 8
    for finding in result.findings:  # neither the finding nor its provenance shows a key
        assert finding.secret not in repr(finding) + repr(finding.origin)


def test_an_encoded_build_argument_is_redacted_in_provenance(tmp_path: Path) -> None:
    key = make_key()
    encoded = base64.b64encode(f"token={key}".encode()).decode()
    built = ImageSpec([{"a": b"nothing\n"}],
                      history=[{"created_by": f"|1 TOKEN_B64={encoded} /bin/sh -c make"}]).build()
    ref = str(write_oci_layout(tmp_path / "layout", [built]))
    run = run_cli("image", "--format", "json", ref)
    assert run.status == 1, run.stderr
    (finding,) = run.findings()
    assert finding["location"]["path"] == "<config:history[0]>"
    assert finding["encoding"] == "base64"
    assert encoded not in run.stdout and key not in run.stdout
    # The layer that step made has no finding of its own; the config finding names no layer.
    assert finding["image"]["layer_index"] is None


def test_an_image_of_only_unreadable_layers_exits_2_and_says_so(tmp_path: Path) -> None:
    built = ImageSpec([{"a": f"{make_key()}\n".encode()}]).build()
    root = write_oci_layout(tmp_path / "layout", [built])
    _blob(root, sha256(built.blobs[0])).unlink()
    run = run_cli("image", "--format", "json", str(root))
    assert run.status == 2
    stats = run.json()["stats"]
    assert stats["layers_scanned"] == 0 and stats["files_scanned"] == 0
    assert stats["warnings"] == {"missing_blob": 1}
    assert "is missing" in run.stderr and "Traceback" not in run.stderr


def test_html_report_shows_image_provenance_in_chromium(tmp_path: Path) -> None:
    from services import chromium
    from test_report_html import Browser, assert_no_key, clean_page

    image = planted(make_key)
    ref = make_form("oci-dir", image, tmp_path)
    page = tmp_path / "image.html"
    run = run_cli("image", "--format", "html", "-o", str(page), ref)
    assert run.status == 1, run.stderr
    keys = [image.deleted_key, image.jar_key, image.env_key, image.arg_key]
    assert_no_key(page.read_text(), keys)
    browser = Browser(chromium(), tmp_path)
    try:
        dom, console = browser.dump(page)
    finally:
        browser.close()
    clean_page(dom, console)
    assert_no_key(str(dom.rows) + dom.all_text, keys)
    assert len(dom.rows) == 4
    (gone,) = [r for r in dom.rows if "app/secret.env" in r.text]
    assert "image layer, deleted" in gone.text and "layer 0" in gone.text
    assert "COPY etc app /" in gone.text and "linux/amd64" in gone.text
    assert any("<config:Env>" in r.text and "image config" in r.text for r in dom.rows)
    clean = str(write_oci_layout(tmp_path / "clean", [ImageSpec([{"a": b"x\n"}]).build()]))
    clean_page_path = tmp_path / "clean.html"
    assert run_cli("image", "--format", "html", "-o", str(clean_page_path), clean).status == 0
    browser = Browser(chromium(), tmp_path)
    try:
        dom, console = browser.dump(clean_page_path)
    finally:
        browser.close()
    clean_page(dom, console)
    assert "No Poelis API keys found in 1 image, 1 layer, 1 file" in dom.all_text


def test_a_second_library_scan_reads_a_changed_archive_afresh(tmp_path: Path) -> None:
    from poelis_scan import scan_image

    first, second = make_key(), make_key()
    archive = tmp_path / "app.tar"
    write_docker_archive(archive, ImageSpec([{"a": f"{first}\n".encode()}]).build())
    assert [f.secret for f in scan_image([str(archive)]).findings] == [first]
    write_docker_archive(archive, ImageSpec([{"a": f"{second}\n".encode()}]).build())
    assert [f.secret for f in scan_image([str(archive)]).findings] == [second]
