"""After detection: suppress, verify, filter — and decide what fails the run.

One function, ``triage``, shared by every scanning command, so ``scan`` and ``git`` can never
disagree on what an allow comment, a baseline or ``--only-live`` means.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import Config
from ..findings import Finding, report_order
from .baseline import Baseline, Entry
from .suppress import suppress

if TYPE_CHECKING:
    from ..verify import Verifier


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
    """What triage decided; the run folds its counts into the stats."""

    reported: list[Finding]  # what the report shows
    failing: int  # reported findings that are not suppressed: they decide the exit status
    stale: list[Entry]  # baseline entries no finding matched
    suppressed: Counter[str]  # by kind: inline, config, baseline
    filtered: int  # dropped by --results / --only-live


def triage(findings: list[Finding], policy: Policy,
           make_verifier: Callable[[], Verifier | None]) -> Outcome:
    """Mark suppressions, verify what is still a leak, keep what the user asked to see.

    Verification is asked only for findings that are not suppressed: a key the team has
    accepted is nobody's reason to call the API.
    """
    counts = suppress(findings, config=policy.config, baseline=policy.baseline,
                      inline=policy.inline_allow)
    active = [f for f in findings if f.suppression is None]
    if policy.verify and active:
        from ..verify import apply_verdicts

        verifier = make_verifier()
        if verifier is not None:
            apply_verdicts(active, verifier)
    filtered = 0
    if policy.results is not None:
        kept = [f for f in active if f.verification.status in policy.results]
        filtered = len(active) - len(kept)
        active = kept
    stale = policy.baseline.stale(f.secret_sha256 for f in findings) if policy.baseline else []
    reported = list(active)
    if policy.show_suppressed:
        reported += [f for f in findings if f.suppression]
    reported.sort(key=report_order)
    return Outcome(reported, len(active), stale, counts, filtered)
