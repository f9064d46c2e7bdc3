"""Machine-readable reports: ``json`` (one envelope) and ``jsonl`` (one finding a line)."""

from __future__ import annotations

import json

from ..findings import Finding
from ..stats import Stats
from ..version import __version__
from . import REPORT_SCHEMA_VERSION, Report, ReportContext


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False, color: bool = False,
    context: ReportContext,
) -> Report:
    if fmt == "jsonl":
        return Report("".join(json.dumps(f.to_dict(reveal)) + "\n" for f in findings))
    envelope = {
        "version": REPORT_SCHEMA_VERSION,
        "tool": {"name": "poelis-scan", "version": __version__},
        "findings": [f.to_dict(reveal) for f in findings],
        "stats": stats.to_dict(),
    }
    return Report(json.dumps(envelope, indent=2) + "\n")
