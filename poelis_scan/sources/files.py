"""Files and directories as a source: which files to read, under which names to report them,
and the worker body that reads a batch of them.

The walk uses ``os.scandir`` directly (the directory entry already says whether it is a file, a
directory or a link, so no extra ``stat`` per file), never follows symbolic links, and never
descends into a repository's ``.git``: history is the ``git`` command's job. A ``.git`` that is
not a repository (no ``HEAD`` and ``objects``, or a file that is not a ``gitdir:`` pointer) is
ordinary content, scanned like any other, and a warning says so: a name must not hide a key.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

from ..findings import Finding
from ..paths import Excluder, find_repository_root, printable_path
from ..scan.readers import scan_fd, scan_pipe
from ..scan.stream import StreamResult
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
        out.size += result.size
        out.below_confidence += result.hidden
        if result.matches:
            report_path, display_path = task.report_path, task.display_path
            out.found.extend(Finding.at(lm, report_path, display_path) for lm in result.matches)
        if result.members or result.notes:
            out.members += result.members
            out.expanded += result.expanded
            out.notes.extend(Skip(task.display_path, kind, msg) for kind, msg in result.notes)
    out.scanned["file"] = files
    return out


def stdin_task() -> FileTask:
    """Standard input as a file to scan (read in the main process: workers have no stdin)."""
    return FileTask(STDIN, "", STDIN_TASK_NAME, STDIN_TASK_NAME)
