"""Running a scan's batches: in this process, in threads, or in forked worker processes.

``run_batches`` is the one place that chooses, for every source: forked processes where
``os.fork`` exists (``bytes.find`` holds the GIL, so only processes scan in parallel), threads
elsewhere or when asked (``executor="thread"``), and no workers at all for a small scan.
Whatever a worker raises comes back as one line: a ``ScanError``'s own text (it is written for
the user and holds no secret), or for anything else the exception's type, never its text,
which could quote scanned content.

The fork pool, ``fork_map(func, items, jobs)``:

Why not ``multiprocessing.Pool``: importing it costs about 38 ms here (sockets, threads,
pickling machinery), 10% of a whole 500 MB scan, and its feeder thread competes with the
workers for a core. Forking and two pipes per worker is all a scan needs: the parent sends
pickled items and reads pickled results, driven by one ``poll`` loop with non-blocking writes
so that neither side can block the other however large an item or a result is.

Workers die with their parent: a SIGKILLed parent (``docker stop`` after its grace period, a CI
cancellation) leaves no worker scanning on. On Linux each worker asks the kernel for SIGKILL
when its parent dies (``PR_SET_PDEATHSIG``); everywhere, a worker exits at end-of-file on its
task pipe. ``die_with_parent`` is the same request for any child process (``preexec_fn`` of a
``git cat-file``). A SIGTERM of the parent (``kill PID``, ``docker stop``) is handled like
Ctrl-C: workers are stopped and the command ends with one line and status 130.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import select
import signal
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..errors import ScanError

T = TypeVar("T")
R = TypeVar("R")

_HEADER = struct.Struct("<Q")
_IN_FLIGHT = 2  # items queued per worker: one being worked on, one waiting


Executor = Literal["process", "thread", "serial"]


class WorkerError(ScanError):
    """A worker died or raised; the message says which and why, in one line."""


def _describe(error: BaseException, where: str) -> str:
    if isinstance(error, ScanError):
        return f"{error} ({where})"
    return f"internal error ({type(error).__name__} in {where}), please report it"


@dataclass
class _Worker:
    pid: int
    task_fd: int
    result_fd: int
    outgoing: bytearray = field(default_factory=bytearray)
    incoming: bytearray = field(default_factory=bytearray)
    in_flight: int = 0


def _frame(obj: Any) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        data = os.read(fd, min(size, 1 << 20))
        if not data:
            return None
        chunks.append(data)
        size -= len(data)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_PR_SET_PDEATHSIG = 1


@functools.cache
def _load_prctl() -> Any:
    """libc's ``prctl`` where there is one (Linux), loaded before forking so that a child
    does not pay for ``ctypes``; ``False`` elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            return ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            pass
    return False


def die_with_parent(parent: int | None = None, sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; elsewhere a
    no-op), and exit at once if the parent (``parent``, a pid) is already gone. Call it in a
    forked child, or as ``preexec_fn`` of a subprocess: ``preexec_fn=die_with_parent``."""
    prctl = _load_prctl()
    if prctl:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent is not None and os.getppid() != parent:  # died before the request was made
        os._exit(1)


# Run in every forked worker first, with its index (0 .. jobs-1): per-worker setup such as a
# slot in a shared progress meter.
worker_start_hooks: list[Callable[[int], None]] = []


def _worker_started(index: int, parent: int) -> None:
    """The one place a forked worker is set up before it takes work (its signals already are,
    in ``_start``): the worker dies with its parent, then the hooks run."""
    die_with_parent(parent)
    for hook in worker_start_hooks:
        hook(index)


def _child(func: Callable[[Any], Any], task_fd: int, result_fd: int, index: int,
           parent: int) -> None:
    """Worker body: read an item, send back ("ok", result) or ("error", text), until EOF (the
    parent closed the pipe, or died)."""
    _worker_started(index, parent)
    while True:
        header = _read_exact(task_fd, _HEADER.size)
        if header is None:
            return
        payload = _read_exact(task_fd, _HEADER.unpack(header)[0])
        if payload is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", func(pickle.loads(payload)))
        except Exception as error:  # reported by the parent; never the item's content
            reply = ("error", _describe(error, f"worker {os.getpid()}"))
        _write_all(result_fd, _frame(reply))


_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def _start(func: Callable[[Any], Any], jobs: int) -> list[_Worker]:
    workers: list[_Worker] = []
    parent = os.getpid()
    _load_prctl()
    for index in range(jobs):
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        # Ctrl-C and SIGTERM wait until the child has dropped the parent's handlers: one that
        # arrived in between would raise in the child and unwind it through the caller's code.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:  # child: keep only its own two ends, never return into the caller's code
            status = 0
            try:
                for stop in _STOP_SIGNALS:
                    signal.signal(stop, signal.SIG_DFL)  # the parent reports; workers just stop
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.close(task_w)
                os.close(result_r)
                for other in workers:
                    os.close(other.task_fd)
                    os.close(other.result_fd)
                _child(func, task_r, result_w, index, parent)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(task_r)
        os.close(result_w)
        os.set_blocking(task_w, False)
        workers.append(_Worker(pid, task_w, result_r))
    return workers


def _stop(workers: list[_Worker], kill: bool) -> None:
    for worker in workers:
        for fd in (worker.task_fd, worker.result_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(worker.pid, 0)


More = Callable[[Any], Iterable[Any]]  # a result -> further items it asks for
Tick = Callable[[], None]  # called at least every TICK_SECONDS while workers are busy
TICK_SECONDS = 0.25


class _Source:
    """Items to hand out: those ``more`` returned (first), then the caller's iterator."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.iterator = iter(items)
        self.queued: deque[Any] = deque()
        self.exhausted = False

    def take(self) -> tuple[bool, Any]:
        if self.queued:
            return True, self.queued.popleft()
        if not self.exhausted:
            try:
                return True, next(self.iterator)
            except StopIteration:
                self.exhausted = True
        return False, None


def fork_map(func: Callable[[T], R], items: Iterable[T], jobs: int,
             more: More | None = None, tick: Tick | None = None) -> Iterator[R]:
    """``func`` over ``items`` in ``jobs`` forked processes; results in completion order.

    ``func`` and the items are pickled by value except ``func``, which the children inherit
    through ``fork``. Items are drawn from ``items`` lazily, in the parent, as workers free up.
    ``more(result)``, when given, returns further items a result asks for (subdirectories a
    worker did not walk itself): they go out before the rest of ``items``. ``tick`` is called
    at least every ``TICK_SECONDS`` while waiting for workers (a progress line).
    """
    source = _Source(items)
    workers = _start(func, jobs)
    by_fd = {w.result_fd: w for w in workers} | {w.task_fd: w for w in workers}
    finished_cleanly = False
    writing: set[int] = set()  # task descriptors registered for POLLOUT
    timeout = None if tick is None else TICK_SECONDS * 1000

    def feed(worker: _Worker, limit: int = _IN_FLIGHT) -> None:
        while worker.in_flight < limit:
            ok, item = source.take()
            if not ok:
                return
            worker.outgoing += _frame(item)
            worker.in_flight += 1

    try:
        for limit in range(1, _IN_FLIGHT + 1):  # round-robin: every worker gets work first
            for worker in workers:
                feed(worker, limit)
        poller = select.poll()
        for worker in workers:
            poller.register(worker.result_fd, select.POLLIN)
        while any(w.in_flight for w in workers):
            for worker in workers:
                if worker.outgoing:
                    poller.register(worker.task_fd, select.POLLOUT)  # re-registering is allowed
                elif worker.task_fd in writing:
                    poller.unregister(worker.task_fd)
                writing.discard(worker.task_fd)
                if worker.outgoing:
                    writing.add(worker.task_fd)
            events = poller.poll(timeout)
            if tick is not None:
                tick()
            for fd, event in events:
                worker = by_fd[fd]
                if fd == worker.task_fd:
                    _send_some(worker, event)
                    continue
                data = os.read(fd, 1 << 20)
                if not data:
                    raise WorkerError(f"worker {worker.pid} exited unexpectedly")
                worker.incoming += data
                for value in _replies(worker):
                    if more is not None:
                        source.queued.extend(more(value))
                    yield value
                if more is None:
                    feed(worker)
                else:  # new items may feed a worker that had run dry
                    for limit in range(1, _IN_FLIGHT + 1):
                        for other in workers:
                            feed(other, limit)
        finished_cleanly = True
    finally:
        _stop(workers, kill=not finished_cleanly)


def _send_some(worker: _Worker, event: int) -> None:
    """Write what the pipe takes now; the rest waits for the next POLLOUT."""
    if event & (select.POLLERR | select.POLLHUP):
        raise WorkerError(f"worker {worker.pid} stopped taking work")
    try:
        sent = os.write(worker.task_fd, worker.outgoing)
    except BlockingIOError:
        return
    except BrokenPipeError:
        raise WorkerError(f"worker {worker.pid} stopped taking work") from None
    del worker.outgoing[:sent]


def _replies(worker: _Worker) -> Iterator[Any]:
    """Complete replies buffered from ``worker``, in order; partial ones stay buffered."""
    buf = worker.incoming
    while len(buf) >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buf)
        if len(buf) < _HEADER.size + size:
            return
        status, value = pickle.loads(bytes(buf[_HEADER.size : _HEADER.size + size]))
        del buf[: _HEADER.size + size]
        worker.in_flight -= 1
        if status != "ok":
            raise WorkerError(value)
        yield value


def _guarded(func: Callable[[T], R], where: str) -> Callable[[T], R]:
    """``func`` failing as the fork pool's workers fail: a ``ScanError`` as it is, anything
    else as a one-line ``WorkerError``."""

    def call(item: T) -> R:
        try:
            return func(item)
        except ScanError:
            raise
        except Exception as error:
            raise WorkerError(_describe(error, where)) from error

    return call


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwound like Ctrl-C, so that workers are stopped and the command ends
    with one line (``cli`` reports a ``KeyboardInterrupt`` as "interrupted", status 130)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def _sigterm_as_interrupt() -> Callable[[], None]:
    """Handle SIGTERM like Ctrl-C while a scan runs; returns what undoes it. Only from the main
    thread, and only where nobody else handles SIGTERM (an embedding program keeps its own)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return lambda: None
    signal.signal(signal.SIGTERM, _on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return restore


def run_batches(func: Callable[[T], R], items: Iterable[T], jobs: int, executor: Executor,
                cleanup: Callable[[], None] | None = None, more: More | None = None,
                tick: Tick | None = None) -> Iterator[R]:
    """``func`` over ``items`` as ``executor`` says (``process`` falls back to threads where
    there is no ``os.fork``); ``jobs <= 1`` runs in this process. ``cleanup`` runs in this
    process once the serial or threaded work is over (forked workers end with their process).
    ``more`` and ``tick`` as for ``fork_map``. Results come in completion order; a failure is
    a ``WorkerError``. While it runs, SIGTERM unwinds like Ctrl-C (``Terminated``)."""
    restore = _sigterm_as_interrupt()
    try:
        yield from _run(func, items, jobs, executor, cleanup, more, tick)
    finally:
        restore()


def _run(func: Callable[[T], R], items: Iterable[T], jobs: int, executor: Executor,
         cleanup: Callable[[], None] | None, more: More | None, tick: Tick | None
         ) -> Iterator[R]:
    if executor == "process" and jobs > 1 and hasattr(os, "fork"):
        yield from fork_map(func, items, jobs, more, tick)
        return
    try:
        if executor == "serial" or jobs <= 1:
            yield from _serial(_guarded(func, "the scanning process"), items, more)
        else:
            yield from _threaded(_guarded(func, "a worker thread"), items, jobs, more, tick)
    finally:
        if cleanup is not None:
            cleanup()


def _serial(func: Callable[[T], R], items: Iterable[T], more: More | None) -> Iterator[R]:
    source = _Source(items)
    while True:
        ok, item = source.take()
        if not ok:
            return
        result = func(item)
        if more is not None:
            source.queued.extend(more(result))
        yield result


def _threaded(func: Callable[[T], R], items: Iterable[T], jobs: int, more: More | None,
              tick: Tick | None) -> Iterator[R]:
    """Like ``fork_map`` with threads: at most two items in flight per thread."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    source = _Source(items)
    with ThreadPoolExecutor(jobs) as pool:
        running: set[Future[R]] = set()
        try:
            while True:
                while len(running) < jobs * _IN_FLIGHT:
                    ok, item = source.take()
                    if not ok:
                        break
                    running.add(pool.submit(func, item))
                if not running:
                    return
                done, _ = wait(running, TICK_SECONDS if tick else None, FIRST_COMPLETED)
                if tick is not None:
                    tick()
                for future in done:
                    running.discard(future)
                    result = future.result()
                    if more is not None:
                        source.queued.extend(more(result))
                    yield result
        finally:
            for future in running:
                future.cancel()
