"""Reporters: each turns findings and stats into one output format.

Each format lives in its own module and is imported only when chosen, so a clean pre-commit
run never pays for formats it does not print. A new format is one module with a ``render``
function and one line in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..findings import Finding
    from ..stats import Stats

# The registry: format name -> module of this package that renders it.
_MODULES = {"text": "text", "json": "json_report", "jsonl": "json_report", "sarif": "sarif",
            "gitlab": "gitlab", "html": "html"}
FORMATS = tuple(_MODULES)

# The version of the JSON finding and envelope (README: "JSON output"). Bump the major part
# when a field changes meaning or disappears; adding a field bumps the minor part.
REPORT_SCHEMA_VERSION = "1.2"


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What a report says about the scan as a whole, beyond its findings."""

    root: str | None = None  # absolute path the finding paths are relative to
    repository_uri: str | None = None  # the origin remote, when known
    revision: str | None = None  # HEAD of the scanned work tree, when there is one
    started_at: float = 0.0  # epoch seconds
    # Why the scan cannot count as complete (it read nothing, or --strict and input was
    # skipped for an error); the report says so, because CI reads reports, not stderr.
    failure: str | None = None


class Report:
    """A rendered report, and what the user should hear about it on stderr (a truncation).

    A report of many findings can be ``parts``: pieces made as they are written, so that
    200,000 findings never sit in memory as one string (``chunks`` writes either kind; ``text``
    joins the pieces, for callers that want it whole).
    """

    __slots__ = ("_parts", "_text", "notes")

    def __init__(self, text: str = "", notes: tuple[str, ...] = (), *,
                 parts: Callable[[], Iterable[str]] | None = None) -> None:
        self._text = text
        self._parts = parts
        self.notes = notes

    @property
    def text(self) -> str:
        return self._text if self._parts is None else "".join(self._parts())

    def chunks(self) -> Iterator[str]:
        """The report in pieces, each made only when the one before has been written."""
        if self._parts is None:
            yield self._text
        else:
            yield from self._parts()


class Renderer(Protocol):
    """What a format module provides."""

    def __call__(self, fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool,
                 color: bool, context: ReportContext) -> Report: ...


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False,
    color: bool = False, context: ReportContext | None = None,
) -> Report:
    """The whole report (its text empty when a format has nothing to say)."""
    module = importlib.import_module(f".{_MODULES[fmt]}", __name__)
    renderer: Renderer = module.render
    return renderer(fmt, findings, stats, reveal=reveal, color=color,
                    context=context or ReportContext())
