"""Git plumbing: run git, open a repository, and read objects through a long-lived
``git cat-file --batch``.

Plain ``git`` plumbing with machine-readable (``-z``) output, a handful of processes per scan
and none per object: enumeration is one ``cat-file --batch-check`` (``objects.py``), contents
come from long-lived ``cat-file --batch`` processes (``CatFile``, one per worker), and
provenance is one ``git log`` walk, run only when something was found (``provenance.py``).
GitPython would add an import of about 0.1 s to every pre-commit run and a Python object per
git object, for no capability we need here.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from typing import IO

from ...errors import ScanError

SCANNED_TYPES = ("blob", "commit", "tag")


class GitError(ScanError):
    """A git problem the user can act on; its text is one line."""


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository as git sees it; ``path`` is what the user named."""

    path: str
    git_dir: str
    work_tree: str | None
    shallow: bool


@dataclass(frozen=True, slots=True)
class GitObject:
    sha: str
    type: str
    size: int


def git_env() -> dict[str, str]:
    """The environment of every git we start: no prompt, no translation, no optional locks."""
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"})
    return env


def run_git(repo_path: str, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run one git command in ``repo_path``; a failure is a ``GitError`` with git's own words."""
    try:
        proc = subprocess.run(
            ["git", "-C", repo_path, "-c", "core.quotepath=off", *args],
            input=stdin, capture_output=True, env=git_env(), check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {proc.returncode}"
        raise GitError(f"git {args[0]} failed in {repo_path}: {detail}")
    return proc.stdout


def open_repository(path: str) -> Repository:
    """The repository at ``path`` (a work tree, a bare repository or a linked worktree)."""
    if not os.path.isdir(path):
        raise GitError(f"not a directory: {path}")
    # One process: outside a work tree (bare, or inside .git) git prints the first three
    # answers and then fails on --show-toplevel, which is how we learn there is no work tree.
    out = run_git(path, "rev-parse", "--absolute-git-dir", "--is-bare-repository",
                  "--is-shallow-repository", "--show-toplevel", check=False)
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 3:
        raise GitError(f"not a git repository: {path}")
    work_tree = lines[3] if len(lines) > 3 and lines[1] != "true" else None
    return Repository(path, lines[0], work_tree, lines[2] == "true")


def public_remote(url: str) -> str | None:
    """A remote URL fit to publish: no user name or token, scp syntax made a URL."""
    from urllib.parse import urlsplit, urlunsplit

    url = url.strip()
    if not url:
        return None
    if "://" not in url:  # git@host:org/repo.git
        host, _, path = url.partition(":")
        return f"ssh://{host.rpartition('@')[2]}/{path.lstrip('/')}" if path else None
    parts = urlsplit(url)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def verify_commit(repo: Repository, rev: str, role: str) -> str:
    """The commit ``rev`` names, or a ``GitError`` that says how to get it into the clone."""
    out = run_git(repo.path, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}",
                  check=False).decode().strip()
    if out:
        return out
    hint = (" This clone is shallow: fetch the missing history (git fetch --unshallow, or "
            "fetch-depth: 0 in actions/checkout) and run again.") if repo.shallow else ""
    raise GitError(f"{role} commit {rev} is not in this repository.{hint}")


def is_zero_sha(sha: str) -> bool:
    """The all-zeros id git and CI use for "no commit" (a new or a deleted ref)."""
    return set(sha) == {"0"}



class CatFile:
    """One ``git cat-file --batch`` kept open for the life of a worker (process or thread)."""

    def __init__(self, repo_path: str) -> None:
        self.proc = subprocess.Popen(
            ["git", "-C", repo_path, "cat-file", "--batch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=1 << 20, env=git_env(),
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout

    def request(self, shas: list[str]) -> threading.Thread:
        """Send the ids from a thread: git answers while we still ask, and pipes are small."""
        payload = "".join(f"{sha}\n" for sha in shas).encode()

        def send() -> None:
            self.stdin.write(payload)
            self.stdin.flush()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        return sender

    def close(self) -> None:
        self.stdin.close()  # end of input: cat-file exits
        self.stdout.close()
        self.proc.wait()
