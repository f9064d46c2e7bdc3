"""Workers walking their own share of a tree, small files packed into one search, and progress
inside a stream: the findings never depend on how the work was cut or who did it."""

from __future__ import annotations

import base64
import gzip
import io
import os
import select
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

from conftest import make_key
from hypothesis import given, settings
from hypothesis import strategies as st

from poelis_scan import scan_paths
from poelis_scan.detect.encodings import ALL_NEEDLES
from poelis_scan.paths import Excluder
from poelis_scan.scan import meter
from poelis_scan.scan.parallel import fork_map
from poelis_scan.scan.readers import scan_fd
from poelis_scan.scan.stream import CHUNK_SIZE
from poelis_scan.settings import DEFAULT
from poelis_scan.sources import files

Row = tuple[str, int, int, int, str | None, str, str]


def _rows(result: Any) -> list[Row]:
    return sorted((f.location.path, f.location.line, f.location.column, f.location.end_column,
                   f.location.member, f.encoding, f.secret) for f in result.findings)


def _encodings(key: str) -> dict[str, bytes]:
    """The same key written every way the scanner decodes, one file body each."""
    line = f"API_KEY={key}\n".encode()
    bodies = {
        "plain.txt": line,
        "crlf.env": f"a=1\r\nAPI_KEY={key}\r\nb=2\r\n".encode(),
        "utf16le.txt": b"\xff\xfe" + f"x\nAPI_KEY={key}\n".encode("utf-16-le"),
        "utf16be.txt": b"\xfe\xff" + f"x\nAPI_KEY={key}\n".encode("utf-16-be"),
        "hex.txt": b"blob: " + line.hex().encode() + b"\n",
        "starts_with_key.txt": key.encode(),  # a needle right after a pack separator
        "P_but_not_zip.txt": b"PK?" + line,  # a first byte that asks for the archive check
    }
    for lead in range(3):
        payload = b"#" * lead + line
        bodies[f"b64std{lead}.txt"] = b"v: " + base64.b64encode(payload) + b"\n"
        bodies[f"b64url{lead}.txt"] = b"v: " + base64.urlsafe_b64encode(payload) + b"\n"
    return bodies


def _build_tree(root: Path) -> set[str]:
    """Hundreds of small files in nested directories (enough for workers to hand directories
    back), keys in every encoding, archives, and a 3 MB file with keys across window edges."""
    planted: set[str] = set()
    for d in range(12):
        sub = root / f"d{d}" / f"e{d % 3}"
        sub.mkdir(parents=True)
        for i in range(40):
            (sub / f"f{i}.py").write_bytes(b"import os\n" * (i % 7) + b"\xff" * (i % 2))
        (sub / "empty").write_bytes(b"")
        key = make_key()
        planted.add(key)
        for name, body in _encodings(key).items():
            (sub / name).write_bytes(body)
    key = make_key()
    planted.add(key)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("conf/.env", f"KEY={key}\n")
    (root / "d0" / "bundle.zip").write_bytes(zipped.getvalue())
    key = make_key()
    planted.add(key)
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as archive:
        data = f"KEY={key}\n".encode()
        info = tarfile.TarInfo("inner/.env")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    (root / "d1" / "release.tar.gz").write_bytes(gzip.compress(tarred.getvalue()))
    big = bytearray(b"x = 1\n" * (3 * CHUNK_SIZE // 6))
    for edge in (CHUNK_SIZE, 2 * CHUNK_SIZE - 200):
        key = make_key()
        planted.add(key)
        at = edge - 20  # the key straddles a window edge
        big[at : at + len(key) + 2] = b" " + key.encode() + b"\n"
    (root / "d2" / "big.log").write_bytes(bytes(big))
    return planted


def test_processes_threads_and_one_process_find_the_same(tmp_path: Path) -> None:
    planted = _build_tree(tmp_path)
    serial = scan_paths([tmp_path], jobs=1, min_confidence="low")
    forked = scan_paths([tmp_path], jobs=2, min_confidence="low")
    threads = scan_paths([tmp_path], jobs=2, executor="thread", min_confidence="low")
    assert {f.secret for f in serial.findings} == planted
    assert _rows(forked) == _rows(serial)
    assert _rows(threads) == _rows(serial)
    files_count = sum(len(names) for _, _, names in os.walk(tmp_path))
    assert serial.stats.files_scanned == forked.stats.files_scanned == files_count
    assert serial.stats.bytes_scanned == forked.stats.bytes_scanned == threads.stats.bytes_scanned


def _one_by_one(root: Path) -> list[Row]:
    """The reference: every file read on its own by ``scan_fd``, as before packing."""
    rows: list[Row] = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_RDONLY)
            try:
                result = scan_fd(fd, name, DEFAULT)
            finally:
                os.close(fd)
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            rows.extend((relative, m.line, m.column, m.end_column, m.member, m.match.encoding,
                         m.match.secret) for m in result.matches)
    return sorted(rows)


def _work_rows(root: Path, budget: int) -> list[Row]:
    """``scan_work`` over the whole tree, items handed back and taken up as the parent does."""
    queue = files.work_items([str(root)])
    large = files.LargeFiles(jobs=1)
    rows: list[Row] = []
    while queue:
        done = files.scan_work(queue.pop(), DEFAULT, Excluder(()), budget=budget)
        queue.extend(large.more(done))
        for batch in large.batches([done]):
            rows.extend((f.location.path, f.location.line, f.location.column,
                         f.location.end_column, f.location.member, f.encoding, f.secret)
                         for f in batch.found)
    return sorted(rows)


_PIECES = st.lists(st.one_of(
    st.sampled_from(["key", "b64", "utf16", "hex"]),
    st.binary(max_size=40),
    st.sampled_from([b"\xff", b"\n", b"\xff\xfe", b"poelis_api_", b"PK\x03\x04"]),
), max_size=8)


@settings(max_examples=40, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=12), st.integers(1, 5))
def test_packed_search_matches_reading_each_file_alone(
        tmp_path_factory: Any, contents: list[list[Any]], budget: int) -> None:
    root = tmp_path_factory.mktemp("packed")
    for index, pieces in enumerate(contents):
        body = bytearray()
        for piece in pieces:
            key = make_key().encode()
            body += {"key": key, "b64": base64.b64encode(b"k=" + key),
                     "utf16": key.decode().encode("utf-16-le"),
                     "hex": key.hex().encode()}.get(piece, piece) if isinstance(piece, str) \
                else piece
        sub = root / f"d{index % 3}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{index}").write_bytes(bytes(body))
    assert _work_rows(root, budget) == _one_by_one(root)


def test_no_needle_holds_the_pack_separator() -> None:
    # The packed search relies on it: a needle can then never span two files.
    assert all(files._SEPARATOR not in needle.pattern for needle in ALL_NEEDLES)


def _report_then_wait(item: int) -> int:
    meter.add(item)
    time.sleep(0.5)  # long enough for the parent's tick to look (ticks come every 0.25 s)
    meter.add(-item)
    return item


def test_forked_workers_report_bytes_before_they_finish() -> None:
    meter.share()
    seen: list[int] = []
    results = list(fork_map(_report_then_wait, [1000, 2000], 2,
                            tick=lambda: seen.append(meter.pending())))
    assert sorted(results) == [1000, 2000]
    assert max(seen) >= 1000  # bytes of unfinished work were visible in the parent
    assert meter.pending() == 0


def test_progress_moves_inside_one_stream_on_a_terminal(tmp_path: Path) -> None:
    """Standard input fed slowly: the progress line must show megabytes before the end."""
    import pty

    leader, follower = pty.openpty()
    env = dict(os.environ, POELIS_SCAN_PROGRESS_DELAY="0")
    proc = subprocess.Popen([sys.executable, "-m", "poelis_scan", "scan", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=follower,
                            env=env)
    os.close(follower)
    assert proc.stdin is not None
    shown = b""
    try:
        chunk = b"some log line without a key\n" * (1 << 16)  # about 1.8 MB
        for _ in range(200):  # bounded: far more than needed for a first redraw
            proc.stdin.write(chunk)
            proc.stdin.flush()
            readable, _, _ = select.select([leader], [], [], 0.05)
            if readable:
                shown += os.read(leader, 4096)
            if b" MB," in shown and b" 0 MB," not in shown.rsplit(b"\r", 1)[-1]:
                break
        assert b" MB," in shown, shown[-200:]
        last = shown.rsplit(b"\r", 1)[-1]
        assert b"poelis-scan: 0 files" in last  # still inside the one stream, not after it
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
        while True:
            try:
                if not os.read(leader, 4096):
                    break
            except OSError:
                break
        os.close(leader)
    assert proc.returncode == 0
