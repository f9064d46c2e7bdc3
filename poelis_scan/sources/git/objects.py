"""Which git objects to read: every object in the store, what a range of commits introduced,
or what the index would add.

Enumeration is one ``cat-file --batch-check`` for the whole store, one ``git log --raw`` walk
for a range, one ``git diff --cached`` for the index: a handful of processes per scan and none
per object.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ...findings import ZERO_SHA
from .plumbing import (
    SCANNED_TYPES,
    GitError,
    GitObject,
    Repository,
    git_failure,
    git_process,
    run_git,
    run_git_status,
)

GITLINK_MODE = "160000"


@dataclass(slots=True)
class Introduction:
    """A commit that put a blob at a path (or the commit of a message)."""

    commit: str
    time: int
    path: str | None
    kind: str = "blob"  # "note" on a notes ref, "unreachable" when no ref or reflog reaches it


_KINDS = {kind.encode(): kind for kind in SCANNED_TYPES}


class ObjectLister:
    """Every blob, commit and tag in the object store, reachable or not, in pack order (which
    keeps git's delta cache warm), streamed as git lists them so scanning starts at once.
    Objects git cannot read are collected in ``broken``."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.broken: list[str] = []
        self.commits: list[str] = []  # every commit listed, reachable or not

    def __iter__(self) -> Iterator[GitObject]:
        proc = git_process(
            self.repo, ["cat-file", "--batch-all-objects", "--unordered",
                        "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
            stderr=subprocess.DEVNULL, bufsize=1 << 20,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                parts = line.split()
                if len(parts) == 3:
                    kind = _KINDS.get(parts[1])  # most lines are trees: passed over undecoded
                    if kind is not None:
                        sha = parts[0].decode()
                        if kind == "commit":
                            self.commits.append(sha)
                        yield GitObject(sha, kind, int(parts[2]))
                elif len(parts) == 2 and parts[1] == b"missing":
                    self.broken.append(parts[0].decode())
        finally:
            proc.stdout.close()
            if proc.wait() != 0:
                raise GitError(f"git cat-file could not list the objects of {self.repo.path}")


_LOG_FORMAT = "--format=%x01%H %ct"
# On every log: never verify a signature, never run an external diff or a textconv filter
# (the configuration that would ask for them is also overridden in ``plumbing.HARDENING``).
LOG_SAFETY = ("--no-show-signature", "--no-ext-diff", "--no-textconv")


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
    for meta, path in zip(parts[0::2], parts[1::2], strict=False):  # a trailing "" is odd
        if not meta.startswith(b":"):
            continue
        _, new_mode, _, new_sha, status = meta[1:].decode("ascii").split(" ")[:5]
        if new_sha == ZERO_SHA or new_mode == GITLINK_MODE or status.startswith("D"):
            continue
        entries.append((new_mode, new_sha, path.decode("utf-8", "surrogateescape")))
    return entries


def log_raw(repo: Repository, *revs: str, stdin: bytes | None = None,
            extra: Sequence[str] = (), problems: list[str] | None = None) -> bytes:
    """One walk with the blobs each commit introduced (merges: against every parent).

    A walk git cannot finish (a corrupt commit or tree on the way) is a ``GitError``, unless
    ``problems`` is given: then git's complaint goes there and the commits walked before the
    damage are returned (the last, possibly cut, record dropped).
    """
    args = ("log", *LOG_SAFETY, "--raw", "-m", "--no-renames", "--no-abbrev", "-z",
            "--no-color", _LOG_FORMAT, *extra, *revs)
    if problems is None:
        return run_git(repo, *args, stdin=stdin)
    return lenient_git(repo, problems, *args, stdin=stdin, record=b"\x01")


def lenient_git(repo: Repository, problems: list[str], *args: str, stdin: bytes | None = None,
                record: bytes = b"\n") -> bytes:
    """Run git; when it fails, note why in ``problems`` and keep its complete records."""
    status, out, err = run_git_status(repo, *args, stdin=stdin)
    if status == 0:
        return out
    problems.append(f"git {args[0]} stopped: {git_failure(err, status)}")
    return out[: out.rfind(record)] if record in out else b""


@dataclass(slots=True)
class RangeSelection:
    """The objects a range of commits introduced, with where they were introduced."""

    objects: list[GitObject] = field(default_factory=list)
    introductions: dict[str, list[Introduction]] = field(default_factory=dict)


_REVS_ON_STDIN = 64 << 10  # bytes of revisions above which they go to git on standard input


def _log_revs(revs: list[str]) -> tuple[list[str], bytes | None]:
    """Revisions as arguments, or (many refs: a new branch's ``--not`` list) on standard input,
    where no argument-list limit (E2BIG) applies; ``--stdin`` takes ``^REV``, not ``--not``."""
    if sum(map(len, revs)) < _REVS_ON_STDIN:
        return revs, None
    lines, negate = [], False
    for rev in revs:
        if rev == "--not":
            negate = not negate
        elif rev.startswith("-"):
            return revs, None  # an option (--remotes=…) has no standard-input form
        else:
            lines.append(f"^{rev}" if negate else rev)
    return ["--stdin"], "".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape")


def select_range(repo: Repository, revs: list[str],
                 selection: RangeSelection | None = None) -> RangeSelection:
    """Blobs and commit messages introduced by the commits ``git log REVS`` lists (added to
    ``selection`` when given, so several ranges merge without reading an object twice)."""
    selection = selection if selection is not None else RangeSelection()
    seen = {o.sha for o in selection.objects if o.type == "commit"}
    arguments, stdin = _log_revs(revs)
    for commit, time, entries in parse_raw_log(log_raw(repo, *arguments, stdin=stdin)):
        if commit not in seen:
            seen.add(commit)
            selection.objects.append(GitObject(commit, "commit", 0))
        for _mode, sha, path in entries:
            intros = selection.introductions.setdefault(sha, [])
            if not intros:
                selection.objects.append(GitObject(sha, "blob", 0))
            intros.append(Introduction(commit, time, path))
    return selection


def staged_blobs(repo: Repository) -> list[tuple[str, str]]:
    """(blob, path) for every index entry that differs from HEAD: exactly what a commit
    would add. Without HEAD (no commit yet) git compares with the empty tree: the whole
    index."""
    if repo.work_tree is None:
        raise GitError(f"--staged needs a work tree; {repo.path} is a bare repository")
    out = run_git(repo, "diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev",
                  "--no-ext-diff", "--no-textconv")
    return [(sha, path) for _mode, sha, path in _added_blobs(out)]
