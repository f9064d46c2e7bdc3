"""Baselines: today's findings recorded, so that only new leaks fail CI.

A baseline holds secret hashes and fingerprints only, never a key. It is sorted and carries no
timestamp, so two branches that each add an entry merge without conflict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ScanError

if TYPE_CHECKING:
    from ..findings import Finding

BASELINE_VERSION = 1


class BaselineError(ScanError, ValueError):
    """An unreadable or malformed baseline file; one line of text."""


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    secret_sha256: str
    fingerprint: str
    path: str


@dataclass(frozen=True, slots=True)
class Baseline:
    entries: tuple[Entry, ...]

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(e.secret_sha256 for e in self.entries)

    def stale(self, seen_secrets: Iterable[str]) -> list[Entry]:
        """Entries whose secret no finding of this scan holds any more."""
        seen = set(seen_secrets)
        return [e for e in self.entries if e.secret_sha256 not in seen]


def from_findings(findings: Iterable[Finding]) -> Baseline:
    entries = {Entry(f.secret_sha256, f.fingerprint, f.location.path) for f in findings}
    return Baseline(tuple(sorted(entries)))


def dumps(baseline: Baseline) -> str:
    import json  # here, not above: a run without a baseline never needs it

    document = {
        "tool": "poelis-scan",
        "version": BASELINE_VERSION,
        "entries": [{"secret_sha256": e.secret_sha256, "fingerprint": e.fingerprint,
                     "path": e.path} for e in baseline.entries],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def load(path: str) -> Baseline:
    """Read a baseline file (a regular file of at most 1 MiB: see ``config.read_small_file``)."""
    from ..config import read_small_file

    return loads(read_small_file(path, "baseline", BaselineError), path)


def loads(data: bytes, path: str) -> Baseline:
    """Parse baseline bytes read from a file or from a commit (``path`` names them)."""
    import json  # here, not above: a run without a baseline never needs it

    try:
        document = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise BaselineError(f"{path}: not a poelis-scan baseline (nested too deeply)") from None
    except ValueError as error:
        raise BaselineError(f"{path}: not a poelis-scan baseline (invalid JSON: {error})") from None
    if not isinstance(document, dict) or document.get("tool") != "poelis-scan":
        raise BaselineError(f"{path}: not a poelis-scan baseline (no \"tool\": \"poelis-scan\")")
    if document.get("version") != BASELINE_VERSION:
        raise BaselineError(f"{path}: baseline version {document.get('version')!r} is not "
                            f"supported (expected {BASELINE_VERSION})")
    try:
        entries = tuple(Entry(str(e["secret_sha256"]), str(e["fingerprint"]), str(e["path"]))
                        for e in document["entries"])
    except (KeyError, TypeError, RecursionError):
        raise BaselineError(f"{path}: malformed entries (each needs secret_sha256, "
                            "fingerprint and path)") from None
    return Baseline(entries)
