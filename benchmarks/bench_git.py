"""Time ``poelis-scan git`` against git's own read speed, Kingfisher and gitleaks.

Run by hand (tests never time anything)::

    pip install '.[bench]'
    python benchmarks/bench_git.py REPO [--runs 3]      # e.g. a clone of sqlalchemy/sqlalchemy

Four measurements, each interleaved with its references in one run:

1. full history: ``poelis-scan git REPO`` against the practical limit (every blob read once by
   one ``git cat-file --batch`` into /dev/null), Kingfisher 2.14 and gitleaks 8.30, each of
   those with a one-rule Poelis configuration;
2. ``--staged`` on a generated repository with a 100 MB work tree and one small staged change,
   against ``gitleaks git --staged`` (interpreter start-up included);
3. ``--range`` over the last 10 commits of REPO's default branch.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_files import KEY_REGEX, generate_tree, interleaved, report, tool_commands

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@invalid",
           "GIT_CONFIG_GLOBAL": os.devnull}


def limit_command(repo: Path) -> list[str]:
    """Every blob read once by one cat-file process: what reading the history costs git."""
    script = (
        f"git -C '{repo}' cat-file --batch-all-objects --unordered "
        "--batch-check='%(objectname) %(objecttype)' | awk '$2==\"blob\"{print $1}' | "
        f"git -C '{repo}' cat-file --batch > /dev/null"
    )
    return ["sh", "-c", script]


def peer_commands(repo: Path, work: Path, staged: bool = False) -> dict[str, list[str]]:
    """Kingfisher and gitleaks on git, with the same one-rule configurations as bench_files."""
    files = tool_commands(repo, work)  # writes the rule files into work/
    commands: dict[str, list[str]] = {}
    if "kingfisher" in files and not staged:
        commands["kingfisher"] = [
            "kingfisher", "scan", str(repo), "--rules-path", str(work / "kingfisher-poelis.yaml"),
            "--rule", "custom.poelis.1", "--load-builtins=false", "--no-validate",
            "--no-update-check", "--no-extract-archives", "--jobs", str(os.cpu_count() or 2),
            "-f", "jsonl", "-o", str(work / "kf-git.jsonl"),
        ]
    if "gitleaks" in files:
        extra = ["--staged"] if staged else []
        commands["gitleaks"] = [
            "gitleaks", "git", str(repo), *extra, "-c", str(work / "gitleaks-poelis.toml"),
            "--no-banner", "-l", "error", "-f", "json", "-r", str(work / "gl-git.json"),
            "--exit-code", "0",
        ]
    return commands


def staged_repo() -> Path:
    """A repository with a 100 MB work tree and one small staged change (cached)."""
    root = Path(tempfile.gettempdir()) / "poelis-bench-staged-v1"
    marker = root / ".bench-ready"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    tree = Path(tempfile.mkdtemp())
    generate_tree(tree, target_bytes=100_000_000, binary=False)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=GIT_ENV)
    for entry in tree.iterdir():
        shutil.move(str(entry), root / entry.name)
    shutil.rmtree(tree)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "tree"], check=True, env=GIT_ENV)
    (root / "changed.py").write_text("print('a small staged change')\n")
    subprocess.run(["git", "-C", str(root), "add", "changed.py"], check=True, env=GIT_ENV)
    marker.write_text("")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ours = shutil.which("poelis-scan") or "poelis-scan"
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        print(f"== full history of {repo}")
        commands = {"poelis-scan": [ours, "git", str(repo), "--quiet", "-o", os.devnull],
                    "cat-file limit": limit_command(repo), **peer_commands(repo, work)}
        report(interleaved(commands, args.runs), "poelis-scan", {})

        staged = staged_repo()
        print(f"\n== --staged, 100 MB work tree ({staged})")
        commands = {"poelis-scan": [ours, "git", str(staged), "--staged", "--quiet"],
                    **peer_commands(staged, work, staged=True)}
        report(interleaved(commands, max(args.runs, 10)), "poelis-scan", {})

        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD~10", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.split()
        print(f"\n== --range over 10 commits ({head[0][:12]}..{head[1][:12]})")
        commands = {"poelis-scan": [ours, "git", str(repo), "--range", f"{head[0]}..{head[1]}",
                                    "--quiet"]}
        report(interleaved(commands, max(args.runs, 5)), "poelis-scan", {})
    print(f"\n(one-rule peer configurations use the pattern {KEY_REGEX})")


if __name__ == "__main__":
    main()
