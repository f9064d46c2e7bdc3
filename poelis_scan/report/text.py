"""Human-readable report: one ``path:line:column`` line per finding, like a compiler error,
so editors and terminals turn it into a link — live keys first, each verdict in its own
colour, and for history findings who committed the key and when.

Everything printed here that came from outside (paths, archive members, git names and
emails, refs, server text) passes through ``_shown``, the one place that makes untrusted
text safe for a terminal.
"""

from __future__ import annotations

from collections import Counter

from ..detect.grammar import LEGACY_RULE_ID
from ..findings import FileOrigin, Finding, GitOrigin
from ..paths import printable
from ..stats import Stats
from . import Report, ReportContext

_RED = "\033[31m"
_YELLOW = "\033[33m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_RESET = "\033[0m"
_VERDICT_STYLE = {"live": _RED + _BOLD, "revoked": _DIM, "unknown": _YELLOW}
# Live keys first: they are the ones to act on now. The rest keep the report order.
_VERDICT_RANK = {"live": 0}
_NOUN = {LEGACY_RULE_ID: "Legacy Poelis credential"}


def _shown(text: str) -> str:
    """Untrusted text made printable (``paths.printable``: undecodable bytes and control
    characters such as terminal escapes, CR and bidirectional overrides become visible
    escapes), so no name can hide this line, forge another or retitle the terminal."""
    return printable(text)


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def origin_marks(git: GitOrigin) -> list[str]:
    """What kind of place in git holds the key, when it is not a plain commit on a branch."""
    marks: list[str] = []
    if git.kind == "unreachable":
        marks.append("unreachable: no ref or reflog reaches it")
    elif git.kind == "note":
        marks.append("in a git note")
    elif git.kind == "staged":
        marks.append("staged")
    elif git.kind == "tag-message":
        marks.append("tag message")
    elif git.kind == "commit-message":
        marks.append("commit message")
    # Every commit under a stash is "contained" in refs/stash: only a stash that no other
    # ref reaches is the stash's own content.
    if git.refs and all(ref == "refs/stash" for ref in git.refs):
        marks.append("stash")
    elif git.kind in ("blob", "commit-message") and git.commit and not git.refs:
        marks.append("reflog only")
    return marks


def _provenance(git: GitOrigin) -> str:
    """`` (Jane Doe <jane@example.com>, 2026-01-04, stash)``: who, when, what kind of place."""
    parts: list[str] = []
    who = " ".join(p for p in (_shown(git.author or ""),
                               f"<{_shown(git.email)}>" if git.email else "") if p)
    if who:
        parts.append(who)
    if git.date:
        parts.append(_shown(git.date[:10]))
    parts += origin_marks(git)
    return f" ({', '.join(parts)})" if parts else ""


def _verdict(finding: Finding, color: bool) -> str:
    """`` live: opens 3 workspaces, 6 products``, `` revoked``, `` unknown: <reason>``."""
    verdict = finding.verification
    if verdict.status == "unverified":
        return ""
    text = verdict.status
    if verdict.status == "live":
        from ..verify import describe_access

        reach = describe_access(verdict.access)
        text += f": {reach}" if reach else ""
    elif verdict.status == "unknown" and verdict.detail:
        text += f": {_shown(verdict.detail)}"
    return " " + _paint(text, _VERDICT_STYLE.get(verdict.status, ""), color)


def format_finding(finding: Finding, *, reveal: bool = False, color: bool = False) -> str:
    loc = finding.location
    shown_path = _shown(finding.display_path)
    where = f"{shown_path}:{loc.line}:{loc.column}"
    if loc.member:
        where = f"{shown_path}[{_shown(loc.member)}]:{loc.line}:{loc.column}"
    key = finding.secret if reveal else finding.redacted
    extra = [finding.confidence.value]
    if finding.rule_id != "poelis-api-key":
        extra.append(finding.rule_id)
    if finding.encoding != "plain":
        extra.append(finding.encoding)
    image = finding.image
    if image is not None and image.deleted:
        extra.append("deleted")
    if image is not None and not image.digest_verified:
        extra.append("digest not verified")
    if finding.suppression:
        extra.append(f"suppressed: {_shown(finding.suppression.kind)}")
    noun = _NOUN.get(finding.rule_id, "Poelis API key")
    git = finding.git
    return (
        f"{_paint(where, _BOLD, color)}: {noun} {_paint(key, _RED, color)} "
        f"{_paint('(' + ', '.join(extra) + ')', _DIM, color)}{_verdict(finding, color)}"
        f"{_provenance(git) if git is not None else ''}"
    )


def ordered(findings: list[Finding]) -> list[Finding]:
    """Live keys first, everything else in the order it came (``report_order``)."""
    return sorted(findings, key=lambda f: _VERDICT_RANK.get(f.verification.status, 1))


def tally(findings: list[Finding]) -> str:
    """``2 live, 5 revoked, 1 unknown``: the verdicts of the reported findings."""
    counts = Counter(f.verification.status for f in findings if f.suppression is None)
    order = ("live", "revoked", "unknown", "unverified")
    return ", ".join(f"{counts[s]} {s}" for s in order if counts[s] or s in order[:3])


_REMOVE = ("remove it from the file. If it ever left this machine (pushed, shared, uploaded), "
           "revoke it: Poelis Settings > Manage REST API Keys > Revoke.")
_HISTORY = ("revoke it first (Poelis Settings > Manage REST API Keys > Revoke), then remove "
            "it: rewriting history does not un-leak a pushed key (clones, forks and CI caches "
            "keep the old objects).")
_IMAGE = ("revoke it first (Poelis Settings > Manage REST API Keys > Revoke): every pull of "
          "the image carries it, deleted in a later layer or not. Then rebuild the image "
          "without it (no COPY of the file, no build argument or ENV holding it) and delete the "
          "old tags and digests from the registries.")
_STAGED = ("unstage it (git restore --staged <path>), remove the key from the file and "
           "commit again: it is not in any commit yet. If it ever left this "
           "machine another way (shared, uploaded), revoke it too: Poelis Settings > Manage "
           "REST API Keys > Revoke.")
_LEGACY = ("legacy poelis_live_ credentials cannot be verified: rotate the client secret of "
           "that Auth0 client and move to a REST API key kept in a secret store.")
_ALLOW = "A false alarm? Put 'poelis-scan: allow' in a comment on that line."


def _place(finding: Finding) -> str:
    git = finding.git
    if finding.image is not None:
        return "image"
    if isinstance(finding.origin, FileOrigin) or git is None:
        return "work tree"
    return "staged" if git.kind == "staged" else "history"


def advice(findings: list[Finding]) -> list[str]:
    """What to do, for where the keys are (work tree, staged, history, image); nothing when every
    reported finding is low confidence (those are worth a look, not an incident)."""
    acting = [f for f in findings if f.suppression is None and f.confidence.value == "high"]
    if not acting:
        return []
    places = {_place(f) for f in acting}
    lines = []
    for place, text in (("staged", _STAGED), ("work tree", _REMOVE), ("history", _HISTORY),
                        ("image", _IMAGE)):
        if place in places:
            lines.append(f"poelis-scan: what to do (key {'in ' if place != 'staged' else ''}"
                         f"{place}): {text}")
    if any(f.rule_id == LEGACY_RULE_ID for f in acting):
        lines.append(f"poelis-scan: what to do ({LEGACY_RULE_ID}): {_LEGACY}")
    lines.append(f"poelis-scan: {_ALLOW}")
    return lines


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False, color: bool = False,
    context: ReportContext,
) -> Report:
    return Report("".join(format_finding(f, reveal=reveal, color=color) + "\n"
                          for f in ordered(findings)))
