"""Reporters: each turns findings and stats into one output format.

Each format lives in its own module and is imported only when chosen, so a clean pre-commit
run never pays for formats it does not print.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..findings import Finding
    from ..scanner import Stats

FORMATS = ("text", "json", "jsonl", "sarif", "gitlab", "html")
_MODULES = {"text": "text", "json": "json_report", "jsonl": "json_report", "sarif": "sarif",
            "gitlab": "gitlab", "html": "html"}

# The version of the JSON finding and envelope (README: "JSON output"). Bump the major part
# when a field changes meaning or disappears; adding a field bumps the minor part.
REPORT_SCHEMA_VERSION = "1.1"


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What a report says about the scan as a whole, beyond its findings."""

    root: str | None = None  # absolute path the finding paths are relative to
    repository_uri: str | None = None  # the origin remote, when known
    revision: str | None = None  # HEAD of the scanned work tree, when there is one
    started_at: float = 0.0  # epoch seconds
    notes: list[str] = field(default_factory=list)  # filled by reporters: said on stderr


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False,
    color: bool = False, context: ReportContext | None = None,
) -> str:
    """The whole report as text (empty when a format has nothing to say)."""
    module = importlib.import_module(f".{_MODULES[fmt]}", __name__)
    return module.render(fmt, findings, stats, reveal=reveal, color=color,
                         context=context or ReportContext())
