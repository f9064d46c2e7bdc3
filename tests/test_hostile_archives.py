"""Hostile and broken archives (issue 11, items 1-6): no key hides behind archive magic, damage
is never silent, and a bomb costs bounded memory (measured with ``wait4``, never timed)."""

from __future__ import annotations

import gzip
import io
import json
import os
import secrets
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from conftest import make_key, run_cli, run_measured, tar_bytes, zip_bytes
from test_hooks import PROJECT
from test_hooks import git as hook_git

from poelis_scan.scan.readers import scan_buffer, scan_pipe
from poelis_scan.settings import Limits, ScanSettings


def scan_json(*args: str, stdin: bytes | None = None, cwd: Path | None = None
              ) -> tuple[list[dict], dict, str]:
    run = run_cli("scan", *args, "--format", "json", stdin=stdin, cwd=cwd)
    assert run.status in (0, 1), run.stderr
    assert "Traceback" not in run.stderr
    return run.findings(), run.json()["stats"], run.stderr


# ---- 1. archive magic never hides plain text ------------------------------------------------

MAGIC_TEXTS = {
    "bzip2": lambda k: b"BZh9 notes\nAPI_KEY=" + k + b"\n",
    "zip": lambda k: b"PK\x03\x04 notes\nAPI_KEY=" + k + b"\n",
    "gzip": lambda k: b"\x1f\x8b notes\nAPI_KEY=" + k + b"\n",
    "tar": lambda k: b"notes" + b" " * 252 + b"ustar\nAPI_KEY=" + k + b"\n",
}


@pytest.mark.parametrize("kind", sorted(MAGIC_TEXTS))
def test_text_that_starts_like_an_archive_is_still_scanned(tmp_path: Path, kind: str) -> None:
    k = make_key()
    data = MAGIC_TEXTS[kind](k.encode())
    (tmp_path / "notes.txt").write_bytes(data)
    for args, stdin, path in ((["notes.txt"], None, "notes.txt"), (["-"], data, "<stdin>")):
        findings, _, _ = scan_json(*args, stdin=stdin, cwd=tmp_path)
        assert [(f["location"]["path"], f["location"]["line"], f["location"]["column"],
                 f["location"].get("member")) for f in findings] == [(path, 2, 9, None)]


def test_a_key_in_a_stored_member_is_reported_once_as_the_member(tmp_path: Path) -> None:
    k = make_key()
    text = f"# settings\nPOELIS_API_KEY={k}\n".encode()
    (tmp_path / "stored.zip").write_bytes(zip_bytes({"conf/.env": text}, zipfile.ZIP_STORED))
    (tmp_path / "plain.tar").write_bytes(tar_bytes({"a.txt": b"x" * 700, "conf/.env": text}))
    findings, _, _ = scan_json(str(tmp_path))
    assert sorted((f["location"]["path"], f["location"]["member"], f["location"]["line"],
                   f["location"]["column"]) for f in findings) == [
        ("plain.tar", "conf/.env", 2, 16), ("stored.zip", "conf/.env", 2, 16)]


def test_the_same_key_twice_in_a_stored_member_is_two_findings(tmp_path: Path) -> None:
    k = make_key()
    text = f"A={k}\nB={k}\n".encode()
    (tmp_path / "twice.zip").write_bytes(zip_bytes({"k.txt": text}, zipfile.ZIP_STORED))
    findings, _, _ = scan_json(str(tmp_path / "twice.zip"))
    assert sorted((f["location"]["member"], f["location"]["line"]) for f in findings) == [
        ("k.txt", 1), ("k.txt", 2)]


def test_a_push_of_text_that_starts_like_an_archive_is_rejected(tmp_path: Path) -> None:
    server = tmp_path / "server.git"
    hook_git(tmp_path, "init", "-q", "--bare", str(server))
    hook = server / "hooks" / "pre-receive"
    hook.write_text((PROJECT / "hooks" / "pre-receive").read_text())
    hook.chmod(0o755)
    client = tmp_path / "client"
    client.mkdir()
    hook_git(client, "init", "-q")
    k = make_key()
    (client / "notes.txt").write_bytes(MAGIC_TEXTS["bzip2"](k.encode()))
    hook_git(client, "add", "-A")
    hook_git(client, "commit", "-qm", "notes")
    hook_git(client, "remote", "add", "origin", str(server))
    rejected = hook_git(client, "push", "origin", "main")
    assert rejected.returncode != 0
    assert "notes.txt:2:9" in rejected.stderr and k not in rejected.stderr


# ---- 2. truncated archives: every byte before the damage -----------------------------------

def test_zip_cut_before_its_central_directory_is_read_from_local_headers(tmp_path: Path) -> None:
    keys = [make_key(), make_key()]
    data = zip_bytes({"first/.env": f"A={keys[0]}\n".encode(),
                      "second.txt": f"B={keys[1]}\n".encode() + os.urandom(2000)})
    (tmp_path / "cut.zip").write_bytes(data[:-100])
    findings, stats, stderr = scan_json(str(tmp_path / "cut.zip"))
    assert sorted(f["location"]["member"] for f in findings) == ["first/.env", "second.txt"]
    assert stats["warnings"] == {"corrupt_archive": 1}
    assert "no central directory" in stderr and "2 members read from their local headers" in stderr


def test_zip_without_sizes_in_its_local_headers_is_read_too(tmp_path: Path) -> None:
    k = make_key()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (("a.txt", b"nothing\n"), ("b/.env", f"K={k}\n".encode())):
            with archive.open(name, "w") as member:  # streamed: sizes in a data descriptor
                member.write(data)
    raw = out.getvalue()
    cut = raw[: raw.rfind(b"PK\x01\x02", 0, raw.rfind(b"PK\x01\x02"))]  # no central directory
    result = scan_buffer(cut, "cut.zip")
    assert [(lm.member, lm.line) for lm in result.matches] == [("b/.env", 1)]


def test_gzip_cut_at_80_percent_scans_every_byte_before_the_cut(tmp_path: Path) -> None:
    k = make_key()
    noise = secrets.token_bytes(3 << 20)  # incompressible: compressed offsets track content
    at = int(len(noise) * 0.7)
    content = noise[:at] + b"\nKEY=" + k.encode() + b"\n" + noise[at:]
    data = gzip.compress(content)
    (tmp_path / "dump.bin.gz").write_bytes(data[: len(data) * 8 // 10])
    findings, stats, stderr = scan_json(str(tmp_path / "dump.bin.gz"))
    assert [f["location"]["member"] for f in findings] == ["dump.bin"]
    assert stats["warnings"] == {"corrupt_archive": 1}
    assert "truncated" in stderr


# ---- 3. a damaged tar header mid-archive is never silent -----------------------------------

def _damage_second_header(data: bytes) -> tuple[bytes, int]:
    offset = 512 + 1024  # header, 1024 bytes of the first member
    broken = bytearray(data)
    broken[offset + 148 : offset + 156] = b"bogus!\0 "  # the header's checksum field
    return bytes(broken), offset


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_damaged_tar_header_mid_archive_is_a_warning(tmp_path: Path, mode: str) -> None:
    k = make_key()
    members = {"a.txt": b"a" * 1024, "b.txt": b"b" * 10, "c/.env": f"K={k}\n".encode()}
    if mode == "w":
        data, offset = _damage_second_header(tar_bytes(members))
    else:
        plain, offset = _damage_second_header(tar_bytes(members))
        data = gzip.compress(plain)
    name = "site.tar" if mode == "w" else "site.tar.gz"
    (tmp_path / name).write_bytes(data)
    findings, stats, stderr = scan_json(str(tmp_path / name))
    assert stats["warnings"] == {"corrupt_archive": 1}
    assert f"header at offset {offset} is damaged" in stderr and "tarfile stops" in stderr
    assert name in stderr
    # A plain tar's later members are still bytes in the file: the raw scan finds the key.
    assert len(findings) == (1 if mode == "w" else 0)


# ---- 4. a stored member flagged "encrypted" is plain bytes ----------------------------------

def test_stored_member_flagged_encrypted_is_scanned_as_a_member(tmp_path: Path) -> None:
    k = make_key()
    data = bytearray(zip_bytes({"x/.env": f"K={k}\n".encode()}, zipfile.ZIP_STORED))
    data[6] |= 1  # local header general-purpose flags
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 1  # central directory flags
    (tmp_path / "flagged.zip").write_bytes(bytes(data))
    findings, stats, _ = scan_json(str(tmp_path / "flagged.zip"))
    assert [(f["location"]["member"], f["location"]["line"]) for f in findings] == [("x/.env", 1)]
    assert stats["warnings"] == {}


# ---- 5. an archive on a pipe larger than the spool limit ------------------------------------

def test_pipe_archive_beyond_the_spool_limit_is_said_and_still_scanned() -> None:
    early, late = make_key(), make_key()
    members = {"early/.env": f"A={early}\n".encode(), "filler.bin": bytes(300_000),
               "late/.env": f"B={late}\n".encode()}
    data = tar_bytes(members)
    settings = ScanSettings(limits=Limits(max_spool_bytes=100_000))
    result = scan_pipe(io.BytesIO(data).readinto, "stdin", settings)
    found = {(lm.match.secret, lm.member) for lm in result.matches}
    assert (early, "early/.env") in found
    assert (late, None) in found  # past the spool: scanned as the bytes it is
    assert result.size == len(data)
    (note,) = [text for kind, text in result.notes if kind == "archive_limit"]
    assert "first 100000 bytes" in note and f"other {len(data) - 100_000} bytes" in note


# ---- 6. a central-directory bomb costs bounded memory --------------------------------------

CD_BOMB_MAKER = """
import struct, sys, zipfile, zlib
key, path, count = sys.argv[1].encode(), sys.argv[2], int(sys.argv[3])
data = b"K=" + key + b"\\n"
crc = zlib.crc32(data)
name = b"a"
local = struct.pack("<4sHHHHHLLLHH", b"PK\\x03\\x04", 20, 0, 0, 0, 0, crc, len(data),
                    len(data), len(name), 0) + name + data
entry = struct.pack("<4sHHHHHHLLLHHHHHLL", b"PK\\x01\\x02", 45, 20, 0, 0, 0, 0, crc,
                    len(data), len(data), len(name), 0, 0, 0, 0, 0, 0) + name
directory = entry * count
z64 = len(local) + len(directory)
tail = (struct.pack("<4sQHHLLQQQQ", b"PK\\x06\\x06", 44, 45, 45, 0, 0, count, count,
                    len(directory), len(local))
        + struct.pack("<4sLQL", b"PK\\x06\\x07", 0, z64, 1)
        + struct.pack("<4sHHHHLLH", b"PK\\x05\\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory),
                      len(local), 0))
inner = local + directory + tail
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as outer:
    outer.writestr("bomb.zip", inner)
"""


def test_central_directory_bomb_is_bounded(tmp_path: Path) -> None:
    k = make_key()
    bomb = tmp_path / "cd-bomb.zip"
    # 1.3 M entries (61 MB once inflated: within the ratio allowance, so the central
    # directory is really walked), built by another process to keep this one small.
    subprocess.run([sys.executable, "-c", CD_BOMB_MAKER, k, str(bomb), "1300000"], check=True)
    assert bomb.stat().st_size < 1 << 20
    run = run_measured("scan", str(bomb), "--format", "json", work=tmp_path)
    stdout, stderr = run.stdout, run.stderr
    assert run.status == 1, stderr
    assert run.peak_kib < 200 * 1024
    report = json.loads(stdout)
    assert [f["location"]["member"] for f in report["findings"]] == ["bomb.zip!/a"]
    assert report["stats"]["warnings"] == {"archive_overlap": 1, "archive_limit": 1}
    assert b"more than 100000 archive entries" in stderr
    assert b"point at a member already listed" in stderr
    assert report["stats"]["archive_members_scanned"] == 2  # bomb.zip and its one member


def test_member_limit_counts_entries_before_opening_them() -> None:
    members = {f"m{i}.txt": b"x" for i in range(30)}
    k = make_key()
    members["z/.env"] = f"K={k}\n".encode()
    for data in (zip_bytes(members), tar_bytes(members)):
        result = scan_buffer(data, "many", ScanSettings(limits=Limits(max_members=10)))
        assert result.members == 10
        assert [kind for kind, _ in result.notes] == ["archive_limit"]
        assert not any(lm.member for lm in result.matches)


def test_struct_formats_match_the_zip_specification() -> None:
    from poelis_scan.scan import zipfmt

    assert (zipfmt.LOCAL.size, zipfmt.CENTRAL.size, zipfmt.END.size) == (30, 46, 22)
    assert (zipfmt.ZIP64_END.size, zipfmt.ZIP64_LOCATOR.size) == (56, 20)
    assert struct.calcsize("<L") == 4 and zlib.crc32(b"") == 0


# ---- 17. a ".git" that is not a repository is content, and said so ------------------------

def test_a_dot_git_that_is_not_a_repository_is_scanned_and_reported(tmp_path: Path) -> None:
    from conftest import git

    keys = [make_key(), make_key(), make_key()]
    (tmp_path / "fake" / ".git").mkdir(parents=True)
    (tmp_path / "fake" / ".git" / "notes").write_text(f"K={keys[0]}\n")
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / ".git").write_text(f"K={keys[1]}\n")
    real = tmp_path / "real"
    real.mkdir()
    git(real, "init", "-q")
    (real / ".git" / "description").write_text(f"K={keys[2]}\n")  # history is git's job
    findings, stats, stderr = scan_json(str(tmp_path))
    assert sorted(f["location"]["path"] for f in findings) == ["fake/.git/notes", "file/.git"]
    assert stats["warnings"] == {"not_a_repository": 2}
    assert stderr.count("named .git but not a git repository") == 2


# ---- 7. candidate floods: hidden matches are counted, not held ------------------------------

FLOOD_MAKER = """
import sys
from poelis_scan.detect.grammar import DOCUMENTED_EXAMPLE_BODY
line = ("POELIS_API_KEY=poelis_api_" + DOCUMENTED_EXAMPLE_BODY + "\\n").encode()
with open(sys.argv[1], "wb") as out:
    for _ in range(50):
        out.write(line * 10_000)
    out.write(("REAL=" + sys.argv[2] + "\\n").encode())
"""


def test_a_flood_of_example_keys_costs_bounded_memory(tmp_path: Path) -> None:
    k = make_key()
    flood = tmp_path / "flood.env"
    subprocess.run([sys.executable, "-c", FLOOD_MAKER, str(flood), k], check=True)
    assert flood.stat().st_size > 28 << 20
    run = run_measured("scan", str(flood), "--format", "json", work=tmp_path)
    stdout, stderr = run.stdout, run.stderr
    assert run.status == 1, stderr
    assert run.peak_kib < 200 * 1024
    report = json.loads(stdout)
    assert [(f["location"]["line"], f["confidence"]) for f in report["findings"]] == [
        (500_001, "high")]
    assert report["stats"]["findings_below_confidence"] == 500_000
