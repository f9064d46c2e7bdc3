"""Where users run it: native git hooks with real commits and pushes, and the real pre-commit."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import GIT_ENV, make_key

PROJECT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)  # where the console script poelis-scan lives


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    return {**base, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **extra}


def run(cwd: Path, *args: str, stdin: str | None = None, **extra: str
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, input=stdin,
                          env=env(**extra), timeout=600)


def git(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, "git", "-c", "init.defaultBranch=main", *args, **extra)


@pytest.fixture
def work(tmp_path: Path) -> tuple[Path, Path]:
    """A work tree whose hooks are ours, and a bare remote it pushes to."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    repo = tmp_path / "work"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "core.hooksPath", str(PROJECT / "hooks"))
    git(repo, "remote", "add", "origin", str(remote))
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md")
    assert git(repo, "commit", "-qm", "start").returncode == 0
    return repo, remote


def test_native_pre_commit_blocks_a_staged_key_and_passes_clean_commits(
        work: tuple[Path, Path]) -> None:
    repo, _ = work
    k = make_key()
    (repo / "app.env").write_text(f"DEBUG=1\nPOELIS_API_KEY={k}\n")
    git(repo, "add", "app.env")
    blocked = git(repo, "commit", "-qm", "add config")
    assert blocked.returncode != 0
    output = blocked.stdout + blocked.stderr
    assert ":app.env:2:16: Poelis API key " in output and f"{k[:15]}…{k[-3:]}" in output
    assert "revoke" in output.lower() and k not in output
    (repo / "app.env").write_text("DEBUG=1\nPOELIS_API_KEY=${FROM_VAULT}\n")
    git(repo, "add", "app.env")
    assert git(repo, "commit", "-qm", "add config").returncode == 0


def test_native_hook_says_clearly_when_poelis_scan_is_missing(work: tuple[Path, Path]) -> None:
    repo, _ = work
    (repo / "x.txt").write_text("x\n")
    git(repo, "add", "x.txt")
    git_dir = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout
    missing = git(repo, "commit", "-qm", "x", PATH=f"/usr/bin:/bin:{git_dir.strip()}")
    assert missing.returncode != 0
    assert "'poelis-scan' is not on PATH" in missing.stderr


def test_native_pre_push_blocks_new_commits_and_new_branches(work: tuple[Path, Path]) -> None:
    repo, _ = work
    assert git(repo, "push", "-q", "origin", "main").returncode == 0
    k = make_key()
    (repo / "leak.env").write_text(f"K={k}\n")
    git(repo, "add", "leak.env")
    assert git(repo, "commit", "-qm", "leak", "--no-verify").returncode == 0
    blocked = git(repo, "push", "-q", "origin", "main")
    assert blocked.returncode != 0 and "leak.env:1:3" in blocked.stdout + blocked.stderr
    git(repo, "checkout", "-q", "-b", "topic")
    blocked_branch = git(repo, "push", "-q", "origin", "topic")
    assert blocked_branch.returncode != 0
    git(repo, "checkout", "-q", "main")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "branch", "-q", "-D", "topic")
    git(repo, "checkout", "-q", "-b", "clean-topic")
    (repo / "ok.txt").write_text("fine\n")
    git(repo, "add", "ok.txt")
    git(repo, "commit", "-qm", "fine")
    assert git(repo, "push", "-q", "origin", "clean-topic").returncode == 0
    assert git(repo, "push", "-q", "origin", "--delete", "clean-topic").returncode == 0


def _guarded_remote(tmp_path: Path, client: Path) -> Path:
    """A bare ``origin`` for ``client`` with our pre-receive hook installed and ``main``
    pushed to it; returns the bare repository."""
    server = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(server))
    hook = server / "hooks" / "pre-receive"
    hook.write_text((PROJECT / "hooks" / "pre-receive").read_text())
    hook.chmod(0o755)
    git(client, "remote", "add", "origin", str(server))
    assert git(client, "push", "-q", "origin", "main").returncode == 0
    return server


def test_pre_receive_rejects_the_push_naming_commit_and_path(tmp_path: Path,
                                                             plain_repo: Path) -> None:
    client = plain_repo
    server = _guarded_remote(tmp_path, client)
    k = make_key()
    (client / "deploy").mkdir()
    (client / "deploy" / "prod.env").write_text(f"KEY={k}\n")
    git(client, "add", "-A")
    git(client, "commit", "-qm", "deploy settings")
    commit = git(client, "rev-parse", "HEAD").stdout.strip()
    rejected = git(client, "push", "origin", "main")
    assert rejected.returncode != 0
    assert f"{commit[:12]}:deploy/prod.env:1:5" in rejected.stderr
    assert "push rejected" in rejected.stderr and k not in rejected.stderr
    assert git(server, "rev-parse", "main").stdout.strip() != commit
    # The admin's escape hatch: a push option, honoured only when the server allows it.
    assert git(client, "push", "-o", "poelis-scan.skip", "origin", "main").returncode != 0
    git(server, "config", "receive.advertisePushOptions", "true")
    git(server, "config", "poelis-scan.allowSkip", "true")
    allowed = git(client, "push", "-o", "poelis-scan.skip", "origin", "main")
    assert allowed.returncode == 0 and "scan skipped" in allowed.stderr
    assert git(server, "rev-parse", "main").stdout.strip() == commit


# ---- the pre-commit framework -------------------------------------------------------------

@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One hook environment for the module: pre-commit installs this project into it once."""
    yield tmp_path_factory.mktemp("pre-commit-home")


def try_repo(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(repo, sys.executable, "-m", "pre_commit", "try-repo", str(PROJECT), *args,
               "--color", "never", PRE_COMMIT_HOME=str(home))


@pytest.fixture
def plain_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-qm", "start")
    return repo


@pytest.mark.slow
def test_pre_commit_framework_hook(plain_repo: Path, pre_commit_home: Path) -> None:
    repo = plain_repo
    k = make_key()
    (repo / "settings.py").write_text("DEBUG = True\n" + "\n" * 8 + f"KEY = '{k}'\n")
    # Partial staging: the key's hunk stays unstaged, so what would be committed is clean.
    (repo / "settings.py").write_text("DEBUG = True\n")
    git(repo, "add", "settings.py")
    (repo / "settings.py").write_text("DEBUG = True\n" + "\n" * 8 + f"KEY = '{k}'\n")
    clean = try_repo(repo, pre_commit_home, "poelis-scan")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Passed" in clean.stdout
    # Now the key is staged: the hook fails with a short, redacted message.
    git(repo, "add", "settings.py")
    failed = try_repo(repo, pre_commit_home, "poelis-scan")
    assert failed.returncode == 1
    assert "settings.py:10:8: Poelis API key" in failed.stdout
    assert "revoke" in failed.stdout.lower() and k not in failed.stdout + failed.stderr
    # --all-files scans every tracked file (the key is committed here, then checked).
    git(repo, "commit", "-qm", "leak", "--no-verify")
    (repo / "other.txt").write_text("nothing\n")
    every = try_repo(repo, pre_commit_home, "poelis-scan", "--all-files")
    assert every.returncode == 1 and "settings.py:10:8" in every.stdout


@pytest.mark.slow
def test_pre_commit_framework_push_hook(plain_repo: Path, pre_commit_home: Path) -> None:
    repo = plain_repo
    base = git(repo, "rev-parse", "HEAD").stdout.strip()
    k = make_key()
    (repo / "a.env").write_text(f"K={k}\n")
    git(repo, "add", "a.env")
    git(repo, "commit", "-qm", "leak")
    tip = git(repo, "rev-parse", "HEAD").stdout.strip()
    pushed = try_repo(repo, pre_commit_home, "poelis-scan-push", "--hook-stage", "pre-push",
                      "--from-ref", base, "--to-ref", tip)
    assert pushed.returncode == 1 and "a.env:1:3" in pushed.stdout
    before = try_repo(repo, pre_commit_home, "poelis-scan-push", "--hook-stage", "pre-push",
                      "--from-ref", base, "--to-ref", base)
    assert before.returncode == 0


# ---- CI recipes ---------------------------------------------------------------------------

def poelis_commands(node: object) -> Iterator[str]:
    """Every shell line in a YAML document that runs poelis-scan."""
    if isinstance(node, dict):
        for value in node.values():
            yield from poelis_commands(value)
    elif isinstance(node, list):
        for value in node:
            yield from poelis_commands(value)
    elif isinstance(node, str):
        for line in node.replace("\\\n", " ").splitlines():
            if line.strip().startswith("poelis-scan "):
                yield line.strip()


def accepted_by_the_cli(line: str) -> None:
    """Parse a command line with the real CLI parser, without running it."""
    import click

    from poelis_scan.cli import cli

    expanded = os.path.expandvars(line.replace("${{", "$X{").replace("}}", "}"))
    args = shlex.split(expanded.split("||")[0].split(";")[0])[1:]
    command: click.Command = cli
    name = "poelis-scan"
    while isinstance(command, click.Group):  # walk down to the (sub)command being run
        name = args.pop(0)
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"unknown command {name!r} in {line!r}"
        command = found
    command.make_context(name, args)  # raises on an unknown option or a bad value


# github-actions.yml runs poelis-scan through action.yml: tests/test_install.py runs that.
@pytest.mark.parametrize("recipe", ["gitlab-ci.yml"])
def test_ci_recipes_run_commands_the_cli_accepts(recipe: str) -> None:
    document = yaml.safe_load((PROJECT / "examples" / recipe).read_text())
    commands = list(poelis_commands(document))
    assert commands, "the recipe runs poelis-scan"
    for line in commands:
        accepted_by_the_cli(line)


def test_generic_shell_recipe() -> None:
    script = (PROJECT / "examples" / "ci.sh").read_text()
    commands = [line.strip() for line in script.replace("\\\n", " ").splitlines()
                if line.strip().startswith("poelis-scan ")]
    assert commands
    for line in commands:
        accepted_by_the_cli(line)
    assert subprocess.run(["sh", "-n", str(PROJECT / "examples" / "ci.sh")]).returncode == 0


def test_pre_commit_hook_reads_the_index_of_commit_a(work: tuple[Path, Path]) -> None:
    """``git commit -a`` hands the hook a temporary index (GIT_INDEX_FILE): that one is read,
    although every other GIT_* variable that names a repository is dropped."""
    repo, _ = work
    k = make_key()
    (repo / "README.md").write_text(f"hello {k}\n")
    blocked = git(repo, "commit", "-qam", "edit")
    assert blocked.returncode != 0
    assert ":README.md:1:7" in blocked.stdout + blocked.stderr
    assert k not in blocked.stdout + blocked.stderr


def test_native_pre_push_blocks_an_annotated_tag_on_a_pushed_commit(
        work: tuple[Path, Path]) -> None:
    repo, _ = work
    assert git(repo, "push", "-q", "origin", "main").returncode == 0
    assert git(repo, "tag", "light").returncode == 0  # lightweight, on a clean commit
    assert git(repo, "push", "-q", "origin", "light").returncode == 0
    k = make_key()
    assert git(repo, "tag", "-a", "v1", "-m", f"release notes {k}", "HEAD").returncode == 0
    blocked = git(repo, "push", "-q", "origin", "v1")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert "<tag-message>:1:15" in output and k not in output


def test_pre_receive_rejects_an_annotated_tag_on_a_pushed_commit(tmp_path: Path,
                                                                 plain_repo: Path) -> None:
    client = plain_repo
    server = _guarded_remote(tmp_path, client)
    assert git(client, "tag", "light").returncode == 0
    assert git(client, "push", "-q", "origin", "light").returncode == 0
    k = make_key()
    git(client, "tag", "-a", "v1", "-m", f"release notes {k}")
    rejected = git(client, "push", "origin", "v1")
    assert rejected.returncode != 0
    assert "<tag-message>:1:15" in rejected.stderr and "push rejected" in rejected.stderr
    assert k not in rejected.stderr
    tags = git(server, "tag", "--list").stdout.split()
    assert tags == ["light"]


def test_both_push_hooks_block_a_key_in_a_pushed_branch_name(tmp_path: Path,
                                                            work: tuple[Path, Path]) -> None:
    repo, remote = work
    hook = remote / "hooks" / "pre-receive"
    hook.write_text((PROJECT / "hooks" / "pre-receive").read_text())
    hook.chmod(0o755)
    assert git(repo, "push", "-q", "origin", "main").returncode == 0
    k = make_key()
    branch = f"feature/{k}"
    assert git(repo, "branch", branch).returncode == 0
    blocked = git(repo, "push", "origin", branch)
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0 and "<ref:refs/heads/feature/" in output, output
    assert k not in output
    rejected = git(repo, "push", "--no-verify", "origin", branch)
    assert rejected.returncode != 0 and "push rejected" in rejected.stderr
    ours = [line for line in rejected.stderr.splitlines() if line.startswith("remote:")]
    assert any("<ref:refs/heads/feature/" in line for line in ours)
    assert not any(k in line for line in ours)  # (git's own summary names the branch)
