"""Scanning git: the whole object store, a range of commits, or the index.

Each distinct object is read once (git stores each blob once, however many commits hold it),
streamed by a long-lived ``git cat-file --batch`` in each worker process, and searched by the
same content pipeline as files. Provenance (which commit put the blob at which path, who,
when, on which refs) is resolved only for objects that hold a key, with one history walk.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any, Literal

from .content import (
    CHUNK_SIZE,
    LocatedMatch,
    StreamResult,
    container_kind,
    locate,
    scan_buffer,
    scan_stream,
)
from .detect import find_matches
from .findings import Finding, printable_path
from .grammar import Confidence
from .scanner import ScanResult, Stats, default_jobs
from .sources import git as gitsrc
from .sources.files import Skip
from .sources.git import GitError, GitObject, Introduction, Repository

Mode = Literal["all", "range", "revs", "staged"]

IN_MEMORY_OBJECT = 16 << 20  # larger objects are streamed (or spooled, if an archive)
BATCH_BYTES = 64 << 20
SERIAL_BELOW_OBJECTS = 200

__all__ = ["GitError", "scan_git"]


# ---- workers: object contents → hits ------------------------------------------------------

@dataclass(slots=True)
class ObjectHit:
    sha: str
    type: str
    matches: list[LocatedMatch]


@dataclass(slots=True)
class _ObjectBatch:
    hits: list[ObjectHit] = field(default_factory=list)
    scanned: Counter[str] = field(default_factory=Counter)
    size: int = 0
    broken: list[str] = field(default_factory=list)
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # (sha, kind, message)
    members: int = 0
    expanded: int = 0


class _CatFile:
    """One ``git cat-file --batch`` kept open for the life of a worker process."""

    def __init__(self, repo_path: str) -> None:
        self.proc = subprocess.Popen(
            ["git", "-C", repo_path, "cat-file", "--batch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=1 << 20, env=gitsrc._env(),
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


_cat_files: dict[str, _CatFile] = {}


def _cat_file(repo_path: str) -> _CatFile:
    cat = _cat_files.get(repo_path)
    if cat is None or cat.proc.poll() is not None:
        cat = _cat_files[repo_path] = _CatFile(repo_path)
    return cat


def _close_cat_file(repo_path: str) -> None:
    cat = _cat_files.pop(repo_path, None)
    if cat is not None:
        cat.stdin.close()  # end of input: cat-file exits
        cat.stdout.close()
        cat.proc.wait()


def _scan_object(out: _ObjectBatch, obj_type: str, sha: str, size: int,
                 stdout: IO[bytes]) -> None:
    data = b""
    if size <= IN_MEMORY_OBJECT:
        data = stdout.read(size)
        if obj_type == "blob":
            result = scan_buffer(data)
        else:  # a commit or tag is never an archive, even if its message starts like one
            matches = find_matches(data)
            result = StreamResult(locate(data, matches) if matches else [], size)
    else:
        result = _scan_large(stdout, size, obj_type)
    stdout.read(1)  # the newline after each object
    out.scanned[obj_type] += 1
    out.size += size
    out.members += result.members
    out.expanded += result.expanded
    out.notes.extend((sha, kind, message) for kind, message in result.notes)
    if result.matches:
        matches = result.matches
        if obj_type != "blob" and data:
            matches = _message_lines(data, matches)
        out.hits.append(ObjectHit(sha, obj_type, matches))


def _scan_large(stdout: IO[bytes], size: int, obj_type: str) -> StreamResult:
    remaining = size

    def readinto(buffer: memoryview) -> int:
        nonlocal remaining
        if remaining <= 0:
            return 0
        n = stdout.readinto(buffer[: min(len(buffer), remaining)]) or 0
        remaining -= n
        return n

    head = stdout.peek(512)[:512] if hasattr(stdout, "peek") else b""
    kind = container_kind(head) if obj_type == "blob" else None
    if kind is not None:
        from .containers import scan_spooled_stream

        result = scan_spooled_stream(readinto, b"", kind, "")
    else:
        result = scan_stream(readinto)
    while remaining > 0:  # never leave the pipe mid-object
        remaining -= len(stdout.read(min(remaining, CHUNK_SIZE)) or b"\0")
    return result


def _message_lines(data: bytes, matches: list[LocatedMatch]) -> list[LocatedMatch]:
    """Commit and tag objects: count lines from the message, after the header block."""
    header_end = data.find(b"\n\n")
    if header_end == -1:
        return matches
    header_lines = data.count(b"\n", 0, header_end + 2)
    return [replace(lm, line=max(lm.line - header_lines, 1)) if lm.offset > header_end else lm
            for lm in matches]


def scan_object_batch(item: tuple[str, list[GitObject]]) -> _ObjectBatch:
    """Worker body: read each object of the batch from cat-file and scan it."""
    repo_path, objects = item
    cat = _cat_file(repo_path)
    sender = cat.request([o.sha for o in objects])
    out = _ObjectBatch()
    for _ in objects:
        header = cat.stdout.readline().decode("ascii", "replace").split()
        if len(header) == 2 and header[1] == "missing":
            out.broken.append(header[0])
            continue
        if len(header) != 3:
            raise GitError(f"unexpected answer from git cat-file: {' '.join(header)[:80]}")
        sha, obj_type, size = header[0], header[1], int(header[2])
        if obj_type not in gitsrc.SCANNED_TYPES:
            cat.stdout.read(size + 1)
            continue
        _scan_object(out, obj_type, sha, size, cat.stdout)
    sender.join()
    return out


def _batches(repo_path: str, objects: Iterable[GitObject], target: int
             ) -> Iterator[tuple[str, list[GitObject]]]:
    """Contiguous runs of the pack-ordered objects, about ``target`` bytes each.

    git resolves a delta from its base, which sits nearby in pack order: a cat-file process
    that reads a contiguous run keeps its delta cache warm (handing out single objects
    alternately to two processes cost 25% more git time here).
    """
    batch: list[GitObject] = []
    size = 0
    for obj in objects:
        batch.append(obj)
        size += obj.size + 512  # every object costs something, even an empty one
        if size >= target:
            yield repo_path, batch
            batch, size = [], 0
    if batch:
        yield repo_path, batch


def _scan_objects(repo: Repository, objects: Iterable[GitObject], jobs: int
                  ) -> Iterator[_ObjectBatch]:
    source = iter(objects)
    head = list(itertools.islice(source, SERIAL_BELOW_OBJECTS))
    batches = _batches(repo.path, itertools.chain(head, source), BATCH_BYTES)
    if jobs <= 1 or len(head) < SERIAL_BELOW_OBJECTS:
        try:
            yield from map(scan_object_batch, batches)
        finally:  # in this process, not a worker that exits: end our cat-file ourselves
            _close_cat_file(repo.path)
        return
    from .workers import fork_map

    yield from fork_map(scan_object_batch, batches, jobs)


# ---- hits → findings with provenance ------------------------------------------------------

MESSAGE_PATHS = {"commit": "<commit-message>", "tag": "<tag-message>"}


@dataclass(slots=True)
class _RepoScan:
    repo: Repository
    mode: Mode
    label: str  # shown before paths when several repositories are scanned
    hits: list[ObjectHit] = field(default_factory=list)
    known: dict[str, list[Introduction]] = field(default_factory=dict)  # range mode
    staged_paths: dict[str, list[str]] = field(default_factory=dict)  # staged mode
    commits: list[str] = field(default_factory=list)  # all mode: every commit in the store
    _reachable: set[str] | None = None

    def reachable(self) -> set[str]:
        """Commits that a ref or a reflog reaches (asked of git once, when first needed)."""
        if self._reachable is None:
            self._reachable = gitsrc.reachable_commits(self.repo)
        return self._reachable

    def unreachable(self) -> list[str]:
        """Commits the object store holds that nothing reaches (a force-push, a deleted branch,
        a dropped stash: a clone still holds them)."""
        reachable = self.reachable()
        return [sha for sha in self.commits if sha not in reachable]


def _earliest_per_path(intros: list[Introduction]) -> list[Introduction]:
    best: dict[str | None, Introduction] = {}
    for intro in intros:
        current = best.get(intro.path)
        if current is None or intro.time < current.time:
            best[intro.path] = intro
    return sorted(best.values(), key=lambda i: (i.time, i.path or ""))


def _findings(scan: _RepoScan) -> list[Finding]:
    repo = scan.repo
    blob_hits = {h.sha for h in scan.hits if h.type == "blob"}
    if scan.mode == "all":
        intros = gitsrc.introductions(repo, blob_hits, scan.unreachable) if blob_hits else {}
    else:  # range, revs
        intros = scan.known
    commits_needed = {i.commit for sha in blob_hits for i in intros.get(sha, [])}
    commits_needed |= {h.sha for h in scan.hits if h.type == "commit"}
    info = gitsrc.commit_info(repo, commits_needed)
    refs_cache: dict[str, list[str]] = {}

    def refs_of(commit: str) -> list[str]:
        if commit not in refs_cache:
            refs_cache[commit] = gitsrc.refs_containing(repo, commit)
        return refs_cache[commit]

    findings: list[Finding] = []
    for hit in scan.hits:
        places: list[tuple[str, dict[str, Any]]] = []
        if hit.type == "blob" and scan.mode == "staged":
            for path in scan.staged_paths.get(hit.sha, []):
                places.append((path, {"kind": "staged", "commit": None}))
        elif hit.type == "blob":
            chosen = _earliest_per_path(intros.get(hit.sha, []))
            for intro in chosen:
                places.append(_blob_place(intro, info, refs_of))
            if not chosen:
                places.append((f"<unreachable-blob-{hit.sha[:12]}>",
                               {"kind": "unreachable", "commit": None}))
        else:
            kind = "commit-message" if hit.type == "commit" else "tag-message"
            if hit.type == "commit" and scan.mode == "all" and hit.sha not in scan.reachable():
                kind = "unreachable"
            meta = info.get(hit.sha)
            places.append((MESSAGE_PATHS[hit.type], {
                "kind": kind, "commit": hit.sha,
                "author": meta.author if meta else None, "email": meta.email if meta else None,
                "date": meta.date if meta else None,
                "refs": refs_of(hit.sha) if hit.type == "commit" and kind != "unreachable" else [],
            }))
        for path, git_meta in places:
            git_meta = {"commit": None, "kind": "blob", "author": None, "email": None,
                        "date": None, "refs": [], **git_meta, "blob": hit.sha,
                        "object_type": hit.type, "repository": repo.path}
            for lm in hit.matches:
                findings.append(_finding(scan, path, git_meta, lm))
    return findings


def _blob_place(intro: Introduction, info: dict[str, gitsrc.CommitInfo],
                refs_of: Callable[[str], list[str]]) -> tuple[str, dict[str, Any]]:
    meta = info.get(intro.commit)
    base: dict[str, Any] = {"commit": intro.commit, "author": meta.author if meta else None,
                            "email": meta.email if meta else None,
                            "date": meta.date if meta else None}
    path = intro.path or ""
    if intro.kind == "note":
        # A note's path is the annotated object's id, split into fan-out directories.
        return "<note>", {**base, "kind": "note", "commit": path.replace("/", ""),
                          "notes_commit": intro.commit, "refs": refs_of(intro.commit)}
    if intro.kind == "unreachable":
        return path, {**base, "kind": "unreachable", "refs": []}
    return path, {**base, "kind": "blob", "refs": refs_of(intro.commit)}


def _finding(scan: _RepoScan, path: str, git_meta: dict[str, Any], lm: LocatedMatch) -> Finding:
    report_path = printable_path(path)
    commit = git_meta.get("commit")
    if git_meta["kind"] == "staged":
        display = f":{report_path}"  # git's own name for the index version: git show :PATH
    elif path.startswith("<"):
        display = f"{(commit or git_meta['blob'])[:12]} {report_path}"
    else:
        display = f"{(commit or git_meta['blob'])[:12]}:{report_path}"  # git show REV:PATH
    if scan.label:
        display = f"{scan.label}: {display}"
    return Finding.at(lm, report_path, display, git_meta)


# ---- the entry point ----------------------------------------------------------------------

def scan_git(
    repositories: Iterable[str | Repository],
    *,
    mode: Mode = "all",
    since_commit: str | None = None,
    commit_range: str | None = None,
    min_confidence: Confidence | str = Confidence.HIGH,
    jobs: int | None = None,
    decode: bool = True,
    on_warning: Callable[[Skip], None] | None = None,
    rev_sets: list[list[str]] | None = None,
    on_progress: Callable[[Stats, int], None] | None = None,
) -> ScanResult:
    """Scan git repositories: everything (``mode="all"``), what a range of commits introduced
    (``mode="range"`` with ``since_commit`` or ``commit_range`` "A..B"; ``mode="revs"`` with
    ``rev_sets``, lists of ``git log`` arguments, as hooks compute them), or the index
    (``mode="staged"``). Raises ``GitError`` (one line) when a repository or a revision is
    unusable; problems with single objects are warnings and the scan goes on."""
    from .needles import use_decoders

    use_decoders(decode)
    started = time.perf_counter()
    stats = Stats(source="git")
    floor = Confidence(min_confidence).rank
    repos = [gitsrc.open_repository(r) if isinstance(r, str) else r for r in repositories]
    findings: list[Finding] = []

    def warn(where: str, kind: str, message: str) -> None:
        stats.warnings[kind] += 1
        if on_warning is not None:
            on_warning(Skip(where, kind, message))

    for repo in repos:
        repo_path = repo.path
        scan = _RepoScan(repo, mode, repo_path if len(repos) > 1 else "")
        objects = _select(scan, since_commit, commit_range, rev_sets or [])
        if isinstance(objects, list):  # a staged change or a range: usually small
            from .needles import prefer_light_engine

            prefer_light_engine(len(objects) <= SERIAL_BELOW_OBJECTS)
        if repo.shallow:
            stats.history_cut = True
            warn(repo_path, "shallow_clone", "shallow clone: commits before the cut are not "
                 "here to scan (git fetch --unshallow fetches them)")
        for batch in _scan_objects(repo, objects, jobs or default_jobs()):
            stats.blobs_scanned += batch.scanned["blob"]
            stats.commits_scanned += batch.scanned["commit"]
            stats.tags_scanned += batch.scanned["tag"]
            stats.bytes_scanned += batch.size
            stats.archive_members_scanned += batch.members
            stats.archive_bytes_expanded += batch.expanded
            for sha in batch.broken:
                warn(repo_path, "unreadable_object", f"object {sha} is corrupt or missing; "
                     "skipped (git fsck tells more)")
            for sha, kind, message in batch.notes:
                warn(repo_path, kind, f"blob {sha[:12]}: {message}")
            scan.hits.extend(batch.hits)
            if on_progress is not None:
                on_progress(stats, sum(len(h.matches) for h in scan.hits))
        if isinstance(objects, gitsrc.ObjectLister):
            scan.commits = objects.commits
            for sha in objects.broken:
                warn(repo_path, "unreadable_object", f"object {sha} is corrupt or missing; "
                     "skipped (git fsck tells more)")
        for finding in _findings(scan):
            if finding.confidence.rank >= floor:
                findings.append(finding)
            else:
                stats.findings_below_confidence += 1
    findings.sort(key=lambda f: (f.location.path, f.location.line, f.location.column,
                                 (f.git or {}).get("commit") or ""))
    stats.findings_reported = len(findings)
    stats.seconds = time.perf_counter() - started
    return ScanResult(findings, stats)


def _select(scan: _RepoScan, since_commit: str | None, commit_range: str | None,
            rev_sets: list[list[str]]) -> Iterable[GitObject]:
    repo = scan.repo
    if scan.mode == "revs":
        selection = gitsrc.RangeSelection()
        for revs in rev_sets:
            gitsrc.select_range(repo, revs, selection)
        scan.known = selection.introductions
        return selection.objects
    if scan.mode == "staged":
        pairs = gitsrc.staged_blobs(repo)
        for sha, path in pairs:
            scan.staged_paths.setdefault(sha, []).append(path)
        return [GitObject(sha, "blob", 0) for sha in scan.staged_paths]
    if scan.mode == "range":
        if commit_range is not None:
            base, sep, tip = commit_range.partition("..")
            if not sep or not base or not tip or tip.startswith("."):
                raise GitError(f"--range takes A..B, not {commit_range!r}")
        else:
            base, tip = since_commit or "", "HEAD"
        selection = gitsrc.select_range(repo, gitsrc.range_revs(repo, base, tip))
        scan.known = selection.introductions
        return selection.objects
    return gitsrc.ObjectLister(repo)
