"""Git objects streamed through a small buffer and searched as they pass: the findings never
depend on where git's output was cut into reads, how the objects were split into runs, or
which workers read them; a large blob moves the progress line while it passes."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import subprocess
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import GIT_ENV, make_key, make_legacy_key
from hypothesis import given, settings
from hypothesis import strategies as st

from poelis_scan import scan_git
from poelis_scan.scan.readers import scan_buffer
from poelis_scan.settings import DEFAULT
from poelis_scan.sources.git import contents
from poelis_scan.sources.git.objects import ObjectLister
from poelis_scan.sources.git.plumbing import open_repository


def _git(path: Path, *args: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=path,
                          input=stdin, capture_output=True, env={**os.environ, **GIT_ENV},
                          check=True)
    return proc.stdout.decode()


def _store(path: Path, blobs: list[bytes]) -> None:
    """A bare repository whose object store holds exactly ``blobs`` (one pack, no commit)."""
    path.mkdir()
    _git(path, "init", "-q", "--bare")
    stream = b"".join(b"blob\ndata %d\n" % len(blob) + blob + b"\n" for blob in blobs)
    _git(path, "fast-import", "--quiet", stdin=stream)


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _piece(kind: str, filler: bytes) -> bytes:
    key = make_key().encode()
    return {
        "key": b" " + key + b"\n",
        "b64": b" " + base64.b64encode(b"k=" + key) + b"\n",
        "utf16": key.decode().encode("utf-16-le"),
        "hex": b" " + key.hex().encode() + b"\n",
        "prefix": b"poelis_api_",  # a needle that is no key
        "filler": filler,
        "long": b"text without a key\n" * (len(filler) * 97 + 3000),
    }[kind]


_PIECES = st.lists(st.tuples(st.sampled_from(["key", "b64", "utf16", "hex", "prefix",
                                              "filler", "filler", "long"]),
                             st.binary(max_size=300)), max_size=8)
_BLOBS = st.lists(st.tuples(_PIECES, st.booleans()), min_size=1, max_size=10)


@settings(max_examples=30, deadline=None)
@given(_BLOBS, st.integers(16, 70_000), st.integers(1, 400_000))
def test_streamed_objects_find_what_each_blob_alone_holds(
        tmp_path_factory: Any, specs: list[tuple[list[tuple[str, bytes]], bool]],
        read_size: int, run_bytes: int) -> None:
    """Any cut of git's output into reads (down to a few bytes), any split into runs: each
    blob's matches are those ``scan_buffer`` finds in that blob alone, and every blob is
    counted once (gzip-compressed blobs are opened as archives)."""
    blobs = []
    for pieces, compressed in specs:
        body = b"".join(_piece(kind, filler) for kind, filler in pieces)
        blobs.append(gzip.compress(body) if compressed else body)
    path = tmp_path_factory.mktemp("stream") / "store.git"
    _store(path, blobs)
    repo = open_repository(str(path))
    expected: dict[str, Any] = {}
    members = 0
    for blob in blobs:
        result = scan_buffer(blob, "", DEFAULT)
        members += result.members if _blob_id(blob) not in expected else 0
        expected[_blob_id(blob)] = result.matches
    found: dict[str, Any] = {}
    scanned: Counter[str] = Counter()
    size = members_seen = 0
    try:
        for item in contents.batches(repo, ObjectLister(repo), run_bytes):
            out = contents.scan_objects(item, DEFAULT, read_size=read_size)
            for hit in out.found:
                assert hit.sha not in found
                found[hit.sha] = hit.matches
            scanned += out.scanned
            size += out.size
            members_seen += out.members
            assert out.notes == []
    finally:
        contents.close_cat_files()
    assert found == {sha: matches for sha, matches in expected.items() if matches}
    assert scanned == Counter(blob=len(expected))
    assert size == sum(len(blob) for blob in {_blob_id(b): b for b in blobs}.values())
    assert members_seen == members


def test_a_needle_cut_by_a_read_at_any_byte_is_found(tmp_path: Path) -> None:
    """A blob that is one key (plain, UTF-16, hex; an API key and a legacy credential, whose
    UTF-16 needle is the longest): reads ending at every byte of its needle in turn, each
    time found. git may write the header line before the content is in the pipe, so reads
    are cut from the start of the output and from the start of the content alike."""
    blobs = [(key, encoded) for key in (make_key(), make_legacy_key())
             for encoded in (key.encode(), key.encode("utf-16-le"), key.encode().hex().encode())]
    path = tmp_path / "keys.git"
    _store(path, [blob for _, blob in blobs])
    repo = open_repository(str(path))
    try:
        for key, blob in blobs:
            sha = _blob_id(blob)
            header = len(f"{sha} blob {len(blob)}\n")
            item = (repo, f"{sha}\n".encode())
            for read_size in [*range(1, 30), *range(header - 1, header + 30)]:
                out = contents.scan_objects(item, DEFAULT, read_size=read_size)
                assert [hit.sha for hit in out.found] == [sha], read_size
                assert [m.match.secret for m in out.found[0].matches] == [key], read_size
    finally:
        contents.close_cat_files()


class _History:
    """A repository with keys in blobs of every encoding, archives, a large blob, commit and
    tag messages, and more than one run of objects for the workers to share."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.planted: set[str] = set()
        self.clock = 1_700_000_000
        path.mkdir()
        _git(path, "init", "-q")

    def key(self) -> str:
        key = make_key()
        self.planted.add(key)
        return key

    def commit(self, message: str) -> None:
        self.clock += 60
        date = {"GIT_AUTHOR_DATE": f"@{self.clock} +0000",
                "GIT_COMMITTER_DATE": f"@{self.clock} +0000"}
        subprocess.run(["git", "add", "-A"], cwd=self.path, check=True,
                       env={**os.environ, **GIT_ENV, **date})
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=self.path,
                       check=True, env={**os.environ, **GIT_ENV, **date})


def _build_history(path: Path) -> _History:
    history = _History(path)
    root = history.path
    # More than two runs' worth (contents.BATCH_BYTES each) of distinct, mostly keyless text.
    chunk = b"".join(b"line %d of generated text, no key in it\n" % i for i in range(12_000))
    count = 2 * contents.BATCH_BYTES // len(chunk) + 8
    for i in range(count):
        (root / f"data/{i % 7}").mkdir(parents=True, exist_ok=True)
        body = bytearray(b"file %d\n" % i + chunk)
        if i % 9 == 0:  # a key somewhere inside, at a different place each time
            at = (i * 7919) % (len(body) - 200)
            body[at : at + 64] = b"\n" + f"token = {history.key()}".encode().ljust(62) + b"\n"
        (root / f"data/{i % 7}/f{i}.txt").write_bytes(bytes(body))
    line = f"API_KEY={history.key()}\n".encode()
    (root / "enc").mkdir()
    (root / "enc/utf16.txt").write_bytes(b"\xff\xfe" + line.decode().encode("utf-16-le"))
    (root / "enc/b64.txt").write_bytes(b"v: " + base64.b64encode(line) + b"\n")
    (root / "enc/hex.txt").write_bytes(b"h: " + f"K={history.key()}".encode().hex().encode())
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("conf/.env", f"KEY={history.key()}\n")
    (root / "bundle.zip").write_bytes(zipped.getvalue())
    (root / "logs.gz").write_bytes(gzip.compress(f"x\nKEY={history.key()}\n".encode()))
    big = bytearray(b"a large file, read in pieces\n" * ((20 << 20) // 29))
    big[-300:-200] = f"\nKEY={history.key()}\n".encode().ljust(100)
    (root / "big.log").write_bytes(bytes(big))
    history.commit("the first commit")
    (root / "enc/b64.txt").unlink()  # the blob stays in history
    history.commit(f"rotate the key\n\nold one: {history.key()}")
    history.clock += 60
    _git(root, "tag", "-a", "v1", "-m", f"release, token {history.key()}")
    return history


def _rows(result: Any) -> list[tuple[Any, ...]]:
    return sorted((f.secret, f.location.path, f.location.line, f.location.column,
                   f.location.end_column, f.location.member, f.encoding, repr(f.origin))
                  for f in result.findings)


def test_one_process_forked_workers_and_threads_find_the_same(tmp_path: Path) -> None:
    history = _build_history(tmp_path / "repo")
    serial = scan_git([str(history.path)], jobs=1, min_confidence="low")
    forked = scan_git([str(history.path)], jobs=2, min_confidence="low")
    threads = scan_git([str(history.path)], jobs=2, executor="thread", min_confidence="low")
    assert {f.secret for f in serial.findings} == history.planted
    assert _rows(forked) == _rows(serial)
    assert _rows(threads) == _rows(serial)
    kinds = {f.origin.kind for f in serial.findings}  # type: ignore[union-attr]
    assert {"blob", "commit-message", "tag-message"} <= kinds
    for result in (forked, threads):
        assert result.stats.bytes_scanned == serial.stats.bytes_scanned
        assert result.stats.git == serial.stats.git
        assert result.stats.archive_members_scanned == serial.stats.archive_members_scanned
    assert serial.stats.bytes_scanned > 2 * contents.BATCH_BYTES
    assert serial.stats.warnings == {}


def test_progress_moves_while_a_large_blob_passes(tmp_path: Path) -> None:
    """One 24 MB blob, one process: the progress callback sees bytes of the blob before the
    blob is done (the meter counts them as they pass), then exactly its size."""
    path = tmp_path / "big.git"
    blob = b"nothing to see here\n" * ((24 << 20) // 20)
    size = len(blob)
    _store(path, [blob])
    seen: list[int] = []
    result = scan_git([str(path)], jobs=1,
                      on_progress=lambda stats, _count: seen.append(stats.bytes_scanned))
    assert result.stats.bytes_scanned == size
    assert any(0 < done < size for done in seen), seen
    assert seen[-1] == size
