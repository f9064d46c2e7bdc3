"""Issue 16 item 4: verdicts where a person looks — the text report, its tally and advice,
history provenance, and ``poelis-scan verify`` — end to end through the CLI against the
loopback emulator and real git repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import GIT_ENV, git, make_key, make_legacy_key, output_on_tty, repo_with, run_cli
from poelis_emulator import Emulator, workspaces

from poelis_scan.detect.grammar import Confidence, secret_sha256
from poelis_scan.findings import Finding, GitOrigin, Location, Verdict
from poelis_scan.report.text import _shown, format_finding, origin_marks
from poelis_scan.verify import LEGACY_REASON


def _redacted(key: str) -> str:
    return f"{key[:15]}…{key[-3:]}"


def test_live_first_with_its_reach_tally_and_work_tree_advice(tmp_path: Path,
                                                              api: Emulator) -> None:
    live, revoked, legacy = make_key(), make_key(), make_legacy_key()
    api.plans = {live: "live", revoked: "revoked"}
    api.workspaces = {live: workspaces(3, products=2)}
    # The live key sits in the file that sorts last: it must still be reported first.
    (tmp_path / "a.env").write_text(f"OLD={revoked}\n")
    (tmp_path / "b.py").write_text(f'CREDS = "{legacy}"\n')
    (tmp_path / "z.env").write_text(f"KEY={live}\n")
    run = run_cli("scan", str(tmp_path), "--verify", "--base-url", api.base_url)
    assert run.status == 1, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{tmp_path}/z.env:1:5: Poelis API key ")
    assert lines[0].endswith("(high) live: opens 3 workspaces, 6 products")
    assert lines[1].startswith(f"{tmp_path}/a.env:1:5:") and lines[1].endswith("(high) revoked")
    assert lines[2].startswith(f"{tmp_path}/b.py:1:10: Legacy Poelis credential ")
    assert lines[2].endswith(f"(high, poelis-legacy-key) unknown: {LEGACY_REASON}")
    assert "poelis-scan: verification: 1 live, 1 revoked, 1 unknown" in run.stderr.splitlines()
    assert "what to do (key in work tree): remove it from the file" in run.stderr
    assert "what to do (poelis-legacy-key)" in run.stderr
    assert "history" not in run.stderr and "unstage" not in run.stderr
    for key in (live, revoked, legacy):
        assert key not in run.stdout + run.stderr
    # No verification asked: no tally line, no verdict words.
    plain = run_cli("scan", str(tmp_path))
    assert "verification:" not in plain.stderr and " live" not in plain.stdout


def test_verdict_colours_on_a_terminal(tmp_path: Path, api: Emulator) -> None:
    live, revoked = make_key(), make_key()
    api.plans = {live: "live", revoked: "revoked"}
    (tmp_path / "x.env").write_text(f"A={live}\nB={revoked}\nC={make_legacy_key()}\n")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    out = output_on_tty(["scan", str(tmp_path), "--verify", "--base-url", api.base_url,
                         "--no-access-check"], env=env)
    assert "\033[31m\033[1mlive\033[0m" in out
    assert "\033[2mrevoked\033[0m" in out
    assert f"\033[33munknown: {LEGACY_REASON}\033[0m" in out


def test_only_low_confidence_results_get_no_advice(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_text("Use poelis_api_YOUR_KEY_HERE_PLEASE_REPLACE_ME_NOW\n")
    run = run_cli("scan", str(tmp_path), "--min-confidence", "low")
    assert run.status == 1 and "Poelis API key" in run.stdout
    assert "what to do" not in run.stderr


def _commit_as(repo: Path, name: str, email: str, date: str, message: str) -> None:
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
           "GIT_AUTHOR_DATE": date}
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, env=env, check=True,
                   capture_output=True)


def test_history_shows_who_and_when_and_what_kind_of_place(tmp_path: Path) -> None:
    pushed, stashed, dropped, reflog_only = make_key(), make_key(), make_key(), make_key()
    repo = repo_with(tmp_path / "r", {"README": "hello\n"})
    (repo / "app.env").write_text(f"\n\nKEY={pushed}\n")
    git(repo, "add", "app.env")
    _commit_as(repo, "Jane Doe", "jane@example.invalid", "2026-01-04T10:00:00+00:00", "add")
    sha = git(repo, "rev-parse", "HEAD").strip()
    (repo / "README").write_text(f"token={stashed}\n")
    git(repo, "stash", "push", "-q")
    # A commit on a branch that is then deleted: its reflog is gone too -> unreachable.
    git(repo, "checkout", "-q", "-b", "tmp")
    (repo / "gone.env").write_text(f"K={dropped}\n")
    git(repo, "add", "gone.env")
    git(repo, "commit", "-qm", "oops")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "tmp")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    # A commit reset away: only HEAD's reflog reaches it.
    (repo / "reset.env").write_text(f"K={reflog_only}\n")
    git(repo, "add", "reset.env")
    git(repo, "commit", "-qm", "undo me")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    run = run_cli("git", str(repo))
    assert run.status == 1, run.stderr
    by_key = {k: [ln for ln in run.stdout.splitlines() if _redacted(k) in ln]
              for k in (pushed, stashed, dropped, reflog_only)}
    line = by_key[pushed][0]
    assert line.startswith(f"{sha[:12]}:app.env:3:5: Poelis API key ")
    assert line.endswith("(Jane Doe <jane@example.invalid>, 2026-01-04)")
    assert any(ln.endswith(", stash)") for ln in by_key[stashed])
    assert any("unreachable" in ln for ln in by_key[dropped])
    assert any(ln.endswith(", reflog only)") for ln in by_key[reflog_only])
    assert "what to do (key in history): revoke it first" in run.stderr
    assert "rewriting history does not un-leak" in run.stderr


def test_staged_advice_is_to_unstage(tmp_path: Path) -> None:
    repo = repo_with(tmp_path / "r", {"README": "hello\n"})
    (repo / "new.env").write_text(f"K={make_key()}\n")
    git(repo, "add", "new.env")
    run = run_cli("git", str(repo), "--staged")
    assert run.status == 1
    assert run.stdout.startswith(":new.env:1:3: Poelis API key ")
    assert "(staged)" in run.stdout.splitlines()[0]
    assert "what to do (key staged): unstage it" in run.stderr
    assert "in history" not in run.stderr and "in work tree" not in run.stderr


def test_verify_command_exits_1_on_live_and_explains_unknown(api: Emulator) -> None:
    live, legacy = make_key(), make_legacy_key()
    api.plans = {live: "live"}
    run = run_cli("verify", "--base-url", api.base_url, stdin=f"{live}\n{legacy}\n".encode())
    assert run.status == 1
    lines = run.stdout.splitlines()
    assert lines[0].split()[1:] == [secret_sha256(live), "live"]
    assert lines[1].startswith("poelis_live_org_prod_") and LEGACY_REASON in lines[1]
    assert "1 live key: revoke now" in run.stderr
    assert "1 key could not be verified" in run.stderr
    assert api.requests_for(legacy) == []
    only_unknown = run_cli("verify", "--base-url", api.base_url, stdin=legacy.encode())
    assert only_unknown.status == 0 and "could not be verified" in only_unknown.stderr
    assert legacy not in run.stdout + run.stderr + only_unknown.stdout + only_unknown.stderr


def test_untrusted_text_is_shown_escaped() -> None:
    assert _shown("evil\x1b[2J\rname\u202e.env") == "evil\\x1b[2J\\rname\\u202e.env"
    assert _shown("plain/path.env") == "plain/path.env"
    key = make_key()
    origin = GitOrigin("blob", "b" * 40, "blob", "/r", "c" * 40, "Mal\x1b]0;x\x07lory",
                       "m@x\r\n", "2026-01-04T00:00:00Z", ("refs/stash",))
    on_main = GitOrigin("blob", "b" * 40, "blob", "/r", "c" * 40,
                        refs=("refs/heads/main", "refs/stash"))
    assert origin_marks(on_main) == []
    finding = Finding(key, Confidence.HIGH, "random-looking body",
                      Location("x\x1b.env", 1, 1, 55), "x\x1b.env", origin=origin,
                      verification=Verdict("unknown", detail="odd answer"))
    line = format_finding(finding, color=False)
    assert "\x1b" not in line and "\r" not in line and "\x07" not in line
    assert "x\\x1b.env:1:1" in line and "unknown: odd answer" in line and "stash" in line
    assert origin_marks(origin) == ["stash"]
