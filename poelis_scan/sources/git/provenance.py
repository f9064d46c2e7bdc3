"""Where a key in a git object came from: which commit put the blob at which path, who, when,
on which refs. Resolved only for objects that hold a key, with one history walk, and recorded
as a typed ``GitOrigin`` on each finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ...findings import Finding, GitOrigin
from ...paths import printable_path
from ...scan.stream import LocatedMatch
from .contents import ObjectHit
from .objects import Introduction, log_raw, parse_raw_log
from .plumbing import Repository, run_git
from .ranges import Mode, Selection

MESSAGE_PATHS = {"commit": "<commit-message>", "tag": "<tag-message>"}


@dataclass(slots=True)
class CommitInfo:
    author: str
    email: str
    date: str


def introductions(repo: Repository, wanted: set[str],
                  unreachable_commits: Callable[[], list[str]],
                  exclude: Sequence[str] = ()) -> dict[str, list[Introduction]]:
    """For each wanted blob, every (commit, path) that introduced it: over every ref and the
    reflogs (kind ``blob``, or ``note`` for commits of a notes ref), then, only if some blob
    is still unexplained, over the commits that nothing reaches (kind ``unreachable``).

    ``exclude``: commits an earlier scan read, with all their ancestors; a blob new to the
    store was introduced by a new commit, so an incremental scan walks only those."""
    notes_commits = set(run_git(repo.path, "rev-list", "--glob=refs/notes/*").decode().split())
    found: dict[str, list[Introduction]] = {}
    walk = (log_raw(repo, "--all", "--reflog", "--stdin",
                    stdin="".join(f"^{sha}\n" for sha in exclude).encode())
            if exclude else log_raw(repo, "--all", "--reflog"))
    for commit, time, entries in parse_raw_log(walk):
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


class _Repo:
    """One repository's answers, each asked of git once, when first needed."""

    def __init__(self, repo: Repository, selection: Selection) -> None:
        self.repo = repo
        self.selection = selection
        self._reachable: set[str] | None = None
        self._refs: dict[str, tuple[str, ...]] = {}

    def reachable(self) -> set[str]:
        """Commits that a ref or a reflog reaches."""
        if self._reachable is None:
            self._reachable = reachable_commits(self.repo)
        return self._reachable

    def unreachable(self) -> list[str]:
        """Commits the object store holds that nothing reaches (a force-push, a deleted branch,
        a dropped stash: a clone still holds them)."""
        lister = self.selection.lister
        reachable = self.reachable()
        return [sha for sha in (lister.commits if lister else []) if sha not in reachable]

    def refs_of(self, commit: str) -> tuple[str, ...]:
        if commit not in self._refs:
            self._refs[commit] = tuple(refs_containing(self.repo, commit))
        return self._refs[commit]


def _earliest_per_path(intros: list[Introduction]) -> list[Introduction]:
    best: dict[str | None, Introduction] = {}
    for intro in intros:
        current = best.get(intro.path)
        if current is None or intro.time < current.time:
            best[intro.path] = intro
    return sorted(best.values(), key=lambda i: (i.time, i.path or ""))


def findings(repo: Repository, mode: Mode, selection: Selection, hits: list[ObjectHit],
             label: str = "", old_commits: Sequence[str] = ()) -> list[Finding]:
    """The findings of ``hits``, one per place each object was introduced; ``label`` goes
    before display paths when several repositories are scanned; ``old_commits`` (an
    incremental scan) are left out of the provenance walk with their ancestors."""
    answers = _Repo(repo, selection)
    blob_hits = {h.sha for h in hits if h.type == "blob"}
    if mode == "all":
        intros = (introductions(repo, blob_hits, answers.unreachable, old_commits)
                  if blob_hits else {})
    else:  # range, revs
        intros = selection.introductions
    commits_needed = {i.commit for sha in blob_hits for i in intros.get(sha, [])}
    commits_needed |= {h.sha for h in hits if h.type == "commit"}
    info = commit_info(repo, commits_needed)
    out: list[Finding] = []
    for hit in hits:
        for path, origin in _places(hit, mode, selection, intros, info, answers):
            for lm in hit.matches:
                out.append(_finding(path, origin, lm, label))
    return out


def _origin(kind: str, hit: ObjectHit, answers: _Repo, commit: str | None = None,
            meta: CommitInfo | None = None, refs: tuple[str, ...] = (),
            notes_commit: str | None = None) -> GitOrigin:
    return GitOrigin(kind, hit.sha, hit.type, answers.repo.path, commit,
                     meta.author if meta else None, meta.email if meta else None,
                     meta.date if meta else None, refs, notes_commit)


def _places(hit: ObjectHit, mode: Mode, selection: Selection,
            intros: dict[str, list[Introduction]], info: dict[str, CommitInfo],
            answers: _Repo) -> Iterator[tuple[str, GitOrigin]]:
    """Each (path, origin) under which the object ``hit`` is reported."""
    if hit.type == "blob" and mode == "staged":
        for path in selection.staged_paths.get(hit.sha, []):
            yield path, _origin("staged", hit, answers)
    elif hit.type == "blob":
        chosen = _earliest_per_path(intros.get(hit.sha, []))
        for intro in chosen:
            yield _blob_place(hit, intro, info.get(intro.commit), answers)
        if not chosen:
            yield f"<unreachable-blob-{hit.sha[:12]}>", _origin("unreachable", hit, answers)
    else:
        kind = "commit-message" if hit.type == "commit" else "tag-message"
        if hit.type == "commit" and mode == "all" and hit.sha not in answers.reachable():
            kind = "unreachable"
        refs = answers.refs_of(hit.sha) if hit.type == "commit" and kind != "unreachable" else ()
        yield MESSAGE_PATHS[hit.type], _origin(kind, hit, answers, hit.sha, info.get(hit.sha),
                                               refs)


def _blob_place(hit: ObjectHit, intro: Introduction, meta: CommitInfo | None,
                answers: _Repo) -> tuple[str, GitOrigin]:
    path = intro.path or ""
    if intro.kind == "note":
        # A note's path is the annotated object's id, split into fan-out directories.
        return "<note>", _origin("note", hit, answers, path.replace("/", ""), meta,
                                 answers.refs_of(intro.commit), notes_commit=intro.commit)
    if intro.kind == "unreachable":
        return path, _origin("unreachable", hit, answers, intro.commit, meta)
    return path, _origin("blob", hit, answers, intro.commit, meta, answers.refs_of(intro.commit))


def _finding(path: str, origin: GitOrigin, lm: LocatedMatch, label: str) -> Finding:
    report_path = printable_path(path)
    if origin.kind == "staged":
        display = f":{report_path}"  # git's own name for the index version: git show :PATH
    elif path.startswith("<"):
        display = f"{(origin.commit or origin.blob)[:12]} {report_path}"
    else:
        display = f"{(origin.commit or origin.blob)[:12]}:{report_path}"  # git show REV:PATH
    if label:
        display = f"{label}: {display}"
    return Finding.at(lm, report_path, display, origin)
