"""What a scan covered: the one shape every source fills in.

This module imports nothing from the package, so every layer (sources, the run, triage,
reporters, the console) can read the same counters without an import cycle. (``ScanResult``,
findings plus stats, lives in ``findings.py`` for that reason.)
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

ERROR_SKIPS = frozenset({"unreadable", "error"})  # skipped paths that are errors
NOT_ERRORS = frozenset({"shallow_clone"})  # warnings that are not


@dataclass(frozen=True, slots=True)
class Skip:
    """Something passed over (a path: the ``skipped`` counter) or a problem inside content that
    was scanned (an archive limit, a broken git object: the ``warnings`` counter)."""

    display_path: str
    reason: str  # "symlink", "special", "excluded", "unreadable", "archive_limit", ...
    detail: str = ""


@dataclass(slots=True)
class Batch(Generic[T]):
    """What a worker sends back for one batch of work, whatever the source: what it read, what
    it passed over, and what it found (findings, or hits a source resolves later)."""

    found: list[T] = field(default_factory=list)
    scanned: Counter[str] = field(default_factory=Counter)  # by kind: file, blob, commit, tag
    size: int = 0
    skips: list[Skip] = field(default_factory=list)
    notes: list[Skip] = field(default_factory=list)
    members: int = 0
    expanded: int = 0
    below_confidence: int = 0  # matches under the confidence floor: counted, never sent


@dataclass(slots=True)
class GitCounts:
    """What a git scan read beyond bytes: present exactly when git was the source."""

    blobs: int = 0
    commits: int = 0
    tags: int = 0
    history_cut: bool = False  # a shallow clone: commits before the cut were not there


@dataclass(slots=True)
class ShardCounts:
    """What one job of a sharded, many-repository scan took: present exactly then."""

    shard: str | None = None  # "K/N", None when not sharded
    repositories: int = 0  # this shard's share
    listed: int = 0  # before sharding
    failed: int = 0  # could not be fetched or opened
    new_findings: int = 0  # first seen by this run (with --state)

    def to_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "repositories": self.repositories,
                "repositories_listed": self.listed, "repositories_failed": self.failed,
                "findings_new": self.new_findings}


@dataclass(slots=True)
class ImageCounts:
    """What an image scan read beyond files: present exactly when images were the source."""

    images: int = 0  # images (one per platform of a reference) whose config was read
    layers: int = 0  # distinct layers read completely and matching their digest
    unread: int = 0  # images, layers or blobs not read (or not verified): the run exits 2


@dataclass(slots=True)
class Stats:
    """What a scan covered. A scan that covered nothing must be visible as such."""

    files_scanned: int = 0
    bytes_scanned: int = 0
    archive_members_scanned: int = 0
    archive_bytes_expanded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    findings_reported: int = 0
    findings_below_confidence: int = 0
    findings_filtered: int = 0  # dropped by --results / --only-live
    suppressed: Counter[str] = field(default_factory=Counter)  # by kind: inline, config, baseline
    baseline_stale: int | None = None  # only when asked (--report-stale)
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    git: GitCounts | None = None  # set by a git scan
    shard: ShardCounts | None = None  # set by a many-repository scan (``org.py``)
    image: ImageCounts | None = None  # set by an image scan

    def add(self, batch: Batch[Any]) -> None:
        """Count what one batch read (its skips and notes are counted as they are reported)."""
        scanned = batch.scanned
        self.files_scanned += scanned["file"]
        if self.git is not None:
            self.git.blobs += scanned["blob"]
            self.git.commits += scanned["commit"]
            self.git.tags += scanned["tag"]
        if self.image is not None:
            self.image.layers += scanned["layer"]
        self.bytes_scanned += batch.size
        self.archive_members_scanned += batch.members
        self.archive_bytes_expanded += batch.expanded
        self.findings_below_confidence += batch.below_confidence

    @property
    def problems(self) -> int:
        """Inputs skipped or cut short for an error (an unreadable file, a corrupt object, an
        archive limit): what ``--strict`` fails the run for. Deliberate skips (excludes,
        symbolic links, special files) and a shallow clone's cut are not errors."""
        skipped = sum(n for why, n in self.skipped.items() if why in ERROR_SKIPS)
        warned = sum(n for why, n in self.warnings.items() if why not in NOT_ERRORS)
        return skipped + warned

    @property
    def items_scanned(self) -> int:
        """Files, git objects, images and layers read: zero means the scan covered nothing."""
        git, image = self.git, self.image
        objects = git.blobs + git.commits + git.tags if git is not None else 0
        images = image.images + image.layers if image is not None else 0
        return self.files_scanned + objects + images

    def to_dict(self) -> dict[str, Any]:
        """The ``stats`` object of the JSON report (README: "JSON output")."""
        git: dict[str, Any] = {}
        if self.git is not None:
            git = {"blobs_scanned": self.git.blobs, "commits_scanned": self.git.commits,
                   "tags_scanned": self.git.tags, "history_cut": self.git.history_cut}
        if self.image is not None:
            git = {"images_scanned": self.image.images, "layers_scanned": self.image.layers}
        return {
            "files_scanned": self.files_scanned,
            **git,
            **({"repositories": self.shard.to_dict()} if self.shard is not None else {}),
            "bytes_scanned": self.bytes_scanned,
            "archive_members_scanned": self.archive_members_scanned,
            "archive_bytes_expanded": self.archive_bytes_expanded,
            "skipped": dict(sorted(self.skipped.items())),
            "warnings": dict(sorted(self.warnings.items())),
            "findings_reported": self.findings_reported,
            "findings_below_confidence": self.findings_below_confidence,
            "findings_filtered_by_results": self.findings_filtered,
            "suppressed": dict(sorted(self.suppressed.items())),
            **({"baseline_stale": self.baseline_stale}
               if self.baseline_stale is not None else {}),
            "seconds": round(self.seconds, 3),
        }

