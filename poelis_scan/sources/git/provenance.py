"""Where a key in a git object came from: which commit put the blob at which path, who, when,
on which refs. Resolved only for objects that hold a key, with one history walk, and recorded
as a typed ``GitOrigin`` on each finding.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ...detect.matches import find_matches
from ...detect.redaction import redact_text
from ...findings import Finding, GitOrigin
from ...paths import printable_path
from ...scan.stream import LocatedMatch
from ...stats import Skip
from .contents import ObjectHit
from .objects import LOG_SAFETY, Introduction, lenient_git, log_raw, parse_raw_log
from .plumbing import Repository, run_git
from .ranges import Mode, Selection

MESSAGE_PATHS = {"commit": "<commit-message>", "tag": "<tag-message>"}


@dataclass(slots=True)
class CommitInfo:
    author: str
    email: str
    date: str


def _identity(value: str) -> CommitInfo:
    """``Name <email> 1700000000 +0100`` as name, email and an ISO 8601 date."""
    import datetime

    name, _, rest = value.partition(" <")
    email, _, when = rest.partition("> ")
    date = ""
    stamp, _, zone = when.strip().partition(" ")
    try:
        sign = -1 if zone.startswith("-") else 1
        offset = datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        moment = datetime.datetime.fromtimestamp(int(stamp), datetime.timezone(offset))
        date = moment.isoformat()
    except (ValueError, OverflowError, OSError):
        pass
    return CommitInfo(name, email, date)


def introductions(repo: Repository, wanted: set[str],
                  unreachable_commits: Callable[[], list[str]],
                  problems: list[str],
                  exclude: Sequence[str] = ()) -> dict[str, list[Introduction]]:
    """For each wanted blob, every (commit, path) that introduced it: over every ref and the
    reflogs (kind ``blob``, or ``note`` for commits of a notes ref), then, only if some blob
    is still unexplained, over the commits that nothing reaches (kind ``unreachable``).

    Every object was already scanned: a walk that a corrupt object stops only loses
    provenance (said in ``problems``), never a finding. ``exclude``: commits an earlier scan
    read, with all their ancestors; a blob new to the store was introduced by a new commit, so
    an incremental scan walks only those."""
    notes_commits = set(lenient_git(repo, problems, "rev-list", "--glob=refs/notes/*")
                        .decode().split())
    found: dict[str, list[Introduction]] = {}
    walk = (log_raw(repo, "--all", "--reflog", "--stdin", problems=problems,
                    stdin="".join(f"^{sha}\n" for sha in exclude).encode())
            if exclude else log_raw(repo, "--all", "--reflog", problems=problems))
    for commit, time, entries in parse_raw_log(walk):
        kind = "note" if commit in notes_commits else "blob"
        _collect(commit, time, entries, kind, wanted, found)
    missing = wanted - found.keys()
    unreachable = unreachable_commits() if missing else []
    if unreachable:
        out = log_raw(repo, "--stdin", stdin="\n".join(unreachable).encode(),
                      extra=("--no-walk=unsorted",), problems=problems)
        for commit, time, entries in parse_raw_log(out):
            _collect(commit, time, entries, "unreachable", missing, found)
    return found


def _collect(commit: str, time: int, entries: list[tuple[str, str, str]], kind: str,
             wanted: set[str], found: dict[str, list[Introduction]]) -> None:
    for _mode, sha, path in entries:
        if sha in wanted:
            found.setdefault(sha, []).append(Introduction(commit, time, path, kind))


def reachable_commits(repo: Repository, problems: list[str]) -> set[str]:
    out = lenient_git(repo, problems, "rev-list", "--all", "--reflog")
    return set(out.decode("ascii").split())


def commit_info(repo: Repository, commits: Iterable[str],
                problems: list[str]) -> dict[str, CommitInfo]:
    """Author, email and author date (ISO 8601) of each commit, in one git call."""
    wanted = sorted(set(commits))
    if not wanted:
        return {}
    out = lenient_git(repo, problems, "log", *LOG_SAFETY, "--no-walk=unsorted", "--stdin",
                      "--format=%H%x00%an%x00%ae%x00%aI%x00",
                      stdin="\n".join(wanted).encode(), record=b"\x00\n")
    info: dict[str, CommitInfo] = {}
    for record in out.decode("utf-8", "replace").split("\x00\n"):
        fields = record.strip("\n").split("\x00")
        if len(fields) >= 4:
            info[fields[0]] = CommitInfo(fields[1], fields[2], fields[3])
    return info


def refs_containing(repo: Repository, commit: str) -> list[str]:
    out = run_git(repo, "for-each-ref", "--contains", commit, "--format=%(refname)",
                  check=False)
    return sorted(out.decode("utf-8", "surrogateescape").split())


class _Repo:
    """One repository's answers, each asked of git once, when first needed."""

    def __init__(self, repo: Repository, selection: Selection) -> None:
        self.repo = repo
        self.selection = selection
        self._reachable: set[str] | None = None
        self._refs: dict[str, tuple[str, ...]] = {}
        self.problems: list[str] = []

    def reachable(self) -> set[str]:
        """Commits that a ref or a reflog reaches."""
        if self._reachable is None:
            self._reachable = reachable_commits(self.repo, self.problems)
        return self._reachable

    def unreachable(self) -> list[str]:
        """Commits the object store holds that nothing reaches (a force-push, a deleted branch,
        a dropped stash: a clone still holds them)."""
        lister = self.selection.lister
        reachable = self.reachable()
        return [sha for sha in (lister.commits if lister else []) if sha not in reachable]

    def refs_at(self, obj: str) -> tuple[str, ...]:
        """The refs that point at ``obj`` itself (a tag: ``refs/tags/v1``)."""
        out = lenient_git(self.repo, self.problems, "for-each-ref", f"--points-at={obj}",
                          "--format=%(objectname) %(refname)")
        return tuple(sorted(ref for line in out.decode("utf-8", "surrogateescape").splitlines()
                            for sha, _, ref in [line.partition(" ")] if sha == obj))

    def tagger(self, tag: str) -> CommitInfo | None:
        """The tagger of an annotated tag, from the tag object itself (a pushed tag has no
        ref yet while pre-receive runs)."""
        raw = lenient_git(self.repo, self.problems, "cat-file", "tag", tag)
        header = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
        for line in header.splitlines():
            if line.startswith("tagger "):
                return _identity(line[len("tagger "):])
        return None

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
        intros = (introductions(repo, blob_hits, answers.unreachable, answers.problems,
                                old_commits)
                  if blob_hits else {})
    else:  # range, revs
        intros = selection.introductions
    commits_needed = {i.commit for sha in blob_hits for i in intros.get(sha, [])}
    commits_needed |= {h.sha for h in hits if h.type == "commit"}
    info = commit_info(repo, commits_needed, answers.problems)
    out: list[Finding] = []
    for hit in hits:
        if hit.type != "blob":
            out += _object_findings(hit, mode, info, answers, label)
            continue
        for path, origin in _places(hit, mode, selection, intros, info, answers):
            for lm in hit.matches:
                out.append(_finding(path, origin, lm, label))
    if mode == "all":
        out += ref_name_findings(answers, label)
    elif selection.ref_names:  # a push: the names of the refs it updates
        out += ref_name_findings(answers, label, selection.ref_names)
    selection.notes.extend(Skip(repo.path, "incomplete_history",
                                f"{redact_text(problem)} (provenance of the findings may be "
                                "incomplete; git fsck tells more)")
                           for problem in dict.fromkeys(answers.problems))
    return out


def ref_name_findings(answers: _Repo, label: str,
                      pushed: list[tuple[str, str]] | None = None) -> list[Finding]:
    """A key in a ref name (a branch, a tag, a remote-tracking ref) is a leak of its own:
    every clone and every push carries the name. Reported at ``<ref:NAME>`` (the name
    redacted), line 1, the column of the key in the name. ``pushed``: only these names (a
    hook's refs, which may not exist here yet), else every ref of the repository."""
    repo = answers.repo
    if pushed is not None:
        out = b"\n".join(f"{sha or '-'} ref {ref}".encode("utf-8", "surrogateescape")
                          for ref, sha in pushed)
    else:
        out = lenient_git(repo, answers.problems, "for-each-ref",
                          "--format=%(objectname) %(objecttype) %(refname)")
    refs = [tuple(line.split(b" ", 2)) for line in out.splitlines() if line.count(b" ") >= 2]
    names = b"\n".join(r[2] for r in refs)
    starts = [0]
    for name in refs[:-1]:
        starts.append(starts[-1] + len(name[2]) + 1)
    found: list[Finding] = []
    for match in find_matches(names):  # every name at once: one search, not one a ref
        index = bisect.bisect_right(starts, match.start) - 1
        sha, kind, raw = (part.decode("utf-8", "surrogateescape") for part in refs[index])
        offset = match.start - starts[index]
        column = len(refs[index][2][:offset].decode("utf-8", "replace")) + 1
        origin = _origin("ref-name", ObjectHit(sha, kind, []), answers,
                         sha if kind == "commit" else None, refs=(raw,))
        shown = redact_text(printable_path(raw))
        found.append(_finding(f"<ref:{shown}>", origin,
                              LocatedMatch(match, match.start, 1, column), label))
    return found


def _origin(kind: str, hit: ObjectHit, answers: _Repo, commit: str | None = None,
            meta: CommitInfo | None = None, refs: tuple[str, ...] = (),
            notes_commit: str | None = None) -> GitOrigin:
    """The origin of a finding. Names, addresses and ref names come from the repository, so
    anyone can write a key into them: they reach reports only through ``redact_text``."""
    return GitOrigin(kind, hit.sha, hit.type, answers.repo.path, commit,
                     redact_text(meta.author) if meta else None,
                     redact_text(meta.email) if meta else None,
                     meta.date if meta else None, tuple(redact_text(r) for r in refs),
                     notes_commit)


def _object_findings(hit: ObjectHit, mode: Mode, info: dict[str, CommitInfo],
                     answers: _Repo, label: str) -> list[Finding]:
    """A commit's or tag's findings: each match in the message (``<commit-message>``,
    ``<tag-message>``), an identity (``<identity>``, kind ``identity``) or another header
    line (``<commit-header>``, ``<tag-header>``). Author, email and date are the commit's
    author, or the tag's tagger; refs are those that contain the commit, or point at the
    tag."""
    if hit.type == "commit":
        meta = info.get(hit.sha)
        unreachable = mode == "all" and hit.sha not in answers.reachable()
        refs = () if unreachable else answers.refs_of(hit.sha)
    else:
        meta = answers.tagger(hit.sha)
        unreachable = False
        refs = answers.refs_at(hit.sha)
    out: list[Finding] = []
    places = hit.places or ["message"] * len(hit.matches)
    for lm, place in zip(hit.matches, places, strict=True):
        if place == "identity":
            path, kind = "<identity>", "identity"
        elif place == "header":
            path, kind = f"<{hit.type}-header>", f"{hit.type}-header"
        else:
            path, kind = MESSAGE_PATHS[hit.type], f"{hit.type}-message"
        if unreachable:
            kind = "unreachable"
        origin = _origin(kind, hit, answers, hit.sha, meta, refs)
        out.append(_finding(path, origin, lm, label))
    return out


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
