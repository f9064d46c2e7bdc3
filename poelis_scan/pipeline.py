"""Source → scan → findings, the same for every source: what the library's ``scan_paths``
and ``scan_git`` do (``run.py`` adds triage and the report for a command).

Each source plans its work and gives a worker body; ``_collect`` is the one orchestration
they share: batches run serially, in threads or in forked workers (``scan/parallel.py``),
their counts fold into one ``Stats``, and ``_result`` applies the confidence floor, the order
and the timing. A new source (a container image, many repositories) plans its work, gives a
worker body, and calls the same two functions.

Bytes are read by forked worker processes where ``os.fork`` exists (``bytes.find`` holds the
GIL, so threads only overlap the system calls); ``benchmarks/bench_files.py --executors``
measures processes, threads and a single process side by side (numbers in the README).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from .detect.grammar import Confidence
from .findings import Finding, ScanResult, report_order
from .scan.parallel import Executor, run_batches
from .settings import ScanSettings
from .stats import Batch, GitCounts, Skip, Stats

if TYPE_CHECKING:
    from .sources.git.plumbing import Repository
    from .sources.git.ranges import Mode

T = TypeVar("T")

SERIAL_BELOW = 48  # fewer files than this are not worth starting workers for
LIGHT_SCAN_BYTES = 8 << 20  # below this, bytes.find beats importing Hyperscan
SERIAL_BELOW_OBJECTS = 200  # git objects, likewise

OnSkip = Callable[[Skip], None]
OnProgress = Callable[[Stats, int], None]


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class _Listeners:
    on_skip: OnSkip | None = None
    on_warning: OnSkip | None = None
    on_progress: OnProgress | None = None


def _skipped(stats: Stats, listeners: _Listeners, skip: Skip) -> None:
    stats.skipped[skip.reason] += 1
    if listeners.on_skip is not None:
        listeners.on_skip(skip)


def _warned(stats: Stats, listeners: _Listeners, note: Skip) -> None:
    stats.warnings[note.reason] += 1
    if listeners.on_warning is not None:
        listeners.on_warning(note)


def _collect(stats: Stats, batches: Iterable[Batch[T]], listeners: _Listeners,
             weight: Callable[[T], int] = lambda _: 1, ticker: _Ticker | None = None) -> list[T]:
    """Fold every batch into ``stats`` as it arrives; returns what the batches found."""
    found: list[T] = []
    count = 0
    for batch in batches:
        stats.add(batch)
        for skip in batch.skips:
            _skipped(stats, listeners, skip)
        for note in batch.notes:
            _warned(stats, listeners, note)
        found.extend(batch.found)
        if listeners.on_progress is not None:
            count += sum(map(weight, batch.found))
            if ticker is not None:
                ticker.findings = count
            listeners.on_progress(stats, count)
    return found


class _Ticker:
    """Redraws progress between batches, adding the bytes read so far inside streams still
    being scanned (``scan/meter.py``): a large file or blob moves the line while it is read."""

    def __init__(self, stats: Stats, on_progress: OnProgress) -> None:
        from .scan import meter

        self.stats = stats
        self.on_progress = on_progress
        self.findings = 0
        self.meter = meter
        meter.share()

    def __call__(self) -> None:
        done = self.stats.bytes_scanned + self.meter.pending()
        self.on_progress(replace(self.stats, bytes_scanned=done), self.findings)

    def __enter__(self) -> _Ticker:
        self.meter.watch(self)
        return self

    def __exit__(self, *_: object) -> None:
        self.meter.watch(None)


def _result(findings: list[Finding], stats: Stats, min_confidence: Confidence | str,
            started: float) -> ScanResult:
    """The confidence floor (what is below it is counted, not returned), the order, the time."""
    floor = Confidence(min_confidence).rank
    kept = [f for f in findings if f.confidence.rank >= floor]
    stats.findings_below_confidence += len(findings) - len(kept)
    kept.sort(key=report_order)
    stats.findings_reported = len(kept)
    stats.seconds = time.perf_counter() - started
    return ScanResult(kept, stats)


def _peek(items: Iterator[T], count: int) -> tuple[list[T], Iterator[T]]:
    head = list(itertools.islice(items, count))
    return head, itertools.chain(head, items)


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    exclude: Iterable[str] = (),
    min_confidence: Confidence | str = Confidence.HIGH,
    jobs: int | None = None,
    on_skip: OnSkip | None = None,
    on_warning: OnSkip | None = None,
    on_progress: OnProgress | None = None,
    decode: bool = True,
    executor: Executor = "process",
) -> ScanResult:
    """Scan files and directories (``"-"`` is standard input) for Poelis API keys.

    Findings below ``min_confidence`` are counted in ``stats`` but not returned. ``on_skip`` is
    told about every path passed over (unreadable, symbolic link, excluded, special file) as it
    happens, and ``on_warning`` about trouble inside a file that was scanned (an archive limit
    that tripped, a corrupt member); the scan itself never raises for a bad file.
    ``decode=False`` looks for plain keys only (no UTF-16, base64 or hex). ``executor`` picks
    forked processes (the default, threads where there is no fork), threads, or this process.
    """
    from .paths import Excluder
    from .sources import files

    started = time.perf_counter()
    settings = ScanSettings(decode=decode)
    stats = Stats()
    listeners = _Listeners(on_skip, on_warning, on_progress)
    roots = [os.fspath(p) for p in paths]
    found: list[Finding] = []
    if files.STDIN in roots:  # read here: workers have no standard input
        with _Ticker(stats, on_progress) if on_progress else contextlib.nullcontext():
            batch = files.scan_batch([files.stdin_task()], settings)
        found += _collect(stats, [batch], listeners)
        roots = [r for r in roots if r != files.STDIN]
    excluder = Excluder(tuple(exclude))
    # A bounded walk decides whether the scan is small; its skips count only if it is.
    peeked: list[Skip] = []
    head = list(itertools.islice(files.walk(roots, excluder, peeked.append), SERIAL_BELOW))
    if len(head) < SERIAL_BELOW:  # the whole scan: a few files, read in this process
        for skip in peeked:
            _skipped(stats, listeners, skip)
        if files.total_size(head) < LIGHT_SCAN_BYTES:
            settings = replace(settings, engine="find")
        items: list[files.WorkItem] = [list(head[i : i + files.BATCH_FILES])
                                       for i in range(0, len(head), files.BATCH_FILES)]
        jobs = 1
    else:  # workers walk their own share of the tree
        items = files.work_items(roots)
        jobs = jobs or default_jobs()
        from .detect.engines import searcher

        searcher(settings)  # import and compile once, here: forked workers inherit both
    work = partial(files.scan_work, settings=settings, excluder=excluder)
    ticker = None if on_progress is None else _Ticker(stats, on_progress)
    with ticker or contextlib.nullcontext():
        results = run_batches(work, items, jobs, executor, more=files.more_items, tick=ticker)
        found += _collect(stats, (batch for batch, _ in results), listeners, ticker=ticker)
    return _result(found, stats, min_confidence, started)


def scan_git(
    repositories: Iterable[str | Repository],
    *,
    mode: Mode = "all",
    since_commit: str | None = None,
    commit_range: str | None = None,
    min_confidence: Confidence | str = Confidence.HIGH,
    jobs: int | None = None,
    decode: bool = True,
    on_warning: OnSkip | None = None,
    rev_sets: list[list[str]] | None = None,
    on_progress: OnProgress | None = None,
    executor: Executor = "process",
) -> ScanResult:
    """Scan git repositories: everything (``mode="all"``), what a range of commits introduced
    (``mode="range"`` with ``since_commit`` or ``commit_range`` "A..B"; ``mode="revs"`` with
    ``rev_sets``, lists of ``git log`` arguments, as hooks compute them), or the index
    (``mode="staged"``). Raises ``GitError`` (one line) when a repository or a revision is
    unusable; problems with single objects are warnings and the scan goes on."""
    from .sources.git import contents, provenance
    from .sources.git.contents import BROKEN
    from .sources.git.plumbing import open_repository
    from .sources.git.ranges import select

    started = time.perf_counter()
    base = ScanSettings(decode=decode)
    git = GitCounts()
    stats = Stats(git=git)
    listeners = _Listeners(None, on_warning, on_progress)
    repos = [open_repository(r) if isinstance(r, str) else r for r in repositories]
    found: list[Finding] = []
    for repo in repos:
        selection = select(repo, mode, since_commit, commit_range, rev_sets)
        known = selection.count
        light = known is not None and known <= SERIAL_BELOW_OBJECTS  # a commit, a short push
        settings = replace(base, engine="find") if light else base
        if repo.shallow:
            git.history_cut = True
            _warned(stats, listeners, Skip(repo.path, "shallow_clone", "shallow clone: commits "
                    "before the cut are not here to scan (git fetch --unshallow fetches them)"))
        head, objects = _peek(iter(selection.objects), SERIAL_BELOW_OBJECTS)
        small = len(head) < SERIAL_BELOW_OBJECTS
        ticker = None if on_progress is None else _Ticker(stats, on_progress)
        with ticker or contextlib.nullcontext():  # progress moves inside a large blob too
            batches = run_batches(partial(contents.scan_objects, settings=settings),
                                  contents.batches(repo.path, objects),
                                  1 if small else jobs or default_jobs(), executor,
                                  cleanup=contents.close_cat_files, tick=ticker)
            hits = _collect(stats, batches, listeners, weight=lambda hit: len(hit.matches),
                            ticker=ticker)
        if selection.lister is not None:
            for sha in selection.lister.broken:
                _warned(stats, listeners, Skip(repo.path, "unreadable_object",
                                               BROKEN.format(sha=sha)))
        label = repo.path if len(repos) > 1 else ""
        found += provenance.findings(repo, mode, selection, hits, label)
    return _result(found, stats, min_confidence, started)
