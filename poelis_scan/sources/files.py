"""Files and directories as a source: which files to read, under which names to report them,
and the worker body that walks and reads its share of a tree.

The walk uses ``os.scandir`` directly (the directory entry already says whether it is a file, a
directory or a link, so no extra ``stat`` per file), never follows symbolic links, and never
descends into a repository's ``.git``: history is the ``git`` command's job. A ``.git`` that is
not a repository (no ``HEAD`` and ``objects``, or a file that is not a ``gitdir:`` pointer) is
ordinary content, scanned like any other, and a warning says so: a name must not hide a key.

Workers walk the tree themselves (``scan_work``): an item is a list of directories (and files
named on the command line); a worker walks depth-first until it has read ``FILES_PER_ITEM``
files and hands the directories it did not reach back to the parent, which only queues them
for whichever worker frees up first and merges results. The parent walking alone, pickling
every path, was the bottleneck on trees of small files (and left the second core idle).

Small files are packed, one after the other, into one buffer with a ``0xFF`` byte between
them, and that buffer is searched once: no needle holds a ``0xFF`` byte, so a needle never
spans two files, and a file is scanned on its own (exactly as ``scan_fd`` would) only when a
needle begins inside it. One search call per ~1 MiB instead of one per file, and no per-file
object unless a file holds a needle or cannot be read.

A regular file large enough to be cut into spans (``scan/spans.py``) is handed back too, not
read: the parent (``LargeFiles``) sends its spans out as items of their own, so every worker
reads part of it, and makes its findings once all spans are back.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

from ..detect.engines import searcher
from ..detect.matches import find_matches
from ..findings import Finding
from ..paths import Excluder, find_repository_root, printable_path
from ..scan import spans
from ..scan.magic import HEAD_SIZE, container_kind
from ..scan.readers import scan_fd, scan_pipe
from ..scan.stream import StreamResult, give_back, locate, starts_with_bom, take_buffer
from ..settings import ScanSettings
from ..stats import Batch, Skip

STDIN = "-"
STDIN_TASK_NAME = "<stdin>"


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond a file
class FileTask:
    """One file to scan: where it is, how to show it, and how to name it in reports.

    The two names are built only when asked for (that is, for files with findings): the walk
    of a large tree then does one string join per file instead of five.
    """

    path: str
    relative: str  # below the scanned root; "" when the root itself is this file
    shown_root: str  # the root as the user typed it ("" for ".")
    report_root: str  # the root relative to its repository or to itself

    def __reduce__(self) -> tuple[type[FileTask], tuple[str, str, str, str]]:
        # A plain tuple pickles several times faster than the dataclass default for slots.
        return FileTask, (self.path, self.relative, self.shown_root, self.report_root)

    @property
    def display_path(self) -> str:
        return printable_path(_join(self.shown_root, self.relative))

    @property
    def report_path(self) -> str:
        return printable_path(_join(self.report_root, self.relative))


def report_base(roots: list[str]) -> str:
    """The directory report paths are relative to outside git.

    One directory: that directory (``scan src`` reports ``app.py``, as it always has, so its
    fingerprints stay). Otherwise (several roots, or a file) the current directory when every
    root lies below it, else the roots' common parent: ``scan a b`` reports ``a/config.env``
    and ``b/config.env``, never two ``config.env`` under one fingerprint, and
    ``scan deploy/app.env`` reports ``deploy/app.env``.
    """
    named = [os.path.abspath(r) for r in roots if r != STDIN] or [os.getcwd()]
    if len(named) == 1 and os.path.isdir(named[0]):
        return named[0]
    here = os.getcwd()
    if all(not os.path.relpath(r, here).startswith("..") for r in named):
        return here
    return os.path.commonpath([r if os.path.isdir(r) else os.path.dirname(r) for r in named])


def _report_prefix(root: str, base: str) -> str:
    """Report name of ``root`` itself: relative to its repository, else to ``base``."""
    absolute = os.path.abspath(root)
    repository = find_repository_root(absolute)
    relative = os.path.relpath(absolute, repository if repository is not None else base)
    return "" if relative == "." else relative.replace(os.sep, "/")


def _join(prefix: str, name: str) -> str:
    if not name:
        return prefix
    return f"{prefix}/{name}" if prefix else name


def walk(
    roots: list[str], excluder: Excluder, on_skip: Callable[[Skip], None],
    on_warning: Callable[[Skip], None] | None = None,
) -> Iterator[FileTask]:
    """Every regular file under ``roots`` (files named directly are taken as they are).

    Standard input is not walked: the scanner reads it in the main process. ``on_warning``
    hears of a ``.git`` that is not a repository (scanned as content).
    """
    base = report_base(roots)
    for root in roots:
        prefix = _report_prefix(root, base)
        if not os.path.isdir(root):
            yield FileTask(root, "", root, prefix or os.path.basename(root))
            continue
        yield from _walk_directory(root, prefix, excluder, on_skip, on_warning or on_skip)


def is_repository_dir(entry: os.DirEntry[str]) -> bool:
    """Whether a ``.git`` entry is a repository (a directory with ``HEAD`` and ``objects``) or
    points at one (a file starting ``gitdir:``, as in worktrees and submodules)."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return (os.path.isfile(os.path.join(entry.path, "HEAD"))
                    and os.path.isdir(os.path.join(entry.path, "objects")))
        if entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as handle:
                return handle.read(8) == b"gitdir: "
    except OSError:
        return False
    return False


def _walk_directory(
    root: str, prefix: str, excluder: Excluder, on_skip: Callable[[Skip], None],
    on_warning: Callable[[Skip], None],
) -> Iterator[FileTask]:
    # Shown as typed, minus a leading "./": what a user can paste back into a shell.
    shown = "" if os.path.normpath(root) == "." else root.rstrip("/") or "/"
    # Depth-first with an explicit stack of (directory path, path below root).
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        directory, below = stack.pop()
        try:
            with os.scandir(directory) as entries:
                listing = list(entries)  # order does not matter: findings are sorted at the end
        except OSError as error:
            on_skip(Skip(printable_path(directory), "unreadable", error.strerror or str(error)))
            continue
        for entry in listing:
            name = entry.name
            if name == ".git":
                if is_repository_dir(entry):
                    continue
                on_warning(Skip(printable_path(entry.path), "not_a_repository",
                                "named .git but not a git repository: scanned as content"))
            relative = f"{below}/{name}" if below else name
            if excluder and excluder.excluded(name, relative):
                on_skip(Skip(printable_path(entry.path), "excluded"))
                continue
            try:  # most entries are files: ask that first (the answer comes from d_type)
                if entry.is_file(follow_symlinks=False):
                    yield FileTask(entry.path, relative, shown, prefix)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, relative))
                elif entry.is_symlink():
                    on_skip(Skip(printable_path(entry.path), "symlink"))
                else:
                    on_skip(Skip(printable_path(entry.path), "special"))
            except OSError as error:
                on_skip(Skip(printable_path(entry.path), "unreadable", error.strerror or ""))


def open_regular_file(path: str) -> int:
    """A descriptor for ``path``, refused (``OSError``) unless it is a regular file.

    ``O_NONBLOCK`` keeps a FIFO named on the command line from blocking the open (it changes
    nothing for regular files); the FIFO is then refused like any other non-regular file.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


BATCH_FILES = 64  # files per task sent to a worker: amortises inter-process traffic


def batches(tasks: Iterable[FileTask]) -> Iterator[list[FileTask]]:
    """The walk cut into lists of ``BATCH_FILES`` files, the unit of work of a worker."""
    iterator = iter(tasks)
    while batch := list(itertools.islice(iterator, BATCH_FILES)):
        yield batch


def total_size(tasks: list[FileTask]) -> int:
    """Bytes the files hold (as far as ``stat`` can tell): decides whether a scan is small."""
    total = 0
    for task in tasks:
        with contextlib.suppress(OSError):
            total += os.stat(task.path).st_size
    return total


def _scan_task(task: FileTask, settings: ScanSettings) -> StreamResult:
    if task.path == STDIN:
        stdin = cast("io.BufferedReader", sys.stdin.buffer)  # typeshed: BinaryIO, no readinto
        return scan_pipe(stdin.readinto, "stdin", settings)
    fd = open_regular_file(task.path)
    try:
        return scan_fd(fd, os.path.basename(task.path), settings)
    finally:
        os.close(fd)


def scan_batch(tasks: list[FileTask], settings: ScanSettings) -> Batch[Finding]:
    """Worker body: scan a list of files; a file that cannot be read is a skip, never an
    exception."""
    out: Batch[Finding] = Batch()
    files = 0
    for task in tasks:
        try:
            result = _scan_task(task, settings)
        except OSError as error:
            detail = error.strerror or str(error)
            out.skips.append(Skip(task.display_path, "unreadable", detail))
            continue
        except Exception as error:  # a bug must cost one file, not the whole scan
            detail = f"internal error ({type(error).__name__}), please report it"
            out.skips.append(Skip(task.display_path, "error", detail))
            continue
        files += 1
        fold(out, task, result)
    out.scanned["file"] = files
    return out


def fold(out: Batch[Finding], task: FileTask, result: StreamResult) -> None:
    """Add what one file held to a worker's batch: its size, findings (with the file's report
    and display names), the matches hidden below the floor, and archive counts and notes."""
    out.size += result.size
    out.below_confidence += result.hidden
    if result.matches:
        report_path, display_path = task.report_path, task.display_path
        out.found.extend(Finding.at(lm, report_path, display_path) for lm in result.matches)
    if result.members or result.notes:
        out.members += result.members
        out.expanded += result.expanded
        out.notes.extend(Skip(task.display_path, kind, msg) for kind, msg in result.notes)


def stdin_task() -> FileTask:
    """Standard input as a file to scan (read in the main process: workers have no stdin)."""
    return FileTask(STDIN, "", STDIN_TASK_NAME, STDIN_TASK_NAME)


# --- Workers walking their own share -------------------------------------------------------

# A directory still to walk: (its path, its path below the root, root as shown, report root).
DirTask = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class SpanTask:
    """One span of a large file (``scan/spans.py``), handed out as work on its own."""

    file: int  # which large file: the parent's number for it
    path: str
    first: int
    last: int | None


@dataclass(frozen=True, slots=True)
class LargeFile:
    """A file a worker met that is large enough to be cut into spans for all workers."""

    task: FileTask
    size: int
    bom: bool  # starts with a UTF-16 byte order mark


@dataclass(slots=True)
class SpanDone:
    """What a worker made of one span: its result, or why it could not be read."""

    file: int
    result: spans.SpanResult | None
    error: str = ""


@dataclass(slots=True)
class WorkDone:
    """A worker's answer to one item: what it found, the directories it did not walk, the
    large files it left for spans, and the spans it scanned."""

    batch: Batch[Finding]
    dirs: list[DirTask]
    large: list[LargeFile]
    spans: list[SpanDone]


WorkItem = list["FileTask | DirTask | SpanTask"]

FILES_PER_ITEM = 256  # files a worker reads before handing unwalked directories back
DIRS_PER_ITEM = 4  # directories handed back go out in groups of this many
PACK_SIZE = 1 << 20  # the buffer small files are packed into for one search
SMALL_FILE = 256 << 10  # files this large or larger are scanned on their own, in windows
_MIN_ROOM = 64 << 10  # less room than this left in the pack: search it and start afresh
_SEPARATOR = 0xFF  # never in a needle (tests/test_workers.py checks): needles cannot span files
_MAGIC_FIRST = frozenset(b"P\x1fB\xfd")  # first bytes of the container formats but tar


def work_items(roots: list[str]) -> list[WorkItem]:
    """The first items of a scan: each directory root, and the files named directly."""
    items: list[WorkItem] = []
    named: list[FileTask | DirTask] = []
    base = report_base(roots)
    for root in roots:
        prefix = _report_prefix(root, base)
        if not os.path.isdir(root):
            named.append(FileTask(root, "", root, prefix or os.path.basename(root)))
            continue
        shown = "" if os.path.normpath(root) == "." else root.rstrip("/") or "/"
        items.append([(root, "", shown, prefix)])
    items.extend(list(named[i : i + BATCH_FILES]) for i in range(0, len(named), BATCH_FILES))
    return items


class LargeFiles:
    """The parent's side of a scan's large files: each is cut into spans that go out as work
    of their own (``more``), and once all of a file's spans are back, its findings are made
    with the positions of one pass over it (``batches``)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pending: dict[int, tuple[LargeFile, int, list[SpanDone]]] = {}
        self.numbers = itertools.count()

    def more(self, done: WorkDone) -> list[WorkItem]:
        """New items a worker's answer asks for (``run_batches``' ``more``): the directories
        it did not walk, and a span item for each span of each large file it left."""
        left = done.dirs
        items: list[WorkItem] = [list(left[i : i + DIRS_PER_ITEM])
                                 for i in range(0, len(left), DIRS_PER_ITEM)]
        for large in done.large:
            number = next(self.numbers)
            cuts = spans.plan(large.size, self.jobs)
            self.pending[number] = (large, len(cuts), [])
            items.extend([SpanTask(number, large.task.path, first, last)] for first, last in cuts)
        return items

    def batches(self, answers: Iterable[WorkDone]) -> Iterator[Batch[Finding]]:
        """Every answer's batch, and for each large file whose last span came back, a batch
        with its findings."""
        for done in answers:
            yield done.batch
            for part in done.spans:
                large, count, parts = self.pending[part.file]
                parts.append(part)
                if len(parts) == count:
                    del self.pending[part.file]
                    yield _assembled(large, parts)


def _assembled(large: LargeFile, parts: list[SpanDone]) -> Batch[Finding]:
    """One large file's findings from all its spans.

    A span that could not be read, or a file that shrank while it was read (its spans no
    longer meet), makes the file unreadable; the keys found up to there are still reported
    (their positions are known)."""
    out: Batch[Finding] = Batch()
    results = [p.result for p in parts if p.result is not None]
    run = _leading_run(results)
    if len(run) < len(parts):
        error = next((p.error for p in parts if p.result is None), "spans do not meet")
        out.skips.append(Skip(large.task.display_path, "unreadable", error))
    fold(out, large.task, StreamResult(spans.assemble(run, large.bom), 0))
    out.scanned["file"] = 1 if len(run) == len(parts) else 0
    return out


def _leading_run(results: list[spans.SpanResult]) -> list[spans.SpanResult]:
    """The spans from the file's start on, up to the first one missing or not meeting the
    one before (the file shrank under it)."""
    run: list[spans.SpanResult] = []
    for result in sorted(results, key=lambda r: r.first):
        if result.first != (run[-1].end.offset if run else 0):
            break
        run.append(result)
    return run


def scan_work(item: WorkItem, settings: ScanSettings, excluder: Excluder, jobs: int = 1,
              budget: int = FILES_PER_ITEM) -> WorkDone:
    """Worker body: read the files and spans of ``item``, walk its directories until
    ``budget`` files were read; returns what was found, the directories not walked, and the
    files left to be cut into spans for ``jobs`` workers."""
    scanner = _Scanner(settings, excluder, jobs)
    stack: list[DirTask] = []
    done_spans: list[SpanDone] = []
    for unit in item:
        if isinstance(unit, FileTask):
            scanner.named_file(unit)
        elif isinstance(unit, SpanTask):
            done_spans.append(scanner.span(unit))
        else:
            stack.append(unit)
    stack.reverse()  # depth-first from the first directory given
    try:
        while stack and scanner.files < budget:
            scanner.walk_directory(stack.pop(), stack)
        scanner.flush()
    finally:
        scanner.close()
    scanner.out.scanned["file"] = scanner.files
    return WorkDone(scanner.out, stack, scanner.large, done_spans)


class _Scanner:
    """One worker item's state: the pack buffer, the files in it, and what was found."""

    def __init__(self, settings: ScanSettings, excluder: Excluder, jobs: int = 1) -> None:
        self.settings = settings
        self.excluder = excluder
        self.jobs = jobs
        self.large: list[LargeFile] = []
        self.out: Batch[Finding] = Batch()
        self.files = 0
        self.pack = take_buffer(PACK_SIZE)  # reused: no fresh pages to fault in per item
        self.view = memoryview(self.pack)
        self.used = 0
        self.starts: list[int] = []
        # (end, path, relative, shown root, report root) of each packed file
        self.packed: list[tuple[int, str, str, str, str]] = []

    def close(self) -> None:
        self.view.release()
        give_back(self.pack)

    def skip(self, shown: str, reason: str, detail: str = "") -> None:
        self.out.skips.append(Skip(shown, reason, detail))

    def walk_directory(self, unit: DirTask, stack: list[DirTask]) -> None:
        directory, below, shown, prefix = unit
        try:
            with os.scandir(directory) as entries:
                listing = list(entries)
        except OSError as error:
            self.skip(printable_path(directory), "unreadable", error.strerror or str(error))
            return
        excluder = self.excluder
        for entry in listing:
            name = entry.name
            if name == ".git":
                if is_repository_dir(entry):
                    continue
                self.out.notes.append(Skip(printable_path(entry.path), "not_a_repository",
                                           "named .git but not a git repository: scanned as "
                                           "content"))
            relative = f"{below}/{name}" if below else name
            if excluder and excluder.excluded(name, relative):
                self.skip(printable_path(entry.path), "excluded")
                continue
            try:  # most entries are files: ask that first (the answer comes from d_type)
                if entry.is_file(follow_symlinks=False):
                    self.file(entry.path, relative, shown, prefix)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, relative, shown, prefix))
                elif entry.is_symlink():
                    self.skip(printable_path(entry.path), "symlink")
                else:
                    self.skip(printable_path(entry.path), "special")
            except OSError as error:
                self.skip(printable_path(entry.path), "unreadable", error.strerror or "")

    def named_file(self, task: FileTask) -> None:
        self.file(task.path, task.relative, task.shown_root, task.report_root, walked=False)

    def file(self, path: str, relative: str, shown: str, prefix: str,
             walked: bool = True) -> None:
        """Read one file into the pack, or scan it on its own if it is large or a container.

        A file the walk found needs no ``fstat``: its directory entry said regular file, and a
        short read says it fits. A file named by the user is checked first (it may be a FIFO).
        """
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as error:
            task = FileTask(path, relative, shown, prefix)
            self.skip(task.display_path, "unreadable", error.strerror or str(error))
            return
        try:
            if walked:  # the directory entry said regular file: read first, fstat only if large
                room = PACK_SIZE - self.used - 1
                if room < _MIN_ROOM:
                    self.flush()
                    room = PACK_SIZE - 1
                cap = min(room, SMALL_FILE)
                start = self.used
                n = os.readv(fd, [self.view[start : start + cap]])
                if n < cap and not self._container(start, n):
                    self._keep(start, n, path, relative, shown, prefix)
                    return
                os.lseek(fd, 0, os.SEEK_SET)  # larger than the room left, or an archive
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(0, "not a regular file")
            size = info.st_size
            if size < SMALL_FILE:
                if self.used + size + 2 > PACK_SIZE:
                    self.flush()
                start = self.used
                n = os.readv(fd, [self.view[start : start + size + 1]])
                if n <= size and not self._container(start, n):
                    self._keep(start, n, path, relative, shown, prefix)
                    return
                os.lseek(fd, 0, os.SEEK_SET)  # grew since fstat, or an archive
            task = FileTask(path, relative, shown, prefix)
            if spans.plan(size, self.jobs):
                head = os.pread(fd, HEAD_SIZE, 0)
                if container_kind(head) is None:  # an archive is read in one pass
                    self.large.append(LargeFile(task, size, starts_with_bom(head)))
                    return
            self.single(fd, task)
        except OSError as error:
            task = FileTask(path, relative, shown, prefix)
            self.skip(task.display_path, "unreadable", error.strerror or str(error))
        except Exception as error:  # a bug must cost one file, not the whole scan
            task = FileTask(path, relative, shown, prefix)
            detail = f"internal error ({type(error).__name__}), please report it"
            self.skip(task.display_path, "error", detail)
        finally:
            os.close(fd)

    def _keep(self, start: int, n: int, path: str, relative: str, shown: str,
              prefix: str) -> None:
        """The ``n`` bytes just read at ``start`` stay in the pack, to be searched with it."""
        self.pack[start + n] = _SEPARATOR
        self.used = start + n + 1
        self.starts.append(start)
        self.packed.append((start + n, path, relative, shown, prefix))
        self.files += 1
        self.out.size += n

    def _container(self, start: int, n: int) -> bool:
        """Whether the file just packed at ``start`` starts like an archive (checked in place)."""
        if n == 0:
            return False
        pack = self.pack
        if pack[start] not in _MAGIC_FIRST and not pack.startswith(b"ustar", start + 257,
                                                                   start + n):
            return False
        head = self.view[start : start + min(n, HEAD_SIZE)]
        try:
            return container_kind(head) is not None
        finally:
            head.release()

    def span(self, task: SpanTask) -> SpanDone:
        """One span of a large file another worker met."""
        try:
            fd = open_regular_file(task.path)
            try:
                result = spans.scan_span(fd, task.first, task.last, self.settings)
            finally:
                os.close(fd)
        except OSError as error:
            return SpanDone(task.file, None, error.strerror or str(error))
        except Exception as error:  # a bug must cost one file, not the whole scan
            return SpanDone(task.file, None,
                            f"internal error ({type(error).__name__}), please report it")
        self.out.size += result.size
        self.out.below_confidence += result.hidden
        return SpanDone(task.file, result)

    def single(self, fd: int, task: FileTask) -> None:
        """A large file or a container: scanned on its own by the reader every source uses."""
        self._add(task, scan_fd(fd, os.path.basename(task.path), self.settings))

    def _add(self, task: FileTask, result: StreamResult) -> None:
        self.files += 1
        fold(self.out, task, result)

    def flush(self) -> None:
        """Search the pack once; scan on its own each file a needle begins in."""
        if not self.starts:
            return
        hits = searcher(self.settings)(self.pack, 0, self.used, self.used)
        if hits:
            holders = sorted({bisect.bisect_right(self.starts, pos) - 1 for pos, _ in hits})
            for index in holders:
                start = self.starts[index]
                end, path, relative, shown, prefix = self.packed[index]
                data = bytes(self.pack[start:end])
                matches = find_matches(data, settings=self.settings)
                if matches:
                    task = FileTask(path, relative, shown, prefix)
                    report_path, display_path = task.report_path, task.display_path
                    self.out.found.extend(Finding.at(lm, report_path, display_path)
                                          for lm in locate(data, matches))
        self.used = 0
        self.starts.clear()
        self.packed.clear()
