"""The forked worker pool: every item's result exactly once, large payloads, failures."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from poelis_scan.scan.parallel import WorkerError, fork_map


def _echo_big(item: tuple[int, bytes]) -> tuple[int, bytes, int]:
    # Items and results far larger than a pipe's buffer: both directions must interleave.
    number, padding = item
    assert len(padding) == 200_000
    return number, bytes([number % 256]) * 300_000, os.getpid()


def _fail_on_seven(item: int) -> int:
    if item == 7:
        raise ValueError("seven")
    return item


def test_every_item_once_with_payloads_larger_than_a_pipe() -> None:
    items = list(range(60))
    results = list(fork_map(_echo_big, ((i, b"x" * 200_000) for i in items), 2))
    assert sorted(r[0] for r in results) == items
    assert all(r[1] == bytes([r[0] % 256]) * 300_000 for r in results)
    pids = {r[2] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids


def _size(item: bytes) -> int:
    return len(item)


def test_large_items_reach_the_workers_whole() -> None:
    items = [os.urandom(100_000 + i) for i in range(20)]
    assert sorted(fork_map(_size, items, 2)) == sorted(len(i) for i in items)


def test_a_failing_item_raises_worker_error_and_leaves_no_process() -> None:
    with pytest.raises(WorkerError, match="ValueError"):
        list(fork_map(_fail_on_seven, range(20), 2))
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every worker was reaped


def test_an_abandoned_iteration_stops_the_workers() -> None:
    results = fork_map(_size, (b"x" * i for i in range(1000)), 2)
    next(results)
    results.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


# ---- workers die with their parent (issue 11, item 15) -------------------------------------

def _slow_tree(root: Path) -> None:
    """Enough work that a scan with two workers is certainly mid-run a few seconds in, from
    little disk: 600 gzip files of 64 concatenated members, each inflating 1 MiB of zeros
    (a batch of 64 files takes far longer than the 10 s the test waits for the workers)."""
    root.mkdir()
    data = gzip.compress(bytes(1 << 20)) * 64
    for i in range(600):
        (root / f"f{i:03}.gz").write_bytes(data)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in (b"Z", b"X")


def _poll(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _start_scan(tmp_path: Path) -> tuple[subprocess.Popen[bytes], set[int]]:
    tree = tmp_path / "tree"
    _slow_tree(tree)
    proc = subprocess.Popen([sys.executable, "-m", "poelis_scan", "scan", str(tree), "-j", "2",
                             "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()

    def two_workers() -> bool:
        workers.update(_children(proc.pid))
        return len(workers) >= 2

    if not _poll(two_workers, 60):
        proc.kill()
        proc.communicate()
        pytest.fail("the scan never started its workers")
    return proc, workers


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_workers_die_when_the_parent_is_killed(tmp_path: Path) -> None:
    proc, workers = _start_scan(tmp_path)
    try:
        time.sleep(0.5)  # mid-scan
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert _poll(lambda: not any(map(_alive, workers)), 10), "workers outlived the parent"
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find the workers")
def test_sigterm_stops_the_scan_like_ctrl_c(tmp_path: Path) -> None:
    proc, workers = _start_scan(tmp_path)
    try:
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130
        assert stderr.decode().strip() == "poelis-scan: interrupted"
        assert stdout == b""
        assert not any(map(_alive, workers))  # stopped and reaped before the parent exited
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_die_with_parent_as_a_preexec_fn_kills_a_grandchild(tmp_path: Path) -> None:
    """The helper for ``git cat-file``: a child started with it dies with the process that
    started it, even one that is SIGKILLed."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    pid_file = tmp_path / "pid"
    starter = (
        "import subprocess, sys, time\n"
        "from poelis_scan.scan.parallel import die_with_parent\n"
        "p = subprocess.Popen(['sleep', '300'], preexec_fn=die_with_parent)\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", starter])
    try:
        assert _poll(lambda: pid_file.exists() and pid_file.read_text() != "", 30)
        grandchild = int(pid_file.read_text())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _poll(lambda: not _alive(grandchild), 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
