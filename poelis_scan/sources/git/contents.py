"""The worker body of a git scan: object ids in, hits (object, located matches) out.

Each distinct object is read once (git stores each blob once, however many commits hold it),
streamed by a long-lived ``git cat-file --batch`` per worker, and searched by the same readers
as files. Which commit put it where is worked out later, only for objects with a hit
(``provenance.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO

from ...scan.readers import scan_buffer, scan_pipe
from ...scan.stream import CHUNK_SIZE, LocatedMatch, StreamResult
from ...settings import ScanSettings
from ...stats import Batch, Skip
from .plumbing import SCANNED_TYPES, CatFile, GitObject, Repository

IN_MEMORY_OBJECT = 16 << 20  # larger objects are streamed (or spooled, if an archive)
BATCH_BYTES = 64 << 20

BROKEN = "object {sha} is corrupt or missing; skipped (git fsck tells more)"


@dataclass(slots=True)
class ObjectHit:
    """The keys found in one object. ``places`` (commits and tags only), one per match: where
    in the object it sits: ``message``, ``identity`` (author, committer or tagger) or
    ``header`` (any other header line, e.g. a signature or a merged tag)."""

    sha: str
    type: str
    matches: list[LocatedMatch]
    places: list[str] = field(default_factory=list)


# One cat-file per repository and thread: a thread pool's workers must not share one pipe.
# Every one started is also listed in ``_open``, so the scan that started them can end them.
_local = threading.local()
_open: list[CatFile] = []
_open_lock = threading.Lock()


def _cat_file(repo: Repository) -> CatFile:
    cats: dict[Repository, CatFile] = _local.__dict__.setdefault("cats", {})
    cat = cats.get(repo)
    if cat is None or cat.proc.poll() is not None:
        cat = cats[repo] = CatFile(repo)
        with _open_lock:
            _open.append(cat)
    return cat


def _discard(repo: Repository, cat: CatFile) -> None:
    """End a cat-file that died or lost its place; the next ``_cat_file`` starts another."""
    _local.__dict__.get("cats", {}).pop(repo, None)
    with _open_lock:
        if cat in _open:
            _open.remove(cat)
    cat.close()


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
                 repo_path: str, settings: ScanSettings) -> bool:
    """Scan one object's content; False if git stopped before its end (what it did send is
    scanned all the same: a damaged pack must not hide the key before the damage)."""
    data = b""
    # A commit or tag is never an archive, even if its message starts like one.
    archives = obj_type == "blob"
    if size <= IN_MEMORY_OBJECT:
        data = stdout.read(size)
        complete = len(data) == size
        result = scan_buffer(data, "", settings, archives)
    else:
        result, complete = _scan_large(stdout, size, archives, settings)
    complete = complete and stdout.read(1) == b"\n"  # the newline after each object
    if complete:
        out.scanned[obj_type] += 1
    out.size += len(data) if size <= IN_MEMORY_OBJECT else size
    out.members += result.members
    out.expanded += result.expanded
    out.notes.extend(Skip(repo_path, kind, f"{obj_type} {sha[:12]}: {message}")
                     for kind, message in result.notes)
    if result.matches:
        if obj_type != "blob" and data:
            out.found.append(ObjectHit(sha, obj_type, *_message_places(data, result.matches)))
        else:
            out.found.append(ObjectHit(sha, obj_type, result.matches))
    return complete


def _scan_large(stdout: IO[bytes], size: int, archives: bool,
                settings: ScanSettings) -> tuple[StreamResult, bool]:
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
        chunk = stdout.read(min(remaining, CHUNK_SIZE))
        if not chunk:
            return result, False  # git died inside this object
        remaining -= len(chunk)
    return result, True


IDENTITY_HEADERS = (b"author ", b"committer ", b"tagger ")


def _message_places(data: bytes, matches: list[LocatedMatch]
                    ) -> tuple[list[LocatedMatch], list[str]]:
    """Commit and tag objects: where each match sits, and its position there.

    In the message: line 1 is the subject, as ``git log --format=%B`` shows it (the header
    block and the blank line after it are not counted). In an identity: line 1, the column
    within ``Name <email> time zone``. Elsewhere in the header: the line and column in the
    raw object, as ``git cat-file -p`` shows it.
    """
    header_end = data.find(b"\n\n")
    if header_end == -1:
        header_end = len(data)
    header_lines = data.count(b"\n", 0, header_end + 2)
    located: list[LocatedMatch] = []
    places: list[str] = []
    for lm in matches:
        if lm.offset > header_end:
            located.append(replace(lm, line=max(lm.line - header_lines, 1)))
            places.append("message")
            continue
        line_start = data.rfind(b"\n", 0, lm.offset) + 1
        label = next((h for h in IDENTITY_HEADERS if data.startswith(h, line_start)), None)
        if label is None:
            located.append(lm)
            places.append("header")
        else:
            located.append(replace(lm, line=1, column=max(lm.column - len(label), 1)))
            places.append("identity")
    return located, places


def _read_answers(cat: CatFile, objects: list[GitObject], out: Batch[ObjectHit],
                  repo_path: str, settings: ScanSettings) -> int | None:
    """Read cat-file's answer for each of ``objects``; the index of the object at which git
    died or answered out of turn, or None when every answer came."""
    for index, obj in enumerate(objects):
        header = cat.stdout.readline().decode("ascii", "replace").split()
        if len(header) == 2 and header[1] == "missing" and header[0] == obj.sha:
            out.notes.append(Skip(repo_path, "unreadable_object", BROKEN.format(sha=obj.sha)))
            continue
        if len(header) != 3 or header[0] != obj.sha or not header[2].isdigit():
            return index  # end of output: git died on this object (or lost its place)
        obj_type, size = header[1], int(header[2])
        if obj_type not in SCANNED_TYPES:
            if len(cat.stdout.read(size + 1)) != size + 1:
                return index
            continue
        if not _scan_object(out, obj_type, obj.sha, size, cat.stdout, repo_path, settings):
            return index
    return None


def scan_objects(item: tuple[Repository, list[GitObject]],
                 settings: ScanSettings) -> Batch[ObjectHit]:
    """Worker body: read each object of the batch from cat-file and scan it.

    git ends ``cat-file --batch`` at the first object it cannot read (a corrupt loose object,
    a damaged pack): that object becomes an ``unreadable_object`` warning, and a new cat-file
    reads the objects after it.
    """
    repo, objects = item
    out: Batch[ObjectHit] = Batch()
    pending = objects
    while pending:
        cat = _cat_file(repo)
        sender = cat.request([o.sha for o in pending])
        failed = _read_answers(cat, pending, out, repo.path, settings)
        if failed is None:
            sender.join()
            break
        _discard(repo, cat)
        sender.join()
        out.notes.append(Skip(repo.path, "unreadable_object",
                              BROKEN.format(sha=pending[failed].sha)))
        pending = pending[failed + 1:]
    return out


def batches(repo: Repository, objects: Iterable[GitObject], target: int = BATCH_BYTES
            ) -> Iterator[tuple[Repository, list[GitObject]]]:
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
            yield repo, batch
            batch, size = [], 0
    if batch:
        yield repo, batch
