"""Incremental git scans (``--state``): the objects of a selection minus those an earlier run
read, and a record of what this run hands to the workers, for the state to mark as read once
its findings are stored; a mark of the object store (unchanged: nothing to list) and the
objects new tips bring (a fetched mirror: list only those).

Kept apart from ``objects.py`` and ``contents.py``: the selection and the reading stay what
they are; an incremental scan only filters what flows between them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterable, Iterator, Sequence

from .plumbing import GitObject, Repository, run_git


class Skipping:
    """``objects`` without those in ``skip``; ``skipped`` counts what was left out and
    ``handed`` lists, in order, the ids passed on (the objects this scan reads)."""

    def __init__(self, objects: Iterable[GitObject], skip: Collection[str]) -> None:
        self.objects = objects
        self.skip = skip
        self.skipped = 0
        self.handed: list[str] = []

    def __iter__(self) -> Iterator[GitObject]:
        skip, handed = self.skip, self.handed
        for obj in self.objects:
            if obj.sha in skip:
                self.skipped += 1
            else:
                handed.append(obj.sha)
                yield obj


def old_commits(commits: Iterable[str], skip: Collection[str]) -> list[str]:
    """The commits an earlier run read: with their ancestors, they introduced nothing this
    run can find (a blob new to the store came with a new commit), so provenance walks only
    the others."""
    return [sha for sha in commits if sha in skip]


def ref_tips(repo: Repository) -> list[str]:
    """The object ids every ref points at, sorted and distinct (tags as themselves)."""
    out = run_git(repo.path, "for-each-ref", "--format=%(objectname)")
    return sorted(set(out.decode("ascii", "replace").split()))


def store_mark(repo: Repository, tips: Sequence[str]) -> str:
    """A mark of everything the object store holds: the names of its packs (named after
    their contents), of its loose objects, its alternates, and the ref tips. Equal marks mean
    no object came or went, so a rescan need not even list the store. Costs a directory walk,
    not an object read."""
    objects = os.path.join(repo.git_dir, "objects")
    digest = hashlib.sha256()
    for tip in tips:
        digest.update(f"tip {tip}\n".encode())
    for name in sorted(_names(os.path.join(objects, "pack"))):
        if name.endswith(".pack"):
            digest.update(f"pack {name}\n".encode())
    for fan in sorted(_names(objects)):
        if len(fan) == 2:
            for name in sorted(_names(os.path.join(objects, fan))):
                digest.update(f"loose {fan}{name}\n".encode())
    try:
        with open(os.path.join(objects, "info", "alternates"), "rb") as handle:
            digest.update(b"alternates " + handle.read())
    except OSError:
        pass
    return digest.hexdigest()


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def new_objects(repo: Repository, tips: Sequence[str], old_tips: Sequence[str]
                ) -> tuple[list[GitObject], list[str]]:
    """The blobs, commits and tags the ``tips`` reach and the ``old_tips`` do not (what a
    fetch brought into a mirror), and the old tips the store still holds (those the walk
    stopped at: a force-push may have dropped others)."""
    kept = _present(repo, old_tips)
    if not tips:
        return [], kept
    revs = "".join(f"{sha}\n" for sha in tips) + "".join(f"^{sha}\n" for sha in kept)
    ids = run_git(repo.path, "rev-list", "--objects", "--no-object-names", "--stdin",
                  stdin=revs.encode())
    if not ids.strip():
        return [], kept
    listing = run_git(repo.path, "cat-file",
                      "--batch-check=%(objectname) %(objecttype) %(objectsize)", stdin=ids)
    found: list[GitObject] = []
    for line in listing.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("blob", "commit", "tag"):
            found.append(GitObject(parts[0], parts[1], int(parts[2])))
    return found, kept


def _present(repo: Repository, shas: Sequence[str]) -> list[str]:
    """Which of ``shas`` the object store holds (one ``cat-file --batch-check``)."""
    if not shas:
        return []
    out = run_git(repo.path, "cat-file", "--batch-check=%(objectname)",
                  stdin="".join(f"{sha}\n" for sha in shas).encode(), check=False)
    wanted = set(shas)
    return [line for line in out.decode("ascii", "replace").splitlines() if line in wanted]
