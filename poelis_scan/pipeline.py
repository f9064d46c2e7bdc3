"""Source → scan → findings, the same for every source: what the library's ``scan_paths``,
``scan_git`` and ``scan_image`` do (``run.py`` adds triage and the report for a command).

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
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from .detect.grammar import Confidence
from .findings import Finding, ScanResult, report_order
from .scan.parallel import Executor, run_batches
from .scan.spans import SPLIT_FROM
from .settings import ScanSettings
from .stats import Batch, GitCounts, ImageCounts, Skip, Stats

if TYPE_CHECKING:
    from .sources.git.plumbing import Repository
    from .sources.git.ranges import Mode
    from .sources.image.model import Platform

T = TypeVar("T")

SERIAL_BELOW = 48  # fewer files than this are not worth starting workers for (unless they
# hold a file large enough to be cut into spans for all workers: scan/spans.py)
LIGHT_SCAN_BYTES = 8 << 20  # below this, bytes.find beats importing Hyperscan
SERIAL_BELOW_OBJECTS = 200  # git objects, likewise

OnSkip = Callable[[Skip], None]
OnProgress = Callable[[Stats, int], None]
OnObjectsRead = Callable[["Repository", list[str]], None]


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
    # Below the floor, matches are counted where they are found, not carried to this process.
    settings = ScanSettings(decode=decode, hidden_below=Confidence(min_confidence).rank)
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
    # A bounded walk decides whether the scan is small; its skips and warnings count only if it
    # is (otherwise the workers' walk meets the same entries again and reports them).
    peeked: list[Skip] = []
    peeked_warnings: list[Skip] = []
    head = list(itertools.islice(
        files.walk(roots, excluder, peeked.append, peeked_warnings.append), SERIAL_BELOW))
    few = len(head) < SERIAL_BELOW
    size = files.total_size(head) if few else 0
    jobs = jobs or default_jobs()
    if few and (size < SPLIT_FROM or jobs == 1):  # the whole scan, read in this process
        for skip in peeked:
            _skipped(stats, listeners, skip)
        for note in peeked_warnings:
            _warned(stats, listeners, note)
        if size < LIGHT_SCAN_BYTES:
            settings = replace(settings, engine="find")
        items: list[files.WorkItem] = [list(head[i : i + files.BATCH_FILES])
                                       for i in range(0, len(head), files.BATCH_FILES)]
        jobs = 1
    else:  # workers walk their own share of the tree, and share the spans of large files
        items = files.work_items(roots)
        from .detect.engines import searcher

        searcher(settings)  # import and compile once, here: forked workers inherit both
        if size >= SPLIT_FROM:  # a large file named: its lines will be counted in spans
            from .scan import newlines

            newlines.prepare()
    large = files.LargeFiles(jobs)
    work = partial(files.scan_work, settings=settings, excluder=excluder, jobs=jobs)
    ticker = None if on_progress is None else _Ticker(stats, on_progress)
    with ticker or contextlib.nullcontext():
        results = run_batches(work, items, jobs, executor, more=large.more, tick=ticker)
        found += _collect(stats, large.batches(results), listeners, ticker=ticker)
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
    skip_objects: Collection[str] | None = None,
    on_objects_read: OnObjectsRead | None = None,
    new_since: Sequence[str] | None = None,
) -> ScanResult:
    """Scan git repositories: everything (``mode="all"``), what a range of commits introduced
    (``mode="range"`` with ``since_commit`` or ``commit_range`` "A..B"; ``mode="revs"`` with
    ``rev_sets``, lists of ``git log`` arguments, as hooks compute them), or the index
    (``mode="staged"``). Raises ``GitError`` (one line) when a repository or a revision is
    unusable; problems with single objects are warnings and the scan goes on.

    Incremental scans (``--state``): objects in ``skip_objects`` are not read (an earlier run
    read them; they are counted as ``skipped.already_scanned``, and the provenance walk leaves
    out the commits among them), and ``on_objects_read`` receives, once a repository's scan is
    complete, the ids of the objects it read, for the caller to record after their findings
    (a scan that dies before then records nothing, so a rerun reads them again).
    ``new_since`` (``mode="all"``, a mirror only fetches add to): the ref tips of an earlier
    complete scan; only the objects the current tips reach and those do not are listed."""
    from .sources.git import contents, provenance
    from .sources.git.incremental import Skipping, new_objects, old_commits, ref_tips
    from .sources.git.plumbing import open_repository
    from .sources.git.ranges import Selection, select

    started = time.perf_counter()
    base = ScanSettings(decode=decode)
    git = GitCounts()
    stats = Stats(git=git)
    listeners = _Listeners(None, on_warning, on_progress)
    repos = [open_repository(r) if isinstance(r, str) else r for r in repositories]
    found: list[Finding] = []
    for repo in repos:
        old: list[str] = []
        if new_since is not None and mode == "all":
            fresh, old = new_objects(repo, ref_tips(repo), new_since)
            selection = Selection(fresh)
        else:
            selection = select(repo, mode, since_commit, commit_range, rev_sets)
        known = selection.count
        light = known is not None and known <= SERIAL_BELOW_OBJECTS  # a commit, a short push
        settings = replace(base, engine="find") if light else base
        if repo.shallow:
            git.history_cut = True
            _warned(stats, listeners, Skip(repo.path, "shallow_clone", "shallow clone: commits "
                    "before the cut are not here to scan (git fetch --unshallow fetches them)"))
        skipping = (Skipping(selection.objects, skip_objects or ())
                    if skip_objects or on_objects_read is not None else None)
        head, objects = _peek(iter(skipping if skipping is not None else selection.objects),
                              SERIAL_BELOW_OBJECTS)
        small = len(head) < SERIAL_BELOW_OBJECTS
        ticker = None if on_progress is None else _Ticker(stats, on_progress)
        with ticker or contextlib.nullcontext():  # progress moves inside a large blob too
            batches = run_batches(partial(contents.scan_objects, settings=settings),
                                  contents.batches(repo, objects),
                                  1 if small else jobs or default_jobs(), executor,
                                  cleanup=contents.close_cat_files, tick=ticker)
            hits = _collect(stats, batches, listeners, weight=lambda hit: len(hit.matches),
                            ticker=ticker)
        if skipping is not None and skipping.skipped:
            stats.skipped["already_scanned"] += skipping.skipped
            if skip_objects and selection.lister is not None:
                old = old_commits(selection.lister.commits, skip_objects)
        label = repo.path if len(repos) > 1 else ""
        found += provenance.findings(repo, mode, selection, hits, label, old)
        if skipping is not None and on_objects_read is not None:
            on_objects_read(repo, skipping.handed)
        for note in selection.warnings():
            _warned(stats, listeners, note)
    return _result(found, stats, min_confidence, started)


def scan_image(
    refs: Iterable[str],
    *,
    platform: Platform | str | None = None,
    min_confidence: Confidence | str = Confidence.HIGH,
    jobs: int | None = None,
    decode: bool = True,
    on_warning: OnSkip | None = None,
    on_progress: OnProgress | None = None,
    executor: Executor = "process",
) -> ScanResult:
    """Scan container images: OCI layout directories or tars, ``docker save`` archives, and
    registry references ``HOST[:PORT]/NAME[:TAG|@DIGEST]`` (``platform``: of an index, only
    ``os/arch[/variant]``). Every file of every distinct layer (those a later layer deletes
    too), once however many images hold it, and the image config.

    Raises ``ImageError`` (a ``ScanError``, one line) when a reference names no image; an
    image, layer or blob that cannot be read is a warning (``stats.image.unread`` counts them,
    and the CLI then exits 2) and the rest is scanned."""
    from .sources.image import scan as image_scan
    from .sources.image.model import Platform as Wanted

    started = time.perf_counter()
    base = ScanSettings(decode=decode)
    counts = ImageCounts()
    stats = Stats(image=counts)

    def unread(note: Skip) -> None:  # every warning passes here, from the plan or a worker
        if note.reason in image_scan.UNREAD:
            counts.unread += 1
        if on_warning is not None:
            on_warning(note)

    listeners = _Listeners(None, unread, on_progress)
    wanted = Wanted.parse(platform) if isinstance(platform, str) else platform
    plan = image_scan.plan(refs, wanted, partial(_warned, stats, listeners))
    counts.images = len(plan.images)
    size = plan.known_size()
    light = size is not None and size < LIGHT_SCAN_BYTES
    settings = replace(base, engine="find") if light else base
    jobs = 1 if light or len(plan.uses) <= 1 else min(jobs or default_jobs(), len(plan.uses))
    batches = run_batches(partial(image_scan.scan_layer, uses=plan.uses, settings=settings),
                          range(len(plan.uses)), jobs, executor)
    scans = _collect(stats, batches, listeners, weight=lambda scan: len(scan.hits))
    return _result(image_scan.findings(plan, scans, settings), stats, min_confidence, started)
