"""Issue 10: never trust what is scanned (items 1, 2, 5, 6, 7, 8, 9).

Every test runs the real CLI on real files and real repositories built here; keys are made at
run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
from pathlib import Path

import pytest
from conftest import git, make_key, output_on_tty, run_cli

from poelis_scan.paths import printable
from poelis_scan.scan.allow import allowed_in_comment


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


# ---- 1. --untrusted: a pull request cannot silence the CI scan -------------------------------


def pr_repo(tmp_path: Path, base_files: dict[str, str], pr_files: dict[str, str]
            ) -> tuple[Path, str]:
    """A repository with a base commit and a PR commit on top; returns (path, base sha)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for name, text in {"README.md": "hello\n", **base_files}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    for name, text in pr_files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pull request")
    return repo, base


def baseline_for(key: str, path: str) -> str:
    return json.dumps({"tool": "poelis-scan", "version": 1, "entries": [
        {"secret_sha256": sha(key), "fingerprint": "0" * 64, "path": path}]})


def _vectors(key: str) -> dict[str, tuple[dict[str, str], list[str]]]:
    """Each way a PR could silence the scan: the files it adds and extra options."""
    leak = {"app.py": f"KEY = '{key}'\n"}
    return {
        "config exclude": ({**leak, ".poelis-scan.toml":
                            '[[exclude]]\npath = "*"\nreason = "tidy"\n'}, []),
        "config allow": ({**leak, ".poelis-scan.toml":
                          f'[[allow]]\nsecret-sha256 = "{sha(key)}"\nreason = "test"\n'}, []),
        "pyproject table": ({**leak, "pyproject.toml":
                             '[tool.poelis-scan]\nexclude = [{path = "*.py", reason = "x"}]\n'},
                            []),
        "allow comment": ({"app.py": f"KEY = '{key}'  # poelis-scan: allow\n"}, []),
        "baseline entry": ({**leak, "baseline.json": baseline_for(key, "app.py")},
                           ["--baseline", "baseline.json"]),
    }


@pytest.mark.parametrize("vector", ["config exclude", "config allow", "pyproject table",
                                    "allow comment", "baseline entry"])
def test_untrusted_range_ignores_what_the_pull_request_adds(tmp_path: Path, vector: str
                                                            ) -> None:
    key = make_key()
    files, extra = _vectors(key)[vector]
    base_files = {"baseline.json": baseline_for(make_key(), "old.py")} if extra else {}
    repo, base = pr_repo(tmp_path, base_files, files)
    args = ["git", ".", "--range", f"{base}..HEAD", "--format", "sarif", *extra]
    trusting = run_cli(*args, cwd=repo)
    assert trusting.status == 0, trusting.stderr  # the attack works without --untrusted
    run = run_cli(*args, "--untrusted", cwd=repo)
    assert run.status == 1, run.stderr
    results = json.loads(run.stdout)["runs"][0]["results"]
    assert [r.get("suppressions") for r in results] == [None]
    assert "untrusted" in run.stderr.splitlines()[-1]


def test_untrusted_range_keeps_the_base_commits_configuration(tmp_path: Path) -> None:
    """What the base commit already said still counts: the team's own excludes."""
    key, other = make_key(), make_key()
    repo, base = pr_repo(
        tmp_path, {".poelis-scan.toml": '[[exclude]]\npath = "fixtures/*"\nreason = "test"\n'},
        {"fixtures/a.env": f"K={key}\n", ".poelis-scan.toml": '[[exclude]]\npath = "*"\n'
         'reason = "tidy"\n', "src/b.env": f"K={other}\n"})
    run = run_cli("git", ".", "--range", f"{base}..HEAD", "--format", "json", "--untrusted",
                  cwd=repo)
    assert run.status == 1, run.stderr
    assert [f["location"]["path"] for f in run.findings()] == ["src/b.env"]
    assert run.json()["stats"]["suppressed"] == {"config": 1}
    assert f"{base}:.poelis-scan.toml" in run.stderr


def test_untrusted_whole_repository_reads_no_repository_config(tmp_path: Path) -> None:
    key = make_key()
    repo, _ = pr_repo(tmp_path, {".poelis-scan.toml": '[[exclude]]\npath = "*"\nreason = "x"\n'},
                      {"app.py": f"KEY = '{key}'\n"})
    run = run_cli("git", ".", "--untrusted", "--format", "json", cwd=repo)
    assert run.status == 1 and len(run.findings()) == 1
    assert ".poelis-scan.toml" in run.stderr and "ignoring" in run.stderr


def test_untrusted_file_scan_ignores_discovered_config_and_allow_comments(tmp_path: Path
                                                                         ) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    key, allowed = make_key(), make_key()
    (tree / ".poelis-scan.toml").write_text('[[exclude]]\npath = "*"\nreason = "tidy"\n')
    (tree / "a.env").write_text(f"K={key}\n")
    (tree / "b.py").write_text(f"K = '{allowed}'  # poelis-scan: allow\n")
    assert run_cli("scan", str(tree)).status == 0  # trusting: silenced
    run = run_cli("scan", str(tree), "--untrusted", "--format", "json")
    assert run.status == 1
    assert sorted(f["location"]["path"] for f in run.findings()) == ["a.env", "b.py"]
    assert f"ignoring the configuration {tree / '.poelis-scan.toml'}" in run.stderr
    # A file from outside the scanned paths counts; one inside them is refused.
    outside = tmp_path / "ci.toml"
    outside.write_text(f'[[allow]]\nsecret-sha256 = "{sha(key)}"\nreason = "known"\n')
    run = run_cli("scan", str(tree), "--untrusted", "--config", str(outside), "--format", "json")
    assert [f["location"]["path"] for f in run.findings()] == ["b.py"]
    inside = run_cli("scan", str(tree), "--untrusted", "--config",
                     str(tree / ".poelis-scan.toml"))
    assert inside.status == 2 and "inside the scanned paths" in inside.stderr
    assert inside.stderr.count("\n") == 1


# ---- 2. verification goes only where the user said -----------------------------------------


def test_discovered_config_cannot_redirect_verification(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(1.0)
    port = listener.getsockname()[1]
    try:
        tree = tmp_path / "tree"
        tree.mkdir()
        config = tree / ".poelis-scan.toml"
        config.write_text(f'[verify]\nbase-url = "http://127.0.0.1:{port}"\n')
        (tree / "a.env").write_text(f"K={make_key()}\n")
        # The default API is unreachable here: verification must say "unknown", never ask
        # the listener. POELIS_BASE_URL unset so the discovered value would be the one used.
        env = {k: v for k, v in os.environ.items() if k != "POELIS_BASE_URL"}
        env["POELIS_BASE_URL"] = "http://127.0.0.1:9"  # the user's own choice: a closed port
        run = run_cli("scan", str(tree), "--verify", "--verify-timeout", "1", env=env)
        assert f"{config}: [verify] base-url ignored" in run.stderr
        with pytest.raises(TimeoutError):
            connection, _ = listener.accept()
            connection.close()
        # Passed with --config, the same file is the user's word and is used.
        run = run_cli("scan", str(tree), "--verify", "--verify-timeout", "1", "--config",
                      str(config))
        connection, _ = listener.accept()
        connection.close()
    finally:
        listener.close()


# ---- 5. escaping -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "c\x1b[8mhidden.env",  # conceal the rest of the line
    "d\r\x1b[Kerased.env",  # carriage return + erase line
    "e\x1b]0;pwned\x07title.env",  # OSC: retitle the terminal
    "f\nforged.env:1:1: Poelis API key poelis_api_fake (high)",  # forge a finding line
    "g\u202eevil\u2066.env",  # bidi override
    "h\x85next\u2028line.env",  # C1 NEL and the line separator
])
def test_control_characters_in_names_are_escaped(tmp_path: Path, name: str) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / name).write_text(f"K={make_key()}\n")
    run = run_cli("scan", ".", cwd=tree)
    assert run.status == 1
    bad = [c for c in run.stdout + run.stderr
           if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0
           or c in "\u2028\u2029\u202e\u2066"]
    assert bad == []
    (line,) = run.stdout.splitlines()
    assert line.startswith(printable(name) + ":1:3: Poelis API key")
    on_tty = output_on_tty(["scan", str(tree)])
    assert "\x1b[8m" not in on_tty and "\x1b]" not in on_tty and printable(name) in on_tty
    # JSON keeps the exact name.
    exact = run_cli("scan", str(tree), "--format", "json")
    assert exact.findings()[0]["location"]["path"] == name


def test_warnings_escape_names_too(tmp_path: Path) -> None:
    fifo = tmp_path / "p\x1b[2Jipe"
    os.mkfifo(fifo)
    (tmp_path / "ok.txt").write_text("fine\n")
    run = run_cli("scan", str(fifo), str(tmp_path / "ok.txt"))
    assert "\x1b" not in run.stderr and "p\\x1b[2Jipe" in run.stderr


# ---- 6. several roots keep their root --------------------------------------------------------


def test_several_roots_outside_git_keep_their_root(tmp_path: Path) -> None:
    key = make_key()
    for root in ("a", "b"):
        (tmp_path / root).mkdir()
        (tmp_path / root / "config.env").write_text(f"K={key}\n")
    run = run_cli("scan", "a", "b", "--format", "json", cwd=tmp_path)
    findings = run.findings()
    assert [f["location"]["path"] for f in findings] == ["a/config.env", "b/config.env"]
    assert len({f["fingerprint"] for f in findings}) == 2
    sarif = json.loads(run_cli("scan", "a", "b", "--format", "sarif", cwd=tmp_path).stdout)
    result_run = sarif["runs"][0]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in result_run["results"]]
    assert uris == ["a/config.env", "b/config.env"]
    base = result_run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base == (tmp_path.resolve().as_uri() + "/") or base.rstrip("/").endswith(
        str(tmp_path).rstrip("/"))


def test_a_file_argument_keeps_its_directory(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "app.env").write_text(f"K={make_key()}\n")
    run = run_cli("scan", "deploy/app.env", "--format", "json", cwd=tmp_path)
    assert run.findings()[0]["location"]["path"] == "deploy/app.env"
    text = run_cli("scan", "deploy/app.env", cwd=tmp_path)
    assert text.stdout.startswith("deploy/app.env:1:3:")


# ---- 7. allow comments only inside comments, as whole words ----------------------------------


@pytest.mark.parametrize("line", [
    "k = '{K}'  # poelis-scan: allow",
    "const k = '{K}'; // poelis-scan: allow",
    "k = '{K}' /* poelis-scan: allow */",
    "<b>{K}</b> <!-- poelis-scan: allow -->",
    "SELECT '{K}'; -- poelis-scan: allow",
    "key = {K} ; poelis-scan: allow",
    "k = '{K}'  # pragma: allowlist secret",
])
def test_allow_marker_in_each_comment_syntax(tmp_path: Path, line: str) -> None:
    (tmp_path / "f.txt").write_text(line.format(K=make_key()) + "\n")
    run = run_cli("scan", str(tmp_path), "--format", "json")
    assert run.status == 0 and run.json()["stats"]["suppressed"] == {"inline": 1}


def test_allow_marker_on_the_line_before_rem_and_block_body(tmp_path: Path) -> None:
    (tmp_path / "run.bat").write_text(f"REM poelis-scan: allow\nset K={make_key()}\n")
    (tmp_path / "a.c").write_text(f"char *s = \" * poelis-scan: allow\";\n"
                                  f"char *k = \"{make_key()}\";\n")
    (tmp_path / "b.c").write_text(f" * poelis-scan: allow\nchar *k = \"{make_key()}\";\n")
    run = run_cli("scan", str(tmp_path), "--format", "json")
    assert run.json()["stats"]["suppressed"] == {"inline": 2}
    assert [f["location"]["path"] for f in run.findings()] == ["a.c"]


@pytest.mark.parametrize("line", [
    "k = '{K}'; s = \"poelis-scan: allowed?\"",
    "k = '{K}'; s = \"poelis-scan: allow\"",
    "k = '{K}'  # poelis-scan: allowed",
    "k = '{K}'  # poelis-scan: allowlist",
    "k = '{K}' poelis-scan: allow",
    "k = '{K}'  # pragma: allowlist secrets",
    "run --token {K} \"poelis-scan: allow\"",
])
def test_allow_marker_outside_a_comment_or_not_a_whole_word(tmp_path: Path, line: str) -> None:
    (tmp_path / "f.txt").write_text(line.format(K=make_key()) + "\n")
    run = run_cli("scan", str(tmp_path), "--format", "json")
    assert run.status == 1 and run.json()["stats"]["suppressed"] == {}


def test_allow_detection_never_raises_on_arbitrary_lines() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.binary(max_size=200))
    def check(data: bytes) -> None:
        assert isinstance(allowed_in_comment(data), bool)

    check()


# ---- 8. fail early -----------------------------------------------------------------------------


def test_unwritable_output_fails_before_reading_history(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.env").write_text(f"K={make_key()}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    run = run_cli("git", str(repo), "-o", "/nonexistent/x.json")
    assert run.status == 2 and run.stderr.count("\n") == 1
    assert "cannot write /nonexistent/x.json" in run.stderr
    assert "scanned" not in run.stderr  # no summary line: nothing was scanned
    run = run_cli("scan", str(repo), "-o", str(tmp_path))
    assert run.status == 2 and "is a directory" in run.stderr
    run = run_cli("scan", str(repo), "--baseline", str(tmp_path / "missing.json"))
    assert run.status == 2 and run.stderr.count("\n") == 1 and "scanned" not in run.stderr


def test_output_is_replaced_whole_never_truncated(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.env").write_text(f"K={make_key()}\n")
    report = tmp_path / "out" / "report.sarif"
    report.parent.mkdir()
    report.write_text("previous\n")
    run = run_cli("scan", str(tmp_path / "src"), "--format", "sarif", "-o", str(report))
    assert run.status == 1
    assert json.loads(report.read_text())["version"] == "2.1.0"
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.sarif"]  # no temp left
    assert stat.S_IMODE(report.stat().st_mode) & 0o044  # the umask's mode, not mkstemp's 0600


# ---- 9. coverage ---------------------------------------------------------------------------


def test_all_excluded_is_not_clean(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("x\n")
    run = run_cli("scan", str(tmp_path), "--exclude", "*.env", "--format", "gitlab")
    assert run.status == 2
    assert json.loads(run.stdout)["scan"]["status"] == "failure"
    assert run.stderr.splitlines()[-1] == ("poelis-scan: error: nothing was read (skipped 1 "
                                           "excluded), so this is not a clean result")


def test_named_fifo_alone_is_not_clean_and_sarif_says_so(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    run = run_cli("scan", str(fifo), "--format", "sarif")
    assert run.status == 2
    invocation = json.loads(run.stdout)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert "nothing was read" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    ok = run_cli("scan", str(tmp_path / "pipe"), str(Path(__file__)), "--format", "sarif")
    assert json.loads(ok.stdout)["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_repository_with_missing_packs_is_not_clean(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("hello\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    git(repo, "gc", "-q")
    for pack in (repo / ".git" / "objects" / "pack").iterdir():
        pack.unlink()
    run = run_cli("git", str(repo))
    assert run.status == 2 and "nothing was read" in run.stderr


def test_nothing_staged_and_no_new_commits_stay_clean(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("hello\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    staged = run_cli("git", "--staged", cwd=repo)
    assert staged.status == 0 and "nothing was scanned: nothing is staged" in staged.stderr
    empty = run_cli("git", "--range", "HEAD..HEAD", cwd=repo)
    assert empty.status == 0 and "no new commits" in empty.stderr


def test_strict_fails_after_the_report_when_input_was_skipped(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    key_file = tmp_path / "a.env"
    key_file.write_text(f"K={make_key()}\n")
    lenient = run_cli("scan", str(fifo), str(key_file), "--format", "json")
    assert lenient.status == 1
    strict = run_cli("scan", str(fifo), str(key_file), "--format", "json", "--strict")
    assert strict.status == 2
    assert len(strict.findings()) == 1  # the findings are still reported
    assert strict.stderr.splitlines()[-1].startswith("poelis-scan: error: --strict: 1 input")
    clean = run_cli("scan", str(key_file), "--strict")
    assert clean.status == 1


# ---- pre-receive is always untrusted, and its message to the pusher is escaped ----------------


def test_pre_receive_ignores_what_the_push_brings_and_escapes_names(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import GIT_ENV

    project = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(GIT_ENV)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

    def run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd,
                              capture_output=True, text=True, env=env, timeout=300)

    server = tmp_path / "server.git"
    run_git(tmp_path, "init", "-q", "--bare", str(server))
    hook = server / "hooks" / "pre-receive"
    hook.write_text((project / "hooks" / "pre-receive").read_text())
    hook.chmod(0o755)
    client = tmp_path / "client"
    client.mkdir()
    run_git(client, "init", "-q")
    (client / "README.md").write_text("hello\n")
    run_git(client, "add", "-A")
    run_git(client, "commit", "-qm", "start")
    run_git(client, "remote", "add", "origin", str(server))
    assert run_git(client, "push", "-q", "origin", "main").returncode == 0
    key = make_key()
    (client / ".poelis-scan.toml").write_text('[[exclude]]\npath = "*"\nreason = "tidy"\n')
    (client / "x\x1b]0;pwned\x07.py").write_text(f"K = '{key}'  # poelis-scan: allow\n")
    run_git(client, "add", "-A")
    run_git(client, "commit", "-qm", "silence it")
    rejected = run_git(client, "push", "origin", "main")
    assert rejected.returncode != 0, rejected.stderr
    assert "push rejected" in rejected.stderr and "untrusted" in rejected.stderr
    assert "x\\x1b]0;pwned\\x07.py:1:6" in rejected.stderr and "\x1b]" not in rejected.stderr
    assert key not in rejected.stderr


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "sarif", "gitlab", "html"])
def test_a_key_in_a_file_or_member_name_never_leaves(tmp_path: Path, fmt: str) -> None:
    """A name is scanned content too: a key written into a file name or an archive member's
    name is shown redacted in every format (the key inside the file is what is reported)."""
    import io
    import zipfile

    named, inside, member_key = make_key(), make_key(), make_key()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / f"leak-{named}.env").write_text(f"K={inside}\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"conf/{member_key}.env", f"K={inside}\n")
    (tree / "bundle.zip").write_bytes(buffer.getvalue())
    out = run_cli("scan", str(tree), "--format", fmt, "-o", str(tmp_path / "report"))
    assert out.status == 1, out.stderr
    report = (tmp_path / "report").read_text()
    for key in (named, member_key):
        assert key not in report and key not in out.stderr
        assert key[:15] in report  # the redacted form names the place


def test_warnings_never_quote_a_key_held_in_a_name(tmp_path: Path) -> None:
    """A damaged archive is named in a warning; its name may hold a key."""
    named, inside = make_key(), make_key()
    (tmp_path / f"leak-{named}.zip").write_bytes(b"PK\x03\x04" + b"\xff" * 40
                                                 + f"\nK={inside}\n".encode())
    out = run_cli("scan", str(tmp_path))
    assert out.status == 1, out.stderr
    assert "warning" in out.stderr and named[:15] in out.stderr
    assert named not in out.stderr and named not in out.stdout
