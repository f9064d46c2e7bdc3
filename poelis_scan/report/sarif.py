"""SARIF 2.1.0 for GitHub code scanning (and any other SARIF consumer).

One run, two rules (API keys, legacy credentials). Locations are relative to ``%SRCROOT%``
(the repository root, or the scanned directory outside git), so alerts line up with the
checkout. ``partialFingerprints`` are ours, computed from rule, path and secret hash, so an
alert keeps its identity when lines move, when the scan runs on another machine and when
history is rewritten.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from ..detect.grammar import LEGACY_RULE_ID
from ..findings import RULE_ID, RULE_IDS, Finding, report_order
from ..stats import Stats
from ..version import __url__, __version__
from . import Report, ReportContext

MAX_RESULTS = 5000
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = __url__

_HELP_TEXT = (
    "A Poelis REST API key was found. Poelis keys are organization-scoped: anyone holding this "
    "key can read every workspace, product and item of your organization.\n\n"
    "What to do:\n"
    "1. Revoke the key now: Poelis Settings > Manage REST API Keys > Revoke.\n"
    "2. Create a new key and deploy it through your secret store, not through the repository.\n"
    "3. Remove the key from the code. Removing it from history (rewriting commits) does not "
    "un-leak it: clones, forks and CI caches keep the old objects, so revoking is what counts.\n"
)
_HELP_MARKDOWN = (
    "A **Poelis REST API key** was found. Poelis keys are organization-scoped: anyone holding "
    "this key can read every workspace, product and item of your organization.\n\n"
    "**What to do**\n\n"
    "1. **Revoke the key now**: Poelis *Settings → Manage REST API Keys → Revoke*.\n"
    "2. Create a new key and deploy it through your secret store, not through the repository.\n"
    "3. Remove the key from the code. Removing it from history does **not** un-leak it: "
    "clones, forks and CI caches keep the old objects, so revoking is what counts.\n\n"
    "A false alarm? Put `poelis-scan: allow` in a comment on the line, or record the secret's "
    "SHA-256 under `allow` in `.poelis-scan.toml` with a reason.\n"
)

_LEGACY_HELP_TEXT = (
    "A legacy Poelis credential (poelis_live_org_<env>_<client_id>_<client_secret>) was found. "
    "The Poelis Python SDK documented these in October 2025; they hold Auth0 client "
    "credentials, which are exchanged elsewhere for short-lived access, so they may still open "
    "your organization's data. poelis-scan cannot prove them live (they are never sent anywhere): "
    "treat every one as live.\n\n"
    "What to do:\n"
    "1. Rotate the client secret of that Auth0 client (or ask Poelis support to) and retire the "
    "legacy credential; move to a REST API key (poelis_api_…) kept in your secret store.\n"
    "2. Remove the credential from the code. Rewriting history does not un-leak it: clones, "
    "forks and CI caches keep the old objects, so rotating is what counts.\n"
)
_LEGACY_HELP_MARKDOWN = (
    "A **legacy Poelis credential** (`poelis_live_org_<env>_<client_id>_<client_secret>`) was "
    "found. The Poelis Python SDK documented these in October 2025; they hold Auth0 client "
    "credentials, which are exchanged elsewhere for short-lived access. poelis-scan cannot "
    "prove them live (they are never sent anywhere): **treat every one as live**.\n\n"
    "**What to do**\n\n"
    "1. **Rotate the client secret** of that Auth0 client (or ask Poelis support to) and "
    "retire the legacy credential; use a REST API key (`poelis_api_…`) from your secret "
    "store.\n"
    "2. Remove the credential from the code. Rewriting history does **not** un-leak it.\n\n"
    "A false alarm? Put `poelis-scan: allow` in a comment on the line.\n"
)

def _rule(rule_id: str, name: str, short: str, full: str, help_text: str, help_markdown: str,
          precision: str, severity: str) -> dict[str, object]:
    """One ``reportingDescriptor``: both rules differ only in their words and precision."""
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_markdown},
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": ["security", "secret", "cwe-798", "external/cwe/cwe-798"],
            "precision": precision,
            "security-severity": severity,
            "problem.severity": "error",
        },
    }


RULE = _rule(RULE_ID, "PoelisApiKey", "Poelis REST API key",
             "A Poelis REST API key (poelis_api_…) is present in the scanned content; it grants "
             "read access to a whole organization.", _HELP_TEXT, _HELP_MARKDOWN,
             "very-high", "9.5")
LEGACY_RULE = _rule(LEGACY_RULE_ID, "PoelisLegacyCredential", "Legacy Poelis client credential",
                    "A legacy Poelis credential (poelis_live_org_…) holding Auth0 client "
                    "credentials is present in the scanned content; it cannot be verified and "
                    "must be rotated.", _LEGACY_HELP_TEXT, _LEGACY_HELP_MARKDOWN, "high", "9.0")
# The driver's rules, in the order of ``RULE_IDS`` (a result's ``ruleIndex`` points here).
RULES = [{RULE_ID: RULE, LEGACY_RULE_ID: LEGACY_RULE}[rule_id] for rule_id in RULE_IDS]
_NOUN = {RULE_ID: "Poelis API key", LEGACY_RULE_ID: "Legacy Poelis credential"}
_FIX = {RULE_ID: "Revoke it in Poelis Settings > Manage REST API Keys.",
        LEGACY_RULE_ID: "Rotate its Auth0 client secret; it cannot be verified."}


def _severity_rank(finding: Finding) -> tuple[int, int]:
    status = finding.verification.status
    order = {"live": 0, "unknown": 1, "unverified": 2, "revoked": 3}.get(status, 2)
    return (0 if finding.confidence.value == "high" else 1, order)


def _uri(path: str) -> str:
    """A relative URI reference: every character that is not safe in a path is escaped."""
    return quote(path, safe="/-._~!$&'()*+,;=@")


def _message(finding: Finding) -> str:
    where = finding.artifact_path
    if finding.location.member:
        where += f" (member {finding.location.member})"
    git = finding.git
    if git is not None and git.commit:
        where += f" at commit {git.commit[:12]}"
    status = finding.verification.status
    noun = _NOUN.get(finding.rule_id, _NOUN[RULE_ID])
    fix = _FIX.get(finding.rule_id, _FIX[RULE_ID])
    return (f"{noun} {finding.redacted} in {where} (confidence {finding.confidence.value}, "
            f"verification: {status}). {fix}")


def _result(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    git = finding.git.to_dict() if finding.git is not None else {}
    properties: dict[str, Any] = {
        "confidence": finding.confidence.value,
        "encoding": finding.encoding,
        "secret_sha256": finding.secret_sha256,
        "secret_redacted": finding.redacted,
        "verification": finding.verification.to_dict(),
    }
    if loc.member:
        properties["member"] = loc.member
    if finding.image is not None:
        properties["image"] = finding.image.to_dict()
    for key in ("commit", "kind", "author", "email", "date", "refs", "blob"):
        if git.get(key) is not None:
            properties[f"git_{key}"] = git[key]
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": RULE_IDS.index(finding.rule_id),
        "level": "error" if finding.confidence.value == "high" else "warning",
        "message": {"text": _message(finding)},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": _uri(finding.artifact_path),
                                     "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": loc.line, "startColumn": loc.column,
                           "endLine": loc.line, "endColumn": max(loc.end_column, loc.column + 1)},
            }
        }],
        "partialFingerprints": {
            "primaryLocationLineHash": f"{finding.fingerprint[:32]}:1",
            "poelisScanFingerprint/v1": finding.fingerprint,
        },
        "properties": properties,
    }
    if finding.suppression:
        result["suppressions"] = [{
            "kind": "inSource" if finding.suppression.kind == "inline" else "external",
            "justification": finding.suppression.justification,
        }]
    return result


def render(fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False,
           color: bool = False, context: ReportContext) -> Report:
    """The SARIF log. ``reveal`` is ignored: SARIF is uploaded to third parties, never a key."""
    chosen = sorted(findings, key=_severity_rank)[:MAX_RESULTS]
    chosen.sort(key=report_order)
    truncated = len(findings) > MAX_RESULTS
    notes: tuple[str, ...] = ()
    if truncated:
        notes = (f"SARIF keeps the first {MAX_RESULTS} of {len(findings)} results (most "
                 "severe first); the JSON format has them all",)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "poelis-scan", "version": __version__,
                            "semanticVersion": __version__, "informationUri": INFORMATION_URI,
                            "rules": RULES}},
        "columnKind": "unicodeCodePoints",
        "results": [_result(f) for f in chosen],
        "properties": {"truncated": truncated, "total_results": len(findings),
                       "stats": stats.to_dict()},
    }
    invocation: dict[str, Any] = {"executionSuccessful": context.failure is None}
    if context.failure is not None:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": context.failure},
             "descriptor": {"id": "incomplete-scan"}}]
    run["invocations"] = [invocation]
    if context.root:
        root_uri = "file://" + quote(os.path.abspath(context.root).rstrip("/") + "/")
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": root_uri}}
    else:
        run["originalUriBaseIds"] = {"%SRCROOT%": {"description": {"text": "the scanned root"}}}
    if context.revision:
        provenance: dict[str, Any] = {"revisionId": context.revision}
        if context.repository_uri:
            provenance["repositoryUri"] = context.repository_uri
        else:
            provenance["repositoryUri"] = "file://" + quote(os.path.abspath(context.root or "."))
        run["versionControlProvenance"] = [provenance]
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return Report(json.dumps(log, indent=2) + "\n", notes)
