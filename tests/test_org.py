"""Org scale end to end: real repositories (a work tree, a bare repository served as a
``file://`` URL, one served by ``git daemon`` on 127.0.0.1), shards as concurrent processes,
the state on SQLite and on a real PostgreSQL, reruns, a killed shard, and credentials."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import GIT_ENV, git, make_key, repo_with, run_cli
from pgdb import fresh_database

SHARDS = 3


@dataclass
class Org:
    root: Path
    repos: list[str]  # the arguments, in the order a list file gives them
    keys: dict[str, str]
    work_trees: dict[str, Path] = field(default_factory=dict)
    listing: Path | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daemon_root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A real ``git daemon`` serving ``tmp_path/served`` on 127.0.0.1; stopped after."""
    served = tmp_path / "served"
    served.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        ["git", "daemon", f"--base-path={served}", "--export-all", "--reuseaddr",
         "--listen=127.0.0.1", f"--port={port}", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **GIT_ENV})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("git daemon did not start") from None
                time.sleep(0.05)
        yield served, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _commit(repo: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


@pytest.fixture
def org(tmp_path: Path, daemon_root: tuple[Path, int]) -> Org:
    """Eight repositories; one key shared by three of them, the others each with their own."""
    served, port = daemon_root
    keys = {name: make_key() for name in ("shared", "alpha", "beta", "gamma", "eps", "zeta")}
    trees = tmp_path / "trees"
    alpha = repo_with(trees / "alpha", {"app/.env": f"TOKEN={keys['alpha']}\n",
                                        "README": "alpha\n"})
    _commit(alpha, {"deploy/ci.yml": f"key: {keys['shared']}\n"}, "ci")
    beta_work = repo_with(trees / "beta", {"config.py": f"KEY = '{keys['beta']}'\n",
                                           "shared.env": f"K={keys['shared']}\n"})
    beta_bare = tmp_path / "beta.git"
    git(tmp_path, "clone", "-q", "--bare", str(beta_work), str(beta_bare))
    gamma_work = repo_with(trees / "gamma", {"settings.json": f'{{"k": "{keys["gamma"]}"}}\n'})
    _commit(gamma_work, {"notes.txt": f"copied {keys['shared']}\n"}, "notes")
    git(tmp_path, "clone", "-q", "--bare", str(gamma_work), str(served / "gamma.git"))
    delta = repo_with(trees / "delta", {f"src/m{i}.py": f"x = {i}\n" for i in range(30)})
    eps = repo_with(trees / "eps", {"k.txt": keys["eps"] + "\n"})
    zeta = repo_with(trees / "zeta", {"z.cfg": f"z={keys['zeta']}\n"})
    eta = repo_with(trees / "eta", {"empty.txt": "nothing\n"})
    theta = repo_with(trees / "theta", {"t.txt": "nothing either\n"})
    repos = [str(alpha), f"file://{beta_bare}", f"git://127.0.0.1:{port}/gamma.git",
             str(delta), str(eps), str(zeta), str(eta), str(theta)]
    listing = tmp_path / "repos.txt"
    listing.write_text("# the organization\n" + "\n".join(repos) + "\n")
    return Org(tmp_path, repos, keys, {"alpha": alpha, "delta": delta}, listing)


@pytest.fixture(params=["sqlite", "postgres"])
def state_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Makes fresh states: SQLite files, or fresh PostgreSQL databases dropped after."""
    stack: list[Any] = []

    def make(name: str) -> str:
        if request.param == "sqlite":
            return str(tmp_path / f"{name}.db")
        context = fresh_database()
        stack.append(context)
        return context.__enter__()

    yield make
    for context in reversed(stack):
        context.__exit__(None, None, None)


def _scan_args(org: Org, state: str, *extra: str) -> list[str]:
    assert org.listing is not None
    return ["git", "--repos-from", str(org.listing), "--state", state,
            "--cache-dir", str(org.root / "cache"), "-j", "1", "--format", "json", *extra]


def _popen(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "poelis_scan", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _report(state: str, *extra: str) -> dict[str, Any]:
    out = run_cli("report", "--state", state, "--format", "json", *extra)
    assert out.status in (0, 1), out.stderr
    data: dict[str, Any] = out.json()
    return data


def _places(report: dict[str, Any]) -> list[tuple[str, str, str | None, int]]:
    return sorted((f["repository"], f["fingerprint"], f["git"]["commit"], f["location"]["line"])
                  for f in report["findings"])


def test_shards_together_equal_one_unsharded_run(org: Org, state_factory: Any) -> None:
    sharded, whole = state_factory("sharded"), state_factory("whole")
    procs = [_popen(_scan_args(org, sharded, "--shard", f"{k}/{SHARDS}"))
             for k in range(1, SHARDS + 1)]
    taken = 0
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (0, 1), err.decode()
        line = next(x for x in err.decode().splitlines() if " repositories" in x)
        taken += int(line.split(": ")[2].split(" of ")[0])
    assert taken == len(org.repos)  # every repository in exactly one shard
    single = run_cli(*_scan_args(org, whole))
    assert single.status == 1, single.stderr
    union, reference = _report(sharded), _report(whole)
    assert _places(union) == _places(reference)
    assert len(_places(union)) == len(set(_places(union)))  # no duplicates
    # ... and both equal what the unsharded scan itself printed
    assert sorted((f["git"]["repository"], f["fingerprint"]) for f in single.findings()) == \
        sorted((r, fp) for r, fp, _, _ in _places(reference))
    assert len(union["runs"]) == SHARDS and {r["shard"] for r in union["runs"]} == \
        {f"{k}/{SHARDS}" for k in range(1, SHARDS + 1)}
    # one key in three repositories is one secret with three places
    shared = [s for s in union["secrets"] if s["secret_redacted"].endswith(
        org.keys["shared"][-3:]) and len(s["repositories"]) == 3]
    assert len(shared) == 1 and len(shared[0]["locations"]) == 3
    found = {s["secret_sha256"] for s in union["secrets"]}
    assert len(found) == len(org.keys)


def test_a_rescan_reads_only_new_objects_and_reports_the_new_key(
        org: Org, state_factory: Any) -> None:
    state = state_factory("state")
    first = run_cli(*_scan_args(org, state))
    assert first.status == 1, first.stderr
    before = _report(state)
    unchanged = run_cli(*_scan_args(org, state))
    stats = unchanged.json()["stats"]
    assert stats["blobs_scanned"] == 0 and stats["commits_scanned"] == 0  # nothing new
    assert unchanged.status == 0 and unchanged.findings() == []  # it read nothing new
    assert "nothing was scanned" not in unchanged.stderr
    # no object store changed: none was even listed
    assert stats["skipped"] == {"unchanged_repository": len(org.repos)}
    again = _report(state)
    assert {(f["repository"], f["fingerprint"]) for f in again["findings"]} == \
        {(f["repository"], f["fingerprint"]) for f in before["findings"]}
    latest = max(r["id"] for r in again["runs"])
    assert all(f["last_seen_run"] == latest for f in again["findings"])  # still there
    assert all(f["first_seen_run"] < latest for f in again["findings"])
    new_key = make_key()
    _commit(org.work_trees["delta"], {"src/new.py": f"KEY = '{new_key}'\n"}, "oops")
    rescan = run_cli(*_scan_args(org, state, "--new-only"))
    assert rescan.status == 1, rescan.stderr
    stats = rescan.json()["stats"]
    assert stats["blobs_scanned"] == 1  # the new blob, and no other
    assert stats["commits_scanned"] == 1
    assert stats["skipped"]["already_scanned"] > 0
    reported = rescan.findings()
    assert [f["secret_redacted"][-3:] for f in reported] == [new_key[-3:]]
    assert reported[0]["location"]["path"] == "src/new.py"
    new = _report(state, "--new-only", "--repository", str(org.work_trees["delta"]))
    assert [f["location"]["path"] for f in new["findings"]] == ["src/new.py"]
    # a state of all runs still has every old finding, with first and last seen
    everything = _report(state)
    assert len(everything["findings"]) == len(before["findings"]) + 1


def _push_commit(org: Org, bare: Path, files: dict[str, str]) -> None:
    work = org.root / f"push-{bare.name}"
    git(org.root, "clone", "-q", str(bare), str(work))
    _commit(work, files, "pushed")
    git(work, "push", "-q", "origin", "HEAD")


def test_a_fetched_mirror_lists_only_what_its_new_tips_bring(
        org: Org, state_factory: Any) -> None:
    """A mirror whose refs moved is not listed whole: only the objects the new tips reach and
    the old ones do not are read (and nothing needs the set of objects read before)."""
    state = state_factory("state")
    assert run_cli(*_scan_args(org, state)).status == 1
    new_key = make_key()
    _push_commit(org, org.root / "served" / "gamma.git", {"late.env": f"K={new_key}\n"})
    rescan = run_cli(*_scan_args(org, state, "--new-only"))
    assert rescan.status == 1, rescan.stderr
    stats = rescan.json()["stats"]
    assert stats["blobs_scanned"] == 1 and stats["commits_scanned"] == 1
    assert stats["skipped"] == {"unchanged_repository": len(org.repos) - 1}
    reported = rescan.findings()
    assert [(f["location"]["path"], f["secret_redacted"][-3:]) for f in reported] == \
        [("late.env", new_key[-3:])]
    assert reported[0]["git"]["kind"] == "blob" and reported[0]["git"]["commit"]


def test_a_new_unreachable_object_in_a_local_repository_is_read(
        org: Org, state_factory: Any) -> None:
    """No ref moved, but the store gained a dangling blob: the store's mark changed, so the
    store is listed again and only that blob is read."""
    state = state_factory("state")
    assert run_cli(*_scan_args(org, state)).status == 1
    new_key = make_key()
    alpha = org.work_trees["alpha"]
    subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=alpha, check=True,
                   input=f"DANGLING={new_key}\n".encode(), capture_output=True,
                   env={**os.environ, **GIT_ENV})
    rescan = run_cli(*_scan_args(org, state, "--new-only"))
    assert rescan.status == 1, rescan.stderr
    stats = rescan.json()["stats"]
    assert stats["blobs_scanned"] == 1 and stats["commits_scanned"] == 0
    assert stats["skipped"]["unchanged_repository"] == len(org.repos) - 1
    assert stats["skipped"]["already_scanned"] > 0
    reported = rescan.findings()
    assert [(f["git"]["kind"], f["secret_redacted"][-3:]) for f in reported] == \
        [("unreachable", new_key[-3:])]


def _count_rows(state: str, table: str) -> int:
    if state.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(state) as db:
            row = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            return int(row[0]) if row else 0
    with sqlite3.connect(state) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _repositories_done(state: str) -> int:
    try:
        return _count_rows(state, "repository_runs")
    except Exception:  # the schema may not exist yet
        return 0


def test_a_killed_shard_rerun_loses_and_duplicates_nothing(
        org: Org, state_factory: Any) -> None:
    state, reference = state_factory("killed"), state_factory("reference")
    assert run_cli(*_scan_args(org, reference)).status == 1
    proc = _popen(_scan_args(org, state))
    deadline = time.monotonic() + 120
    while _repositories_done(state) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed_mid_run = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert killed_mid_run, "the scan ended before it could be killed"
    assert _repositories_done(state) < len(org.repos)
    rerun = run_cli(*_scan_args(org, state))
    assert rerun.status == 1, rerun.stderr
    assert _places(_report(state)) == _places(_report(reference))
    for table in ("findings", "scanned_objects", "repositories"):
        assert _count_rows(state, table) == _count_rows(reference, table), table


def test_credentials_never_appear(org: Org, tmp_path: Path) -> None:
    token = "s3cr3t-T0KEN-" + os.urandom(6).hex()
    user = "ci-bot-" + os.urandom(3).hex()
    state = tmp_path / "state.db"
    beta = next(r for r in org.repos if r.startswith("file://"))
    gamma = next(r for r in org.repos if r.startswith("git://"))
    with_userinfo = beta.replace("file://", f"file://{user}:{token}@")
    dead = f"https://{user}:{token}@127.0.0.1:{_free_port()}/org/missing.git"
    gamma_auth = gamma.replace("git://", f"git://{user}:{token}@")
    outputs = []
    for fmt in ("json", "text", "sarif"):
        out = run_cli("git", with_userinfo, dead, gamma_auth, "--state", str(state),
                      "--cache-dir", str(tmp_path / "cache"), "--format", fmt)
        assert out.status == 2, out.stderr  # a repository failed: never a clean pass
        assert "127.0.0.1" in out.stderr and "org/missing" in out.stderr
        assert "1 repository could not be scanned" in out.stderr
        outputs += [out.stdout, out.stderr]
    assert "poelis_api_" in outputs[0]  # the other repositories were scanned
    for fmt in ("json", "text", "sarif", "gitlab"):
        out = run_cli("report", "--state", str(state), "--format", fmt)
        outputs += [out.stdout, out.stderr]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state"))
    on_disk = subprocess.run(["grep", "-rl", token, str(tmp_path / "cache")],
                             capture_output=True, check=False)
    for text in outputs:
        assert token not in text and user not in text
    assert token.encode() not in stored and user.encode() not in stored
    assert on_disk.returncode == 1, on_disk.stdout


def test_mirrors_are_removed_with_cleanup(org: Org, tmp_path: Path) -> None:
    cache = tmp_path / "cache-cleanup"
    remote = [r for r in org.repos if "://" in r]
    out = run_cli("git", *remote, "--cache-dir", str(cache), "--cleanup", "--format", "json")
    assert out.status == 1, out.stderr
    assert {f["git"]["repository"].rsplit("/", 1)[-1] for f in out.findings()} == \
        {"beta.git", "gamma"}  # a file:// URL keeps its path as identity
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (["git", "--shard", "4/3", "."], "K/N"),
    (["git", "--new-only", "."], "--new-only needs --state"),
    (["git", "--state", "x.db", "--staged"], "whole histories"),
    (["git", "--repos-from", "/nonexistent/list"], "cannot read"),
    (["report", "--state", "/nonexistent/dir/s.db"], "no such directory"),
    (["report", "--state", "s.db", "--since", "yesterday"], "--since takes"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    out = run_cli(*args, cwd=tmp_path)
    assert out.status == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_shard_from_the_environment(org: Org, tmp_path: Path) -> None:
    local = [r for r in org.repos if "://" not in r]
    outs = [run_cli("git", *local, "-q", "--format", "json",
                    env={"POELIS_SCAN_SHARD": f"{k}/2"}) for k in (1, 2)]
    whole = run_cli("git", *local, "--format", "json", "--shard", "1/1")
    got = sorted(f["fingerprint"] + f["git"]["repository"] for o in outs for f in o.findings())
    assert got == sorted(f["fingerprint"] + f["git"]["repository"] for f in whole.findings())


def test_a_shard_that_took_no_repository_is_clean(org: Org) -> None:
    """The hash may give a shard none of the repositories: it read nothing because there was
    nothing for it, which is a clean result (exit 0), not an empty scan (exit 2)."""
    from poelis_scan.shard import shard_of
    from poelis_scan.sources.remote import classify

    local = [r for r in org.repos if "://" not in r]
    taken = {shard_of(classify(r).identity, 50) for r in local}
    empty = min(set(range(1, 51)) - taken)
    out = run_cli("git", *local, "--shard", f"{empty}/50", "--format", "json")
    assert out.status == 0, out.stderr
    assert out.json()["stats"]["repositories"]["repositories"] == 0
    assert "this shard took none of the repositories" in out.stderr


def test_report_formats(org: Org, tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    assert run_cli(*_scan_args(org, state)).status == 1
    sarif = json.loads(run_cli("report", "--state", state, "--format", "sarif").stdout)
    repos_with_findings = {f["repository"] for f in _report(state)["findings"]}
    assert len(sarif["runs"]) == len(repos_with_findings)
    assert {r["properties"]["repository"] for r in sarif["runs"]} == repos_with_findings
    gitlab = json.loads(run_cli("report", "--state", state, "--format", "gitlab").stdout)
    assert len(gitlab["vulnerabilities"]) == len(_report(state)["findings"])
    text = run_cli("report", "--state", state, "--format", "text")
    assert text.status == 1 and text.stdout.count("Poelis API key") == len(gitlab[
        "vulnerabilities"])
    for key in org.keys.values():
        assert key not in text.stdout
    empty = run_cli("report", "--state", state, "--since", "2999-01-01", "--format", "json")
    assert empty.status == 0 and empty.json()["findings"] == []
    findings = _report(state)["findings"]
    lines = run_cli("report", "--state", state, "--format", "jsonl").stdout.splitlines()
    assert sorted(json.loads(line)["fingerprint"] for line in lines) == \
        sorted(f["fingerprint"] for f in findings)


def test_report_html_renders_the_state(org: Org, tmp_path: Path) -> None:
    """The HTML page of a state: every stored finding in its data block, no key anywhere."""
    state = str(tmp_path / "s.db")
    assert run_cli(*_scan_args(org, state)).status == 1
    out = run_cli("report", "--state", state, "--format", "html", "-o",
                  str(tmp_path / "r.html"))
    assert out.status == 1, out.stderr
    page = (tmp_path / "r.html").read_text()
    for key in org.keys.values():
        assert key not in page
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                      page, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    stored = _report(state)["findings"]
    assert sorted((f["fingerprint"], f["git"]["commit"]) for f in data["findings"]) == \
        sorted((f["fingerprint"], f["git"]["commit"]) for f in stored)
    assert {f["repository"] for f in data["findings"]} == {f["repository"] for f in stored}


def test_the_secret_view_groups_one_key_across_repositories(org: Org, tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    assert run_cli(*_scan_args(org, state)).status == 1
    report = _report(state)
    widest = max(report["secrets"], key=lambda s: len(s["repositories"]))
    assert len(widest["repositories"]) == 3  # alpha, beta and gamma hold the shared key
    assert len({loc["repository"] for loc in widest["locations"]}) == 3
    assert sum(len(s["locations"]) for s in report["secrets"]) == len(report["findings"])


def test_the_json_stats_name_the_shard(org: Org, tmp_path: Path) -> None:
    out = run_cli(*_scan_args(org, str(tmp_path / "s.db"), "--shard", "2/3"))
    assert out.status in (0, 1), out.stderr
    counts = out.json()["stats"]["repositories"]
    assert counts["shard"] == "2/3" and counts["repositories_listed"] == len(org.repos)
    assert 0 <= counts["repositories"] <= len(org.repos) and counts["repositories_failed"] == 0
    assert f"shard 2/3: {counts['repositories']} of {len(org.repos)}" in out.stderr


@pytest.mark.parametrize(("extra", "message"), [
    (["--state", "{tmp}/no/such/dir/s.db"], "no such directory"),
    (["--state", "{tmp}/s.db", "-o", "{tmp}/no/such/dir/out.json"], "cannot write"),
    (["--state", "{tmp}/s.db", "-o", "{tmp}"], "is a directory"),
    (["--state", "{tmp}/s.db", "--baseline", "{tmp}/no-baseline.json"], "baseline"),
])
def test_targets_are_checked_before_any_clone(org: Org, tmp_path: Path, extra: list[str],
                                              message: str) -> None:
    """A typo in --state, -o or --baseline costs nothing: no mirror is made, no run starts."""
    cache = tmp_path / "cache"
    remote = [r for r in org.repos if "://" in r]
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    out = run_cli("git", *remote, "--cache-dir", str(cache), *args)
    assert out.status == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not cache.exists() or not any(cache.iterdir())
    if "no such directory" not in message:
        assert not (tmp_path / "s.db").exists()  # the state is opened after the cheap checks


# ---- recipes ------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _poelis_lines(node: object) -> list[str]:
    """Every shell line in a YAML document that runs poelis-scan."""
    if isinstance(node, dict):
        return [line for value in node.values() for line in _poelis_lines(value)]
    if isinstance(node, list):
        return [line for value in node for line in _poelis_lines(value)]
    if isinstance(node, str):
        return [line.strip() for line in node.splitlines()
                if line.strip().startswith("poelis-scan ")]
    return []


def _shell_words(line: str, env: dict[str, str]) -> list[str]:
    """The arguments ``sh`` would pass for ``line`` (up to its ``||``), expanded for real."""
    command = line.split(" || ")[0]
    out = subprocess.run(["sh", "-c", f'set -- {command}; printf "%s\\0" "$@"'],
                         capture_output=True, env={"PATH": os.environ["PATH"], **env},
                         check=True)
    return out.stdout.decode().split("\0")[:-1]


def _parse(words: list[str]) -> Any:
    import click

    from poelis_scan.cli import cli

    assert words[0] == "poelis-scan"
    command = cli.get_command(click.Context(cli), words[1])
    assert command is not None, words[1]
    return command.make_context(words[1], words[2:])  # raises on a bad option or value


STATE_ENV = {"POELIS_STATE": "postgresql://scanner@db.example.internal:5432/poelis"}


def test_github_actions_recipe_parses_and_covers_every_shard() -> None:
    import yaml

    from poelis_scan.shard import parse_shard

    document = yaml.safe_load((EXAMPLES / "org-github-actions.yml").read_text())
    shards = document["jobs"]["scan"]["strategy"]["matrix"]["shard"]
    scan_lines = _poelis_lines(document["jobs"]["scan"])
    report_lines = _poelis_lines(document["jobs"]["report"])
    assert len(scan_lines) == 1 and report_lines
    seen = []
    for shard in shards:
        line = scan_lines[0].replace("${{ matrix.shard }}", str(shard))
        context = _parse(_shell_words(line, STATE_ENV))
        assert context.params["state"] == STATE_ENV["POELIS_STATE"]
        seen.append(parse_shard(context.params["shard"]))
    assert sorted((s.index, s.count) for s in seen) == \
        [(k, len(shards)) for k in range(1, len(shards) + 1)]
    for line in report_lines:
        assert _parse(_shell_words(line, STATE_ENV)).params["state_target"] == \
            STATE_ENV["POELIS_STATE"]


def test_k8s_indexed_job_recipe_parses_and_covers_every_shard() -> None:
    import yaml

    from poelis_scan.shard import parse_shard

    scan_job, report_job = yaml.safe_load_all((EXAMPLES / "org-k8s-indexed-job.yaml")
                                              .read_text())
    assert scan_job["spec"]["completionMode"] == "Indexed"
    completions = scan_job["spec"]["completions"]
    (line,) = _poelis_lines(scan_job["spec"]["template"])
    seen = []
    for index in range(completions):
        words = _shell_words(line, {**STATE_ENV, "JOB_COMPLETION_INDEX": str(index)})
        seen.append(parse_shard(_parse(words).params["shard"]))
    assert [(s.index, s.count) for s in seen] == \
        [(k, completions) for k in range(1, completions + 1)]
    for report_line in _poelis_lines(report_job["spec"]["template"]):
        _parse(_shell_words(report_line, STATE_ENV))


def test_the_shard_variable_leaves_a_single_repository_scan_alone(tmp_path: Path) -> None:
    repo = repo_with(tmp_path / "one", {"a.txt": "nothing here\n"})
    staged = run_cli("git", "--staged", cwd=repo, env={"POELIS_SCAN_SHARD": "2/2"})
    assert staged.status == 0, staged.stderr
    assert "shard" not in staged.stderr
