"""Human-readable report: one ``path:line:column`` line per finding, like a compiler error,
so editors and terminals turn it into a link."""

from __future__ import annotations

from ..findings import Finding
from ..paths import printable
from ..stats import Stats
from . import Report, ReportContext

_RED = "\033[31m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_RESET = "\033[0m"


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def format_finding(finding: Finding, *, reveal: bool = False, color: bool = False) -> str:
    loc = finding.location
    # Names come from the scanned content (file names, archive members, git paths): escaped,
    # so none can hide this line, forge another or retitle the terminal.
    shown = printable(finding.display_path)
    where = f"{shown}:{loc.line}:{loc.column}"
    if loc.member:
        where = f"{shown}[{printable(loc.member)}]:{loc.line}:{loc.column}"
    key = finding.secret if reveal else finding.redacted
    extra = [finding.confidence.value]
    if finding.encoding != "plain":
        extra.append(finding.encoding)
    status = finding.verification.status
    if status != "unverified":
        extra.append(status)
    image = finding.image
    if image is not None and image.deleted:
        extra.append("deleted")
    if image is not None and not image.digest_verified:
        extra.append("digest not verified")
    if finding.suppression:
        extra.append(f"suppressed: {printable(finding.suppression.kind)}")
    return (
        f"{_paint(where, _BOLD, color)}: Poelis API key {_paint(key, _RED, color)} "
        f"{_paint('(' + ', '.join(extra) + ')', _DIM, color)}"
    )


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False, color: bool = False,
    context: ReportContext,
) -> Report:
    return Report("".join(format_finding(f, reveal=reveal, color=color) + "\n"
                          for f in findings))
