"""Many repositories in one invocation: the ``git`` command's organization path.

Takes repository arguments (paths and URLs, from the command line and ``--repos-from``),
keeps this shard's share, mirrors URLs, runs the pipeline on each repository on its own
against the state (reading only objects no earlier run read), records its findings and then
its objects, and merges everything into one result for the usual triage and reporting
(``run.py``). It sits above ``pipeline.py`` (it drives it once per repository) and below
``run.py`` (which adds policy, the report and the exit status).

Objects already read are never read again: findings they hold get this run as last seen
when the repository still holds them. (So a known leaked blob that a later commit copies to
a new path is not reported again at that path: the secret is already known.)

The order per repository is what makes a killed shard safe to rerun: findings are recorded
before the objects holding them are marked read, each in whole transactions, so a rerun
either reads an object again (and the upsert adds nothing twice) or finds its findings
already stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .findings import Finding, GitOrigin, ScanResult, report_order
from .pipeline import OnProgress, OnSkip, scan_git
from .shard import Shard
from .sources.remote import RemoteError, Target, classify, ensure_mirror, remove_mirror
from .stats import GitCounts, ShardCounts, Stats

if TYPE_CHECKING:
    from .sources.git.plumbing import Repository
    from .state import State


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What every repository's scan is run with (the command's options)."""

    min_confidence: str = "high"
    jobs: int | None = None
    decode: bool = True
    on_warning: OnSkip | None = None
    on_progress: OnProgress | None = None


@dataclass(slots=True)
class OrgResult:
    result: ScanResult
    new: list[Finding] = field(default_factory=list)  # first seen by this run (with a state)
    failed: list[str] = field(default_factory=list)  # one line each, credentials stripped
    pending: _Pending | None = None  # the repository being scanned (state bookkeeping)


def targets(args: Iterable[str]) -> list[Target]:
    """Each argument classified, duplicates (same identity) dropped, order kept. Raises
    ``RemoteError`` for an argument that is neither a path nor a usable URL."""
    seen: dict[str, Target] = {}
    for arg in args:
        target = classify(arg)
        seen.setdefault(target.identity, target)
    return list(seen.values())


def _merge(into: Stats, part: Stats) -> None:
    into.files_scanned += part.files_scanned
    into.bytes_scanned += part.bytes_scanned
    into.archive_members_scanned += part.archive_members_scanned
    into.archive_bytes_expanded += part.archive_bytes_expanded
    into.findings_below_confidence += part.findings_below_confidence
    into.skipped.update(part.skipped)
    into.warnings.update(part.warnings)
    if into.git is not None and part.git is not None:
        into.git.blobs += part.git.blobs
        into.git.commits += part.git.commits
        into.git.tags += part.git.tags
        into.git.history_cut = into.git.history_cut or part.git.history_cut


def scan_many(chosen: list[Target], *, shard: Shard | None, cache_dir: str, cleanup: bool,
              state: State | None, inline_allow: bool, options: ScanOptions,
              on_failure: Callable[[str], None]) -> OrgResult:
    """Scan this shard's share of ``chosen``. A repository that cannot be fetched or opened
    is reported through ``on_failure`` (one line, credentials stripped) and the others are
    still scanned. Database errors propagate (``state.errors``): the caller stops."""
    from .sources.git.plumbing import GitError, open_repository

    started = time.perf_counter()
    mine = [t for t in chosen if shard is None or shard.takes(t.identity)]
    counts = ShardCounts(str(shard) if shard else None, len(mine), len(chosen))
    total = Stats(git=GitCounts(), shard=counts)
    findings: list[Finding] = []
    out = OrgResult(ScanResult(findings, total))
    run = state.begin_run(counts.shard) if state is not None else None
    label = len(mine) > 1
    for target in mine:
        mirror = None
        out.pending = None
        result: ScanResult | None
        try:
            if target.is_remote:
                mirror = ensure_mirror(target, cache_dir)
            repo = open_repository(mirror or target.local_path or "")
            if state is None or run is None:
                result = _scan(repo, options)
            else:
                result = _scan_against(repo, target, state, run, options, out)
        except (RemoteError, GitError) as error:
            message = str(error)
            if not message.startswith(target.display):
                message = f"{target.display}: {message}"
            out.failed.append(message.replace(mirror or "\0", target.display))
            on_failure(out.failed[-1])
            continue
        finally:
            if cleanup and mirror is not None:
                remove_mirror(mirror)
        if result is None:  # unchanged since the last run: nothing to read
            total.skipped["unchanged_repository"] += 1
            if state is not None and run is not None:
                _record(state, target, run, [], inline_allow, out.pending)
            continue
        _merge(total, result.stats)
        repo_findings = _attribute(result.findings, target, label)
        if state is not None and run is not None:
            new = _record(state, target, run, repo_findings, inline_allow, out.pending)
            out.new.extend(new)
        findings.extend(repo_findings)
    if state is not None and run is not None:
        state.finish_run(run)
    counts.failed = len(out.failed)
    counts.new_findings = len(out.new)
    findings.sort(key=lambda f: (f.git.repository if f.git else "", *report_order(f)))
    total.findings_reported = len(findings)
    total.seconds = time.perf_counter() - started
    return out


def _scan(repo: Repository, options: ScanOptions, **incremental: Any) -> ScanResult:
    return scan_git([repo], min_confidence=options.min_confidence, jobs=options.jobs,
                    decode=options.decode, on_warning=options.on_warning,
                    on_progress=options.on_progress, **incremental)


def _scan_against(repo: Repository, target: Target, state: State, run: int,
                  options: ScanOptions, out: OrgResult) -> ScanResult | None:
    """One repository against the state, reading only what no run read before; None when
    its object store is exactly as a finished run left it (then nothing is even listed).

    A mirror whose refs moved since then lists only what the new tips bring (objects reach a
    mirror only by fetch, so nothing else is new); a local repository, which may also gain
    unreachable objects, lists its store and skips what the state says was read."""
    from .sources.git.incremental import ref_tips, store_mark

    tips = ref_tips(repo)
    mark = store_mark(repo, tips)
    known = state.tips(target)
    read: list[str] = []

    def took(_repo: Repository, shas: list[str], into: list[str] = read) -> None:
        into.extend(shas)

    result: ScanResult | None = None
    if known is None or known[1] != mark:
        if known is not None and target.is_remote:
            result = _scan(repo, options, new_since=known[0], on_objects_read=took)
        else:
            result = _scan(repo, options, skip_objects=state.scanned(target),
                           on_objects_read=took)
    # Findings in objects the repository still holds were seen again by this run.
    still_there = _present(repo, state.finding_objects(target))
    out.pending = _Pending(read, tips, mark, still_there)
    return result


@dataclass(slots=True)
class _Pending:
    """What a repository's scan leaves for the state once its findings are stored."""

    read: list[str]
    tips: list[str]
    mark: str
    still_there: list[str]


def _record(state: State, target: Target, run: int, findings: list[Finding],
            inline_allow: bool, pending: _Pending | None) -> list[Finding]:
    """Findings first, then the objects read, then the tips: each step is whole, and a run
    killed between them redoes the later ones next time without losing or doubling a row."""
    kept = [f for f in findings if not (inline_allow and f.inline_allow)]
    new = state.record(target, kept, run)
    if pending is not None:
        state.touch(target, pending.still_there, run)
        state.mark_scanned(target, pending.read, run)
        state.set_tips(target, pending.tips, pending.mark, run)
    return new


def new_only(out: OrgResult) -> None:
    """Keep only the findings this run saw first (``--new-only``)."""
    new = {id(f) for f in out.new}
    out.result.findings[:] = [f for f in out.result.findings if id(f) in new]
    out.result.stats.findings_reported = len(out.result.findings)


def _present(repo: Repository, shas: set[str]) -> list[str]:
    """Which of ``shas`` the repository still holds (one ``cat-file --batch-check``): their
    findings are seen again by this run without reading them."""
    from .sources.git.plumbing import run_git

    if not shas:
        return []
    out = run_git(repo.path, "cat-file", "--batch-check=%(objectname)",
                  stdin="".join(f"{sha}\n" for sha in sorted(shas)).encode(), check=False)
    return [line for line in out.decode("ascii", "replace").splitlines()
            if line in shas]  # a missing object's line is "<id> missing"


def _attribute(findings: list[Finding], target: Target, label: bool) -> list[Finding]:
    """Name the repository by its identity (never a cache path, never credentials)."""
    for finding in findings:
        if isinstance(finding.origin, GitOrigin):
            finding.origin = replace(finding.origin, repository=target.identity)
        if label:
            finding.display_path = f"{target.display}: {finding.display_path}"
    return findings


def describe_shard(stats: Stats) -> str:
    """The stderr line that says what this shard took (and so what it did not)."""
    counts = stats.shard
    if counts is None:
        return ""
    where = f"shard {counts.shard}" if counts.shard else "no shard"
    return (f"{where}: {counts.repositories} of {counts.listed} repositories"
            + (f", {counts.failed} failed" if counts.failed else "")
            + (f"; {counts.new_findings} findings new in the state"
               if counts.new_findings else ""))
