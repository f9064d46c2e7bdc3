"""``poelis-scan report --state DB``: everything the shards recorded, as one report.

Stored findings carry no key, so they are shown through ``StoredView``, a ``Finding`` whose
hash, redacted form and fingerprint come from the state; every existing reporter (text,
jsonl, gitlab, html) renders it unchanged. JSON adds the per-secret view (one key in 40
repositories is one secret with 40 locations) and the runs; SARIF gets one run per
repository, each with its own ``versionControlProvenance``.

A reporter, so it lives in ``report/``; it reads the state (a lower layer) itself, which keeps
the command in ``run.py`` to a call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..detect.grammar import Confidence
from ..findings import Finding, GitOrigin, Location
from ..state import StateError, StoredFinding, describe, normalize_date, open_state
from ..stats import GitCounts, Stats
from ..version import __version__

# What a stored finding holds in place of its key: no key run (``poelis_…``) contains it, so
# the HTML report's scrubbing of keys in free text finds nothing to replace.
_NO_KEY = "\x00"


class ReportError(Exception):
    """A report that cannot be made; the text is one line."""


class StoredView(Finding):
    """A stored finding in the shape reporters read. It has no key to reveal."""

    __slots__ = ("stored",)

    def __init__(self, stored: StoredFinding) -> None:
        loc = stored.location
        super().__init__(
            secret=_NO_KEY, confidence=Confidence(stored.confidence), reason="",
            location=Location(loc["path"], loc["line"], loc["column"], loc["end_column"],
                              loc.get("member")),
            display_path=stored.display_path, encoding=stored.encoding,
            rule_id=stored.rule_id)
        if stored.provenance is not None:
            self.origin = _origin(stored.provenance, stored.repository)
        self.stored = stored

    @property
    def secret_sha256(self) -> str:
        return self.stored.secret_sha256

    @property
    def redacted(self) -> str:
        return self.stored.secret_redacted

    @property
    def fingerprint(self) -> str:
        return self.stored.fingerprint

    def to_dict(self, reveal: bool = False) -> dict[str, Any]:
        out = super().to_dict(False)
        del out["confidence_reason"]
        out.update({"repository": self.stored.repository,
                    "first_seen_run": self.stored.first_run,
                    "last_seen_run": self.stored.last_run,
                    "first_seen": self.stored.first_seen, "last_seen": self.stored.last_seen})
        return out


def _origin(provenance: dict[str, Any], repository: str) -> GitOrigin:
    """The typed origin back from its stored JSON (``GitOrigin.to_dict`` less the checkout)."""
    return GitOrigin(
        kind=provenance.get("kind") or "blob", blob=provenance.get("blob") or "",
        object_type=provenance.get("object_type") or "blob", repository=repository,
        commit=provenance.get("commit"), author=provenance.get("author"),
        email=provenance.get("email"), date=provenance.get("date"),
        refs=tuple(provenance.get("refs") or ()), notes_commit=provenance.get("notes_commit"))


def _repository_identity(name: str, known: list[tuple[str, str]]) -> str:
    """What ``--repository`` names: an identity, a display name, a URL or a path."""
    for identity, shown in known:
        if name in (identity, shown):
            return identity
    from ..sources.remote import RemoteError, classify

    try:
        return classify(name).identity
    except RemoteError as error:
        raise ReportError(str(error)) from None


def _since(since: str | None) -> tuple[int | None, str | None]:
    if since is None:
        return None, None
    if since.strip().isdigit():
        return int(since), None
    try:
        return None, normalize_date(since)
    except ValueError:
        raise ReportError(f"--since takes a run id or an ISO 8601 date, not {since!r}") from None


def load(target: str, *, repository: str | None = None, since: str | None = None,
         new_only: bool = False) -> tuple[list[StoredView], list[dict[str, Any]]]:
    """The stored findings the filters select, and every run, from the state at ``target``."""
    since_run, since_date = _since(since)
    try:
        with open_state(target) as state:
            try:
                wanted = (_repository_identity(repository, state.repositories())
                          if repository is not None else None)
                rows = state.findings(repository=wanted, since_run=since_run,
                                      since_date=since_date, new_only=new_only)
                runs = [{"id": r.id, "started_at": r.started_at, "finished_at": r.finished_at,
                         "shard": r.shard, "tool_version": r.tool_version}
                        for r in state.runs()]
            except state.errors as error:
                raise ReportError(f"state: {describe(error)}") from None
    except StateError as error:
        raise ReportError(str(error)) from None
    return [StoredView(row) for row in rows], runs


def secrets_view(findings: Iterable[StoredView]) -> list[dict[str, Any]]:
    """One entry per distinct key, with every place it was found."""
    by_secret: dict[str, dict[str, Any]] = {}
    for f in findings:
        entry = by_secret.setdefault(f.secret_sha256, {
            "secret_sha256": f.secret_sha256, "secret_redacted": f.redacted,
            "repositories": [], "locations": []})
        if f.stored.repository not in entry["repositories"]:
            entry["repositories"].append(f.stored.repository)
        git = f.git
        entry["locations"].append({
            "repository": f.stored.repository, "path": f.location.path,
            "line": f.location.line, "commit": git.commit if git else None,
            "kind": git.kind if git else None,
            "fingerprint": f.fingerprint, "first_seen_run": f.stored.first_run,
            "last_seen_run": f.stored.last_run})
    return sorted(by_secret.values(), key=lambda e: (-len(e["repositories"]),
                                                     e["secret_sha256"]))


def _stats(findings: list[StoredView]) -> Stats:
    stats = Stats(git=GitCounts())
    stats.findings_reported = len(findings)
    return stats


def render_state(target: str, fmt: str, *, repository: str | None = None,
                 since: str | None = None, new_only: bool = False) -> tuple[str, int]:
    """The report text and the number of findings in it."""
    from . import REPORT_SCHEMA_VERSION, ReportContext, render

    findings, runs = load(target, repository=repository, since=since, new_only=new_only)
    if fmt == "json":
        envelope = {
            "version": REPORT_SCHEMA_VERSION,
            "tool": {"name": "poelis-scan", "version": __version__},
            "findings": [f.to_dict() for f in findings],
            "secrets": secrets_view(findings),
            "runs": runs,
            "stats": {"findings_reported": len(findings),
                      "secrets": len({f.secret_sha256 for f in findings}),
                      "repositories": len({f.stored.repository for f in findings}),
                      "runs": len(runs)},
        }
        return json.dumps(envelope, indent=2) + "\n", len(findings)
    if fmt == "sarif":
        return _sarif(findings), len(findings)
    as_findings: list[Finding] = list(findings)
    report = render(fmt, as_findings, _stats(findings), context=ReportContext())
    return report.text, len(findings)


def _sarif(findings: list[StoredView]) -> str:
    """One SARIF run per repository, each naming its repository."""
    from . import ReportContext, render

    by_repo: dict[str, list[StoredView]] = {}
    for f in findings:
        by_repo.setdefault(f.stored.repository, []).append(f)
    runs: list[Any] = []
    document: dict[str, Any] | None = None
    for identity, group in sorted(by_repo.items()):
        commit = next((f.git.commit for f in group if f.git and f.git.commit), None)
        context = ReportContext(repository_uri=group[0].stored.repository_display,
                                revision=commit)
        part = json.loads(render("sarif", list[Finding](group), _stats(group),
                                 context=context).text)
        for run in part["runs"]:
            run.setdefault("properties", {})["repository"] = identity
        runs.extend(part["runs"])
        document = document or part
    if document is None:
        document = json.loads(render("sarif", [], _stats([]), context=ReportContext()).text)
    else:
        document["runs"] = runs
    return json.dumps(document, indent=2) + "\n"
