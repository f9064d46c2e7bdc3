"""Archives and compressed files: members scanned in place, nested, bounded, damage survived."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import make_key, run_cli, run_measured, tar_bytes, zip_bytes

from poelis_scan.scan.stream import CHUNK_SIZE


def scan_json(path: Path) -> tuple[list[dict], dict, str]:
    run = run_cli("scan", str(path), "--format", "json")
    assert run.status in (0, 1), run.stderr
    return run.findings(), run.json()["stats"], run.stderr


def env_with(key: str) -> bytes:
    return f"# settings\nDEBUG=0\nPOELIS_API_KEY={key}\n".encode()


@pytest.mark.parametrize("name", ["bundle.zip", "app.jar", "pkg-1.0-py3-none-any.whl",
                                  "report.docx", "sheet.xlsx"])
def test_zip_family_member(tmp_path: Path, name: str) -> None:
    k = make_key()
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / name).write_bytes(zip_bytes({"bundle/.env": env_with(k),
                                                     "bundle/readme.txt": b"hi"}))
    (f,), stats, _ = scan_json(tmp_path)
    assert f["location"]["path"] == f"dist/{name}"
    assert f["location"]["member"] == "bundle/.env"
    assert (f["location"]["line"], f["location"]["column"]) == (3, 16)
    assert stats["archive_members_scanned"] == 2


@pytest.mark.parametrize("suffix, compress", [
    (".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)])
def test_single_file_compression(tmp_path: Path, suffix: str, compress) -> None:  # type: ignore[no-untyped-def]
    k = make_key()
    (tmp_path / f"app.env{suffix}").write_bytes(compress(env_with(k)))
    (f,), _, _ = scan_json(tmp_path)
    assert (f["location"]["path"], f["location"]["member"]) == (f"app.env{suffix}", "app.env")
    assert f["location"]["line"] == 3


@pytest.mark.parametrize("name, mode", [
    ("site.tar", "w"), ("site.tar.gz", "w:gz"), ("site.tgz", "w:gz"),
    ("site.tar.bz2", "w:bz2"), ("site.tar.xz", "w:xz")])
def test_tar_family(tmp_path: Path, name: str, mode: str) -> None:
    k = make_key()
    (tmp_path / name).write_bytes(tar_bytes({"site/a.txt": b"nothing\n",
                                             "site/conf/.env": env_with(k)}, mode))
    (f,), stats, _ = scan_json(tmp_path)
    assert (f["location"]["path"], f["location"]["member"]) == (name, "site/conf/.env")
    assert stats["archive_members_scanned"] == 2


def test_nested_archives_name_the_whole_chain(tmp_path: Path) -> None:
    k = make_key()
    inner = zip_bytes({"deep/.env": env_with(k)})
    middle = tar_bytes({"layer/inner.zip": inner}, "w:gz")
    (tmp_path / "outer.zip").write_bytes(zip_bytes({"release/middle.tar.gz": middle}))
    (f,), _, _ = scan_json(tmp_path)
    assert f["location"]["member"] == "release/middle.tar.gz!/layer/inner.zip!/deep/.env"
    assert f["location"]["line"] == 3


def test_nesting_beyond_the_depth_limit_is_reported(tmp_path: Path) -> None:
    k = make_key()
    data = zip_bytes({"key.env": env_with(k)}, zipfile.ZIP_STORED)
    for level in range(4):
        data = zip_bytes({f"level{level}.zip": data}, zipfile.ZIP_STORED)
    (tmp_path / "deep.zip").write_bytes(data)
    findings, stats, stderr = scan_json(tmp_path)
    assert stats["warnings"] == {"archive_depth": 1}
    assert "nested deeper than 3 levels" in stderr
    # Stored (uncompressed) members: the too-deep archive is still scanned as bytes.
    assert [f["secret_sha256"] for f in findings] == [findings[0]["secret_sha256"]]


def test_key_across_the_window_boundary_inside_a_member(tmp_path: Path) -> None:
    keys = []
    members = {}
    for shift in (-100, -40, -1, 0, 1, 30):
        k = make_key()
        keys.append(k)
        start = CHUNK_SIZE + shift
        members[f"edge{shift}.txt"] = b"." * (start - 1) + b"\n" + k.encode() + b"\n"
    (tmp_path / "edges.zip").write_bytes(zip_bytes(members))
    (tmp_path / "edges.tar.gz").write_bytes(tar_bytes(members, "w:gz"))
    findings, _, _ = scan_json(tmp_path)
    assert len(findings) == 2 * len(keys)
    assert {f["location"]["line"] for f in findings} == {2}


def test_corrupt_zip_is_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    k = make_key()
    good = zip_bytes({"a.env": env_with(make_key())})
    (tmp_path / "broken.zip").write_bytes(good[: len(good) // 2])  # central directory lost
    (tmp_path / "ok.env").write_bytes(env_with(k))
    findings, stats, stderr = scan_json(tmp_path)
    assert [f["location"]["path"] for f in findings] == ["ok.env"]
    assert stats["warnings"] == {"corrupt_archive": 1}
    assert "broken.zip" in stderr and "corrupt" in stderr
    assert "Traceback" not in stderr


def test_truncated_tar_gz_keeps_the_members_before_the_damage(tmp_path: Path) -> None:
    k = make_key()
    data = tar_bytes({"first.env": env_with(k), "second.bin": bytes(range(256)) * 4000}, "w:gz")
    (tmp_path / "cut.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    findings, stats, _ = scan_json(tmp_path)
    assert [f["location"]["member"] for f in findings] == ["first.env"]
    assert stats["warnings"] == {"corrupt_archive": 1}


BOMB_MAKER = """
import sys, zipfile
lines = b"# settings\\nPOELIS_API_KEY=" + sys.argv[2].encode() + b"\\n"
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    with archive.open("payload.bin", "w", force_zip64=True) as member:
        member.write(lines)
        for _ in range(400):
            member.write(bytes(1 << 20))  # 400 MB of zeros: about 400 KB compressed
"""


def test_zip_bomb_trips_the_ratio_limit_in_bounded_memory(tmp_path: Path) -> None:
    k = make_key()
    bomb = tmp_path / "bomb.zip"
    # Built by another process, so that this one stays small and the scan's memory is its own.
    subprocess.run([sys.executable, "-c", BOMB_MAKER, str(bomb), k], check=True)
    assert bomb.stat().st_size < 2 << 20
    run = run_measured("scan", str(bomb), "--format", "json", work=tmp_path)
    stdout, stderr = run.stdout, run.stderr
    assert run.status == 1, stderr
    assert run.peak_kib < 200 * 1024
    report = json.loads(stdout)
    (f,) = report["findings"]
    assert f["location"]["member"] == "payload.bin"  # the key sits within the limit
    assert report["stats"]["warnings"] == {"archive_limit": 1}
    assert b"compression bomb" in stderr
    assert report["stats"]["archive_bytes_expanded"] < 100 << 20


def test_tar_gz_on_standard_input(tmp_path: Path) -> None:
    k = make_key()
    data = tar_bytes({"x/.env": env_with(k)}, "w:gz")
    run = run_cli("scan", "-", "--format", "json", stdin=data)
    (f,) = run.findings()
    assert (f["location"]["path"], f["location"]["member"]) == ("<stdin>", "x/.env")


def test_encoded_key_inside_an_archive_member(tmp_path: Path) -> None:
    import base64

    k = make_key()
    secret_yaml = f"data:\n  KEY: {base64.b64encode(k.encode()).decode()}\n".encode()
    (tmp_path / "manifests.tgz").write_bytes(tar_bytes({"k8s/secret.yaml": secret_yaml}, "w:gz"))
    (f,), _, _ = scan_json(tmp_path)
    assert (f["encoding"], f["location"]["member"], f["location"]["line"]) == (
        "base64", "k8s/secret.yaml", 2)


def test_text_format_names_the_member(tmp_path: Path) -> None:
    k = make_key()
    (tmp_path / "b.zip").write_bytes(zip_bytes({"in/.env": env_with(k)}))
    run = run_cli("scan", "b.zip", cwd=tmp_path)
    assert run.stdout.startswith("b.zip[in/.env]:3:16: Poelis API key ")
