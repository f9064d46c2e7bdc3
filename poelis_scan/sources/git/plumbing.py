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

import contextlib
import os
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from ...errors import ScanError
from .hardening import HARDENING, git_env, vetted_env

SCANNED_TYPES = ("blob", "commit", "tag")


class GitError(ScanError):
    """A git problem the user can act on; its text is one line."""


@dataclass(frozen=True, slots=True)
class Repository:
    """A repository as git sees it; ``path`` is what the user named.

    ``env``: the few variables of the environment that git itself set for this very
    repository and that its commands need (the index of a ``git commit -a`` under a
    pre-commit hook, the quarantine of a push under pre-receive); see ``open_repository``.
    """

    path: str
    git_dir: str
    work_tree: str | None
    shallow: bool
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class GitObject:
    sha: str
    type: str
    size: int


# ---- the one way git is started (with ``hardening.py``'s options and environment) ----------


def git_process(where: Repository | str, args: Sequence[str], *, stdin: int | None = None,
                stdout: int | None = subprocess.PIPE, stderr: int | None = subprocess.PIPE,
                bufsize: int = -1) -> subprocess.Popen[bytes]:
    """Start ``git -C WHERE <hardening> ARGS``: every git of this package starts here."""
    path, extra = (where.path, where.env) if isinstance(where, Repository) else (where, ())
    try:
        return subprocess.Popen(["git", "-C", path, *HARDENING, *args], stdin=stdin,
                                stdout=stdout, stderr=stderr, env=git_env(extra),
                                bufsize=bufsize)
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None


def git_failure(stderr: bytes, returncode: int) -> str:
    """git's own last line of complaint, or its exit status."""
    message = stderr.decode("utf-8", "replace").strip().splitlines()
    return message[-1] if message else f"exit status {returncode}"


def run_git_status(where: Repository | str, *args: str, stdin: bytes | None = None
                   ) -> tuple[int, bytes, bytes]:
    """Run one git command: (exit status, output, error output)."""
    proc = git_process(where, args, stdin=subprocess.PIPE if stdin is not None else
                       subprocess.DEVNULL)
    out, err = proc.communicate(stdin)
    return proc.returncode, out, err


def run_git(where: Repository | str, *args: str, stdin: bytes | None = None,
            check: bool = True) -> bytes:
    """Run one git command in ``where``; a failure is a ``GitError`` with git's own words."""
    status, out, err = run_git_status(where, *args, stdin=stdin)
    if check and status != 0:
        path = where.path if isinstance(where, Repository) else where
        raise GitError(f"git {args[0]} failed in {path}: {git_failure(err, status)}")
    return out


def open_repository(path: str, *, receiving: bool = False) -> Repository:
    """The repository at ``path`` (a work tree, a bare repository or a linked worktree).

    Whatever ``GIT_DIR`` or ``GIT_WORK_TREE`` say, this is the repository at ``path``.
    ``receiving``: we run as its pre-receive hook, and the pushed objects wait in git's
    quarantine (kept visible, only for this repository).
    """
    if not os.path.isdir(path):
        raise GitError(f"not a directory: {path}")
    # One process: outside a work tree (bare, or inside .git) git prints the first three
    # answers and then fails on --show-toplevel, which is how we learn there is no work tree.
    _, out, err = run_git_status(path, "rev-parse", "--absolute-git-dir",
                                 "--is-bare-repository", "--is-shallow-repository",
                                 "--show-toplevel")
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 3:
        raise GitError(_not_opened(path, err))
    work_tree = lines[3] if len(lines) > 3 and lines[1] != "true" else None
    return Repository(path, lines[0], work_tree, lines[2] == "true",
                      vetted_env(lines[0], receiving))


def _not_opened(path: str, err: bytes) -> str:
    """Why git would not open ``path``: its ``safe.directory`` reason when it gave one."""
    text = err.decode("utf-8", "replace")
    if "dubious ownership" in text:
        return (f"git refuses to open {path}: detected dubious ownership (the repository "
                f"is owned by another user); if you trust it: "
                f"git config --global --add safe.directory {os.path.abspath(path)}")
    return f"not a git repository: {path}"


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
    out = run_git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}",
                  check=False).decode().strip()
    if out:
        return out
    hint = (" This clone is shallow: fetch the missing history (git fetch --unshallow, or "
            "fetch-depth: 0 in actions/checkout) and run again.") if repo.shallow else ""
    raise GitError(f"{role} commit {rev} is not in this repository.{hint}")


def is_zero_sha(sha: str) -> bool:
    """The all-zeros id git and CI use for "no commit" (a new or a deleted ref)."""
    return set(sha) == {"0"}



# Bytes asked of cat-file's pipe per read. Small on purpose: the kernel copies into a buffer
# that stays in the CPU's cache, and the search reads it there (reading 1 MiB at a time cost
# half as much again in system time on 4.5 GB of history).
READ_SIZE = 128 << 10
KEEP = 4 << 10  # bytes a reader may keep unconsumed when it asks for more (a header line)


class Answers:
    """What cat-file writes, read straight from its pipe into one small reused buffer.

    ``buf[pos:end]`` holds bytes read and not yet consumed; ``base`` is the output offset of
    ``buf[0]``. ``fill`` reads more (moving the unconsumed bytes to the front first when room
    runs short); ``read``, ``readinto`` and ``readline`` behave like a ``BufferedReader``'s,
    for objects read whole. Not the pipe's ``BufferedReader`` itself: its ``read(size)``
    allocates and copies every object, where a scanner of this buffer looks at them in place.
    """

    def __init__(self, fd: int, read_size: int = READ_SIZE) -> None:
        self.fd = fd
        self.read_size = read_size
        self.buf = bytearray(read_size + KEEP)
        self.view = memoryview(self.buf)
        self.pos = 0
        self.end = 0
        self.base = 0

    def fill(self, keep: int) -> int:
        """Read what the pipe holds (up to ``read_size``) after ``end``, keeping ``buf[keep:]``;
        0 at the end of git's output."""
        if len(self.buf) - self.end < self.read_size:
            kept = self.end - keep
            if kept > KEEP:
                raise ValueError("a reader kept more than KEEP bytes")
            self.view[:kept] = self.view[keep : self.end]
            self.base += keep
            self.pos -= keep
            self.end = kept
        n = os.readv(self.fd, [self.view[self.end : self.end + self.read_size]])
        self.end += n
        return n

    def readline(self, limit: int = KEEP) -> bytes:
        """Up to and with the next newline (at most ``limit`` bytes; less at the end)."""
        while (newline := self.buf.find(b"\n", self.pos, self.end)) < 0:
            if self.end - self.pos >= limit or not self.fill(self.pos):
                newline = self.end - 1
                break
        line = bytes(self.buf[self.pos : newline + 1])
        self.pos = newline + 1
        return line

    def readinto(self, target: memoryview) -> int:
        """What is buffered (or, when nothing is, what one read of the pipe gives) into
        ``target``; 0 at the end."""
        if self.pos == self.end:
            return os.readv(self.fd, [target]) if len(target) else 0
        n = min(len(target), self.end - self.pos)
        target[:n] = self.view[self.pos : self.pos + n]
        self.pos += n
        return n

    def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of git's output."""
        if self.end - self.pos >= size:
            data = bytes(self.view[self.pos : self.pos + size])
            self.pos += size
            return data
        out = bytearray(size)
        with memoryview(out) as view:
            filled = 0
            while filled < size and (n := self.readinto(view[filled:])):
                filled += n
        del out[filled:]
        return bytes(out)


def _pipe_size(fd: int, size: int) -> None:
    """Let the pipe hold one read's worth (Linux; 64 KiB otherwise): git blocks, and wakes
    its reader, half as often. Larger cost more than they saved (the bytes fall out of the
    CPU's cache before they are searched). A refusal (a per-user pipe quota) changes nothing
    but the speed."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
    except (ImportError, AttributeError, OSError):
        pass


class CatFile:
    """One ``git cat-file --batch`` kept open for the life of a worker (process or thread).

    git ends it when an object is corrupt (after printing its header, or before): the reader
    (``contents.py``) then closes this one and starts another for the objects after it. Its
    output is read through ``answers`` only.
    """

    def __init__(self, repo: Repository, config: Sequence[str] = (),
                 read_size: int = READ_SIZE) -> None:
        self.proc = git_process(repo, [*config, "cat-file", "--batch"], stdin=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, bufsize=1 << 20)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        _pipe_size(self.stdout.fileno(), read_size)
        self.answers = Answers(self.stdout.fileno(), read_size)

    def request(self, payload: bytes) -> threading.Thread:
        """Send object ids (one a line) from a thread: git answers while we still ask, and
        pipes are small."""

        def send() -> None:
            try:
                self.stdin.write(payload)
                self.stdin.flush()
            except (BrokenPipeError, ValueError):  # git died on a corrupt object, or closed
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        return sender

    def close(self) -> None:
        # Output first: a git blocked on a full pipe dies of it instead of holding the writer.
        for stream in (self.stdout, self.stdin):
            # (end of input: cat-file exits; a git that died leaves an unflushable pipe)
            with contextlib.suppress(OSError):
                stream.close()
        self.proc.wait()
