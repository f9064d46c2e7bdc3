"""Reporters: each turns findings and stats into one output format.

Each format lives in its own module and is imported only when chosen, so a clean pre-commit
run never pays for formats it does not print.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..findings import Finding
    from ..scanner import Stats

FORMATS = ("text", "json", "jsonl")
_MODULES = {"text": "text", "json": "json_report", "jsonl": "json_report"}

# The version of the JSON finding and envelope (README: "JSON output"). Bump the major part
# when a field changes meaning or disappears; adding a field bumps the minor part.
REPORT_SCHEMA_VERSION = "1.0"


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False, color: bool = False
) -> str:
    """The whole report as text (empty when a format has nothing to say)."""
    module = importlib.import_module(f".{_MODULES[fmt]}", __name__)
    return module.render(fmt, findings, stats, reveal=reveal, color=color)
