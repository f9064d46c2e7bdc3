"""The forked worker pool: every item's result exactly once, large payloads, failures."""

from __future__ import annotations

import os

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
