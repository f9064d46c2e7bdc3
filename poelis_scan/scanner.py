"""Wires a source of files to the content pipeline, across both cores.

``bytes.find`` holds the GIL, so threads only overlap the system calls; forked worker
processes (``workers.py``) scan in parallel. ``benchmarks/bench_files.py --executors``
measures processes, threads and a single process side by side (numbers in the README).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .content import (
    StreamResult,
    container_kind,
    prefixed,
    read_head,
    scan_fd,
    scan_stream,
)
from .findings import Finding
from .grammar import Confidence
from .sources.files import (
    STDIN,
    STDIN_TASK_NAME,
    Excluder,
    FileTask,
    Skip,
    open_regular_file,
    walk,
)

BATCH_FILES = 64  # files per task sent to a worker: amortises inter-process traffic
SERIAL_BELOW = 48  # fewer files than this are not worth starting workers for
LIGHT_SCAN_BYTES = 8 << 20  # below this, bytes.find beats importing Hyperscan

Executor = Literal["process", "thread", "serial"]


@dataclass(slots=True)
class Stats:
    """What a scan covered. A scan that covered nothing must be visible as such."""

    files_scanned: int = 0
    blobs_scanned: int = 0
    commits_scanned: int = 0
    tags_scanned: int = 0
    bytes_scanned: int = 0
    archive_members_scanned: int = 0
    archive_bytes_expanded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    findings_reported: int = 0
    findings_below_confidence: int = 0
    findings_filtered: int = 0  # dropped by --results / --only-live
    suppressed: Counter[str] = field(default_factory=Counter)  # by kind: inline, config, baseline
    baseline_stale: int | None = None  # only when asked (--report-stale)
    started_at: float = field(default_factory=time.time)
    history_cut: bool = False
    seconds: float = 0.0
    source: str = "files"  # or "git": which counters the report shows

    @property
    def items_scanned(self) -> int:
        """Files and git objects read: zero means the scan covered nothing."""
        return self.files_scanned + self.blobs_scanned + self.commits_scanned + self.tags_scanned

    def to_dict(self) -> dict[str, Any]:
        git = {}
        if self.source == "git":
            git = {"blobs_scanned": self.blobs_scanned, "commits_scanned": self.commits_scanned,
                   "tags_scanned": self.tags_scanned, "history_cut": self.history_cut}
        return {
            "files_scanned": self.files_scanned,
            **git,
            "bytes_scanned": self.bytes_scanned,
            "archive_members_scanned": self.archive_members_scanned,
            "archive_bytes_expanded": self.archive_bytes_expanded,
            "skipped": dict(sorted(self.skipped.items())),
            "warnings": dict(sorted(self.warnings.items())),
            "findings_reported": self.findings_reported,
            "findings_below_confidence": self.findings_below_confidence,
            "findings_filtered_by_results": self.findings_filtered,
            "suppressed": dict(sorted(self.suppressed.items())),
            **({"baseline_stale": self.baseline_stale}
               if self.baseline_stale is not None else {}),
            "seconds": round(self.seconds, 3),
        }


@dataclass(slots=True)
class ScanResult:
    findings: list[Finding]
    stats: Stats


@dataclass(slots=True)
class _BatchResult:
    findings: list[Finding]
    files: int
    size: int
    skips: list[Skip]
    notes: list[Skip] = field(default_factory=list)  # warnings about a file that was scanned
    members: int = 0
    expanded: int = 0


def _findings_for(task: FileTask, result: StreamResult) -> list[Finding]:
    if not result.matches:
        return []
    report_path, display_path = task.report_path, task.display_path
    return [Finding.at(lm, report_path, display_path) for lm in result.matches]


def _scan_stdin() -> StreamResult:
    readinto = sys.stdin.buffer.readinto
    head = read_head(readinto, 512)
    kind = container_kind(head)
    if kind is not None:  # `cat release.tar.gz | poelis-scan scan -`
        from .containers import scan_spooled_stream

        return scan_spooled_stream(readinto, head, kind, "stdin")
    return scan_stream(prefixed(head, readinto))


def _scan_task(task: FileTask) -> StreamResult:
    if task.path == STDIN:
        return _scan_stdin()
    fd = open_regular_file(task.path)
    try:
        return scan_fd(fd, os.path.basename(task.path))
    finally:
        os.close(fd)


def _scan_batch(tasks: list[FileTask]) -> _BatchResult:
    """Scan a list of files; a file that cannot be read is a skip, never an exception."""
    out = _BatchResult([], 0, 0, [])
    for task in tasks:
        try:
            result = _scan_task(task)
        except OSError as error:
            detail = error.strerror or str(error)
            out.skips.append(Skip(task.display_path, "unreadable", detail))
            continue
        except Exception as error:  # a bug must cost one file, not the whole scan
            detail = f"internal error ({type(error).__name__}), please report it"
            out.skips.append(Skip(task.display_path, "error", detail))
            continue
        out.files += 1
        out.size += result.size
        out.findings.extend(_findings_for(task, result))
        if result.members or result.notes:
            out.members += result.members
            out.expanded += result.expanded
            out.notes.extend(Skip(task.display_path, kind, msg) for kind, msg in result.notes)
    return out


def _total_size(tasks: list[FileTask]) -> int:
    total = 0
    for task in tasks:
        try:
            total += os.stat(task.path).st_size
        except OSError:
            pass
    return total


def _batches(tasks: Iterable[FileTask]) -> Iterator[list[FileTask]]:
    iterator = iter(tasks)
    while batch := list(itertools.islice(iterator, BATCH_FILES)):
        yield batch


def _run_batches(
    tasks: Iterator[FileTask], jobs: int, executor: Executor
) -> Iterator[_BatchResult]:
    head = list(itertools.islice(tasks, SERIAL_BELOW))
    from .needles import prefer_light_engine

    prefer_light_engine(len(head) < SERIAL_BELOW and _total_size(head) < LIGHT_SCAN_BYTES)
    if executor == "serial" or jobs <= 1 or len(head) < SERIAL_BELOW:
        yield _scan_batch(head)
        yield from map(_scan_batch, _batches(tasks))
        return
    batches = _batches(itertools.chain(head, tasks))
    if executor == "thread" or not hasattr(os, "fork"):  # no fork (Windows): threads
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(jobs) as pool:
            yield from pool.map(_scan_batch, batches)
        return
    from .workers import fork_map

    yield from fork_map(_scan_batch, batches, jobs)


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    exclude: Iterable[str] = (),
    min_confidence: Confidence | str = Confidence.HIGH,
    jobs: int | None = None,
    on_skip: Callable[[Skip], None] | None = None,
    on_warning: Callable[[Skip], None] | None = None,
    on_progress: Callable[[Stats, int], None] | None = None,
    decode: bool = True,
    executor: Executor = "process",
) -> ScanResult:
    """Scan files and directories (``"-"`` is standard input) for Poelis API keys.

    Findings below ``min_confidence`` are counted in ``stats`` but not returned. ``on_skip`` is
    told about every path passed over (unreadable, symbolic link, excluded, special file) as it
    happens, and ``on_warning`` about trouble inside a file that was scanned (an archive limit
    that tripped, a corrupt member); the scan itself never raises for a bad file.
    ``decode=False`` looks for plain keys only (no UTF-16, base64 or hex).
    """
    from .needles import use_decoders

    use_decoders(decode)
    started = time.perf_counter()
    stats = Stats()
    floor = Confidence(min_confidence).rank

    def skipped(skip: Skip) -> None:
        stats.skipped[skip.reason] += 1
        if on_skip is not None:
            on_skip(skip)

    roots = [os.fspath(p) for p in paths]
    batches: Iterable[_BatchResult] = ()
    if STDIN in roots:
        batches = [_scan_batch([FileTask(STDIN, "", STDIN_TASK_NAME, STDIN_TASK_NAME)])]
        roots = [r for r in roots if r != STDIN]
    tasks = walk(roots, Excluder(tuple(exclude)), skipped)
    findings: list[Finding] = []
    for batch in itertools.chain(batches, _run_batches(tasks, jobs or default_jobs(), executor)):
        stats.files_scanned += batch.files
        stats.bytes_scanned += batch.size
        stats.archive_members_scanned += batch.members
        stats.archive_bytes_expanded += batch.expanded
        for skip in batch.skips:
            skipped(skip)
        for note in batch.notes:
            stats.warnings[note.reason] += 1
            if on_warning is not None:
                on_warning(note)
        for finding in batch.findings:
            if finding.confidence.rank >= floor:
                findings.append(finding)
            else:
                stats.findings_below_confidence += 1
        if on_progress is not None:
            on_progress(stats, len(findings))
    findings.sort(key=lambda f: (f.location.path, f.location.line, f.location.column))
    stats.findings_reported = len(findings)
    stats.seconds = time.perf_counter() - started
    return ScanResult(findings, stats)
