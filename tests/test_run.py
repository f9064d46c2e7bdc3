"""The run (``run.py``) and its workers: library calls that do not leak into each other, the
same findings whichever executor runs the batches, and worker failures as one line."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conftest import GIT_ENV, make_key, repo_with

from poelis_scan import GitError, Match, ScanError, scan_bytes, scan_git, scan_paths
from poelis_scan.scan.parallel import WorkerError, run_batches


@pytest.fixture(autouse=True)
def _test_git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process git scans run git with the tests' identity and no user configuration."""
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)


def _summary(matches: list[Match]) -> list[tuple[object, ...]]:
    return [(m.start, m.end, m.secret, m.encoding, m.confidence) for m in matches]


def test_library_calls_do_not_leak_settings_into_each_other(tmp_path: Path) -> None:
    """``decode=False`` in one call once switched decoding off for the whole process."""
    plain, encoded = make_key(), make_key()
    data = f"A={plain}\nB={base64.b64encode(encoded.encode()).decode()}\n".encode()
    (tmp_path / "a.env").write_bytes(data)
    repo = repo_with(tmp_path / "repo", {"b.env": data.decode()})

    first = _summary(scan_bytes(data))
    assert [m[2] for m in first] == [plain, encoded] and first[1][3] == "base64"
    files = scan_paths([tmp_path / "a.env"], decode=False, executor="serial")
    assert [f.secret for f in files.findings] == [plain]
    history = scan_git([str(repo)], jobs=1)
    assert sorted(f.secret for f in history.findings) == sorted([plain, encoded])
    assert _summary(scan_bytes(data)) == first
    assert [m.secret for m in scan_bytes(data, decode=False)] == [plain]
    assert _summary(scan_bytes(data)) == first


def _many_files(root: Path, count: int) -> set[tuple[str, str]]:
    expected = set()
    for i in range(count):
        key = make_key()
        (root / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 7}" / f"f{i}.env").write_text(f"# file {i}\nK={key}\n")
        expected.add((f"d{i % 7}/f{i}.env", key))
    return expected


@pytest.mark.parametrize("executor", ["process", "thread", "serial"])
def test_every_executor_finds_the_same_in_files(tmp_path: Path, executor: str) -> None:
    expected = _many_files(tmp_path, 150)  # above the serial threshold: workers start
    result = scan_paths([tmp_path], jobs=3, executor=executor)  # type: ignore[arg-type]
    assert {(f.location.path, f.secret) for f in result.findings} == expected
    assert result.stats.files_scanned == 150


@pytest.mark.parametrize("executor", ["process", "thread", "serial"])
def test_every_executor_finds_the_same_in_git(tmp_path: Path, executor: str) -> None:
    """Without fork (``thread``) a git scan runs too: one cat-file per thread, all closed."""
    keys = {f"k{i}.env": make_key() for i in range(260)}  # above the serial threshold
    repo = repo_with(tmp_path / "repo", {name: f"K={k}\n" for name, k in keys.items()})
    result = scan_git([str(repo)], jobs=3, executor=executor)  # type: ignore[arg-type]
    assert {(f.location.path, f.secret) for f in result.findings} == set(keys.items())
    assert result.stats.git is not None and result.stats.git.blobs == 260


def _fails_with_git_error(item: int) -> int:
    if item == 5:
        raise GitError("git cat-file failed in /some/repo: fatal: bad object")
    return item


def _fails_with_a_bug(item: int) -> int:
    if item == 5:
        raise KeyError("poelis_api_this-text-must-never-be-shown")
    return item


@pytest.mark.parametrize("executor", ["process", "thread", "serial"])
def test_a_worker_git_error_comes_back_as_one_line_with_its_cause(executor: str) -> None:
    with pytest.raises(ScanError) as caught:
        list(run_batches(_fails_with_git_error, range(20), 2, executor))  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("git cat-file failed in /some/repo: fatal: bad object")


@pytest.mark.parametrize("executor", ["process", "thread", "serial"])
def test_a_worker_bug_comes_back_as_one_line_without_its_text(executor: str) -> None:
    """An unexpected exception's text could quote scanned content: only its type is told."""
    with pytest.raises(WorkerError) as caught:
        list(run_batches(_fails_with_a_bug, range(20), 2, executor))  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and "KeyError" in message
    assert "poelis_api_" not in message
    assert message.startswith("internal error (KeyError in ")


def test_cleanup_runs_after_threads_and_serial_work() -> None:
    ran: list[str] = []
    for executor in ("thread", "serial"):
        assert sorted(run_batches(abs, [-1, -2], 2, executor,  # type: ignore[arg-type]
                                  cleanup=lambda e=executor: ran.append(e))) == [1, 2]
    assert ran == ["thread", "serial"]


def test_a_git_problem_in_a_cli_run_is_one_line_and_exit_two(tmp_path: Path) -> None:
    from conftest import run_cli

    repo = repo_with(tmp_path / "repo", {"a.txt": "hello\n"})
    run = run_cli("git", str(repo), "--range", "HEAD..nosuchbranch")
    assert run.status == 2
    assert run.stderr == ("poelis-scan: error: range end commit nosuchbranch is not in this "
                          "repository.\n")
