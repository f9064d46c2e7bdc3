"""GitLab's secret detection report (``gl-secret-detection-report.json``, schema 15.2.1).

The schema requires ``location.commit.sha`` even for a plain file scan: we give the HEAD of the
work tree that holds the scanned path, and outside git the documented placeholder
``0000000000000000000000000000000000000000``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

from ..detect.grammar import LEGACY_RULE_ID
from ..findings import ZERO_SHA, Finding
from ..stats import Stats
from ..version import __url__, __version__
from . import Report, ReportContext

_LEGACY_SOLUTION = ("Rotate the client secret of the Auth0 client this legacy credential holds "
                    "(it cannot be verified: treat it as live), move to a REST API key kept in "
                    "a secret store, and remove it from the code. Removing it from history does "
                    "not un-leak it.")

SCHEMA_VERSION = "15.2.1"
SCHEMA_URI = ("https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
              "v15.2.1/dist/secret-detection-report-format.json")
_TOOL = {"id": "poelis-scan", "name": "poelis-scan", "version": __version__,
         "vendor": {"name": "poelis-scan"}, "url": __url__}


def _timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def _vulnerability(finding: Finding, occurrence: int, head: str) -> dict[str, Any]:
    git = finding.git
    # Stable across runs: the fingerprint, and which occurrence of it this is.
    digest = hashlib.sha256(f"{finding.fingerprint}:{occurrence}".encode()).digest()
    commit: dict[str, Any] = {"sha": (git.commit if git else None) or head}
    if git is not None and git.author:
        commit["author"] = f"{git.author} <{git.email or ''}>"
    if git is not None and git.date:
        commit["date"] = git.date
    status = finding.verification.status
    where = finding.artifact_path + (f" (member {finding.location.member})"
                                     if finding.location.member else "")
    legacy = finding.rule_id == LEGACY_RULE_ID
    noun = "Legacy Poelis credential" if legacy else "Poelis API key"
    return {
        "id": str(uuid.UUID(bytes=digest[:16])),
        "name": "Legacy Poelis client credential" if legacy else "Poelis REST API key",
        "description": (f"{noun} {finding.redacted} in {where}, line "
                        f"{finding.location.line} (confidence {finding.confidence.value}, "
                        f"verification: {status}). Anyone holding it can read the whole "
                        "organization's data."),
        "severity": "Critical" if finding.confidence.value == "high" else "Medium",
        "solution": (_LEGACY_SOLUTION if legacy else
                     "Revoke the key in Poelis Settings > Manage REST API Keys, deploy a new "
                     "key through a secret store, and remove the key from the code. Removing it "
                     "from history does not un-leak it."),
        "identifiers": [
            {"type": "poelis_scan_rule_id", "name": f"poelis-scan rule {finding.rule_id}",
             "value": finding.rule_id},
            {"type": "cwe", "name": "CWE-798", "value": "798",
             "url": "https://cwe.mitre.org/data/definitions/798.html"},
        ],
        "location": {
            "file": finding.artifact_path,
            "start_line": finding.location.line,
            "end_line": finding.location.line,
            "commit": commit,
        },
    }


def render(fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False,
           color: bool = False, context: ReportContext) -> Report:
    """The report; never the key (GitLab shows this report to everyone on the project)."""
    head = context.revision or ZERO_SHA
    seen: dict[str, int] = {}
    vulnerabilities = []
    for finding in findings:
        if finding.suppression:
            continue  # GitLab has no suppressed state: a suppressed finding is not reported
        occurrence = seen[finding.fingerprint] = seen.get(finding.fingerprint, 0) + 1
        vulnerabilities.append(_vulnerability(finding, occurrence, head))
    started = context.started_at or time.time() - stats.seconds
    report = {
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URI,
        "scan": {
            "analyzer": _TOOL,
            "scanner": _TOOL,
            "type": "secret_detection",
            "start_time": _timestamp(started),
            "end_time": _timestamp(started + stats.seconds),
            "status": "failure" if context.failure else "success",
        },
        "vulnerabilities": vulnerabilities,
    }
    return Report(json.dumps(report, indent=2) + "\n")
