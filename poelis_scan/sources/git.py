"""Git repositories as a source: which objects to read, and where each one came from.

Plain ``git`` plumbing with machine-readable (``-z``) output, a handful of processes per scan
and none per object: enumeration is one ``cat-file --batch-check``, contents come from
long-lived ``cat-file --batch`` processes (``gitscan.py``), and provenance is one ``git log``
walk, run only when something was found. GitPython would add an import of about 0.1 s to
every pre-commit run and a Python object per git object, for no capability we need here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

ZERO_SHA = "0" * 40
SCANNED_TYPES = ("blob", "commit", "tag")
GITLINK_MODE = "160000"


class GitError(Exception):
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


@dataclass(slots=True)
class Introduction:
    """A commit that put a blob at a path (or the commit of a message)."""

    commit: str
    time: int
    path: str | None
    kind: str = "blob"  # "note" on a notes ref, "unreachable" when no ref or reflog reaches it


@dataclass(slots=True)
class CommitInfo:
    author: str
    email: str
    date: str


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"})
    return env


def run_git(repo_path: str, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run one git command in ``repo_path``; a failure is a ``GitError`` with git's own words."""
    try:
        proc = subprocess.run(
            ["git", "-C", repo_path, "-c", "core.quotepath=off", *args],
            input=stdin, capture_output=True, env=_env(), check=False,
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


class ObjectLister:
    """Every blob, commit and tag in the object store, reachable or not, in pack order (which
    keeps git's delta cache warm), streamed as git lists them so scanning starts at once.
    Objects git cannot read are collected in ``broken``."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.broken: list[str] = []
        self.commits: list[str] = []  # every commit listed, reachable or not

    def __iter__(self) -> Iterator[GitObject]:
        proc = subprocess.Popen(
            ["git", "-C", self.repo.path, "cat-file", "--batch-all-objects", "--unordered",
             "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(), bufsize=1 << 20,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                parts = line.split()
                if len(parts) == 3:
                    kind = parts[1].decode()
                    if kind in SCANNED_TYPES:
                        if kind == "commit":
                            self.commits.append(parts[0].decode())
                        yield GitObject(parts[0].decode(), kind, int(parts[2]))
                elif len(parts) == 2 and parts[1] == b"missing":
                    self.broken.append(parts[0].decode())
        finally:
            proc.stdout.close()
            if proc.wait() != 0:
                raise GitError(f"git cat-file could not list the objects of {self.repo.path}")


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


# ---- what a range of commits introduced -------------------------------------------------

_LOG_FORMAT = "--format=%x01%H %ct"


def parse_raw_log(out: bytes) -> Iterator[tuple[str, int, list[tuple[str, str, str]]]]:
    """(commit, commit time, [(mode, new blob, path)]) from ``git log -z --raw``."""
    for record in out.split(b"\x01")[1:]:
        header, _, rest = record.partition(b"\0")
        commit, time = header.decode("ascii").split(" ")[:2]
        yield commit, int(time), _added_blobs(rest.lstrip(b"\n"))


def _added_blobs(raw: bytes) -> list[tuple[str, str, str]]:
    """(mode, blob, path) of the ``--raw -z`` entries that add or change content: deletions
    and gitlinks (submodules) have no blob of this repository to scan."""
    entries: list[tuple[str, str, str]] = []
    parts = raw.split(b"\0")
    for meta, path in zip(parts[0::2], parts[1::2]):
        if not meta.startswith(b":"):
            continue
        _, new_mode, _, new_sha, status = meta[1:].decode("ascii").split(" ")[:5]
        if new_sha == ZERO_SHA or new_mode == GITLINK_MODE or status.startswith("D"):
            continue
        entries.append((new_mode, new_sha, path.decode("utf-8", "surrogateescape")))
    return entries


def log_raw(repo: Repository, *revs: str, stdin: bytes | None = None,
            extra: Sequence[str] = ()) -> bytes:
    """One walk with the blobs each commit introduced (merges: against every parent)."""
    return run_git(repo.path, "log", "--raw", "-m", "--no-renames", "--no-abbrev", "-z",
                   "--no-color", "--no-ext-diff", _LOG_FORMAT, *extra, *revs, stdin=stdin)


@dataclass(slots=True)
class RangeSelection:
    """The objects a range of commits introduced, with where they were introduced."""

    objects: list[GitObject] = field(default_factory=list)
    introductions: dict[str, list[Introduction]] = field(default_factory=dict)


def select_range(repo: Repository, revs: list[str],
                 selection: RangeSelection | None = None) -> RangeSelection:
    """Blobs and commit messages introduced by the commits ``git log REVS`` lists (added to
    ``selection`` when given, so several ranges merge without reading an object twice)."""
    selection = selection if selection is not None else RangeSelection()
    seen = {o.sha for o in selection.objects if o.type == "commit"}
    for commit, time, entries in parse_raw_log(log_raw(repo, *revs)):
        if commit not in seen:
            seen.add(commit)
            selection.objects.append(GitObject(commit, "commit", 0))
        for _mode, sha, path in entries:
            intros = selection.introductions.setdefault(sha, [])
            if not intros:
                selection.objects.append(GitObject(sha, "blob", 0))
            intros.append(Introduction(commit, time, path))
    return selection


def is_zero_sha(sha: str) -> bool:
    """The all-zeros id git and CI use for "no commit" (a new or a deleted ref)."""
    return set(sha) == {"0"}


def range_revs(repo: Repository, base: str, tip: str) -> list[str]:
    """``git log`` arguments for "what ``base..tip`` introduced", as CI hands it over."""
    tip_sha = verify_commit(repo, tip, "range end")
    if is_zero_sha(base):
        # A new branch: its commits that no other ref already has.
        refs = run_git(repo.path, "for-each-ref", "--format=%(objectname) %(refname)")
        others = [ref for line in refs.decode("utf-8", "surrogateescape").splitlines()
                  for sha, ref in [line.split(" ", 1)] if sha != tip_sha]
        return [tip_sha, "--not", *others] if others else [tip_sha]
    base_sha = verify_commit(repo, base, "range start")
    return [f"{base_sha}..{tip_sha}"]


# ---- the index ----------------------------------------------------------------------------

def staged_blobs(repo: Repository) -> list[tuple[str, str]]:
    """(blob, path) for every index entry that differs from HEAD: exactly what a commit
    would add. Without HEAD (no commit yet) git compares with the empty tree: the whole
    index."""
    if repo.work_tree is None:
        raise GitError(f"--staged needs a work tree; {repo.path} is a bare repository")
    out = run_git(repo.path, "diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev",
                  "--no-ext-diff")
    return [(sha, path) for _mode, sha, path in _added_blobs(out)]


# ---- provenance ---------------------------------------------------------------------------

def introductions(repo: Repository, wanted: set[str],
                  unreachable_commits: Callable[[], list[str]]) -> dict[str, list[Introduction]]:
    """For each wanted blob, every (commit, path) that introduced it: over every ref and the
    reflogs (kind ``blob``, or ``note`` for commits of a notes ref), then, only if some blob
    is still unexplained, over the commits that nothing reaches (kind ``unreachable``)."""
    notes_commits = set(run_git(repo.path, "rev-list", "--glob=refs/notes/*").decode().split())
    found: dict[str, list[Introduction]] = {}
    for commit, time, entries in parse_raw_log(log_raw(repo, "--all", "--reflog")):
        kind = "note" if commit in notes_commits else "blob"
        _collect(commit, time, entries, kind, wanted, found)
    missing = wanted - found.keys()
    unreachable = unreachable_commits() if missing else []
    if unreachable:
        out = log_raw(repo, "--stdin", stdin="\n".join(unreachable).encode(),
                      extra=("--no-walk=unsorted",))
        for commit, time, entries in parse_raw_log(out):
            _collect(commit, time, entries, "unreachable", missing, found)
    return found


def _collect(commit: str, time: int, entries: list[tuple[str, str, str]], kind: str,
             wanted: set[str], found: dict[str, list[Introduction]]) -> None:
    for _mode, sha, path in entries:
        if sha in wanted:
            found.setdefault(sha, []).append(Introduction(commit, time, path, kind))


def reachable_commits(repo: Repository) -> set[str]:
    out = run_git(repo.path, "rev-list", "--all", "--reflog")
    return set(out.decode("ascii").split())


def commit_info(repo: Repository, commits: Iterable[str]) -> dict[str, CommitInfo]:
    """Author, email and author date (ISO 8601) of each commit, in one git call."""
    wanted = sorted(set(commits))
    if not wanted:
        return {}
    out = run_git(repo.path, "log", "--no-walk=unsorted", "--stdin",
                  "--format=%H%x00%an%x00%ae%x00%aI%x00", stdin="\n".join(wanted).encode())
    info: dict[str, CommitInfo] = {}
    for record in out.decode("utf-8", "replace").split("\x00\n"):
        fields = record.strip("\n").split("\x00")
        if len(fields) >= 4:
            info[fields[0]] = CommitInfo(fields[1], fields[2], fields[3])
    return info


def refs_containing(repo: Repository, commit: str) -> list[str]:
    out = run_git(repo.path, "for-each-ref", "--contains", commit, "--format=%(refname)",
                  check=False)
    return sorted(out.decode("utf-8", "surrogateescape").split())
