"""After detection: suppress, verify, filter — and decide what fails the run.

One function, ``triage``, shared by every scanning command, so ``scan`` and ``git`` can never
disagree on what an allow comment, a baseline or ``--only-live`` means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .baseline import Baseline, Entry
from .config import Config
from .suppress import suppress


@dataclass(slots=True)
class Policy:
    """What the user asked for about findings, from options and configuration."""

    config: Config = field(default_factory=Config)
    baseline: Baseline | None = None
    inline_allow: bool = True
    show_suppressed: bool = False
    results: set[str] | None = None  # verification results to report; None: all
    verify: bool = False


@dataclass(slots=True)
class Outcome:
    reported: list[Any]  # what the report shows
    failing: int  # reported findings that are not suppressed: they decide the exit status
    stale: list[Entry]  # baseline entries no finding matched


def triage(findings: list[Any], stats: Any, policy: Policy,
           make_verifier: Callable[[], Any]) -> Outcome:
    """Mark suppressions, verify what is still a leak, keep what the user asked to see.

    Verification is asked only for findings that are not suppressed: a key the team has
    accepted is nobody's reason to call the API.
    """
    counts = suppress(findings, config=policy.config, baseline=policy.baseline,
                      inline=policy.inline_allow)
    stats.suppressed.update(counts)
    active = [f for f in findings if f.suppression is None]
    if policy.verify and active:
        from .verify import apply_verdicts

        apply_verdicts(active, make_verifier())
    if policy.results is not None:
        kept = [f for f in active if f.verification["status"] in policy.results]
        stats.findings_filtered = len(active) - len(kept)
        active = kept
    stale = policy.baseline.stale(f.secret_sha256 for f in findings) if policy.baseline else []
    reported = list(active)
    if policy.show_suppressed:
        reported += [f for f in findings if f.suppression]
    reported.sort(key=lambda f: (f.location.path, f.location.line, f.location.column))
    stats.findings_reported = len(active)
    return Outcome(reported, len(active), stale)
