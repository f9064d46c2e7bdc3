"""The worker body of a git scan: object ids in, hits (object, located matches) out.

Each distinct object is read once (git stores each blob once, however many commits hold it),
streamed by a long-lived ``git cat-file --batch`` per worker, and searched by the same readers
as files. Which commit put it where is worked out later, only for objects with a hit
(``provenance.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import IO

from ...scan.readers import scan_buffer, scan_pipe
from ...scan.stream import CHUNK_SIZE, LocatedMatch, StreamResult
from ...settings import ScanSettings
from ...stats import Batch, Skip
from .plumbing import SCANNED_TYPES, CatFile, GitError, GitObject

IN_MEMORY_OBJECT = 16 << 20  # larger objects are streamed (or spooled, if an archive)
BATCH_BYTES = 64 << 20

BROKEN = "object {sha} is corrupt or missing; skipped (git fsck tells more)"


@dataclass(slots=True)
class ObjectHit:
    sha: str
    type: str
    matches: list[LocatedMatch]


# One cat-file per repository and thread: a thread pool's workers must not share one pipe.
# Every one started is also listed in ``_open``, so the scan that started them can end them.
_local = threading.local()
_open: list[CatFile] = []
_open_lock = threading.Lock()


def _cat_file(repo_path: str) -> CatFile:
    cats: dict[str, CatFile] = _local.__dict__.setdefault("cats", {})
    cat = cats.get(repo_path)
    if cat is None or cat.proc.poll() is not None:
        cat = cats[repo_path] = CatFile(repo_path)
        with _open_lock:
            _open.append(cat)
    return cat


def close_cat_files() -> None:
    """End the cat-file processes this process started (serial and thread scans; a forked
    worker's end with it)."""
    with _open_lock:
        cats = list(_open)
        _open.clear()
    for cat in cats:
        cat.close()
    _local.__dict__.pop("cats", None)


def _scan_object(out: Batch[ObjectHit], obj_type: str, sha: str, size: int, stdout: IO[bytes],
                 repo_path: str, settings: ScanSettings) -> None:
    data = b""
    # A commit or tag is never an archive, even if its message starts like one.
    archives = obj_type == "blob"
    if size <= IN_MEMORY_OBJECT:
        data = stdout.read(size)
        result = scan_buffer(data, "", settings, archives)
    else:
        result = _scan_large(stdout, size, archives, settings)
    stdout.read(1)  # the newline after each object
    out.scanned[obj_type] += 1
    out.size += size
    out.members += result.members
    out.expanded += result.expanded
    out.notes.extend(Skip(repo_path, kind, f"blob {sha[:12]}: {message}")
                     for kind, message in result.notes)
    if result.matches:
        matches = result.matches
        if obj_type != "blob" and data:
            matches = _message_lines(data, matches)
        out.found.append(ObjectHit(sha, obj_type, matches))


def _scan_large(stdout: IO[bytes], size: int, archives: bool,
                settings: ScanSettings) -> StreamResult:
    remaining = size

    def readinto(buffer: memoryview) -> int:
        nonlocal remaining
        if remaining <= 0:
            return 0
        n = stdout.readinto(buffer[: min(len(buffer), remaining)]) or 0  # type: ignore[attr-defined]
        remaining -= n
        return n

    result = scan_pipe(readinto, "", settings, archives)
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


def scan_objects(item: tuple[str, list[GitObject]], settings: ScanSettings) -> Batch[ObjectHit]:
    """Worker body: read each object of the batch from cat-file and scan it."""
    repo_path, objects = item
    cat = _cat_file(repo_path)
    sender = cat.request([o.sha for o in objects])
    out: Batch[ObjectHit] = Batch()
    for _ in objects:
        header = cat.stdout.readline().decode("ascii", "replace").split()
        if len(header) == 2 and header[1] == "missing":
            out.notes.append(Skip(repo_path, "unreadable_object", BROKEN.format(sha=header[0])))
            continue
        if len(header) != 3:
            raise GitError(f"unexpected answer from git cat-file: {' '.join(header)[:80]}")
        sha, obj_type, size = header[0], header[1], int(header[2])
        if obj_type not in SCANNED_TYPES:
            cat.stdout.read(size + 1)
            continue
        _scan_object(out, obj_type, sha, size, cat.stdout, repo_path, settings)
    sender.join()
    return out


def batches(repo_path: str, objects: Iterable[GitObject], target: int = BATCH_BYTES
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
