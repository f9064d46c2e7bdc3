"""``poelis-scan scan`` end to end: real files in temporary directories, the real CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, make_key, output_on_tty, run_cli
from test_detect import CONTEXTS, DECOYS

from poelis_scan import scan_paths


def plant_tree(root: Path) -> dict[str, str]:
    """A directory holding every must-find case and every decoy; returns {relative path: key}."""
    keys: dict[str, str] = {}
    for name, template in CONTEXTS.items():
        k = make_key()
        path = f"contexts/{name}.txt"
        (root / "contexts").mkdir(exist_ok=True)
        (root / path).write_bytes(template.format(k=k).encode())
        keys[path] = k
    for length in (29, 32, 43, 49):
        k = make_key(length)
        (root / f"len{length}.env").write_text(f"KEY={k}\n")
        keys[f"len{length}.env"] = k
    k = make_key()
    (root / "bundle.min.js").write_bytes(
        b"var a=1;" * 250_000 + f'var key="{k}";'.encode() + b"var b=2;" * 10_000
    )
    keys["bundle.min.js"] = k
    k = make_key()
    (root / "blob.bin").write_bytes(os.urandom(70_000) + b"\x00" + k.encode() + b"\x00" * 9)
    keys["blob.bin"] = k
    k = make_key()
    (root / "with space dir").mkdir()
    (root / "with space dir" / "my config.env").write_text(f"K={k}\n")
    keys["with space dir/my config.env"] = k
    k = make_key()
    (root / "配置-ключ.yaml").write_text(f"key: {k}\n", encoding="utf-8")
    keys["配置-ключ.yaml"] = k
    decoys = root / "decoys"
    decoys.mkdir()
    for name, text in DECOYS.items():
        (decoys / f"{name}.py").write_text(text + "\n")
    return keys


def test_every_must_find_case_and_no_decoy(tmp_path: Path) -> None:
    keys = plant_tree(tmp_path)
    run = run_cli("scan", str(tmp_path), "--format", "json")
    assert run.status == 1, run.stderr
    found = {(f["location"]["path"], f["secret_sha256"]) for f in run.findings()}
    from poelis_scan.detect.grammar import secret_sha256

    expected = {(path, secret_sha256(k)) for path, k in keys.items()}
    assert found == expected
    assert all(f["confidence"] == "high" for f in run.findings())
    assert not any(f["location"]["path"].startswith("decoys/") for f in run.findings())
    stats = run.json()["stats"]
    assert stats["files_scanned"] == len(list(tmp_path.rglob("*.*")))
    assert stats["findings_below_confidence"] > 0  # the decoys that are plausible are counted


def test_min_confidence_low_shows_decoys(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(DECOYS["snake_identifier"] + "\n" + DECOYS["documented_example"])
    assert run_cli("scan", str(tmp_path)).status == 0
    run = run_cli("scan", str(tmp_path), "--min-confidence", "low", "--format", "json")
    assert run.status == 1
    assert [(f["location"]["line"], f["confidence"]) for f in run.findings()] == [
        (1, "low"), (2, "low")]


def test_line_and_columns(tmp_path: Path) -> None:
    k = make_key()
    (tmp_path / "app.env").write_text(f"A=1\r\nPOELIS_API_KEY={k}\r\n")
    (f,) = run_cli("scan", str(tmp_path), "--format", "json").findings()
    assert f["location"] == {"path": "app.env", "line": 2, "column": 16,
                             "end_column": 16 + len(k), "member": None}
    assert f["encoding"] == "plain"
    assert f["verification"]["status"] == "unverified"


def test_text_format_is_compiler_style_and_redacted(tmp_path: Path) -> None:
    k = make_key()
    (tmp_path / "x.env").write_text(f"\n\n  {k}\n")
    run = run_cli("scan", "x.env", cwd=tmp_path)
    assert run.status == 1
    assert run.stdout == f"x.env:3:3: Poelis API key {k[:15]}…{k[-3:]} (high)\n"
    assert "\033[" not in run.stdout
    assert "scanned 1 file" in run.stderr


def test_no_key_leaves_unredacted_in_any_format(tmp_path: Path) -> None:
    k = make_key()
    (tmp_path / "a.env").write_text(f"K={k}\n")
    body = k[len("poelis_api_"):]
    for fmt in ("text", "json", "jsonl"):
        run = run_cli("scan", str(tmp_path), "--format", fmt)
        assert run.status == 1
        for text in (run.stdout, run.stderr):
            assert body not in text and body[:20] not in text, fmt
        revealed = run_cli("scan", str(tmp_path), "--format", fmt, "--reveal")
        assert k in revealed.stdout
        assert body not in revealed.stderr


def test_jsonl_is_one_finding_per_line(tmp_path: Path) -> None:
    keys = [make_key() for _ in range(3)]
    (tmp_path / "a.txt").write_text("\n".join(keys))
    run = run_cli("scan", str(tmp_path), "--format", "jsonl")
    import json

    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [d["location"]["line"] for d in lines] == [1, 2, 3]


def test_output_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.env").write_text(f"K={make_key()}\n")
    out = tmp_path / "report.json"
    run = run_cli("scan", str(tmp_path / "src"), "--format", "json", "--output", str(out))
    assert run.status == 1 and run.stdout == ""
    import json

    assert len(json.loads(out.read_text())["findings"]) == 1


def test_stdin(tmp_path: Path) -> None:
    k = make_key()
    run = run_cli("scan", "-", "--format", "json", stdin=f"line one\nx {k}\n".encode())
    assert run.status == 1
    (f,) = run.findings()
    assert (f["location"]["path"], f["location"]["line"], f["location"]["column"]) == (
        "<stdin>", 2, 3)


def test_clean_directory_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("nothing to see\n")
    run = run_cli("scan", str(tmp_path))
    assert (run.status, run.stdout) == (0, "")
    assert "scanned 1 file" in run.stderr and "0 findings" in run.stderr


def test_empty_scan_says_nothing_was_scanned(tmp_path: Path) -> None:
    """Issue 10 item 9: CI reads exit codes; an empty scan is not a clean one."""
    run = run_cli("scan", str(tmp_path), "--format", "json")
    assert run.status == 2
    assert run.json()["stats"]["files_scanned"] == 0  # the report is still written
    assert run.stderr.splitlines()[-1] == (
        "poelis-scan: error: nothing was read (no file to read), so this is not a clean result")


@pytest.mark.parametrize(
    "args, message",
    [
        (["scan", "/no/such/path"], "no such file or directory: /no/such/path"),
        (["scan", "--no-such-option"], "No such option"),
        (["scan", "--format", "xml", "."], "Invalid value for '--format'"),
        (["scan", "--jobs", "0", "."], "--jobs"),
        (["scan", "--min-confidence", "medium", "."], "--min-confidence"),
        (["nonsense"], "No such command"),
        (["scan", ".", "--output", "/no/such/dir/report.json"], "cannot write"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_two(
    tmp_path: Path, args: list[str], message: str
) -> None:
    run = run_cli(*args, cwd=tmp_path)
    assert run.status == 2
    assert run.stderr.count("\n") == 1 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_no_arguments_prints_help_and_exits_two() -> None:
    run = run_cli()
    assert run.status == 2
    assert run.stderr == run_cli("--help").stdout and run.stdout == ""


def test_exclude_globs(tmp_path: Path) -> None:
    for rel in ("node_modules/lib/a.js", "src/app.min.js", "src/app.js", "docs/gen/x.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"k = '{make_key()}'\n")
    run = run_cli("scan", str(tmp_path), "--format", "json", "--exclude", "node_modules",
                  "--exclude", "*.min.js", "--exclude", "docs/gen/*")
    assert [f["location"]["path"] for f in run.findings()] == ["src/app.js"]
    assert run.json()["stats"]["skipped"] == {"excluded": 3}


def test_symlinks_not_followed_and_git_dir_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.env").write_text(f"K={make_key()}\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link-dir").symlink_to(outside)
    (tree / "link-file.env").symlink_to(outside / "secret.env")
    (tree / ".git" / "objects").mkdir(parents=True)  # a repository: history is git's job
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tree / ".git" / "config").write_text(f"K={make_key()}\n")
    (tree / "ok.txt").write_text("fine\n")
    run = run_cli("scan", str(tree), "--format", "json")
    assert run.status == 0 and run.findings() == []
    assert run.json()["stats"]["skipped"] == {"symlink": 2}
    assert run.json()["stats"]["files_scanned"] == 1


def test_named_fifo_is_skipped_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "a.env").write_text(f"K={make_key()}\n")
    run = run_cli("scan", str(fifo), str(tmp_path / "a.env"))
    assert run.status == 1
    assert "cannot read" in run.stderr and "not a regular file" in run.stderr


def test_unreadable_file_is_reported_and_the_scan_goes_on() -> None:
    """As root, permissions do not stop reads, so drop the effective uid for the scan."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="poelis-unreadable-"))
    try:
        root.chmod(0o755)
        (root / "locked.env").write_text(f"K={make_key()}\n")
        (root / "locked.env").chmod(0o000)
        (root / "open.env").write_text(f"K={make_key()}\n")
        (root / "open.env").chmod(0o644)
        skips = []
        dropped = os.geteuid() == 0
        if dropped:
            os.seteuid(65534)
        try:
            result = scan_paths([root], jobs=1, on_skip=skips.append)
        finally:
            if dropped:
                os.seteuid(0)
        assert [f.location.path for f in result.findings] == ["open.env"]
        assert result.stats.files_scanned == 1
        assert dict(result.stats.skipped) == {"unreadable": 1}
        assert skips[0].display_path.endswith("locked.env") and "denied" in skips[0].detail
    finally:
        shutil.rmtree(root)


def test_non_utf8_path_name(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9-latin1.env"
    k = make_key()
    with open(name, "wb") as handle:
        handle.write(f"K={k}\n".encode())
    run = run_cli("scan", str(tmp_path), "--format", "json")
    (f,) = run.findings()
    assert f["location"]["path"] == "caf\\xe9-latin1.env"
    text = run_cli("scan", str(tmp_path))
    assert "caf\\xe9-latin1.env:1:3:" in text.stdout


def test_paths_relative_to_repository_root_and_fingerprints_stable(tmp_path: Path) -> None:
    k = make_key()
    prints = []
    for clone in ("one", "two"):
        repo = tmp_path / clone
        (repo / "deploy").mkdir(parents=True)
        git(repo, "init", "-q")
        (repo / "deploy" / "app.env").write_text(f"# {clone}\n\nK={k}\n")
        run = run_cli("scan", "deploy", "--format", "json", cwd=repo)
        (f,) = run.findings()
        assert f["location"]["path"] == "deploy/app.env"
        prints.append(f["fingerprint"])
        # Scanning the file itself, from elsewhere, names it the same way.
        (g,) = run_cli("scan", str(repo / "deploy" / "app.env"), "--format", "json").findings()
        assert g["fingerprint"] == f["fingerprint"]
    # Built from rule, path and secret hash only: nothing of the clone it was found in.
    secret_hash = hashlib.sha256(k.encode()).hexdigest()
    assert prints == [hashlib.sha256(f"poelis-api-key\0deploy/app.env\0{secret_hash}"
                                     .encode()).hexdigest()] * 2


def test_outside_git_paths_are_relative_to_the_scanned_directory(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.env").write_text(f"K={make_key()}\n")
    (f,) = run_cli("scan", str(tmp_path / "a"), "--format", "json").findings()
    assert f["location"]["path"] == "b/c.env"


def test_parallel_and_serial_scans_agree(tmp_path: Path) -> None:
    keys = {}
    for i in range(300):
        sub = tmp_path / f"d{i % 7}"
        sub.mkdir(exist_ok=True)
        content = f"file {i}\n" * (i % 50)
        if i % 11 == 0:
            keys[i] = make_key()
            content += f"K={keys[i]}\n"
        (sub / f"f{i}.txt").write_text(content)

    def summary(executor: str, jobs: int) -> list[tuple[str, int, str]]:
        result = scan_paths([tmp_path], jobs=jobs, executor=executor)  # type: ignore[arg-type]
        assert result.stats.files_scanned == 300
        return [(f.location.path, f.location.line, f.secret) for f in result.findings]

    serial = summary("serial", 1)
    assert len(serial) == len(keys)
    assert summary("process", 2) == serial
    assert summary("thread", 2) == serial


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(f"K={make_key()}\n")

    def on_tty(extra_env: dict[str, str]) -> str:
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        return output_on_tty(["scan", str(tmp_path)], "stdout", {**env, **extra_env})

    assert "\033[" in on_tty({})
    assert "\033[" not in on_tty({"NO_COLOR": "1"})


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("clean\n")
    script = shutil.which("poelis-scan", path=os.path.dirname(sys.executable))
    assert script is not None, "the console script is installed next to the interpreter"
    proc = subprocess.run([script, "scan", str(tmp_path)], capture_output=True)
    assert proc.returncode == 0
    assert run_cli("--version").stdout.strip().endswith("0.1.0")


def test_large_file_lines_are_exact_past_many_windows(tmp_path: Path) -> None:
    """A key 5 MB into a file (five read windows) gets its true line and column."""
    k = make_key()
    lines = [f"log line {i} status=200\n" for i in range(250_000)]
    lines.insert(200_000, f"leaked: {k}\n")
    (tmp_path / "big.log").write_text("".join(lines))
    assert (tmp_path / "big.log").stat().st_size > 5_000_000
    (f,) = run_cli("scan", str(tmp_path), "--format", "json").findings()
    assert (f["location"]["line"], f["location"]["column"]) == (200_001, 9)


def test_real_files_with_a_key_across_the_read_window(tmp_path: Path) -> None:
    """Files read through the directory fast path, keys placed around the 1 MiB window edge."""
    from poelis_scan.scan.stream import CHUNK_SIZE

    expected = {}
    for shift in (-70, -61, -60, -30, -1, 0, 1, 60):
        k = make_key()
        start = CHUNK_SIZE + shift
        data = b"." * (start - 1) + b"\n" + k.encode() + b"\n"
        (tmp_path / f"edge{shift}.txt").write_bytes(data)
        expected[f"edge{shift}.txt"] = (k, 2)
    k = make_key()  # a file of exactly one window, the key in its last bytes
    (tmp_path / "exact.txt").write_bytes(b"x" * (CHUNK_SIZE - len(k) - 1) + b" " + k.encode())
    expected["exact.txt"] = (k, 1)
    result = scan_paths([tmp_path], jobs=1)
    got = {f.location.path: (f.secret, f.location.line) for f in result.findings}
    assert got == expected


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    for i in range(400):
        (tmp_path / f"f{i}.txt").write_text("some text\n" * 200)

    def stderr_on_tty(*extra: str) -> str:
        return output_on_tty(["scan", str(tmp_path), "-j", "1", *extra], "stderr",
                             {**os.environ, "POELIS_SCAN_PROGRESS_DELAY": "0"})

    shown = stderr_on_tty()
    assert "so far" in shown and "\r" in shown
    last = shown.rstrip().splitlines()[-1].split("\x1b[K")[-1]
    assert last.startswith("poelis-scan: scanned 400")
    assert "so far" not in stderr_on_tty("--quiet")
    piped = run_cli("scan", str(tmp_path), env={"POELIS_SCAN_PROGRESS_DELAY": "0"})
    assert "so far" not in piped.stderr
