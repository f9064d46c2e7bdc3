"""The worker body of a git scan: object ids in, hits (object, located matches) out.

Each distinct object is read once (git stores each blob once, however many commits hold it),
streamed by a long-lived ``git cat-file --batch`` per worker, and searched by the same readers
as files. Which commit put it where is worked out later, only for objects with a hit
(``provenance.py``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from ...detect.encodings import needles
from ...detect.engines import searcher
from ...scan import meter
from ...scan.magic import HEAD_SIZE, container_kind
from ...scan.readers import scan_buffer, scan_pipe
from ...scan.stream import CHUNK_SIZE, LocatedMatch, StreamResult
from ...settings import ScanSettings
from ...stats import Batch, Skip
from .plumbing import (
    KEEP,
    READ_SIZE,
    SCANNED_TYPES,
    Answers,
    CatFile,
    GitObject,
    Repository,
)

IN_MEMORY_OBJECT = 16 << 20  # larger objects are streamed (or spooled, if an archive)
BATCH_BYTES = 64 << 20

BROKEN = "object {sha} is corrupt or missing; skipped (git fsck tells more)"
# git keeps recently resolved delta bases in a cache of 96 MiB by default; a worker reading a
# run of history resolves long chains of deltas, and 160 MiB cut git's CPU time for the full
# history of sqlalchemy by about 13% (more gave little). Set on the command line, it also
# bounds what a repository's own configuration could ask for.
CAT_FILE_CONFIG = ("-c", "core.deltaBaseCacheLimit=160m")


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


def _cat_file(repo: Repository, read_size: int = READ_SIZE) -> CatFile:
    cats: dict[Repository, CatFile] = _local.__dict__.setdefault("cats", {})
    cat = cats.get(repo)
    if cat is not None and cat.answers.read_size != read_size:
        _discard(repo, cat)
        cat = None
    if cat is None or cat.proc.poll() is not None:
        cat = cats[repo] = CatFile(repo, CAT_FILE_CONFIG, read_size)
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


def _scan_object(out: Batch[ObjectHit], obj_type: str, sha: str, size: int, stdout: Answers,
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


def _scan_large(stdout: Answers, size: int, archives: bool,
                settings: ScanSettings) -> tuple[StreamResult, bool]:
    remaining = size

    def readinto(buffer: memoryview) -> int:
        nonlocal remaining
        if remaining <= 0:
            return 0
        n = stdout.readinto(buffer[: min(len(buffer), remaining)])
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


def _read_answers(cat: CatFile, ids: list[bytes], out: Batch[ObjectHit],
                  repo_path: str, settings: ScanSettings) -> int | None:
    """Read cat-file's answer for each of ``ids``; the index of the object at which git
    died or answered out of turn, or None when every answer came."""
    stdout = cat.answers
    for index, raw in enumerate(ids):
        sha = raw.decode("ascii")
        header = stdout.readline().decode("ascii", "replace").split()
        if len(header) == 2 and header[1] == "missing" and header[0] == sha:
            out.notes.append(Skip(repo_path, "unreadable_object", BROKEN.format(sha=sha)))
            continue
        if len(header) != 3 or header[0] != sha or not header[2].isdigit():
            return index  # end of output: git died on this object (or lost its place)
        obj_type, size = header[1], int(header[2])
        if obj_type not in SCANNED_TYPES:
            if len(stdout.read(size + 1)) != size + 1:
                return index
            continue
        if not _scan_object(out, obj_type, sha, size, stdout, repo_path, settings):
            return index
    return None


_MAGIC_FIRST = frozenset(b"P\x1fB\xfd")  # first bytes of the container formats but tar
_NEWLINE = 0x0A


@functools.cache
def _overlap(decode: bool) -> int:
    """Bytes each search of the pipe's buffer looks back into the previous one: a needle cut
    by a read is found whole in the next search."""
    return max(len(n.pattern) for n in needles(decode)) - 1


def _stream_answers(cat: CatFile, ids: list[bytes], out: Batch[ObjectHit], whole: list[bytes],
                    repo_path: str, settings: ScanSettings) -> int | None:
    """Read cat-file's answers for the objects ``ids`` names as they pass through the pipe's
    small buffer, searching each read once, whatever objects it holds; returns the index of
    the object at which git died or answered out of turn, or None.

    Nearly every object holds no needle: it is counted and forgotten, never copied or held
    whole. An object a needle begins in, and a blob that starts like an archive, go to
    ``whole``, to be read again and scanned on its own exactly as before (``_read_answers``):
    as many objects as hold keys, not one per object read.
    """
    answers = cat.answers
    buf = answers.buf
    search = searcher(settings)
    overlap = _overlap(settings.decode)
    hits: list[int] = []  # output offsets where a needle begins, in objects not yet done
    searched = answers.base + answers.pos  # output offset up to which the search has looked

    def more() -> bool:
        """Read on, and search what came (with the tail of what came before)."""
        nonlocal searched
        if not answers.fill(max(min(answers.pos, answers.end - overlap), 0)):
            return False
        base = answers.base
        hits.extend(base + at for at, _ in search(buf, max(searched - overlap - base, 0),
                                                   answers.end, answers.end))
        searched = base + answers.end
        return True

    if answers.end > answers.pos:  # (never, after a batch read to its end)
        hits.extend(answers.base + at for at, _ in search(buf, answers.pos, answers.end,
                                                           answers.end))
        searched = answers.base + answers.end
    for index, sha in enumerate(ids):
        while (newline := buf.find(b"\n", answers.pos, answers.end)) < 0:
            if answers.end - answers.pos >= KEEP or not more():
                return index
        header = buf[answers.pos : newline].split()
        answers.pos = newline + 1
        if len(header) == 2 and header[1] == b"missing" and header[0] == sha:
            out.notes.append(Skip(repo_path, "unreadable_object",
                                  BROKEN.format(sha=sha.decode("ascii"))))
            continue
        if len(header) != 3 or header[0] != sha or not header[2].isdigit():
            return index
        obj_type, size = header[1].decode("ascii", "replace"), int(header[2])
        start = answers.base + answers.pos
        again = False
        if obj_type == "blob" and size:  # the same first bytes scan_buffer would look at
            head = min(size, HEAD_SIZE)
            while answers.end - answers.pos < head:
                if not more():
                    return index
            at = answers.pos
            if buf[at] in _MAGIC_FIRST or buf.startswith(b"ustar", at + 257, at + head):
                again = container_kind(answers.view[at : at + head]) is not None
        if not _pass(answers, size + 1, more, size >= CHUNK_SIZE):  # content and newline
            return index
        if buf[answers.pos - 1] != _NEWLINE:
            return index
        if obj_type not in SCANNED_TYPES:
            continue
        if hits:
            stop = start + size
            again = again or any(start <= hit < stop for hit in hits)
            hits[:] = [hit for hit in hits if hit >= stop]
        if again:
            whole.append(sha)
        else:
            out.scanned[obj_type] += 1
            out.size += size
    return None


def _pass(answers: Answers, left: int, more: Callable[[], bool], large: bool) -> bool:
    """Let ``left`` bytes of git's output pass (each read was searched as it came); False if
    the output ended first. A large object's bytes count in the progress meter as they pass,
    until its size travels with the batch."""
    mark = meter.mark() if large else 0
    try:
        while True:
            take = min(answers.end - answers.pos, left)
            answers.pos += take
            left -= take
            if large:
                meter.add(take)
            if not left:
                return True
            if not more():
                return False
    finally:
        if large:
            meter.rewind(mark)


def _request(ids: list[bytes]) -> bytes:
    return b"".join(sha + b"\n" for sha in ids)


def _read_whole(repo: Repository, ids: list[bytes], out: Batch[ObjectHit],
                settings: ScanSettings, read_size: int) -> None:
    """Read each object of ``ids`` whole and scan it on its own. git ends ``cat-file --batch``
    at the first object it cannot read: that object becomes an ``unreadable_object`` warning,
    and a new cat-file reads the objects after it."""
    pending = ids
    while pending:
        cat = _cat_file(repo, read_size)
        sender = cat.request(_request(pending))
        failed = _read_answers(cat, pending, out, repo.path, settings)
        if failed is None:
            sender.join()
            break
        _discard(repo, cat)
        sender.join()
        out.notes.append(Skip(repo.path, "unreadable_object",
                              BROKEN.format(sha=pending[failed].decode("ascii"))))
        pending = pending[failed + 1:]


def scan_objects(item: tuple[Repository, bytes], settings: ScanSettings,
                 read_size: int = READ_SIZE) -> Batch[ObjectHit]:
    """Worker body: read each object of the batch (``item``: a repository and object ids, one
    a line) from cat-file and scan it; ``read_size``: bytes asked of the pipe at a time.

    The objects stream through once (``_stream_answers``); the few a needle begins in, or
    that may be archives, are then read again whole. An object at which git stopped (a
    corrupt loose object, a damaged pack) is read again too: what git sends of it is
    scanned, it becomes an ``unreadable_object`` warning, and a new cat-file reads on.
    """
    repo, request = item
    out: Batch[ObjectHit] = Batch()
    whole: list[bytes] = []
    pending = request.split()
    while pending:
        cat = _cat_file(repo, read_size)
        sender = cat.request(request)
        stopped = _stream_answers(cat, pending, out, whole, repo.path, settings)
        if stopped is None:
            sender.join()
            break
        _discard(repo, cat)
        sender.join()
        whole.append(pending[stopped])
        pending = pending[stopped + 1:]
        request = _request(pending)
    _read_whole(repo, whole, out, settings, read_size)
    return out


def batches(repo: Repository, objects: Iterable[GitObject], target: int = BATCH_BYTES
            ) -> Iterator[tuple[Repository, bytes]]:
    """Contiguous runs of the pack-ordered objects, about ``target`` bytes each, as the ids
    cat-file is asked for (one a line: a worker gets one string, not an object per id, which
    cost more to pickle and unpickle than the search itself).

    git resolves a delta from its base, which sits nearby in pack order: a cat-file process
    that reads a contiguous run keeps its delta cache warm (handing out single objects
    alternately to two processes cost 25% more git time here).
    """
    batch: list[str] = []
    size = 0
    for obj in objects:
        batch.append(obj.sha)
        size += obj.size + 512  # every object costs something, even an empty one
        if size >= target:
            yield repo, _ids(batch)
            batch, size = [], 0
    if batch:
        yield repo, _ids(batch)


def _ids(shas: list[str]) -> bytes:
    return "".join(f"{sha}\n" for sha in shas).encode("ascii")
