"""Incremental git scans (``--state``): the objects of a selection minus those an earlier run
read, and a record of what this run hands to the workers, for the state to mark as read once
its findings are stored.

Kept apart from ``objects.py`` and ``contents.py``: the selection and the reading stay what
they are; an incremental scan only filters what flows between them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator

from .plumbing import GitObject


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
