"""Machine-readable reports: ``json`` (one envelope) and ``jsonl`` (one finding a line)."""

from __future__ import annotations

import json

from .. import __version__
from ..findings import Finding
from ..scanner import Stats
from . import REPORT_SCHEMA_VERSION, ReportContext


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False, color: bool = False,
    context: ReportContext,
) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(f.to_dict(reveal)) + "\n" for f in findings)
    envelope = {
        "version": REPORT_SCHEMA_VERSION,
        "tool": {"name": "poelis-scan", "version": __version__},
        "findings": [f.to_dict(reveal) for f in findings],
        "stats": stats.to_dict(),
    }
    return json.dumps(envelope, indent=2) + "\n"
