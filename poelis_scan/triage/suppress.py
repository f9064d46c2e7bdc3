"""Which findings are not to fail the run, and why: inline comments, configuration, baseline.

A suppressed finding is kept (``--show-suppressed`` shows it, SARIF lists it as suppressed)
and counted; it just does not count as a leak. Order matters only for the reason given: the
most local reason wins (inline comment, then configuration, then baseline).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ..config import Config
from ..findings import Finding, Suppression
from ..paths import Excluder
from .baseline import Baseline


def suppress(findings: Iterable[Finding], *, config: Config, baseline: Baseline | None,
             inline: bool) -> Counter[str]:
    """Mark findings as suppressed (``finding.suppression``); returns counts by kind."""
    allowed = {a.secret_sha256: a.reason for a in config.allowed}
    excludes = [(Excluder((e.glob,)), e.reason) for e in config.excludes]
    secrets = baseline.secrets if baseline is not None else frozenset()
    counts: Counter[str] = Counter()
    for finding in findings:
        reason = _reason(finding, inline, allowed, excludes, secrets, config)
        if reason is not None:
            finding.suppression = Suppression(*reason)
            counts[reason[0]] += 1
    return counts


def _reason(finding: Finding, inline: bool, allowed: dict[str, str],
            excludes: list[tuple[Excluder, str]], secrets: frozenset[str],
            config: Config) -> tuple[str, str] | None:
    if inline and finding.inline_allow:
        return "inline", "allow comment next to the key"
    if finding.secret_sha256 in allowed:
        return "config", f"{allowed[finding.secret_sha256]} ({config.source})"
    path = finding.location.path
    parts = path.split("/")
    for excluder, why in excludes:
        if any(excluder.excluded(part, path) for part in parts):
            return "config", f"{why} ({config.source})"
    if finding.secret_sha256 in secrets:
        return "baseline", "recorded in the baseline"
    return None
