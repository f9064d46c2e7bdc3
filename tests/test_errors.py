"""Issue 11 item 16: every cause that used to end in a traceback is one line and exit 2 now,
and an unexpected exception is one line too (its traceback only under ``--debug``, redacted).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CliRun, git, make_key, output_on_tty, run_cli

from poelis_scan.console import redact_text


def assert_one_line(run: CliRun, *words: str) -> None:
    assert run.status == 2, (run.status, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("poelis-scan: error: "), run.stderr
    for word in words:
        assert word in lines[0], run.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.env").write_text(f"K={make_key()}\n")
    return root


@pytest.mark.parametrize("pyproject, words", [
    ("tool = 1\n", ["tool: must be a table"]),
    ("[tool]\npoelis-scan = 5\n", ["tool.poelis-scan: must be a table"]),
    ("[tool]\npoelis-scan = []\n", ["tool.poelis-scan: must be a table"]),
])
def test_pyproject_of_the_wrong_shape(tmp_path: Path, pyproject: str, words: list[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "a.txt").write_text("x\n")
    assert_one_line(run_cli("scan", ".", "--config", "pyproject.toml", cwd=tmp_path), *words)
    if "poelis-scan" in pyproject:  # found without --config too
        assert_one_line(run_cli("scan", ".", cwd=tmp_path), *words)


def test_deeply_nested_config_and_baseline(tmp_path: Path, tree: Path) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line(run_cli("scan", str(tree), "--config", str(config)), "deep.toml")
    baseline = tmp_path / "deep.json"
    baseline.write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line(run_cli("scan", str(tree), "--baseline", str(baseline)), "deep.json")


@pytest.mark.parametrize("option", ["--config", "--baseline"])
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_config_or_baseline_on_an_endless_device(tree: Path, option: str, device: str) -> None:
    assert_one_line(run_cli("scan", str(tree), option, device), device, "not a regular file")


def test_config_too_large(tmp_path: Path, tree: Path) -> None:
    config = tmp_path / "big.toml"
    config.write_text("# padding\n" * 120_000)
    assert_one_line(run_cli("scan", str(tree), "--config", str(config)), "larger than 1 MiB")


@pytest.mark.parametrize("option", ["--config", "--baseline"])
def test_config_or_baseline_on_a_fifo_does_not_hang(tmp_path: Path, tree: Path,
                                                    option: str) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "poelis_scan", "scan", str(tree), option,
                           str(fifo)], capture_output=True, timeout=60, check=False)
    assert_one_line(CliRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode()),
                    "not a regular file")


@pytest.mark.parametrize("url", [
    "https://example.com:99999", "https://example.com:abc", "https://[::1", "https://a b",
    "https://example.com\r\nX-Injected: 1", "abc",
])
def test_bad_base_url(tree: Path, url: str) -> None:
    assert_one_line(run_cli("scan", str(tree), "--verify", "--base-url", url), "--base-url")
    assert_one_line(run_cli("verify", "--base-url", url, stdin=b""), "--base-url")


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-inf"])
def test_verify_timeout_not_finite(tree: Path, value: str) -> None:
    assert_one_line(run_cli("scan", str(tree), "--verify-timeout", value), "--verify-timeout")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_config_timeout_not_finite(tmp_path: Path, tree: Path, value: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[verify]\ntimeout = {value}\n")
    assert_one_line(run_cli("scan", str(tree), "--config", str(config)), "verify.timeout")


def test_standard_output_on_a_full_device(tree: Path) -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "poelis_scan", "scan", str(tree),
                               "--format", "json", "-q"], stdout=full, stderr=subprocess.PIPE,
                              timeout=120, check=False)
    assert_one_line(CliRun(proc.returncode, "", proc.stderr.decode()),
                    "cannot write standard output", "No space left")


def test_verify_with_standard_input_closed() -> None:
    proc = subprocess.run(["sh", "-c", f'exec "{sys.executable}" -m poelis_scan verify <&-'],
                          capture_output=True, timeout=60, check=False)
    assert_one_line(CliRun(proc.returncode, "", proc.stderr.decode()), "standard input")


def test_progress_delay_that_is_not_a_number(tree: Path) -> None:
    env = {**os.environ, "POELIS_SCAN_PROGRESS_DELAY": "abc"}
    stderr = output_on_tty(["scan", str(tree)], stream="stderr", env=env)
    assert "Traceback" not in stderr and "scanned 1 file" in stderr


def test_many_jobs_under_a_process_limit(tmp_path: Path) -> None:
    """Forking fails (EAGAIN) under RLIMIT_NPROC: no traceback; the run either falls back to
    fewer workers (findings: exit 1) or says so in one line (exit 2)."""
    root = tmp_path / "many"
    root.mkdir()
    for index in range(300):
        (root / f"f{index}.env").write_text(f"K={make_key()}\n" if index == 7 else "x\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(root, 0o755)

    def limit() -> None:
        if os.geteuid() == 0:  # root ignores RLIMIT_NPROC: run as nobody
            os.setgid(65534)
            os.setuid(65534)
        resource.setrlimit(resource.RLIMIT_NPROC, (8, 8))

    try:  # as root the scan runs as nobody, who must be able to start this interpreter
        subprocess.run([sys.executable, "-c", "pass"], preexec_fn=limit, check=True,
                       capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("this interpreter cannot be run by an unprivileged user here")
    proc = subprocess.run([sys.executable, "-m", "poelis_scan", "scan", str(root), "-j", "200"],
                          capture_output=True, timeout=300, check=False, preexec_fn=limit,
                          env={**os.environ, "HOME": str(tmp_path)})
    stderr = proc.stderr.decode()
    assert "Traceback" not in stderr
    if proc.returncode == 2:
        assert [line for line in stderr.splitlines() if "error:" in line] == [
            line for line in stderr.splitlines() if line.startswith("poelis-scan: error:")]
    else:
        assert proc.returncode == 1, stderr


# ---- the top-level handler and --debug --------------------------------------------------------


@pytest.mark.slow
def test_range_with_ten_thousand_long_refs_is_not_an_argument_list(tmp_path: Path) -> None:
    """``--range 000…0..HEAD`` excludes every other ref; 10,000 long ref names are more than
    one command line holds under an 8 MiB stack (E2BIG), so they go to git on stdin."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "b.env").write_text(f"K={make_key()}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two")
    lines = "".join(f"create refs/heads/{'y' * 240}/{'z' * 240}/{'w' * 200}{i} {first}\n"
                    for i in range(10_000))
    subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, input=lines.encode(),
                   check=True, env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull,
                                    "GIT_CONFIG_NOSYSTEM": "1"})
    proc = subprocess.run(["sh", "-c", 'ulimit -s 8192 && exec "$0" -m poelis_scan "$@"',
                           sys.executable, "git", "--range", "0" * 40 + "..HEAD", "--format",
                           "json"], cwd=repo, capture_output=True, timeout=600, check=False)
    assert proc.returncode == 1, proc.stderr.decode()
    report = CliRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert [f["location"]["path"] for f in report.findings()] == ["b.env"]
    assert report.json()["stats"]["commits_scanned"] == 1


def test_debug_shows_the_traceback_and_default_does_not(tmp_path: Path) -> None:
    """A system refusal deep inside a run (EMFILE: too many open files, under a small
    ``ulimit -n``): one line by default; ``--debug`` adds the traceback before it."""
    tree = tmp_path / "many"
    tree.mkdir()
    for index in range(60):
        (tree / f"f{index}.txt").write_text("x\n")

    def run(limit: int, *extra: str) -> CliRun:
        proc = subprocess.run(["sh", "-c", f'ulimit -n {limit} && exec "$0" -m poelis_scan "$@"',
                               sys.executable, *extra, "scan", str(tree), "-j", "4"],
                              capture_output=True, timeout=300, check=False)
        return CliRun(proc.returncode, proc.stdout.decode(), proc.stderr.decode())

    for limit in range(8, 24):
        plain = run(limit)
        if plain.status == 2 and "Too many open files" in plain.stderr:
            break
    else:
        pytest.skip("no descriptor limit here makes the run itself fail")
    assert_one_line(plain, "Too many open files", "rerun with --debug")
    debug = run(limit, "--debug")
    assert debug.status == 2 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == "poelis-scan: error: Too many open files"


def test_traceback_text_is_redacted() -> None:
    key = make_key()
    text = f'Traceback ...\n  File "x.py", line 1\nValueError: bad {key} here\n'
    redacted = redact_text(text)
    assert key not in redacted and key[:15] in redacted and "ValueError: bad" in redacted
