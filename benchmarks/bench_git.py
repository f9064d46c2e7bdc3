"""Time ``poelis-scan git`` against git's own read speed, Kingfisher and gitleaks.

Run by hand (tests never time anything)::

    pip install '.[bench]'
    python benchmarks/bench_git.py [REPO] [--runs 3]    # REPO: a clone or bare mirror

Without REPO, a local mirror of sqlalchemy/sqlalchemy is looked up as ``workloads.py`` does
(``$POELIS_BENCH_MIRRORS``, ``/work/.mirror``, ``$POELIS_BENCH_CACHE/mirrors``; e.g.
``git clone --bare https://github.com/sqlalchemy/sqlalchemy
~/.cache/poelis-scan-bench/mirrors/sqlalchemy.git``).
Bare repositories work for every tool here.

Four measurements, each interleaved with its references in one run:

1. full history: ``poelis-scan git REPO`` against the practical limit (every blob read once by
   one ``git cat-file --batch`` into /dev/null, fed the blob ids in pack order), Kingfisher
   2.14 and gitleaks 8.30, each of those with a one-rule Poelis configuration;
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
from bench_files import (
    KEY_REGEX,
    Case,
    interleave,
    interleaved,
    report,
    tool_commands,
    which,
)
from workloads import cache_dir, find_git_dir, generate_tree

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
    kingfisher, gitleaks = which("kingfisher"), which("gitleaks")
    commands: dict[str, list[str]] = {}
    if "kingfisher" in files and not staged:
        commands["kingfisher"] = [
            str(kingfisher), "scan", str(repo),
            "--rules-path", str(work / "kingfisher-poelis.yaml"),
            "--rule", "custom.poelis.1", "--load-builtins=false", "--no-validate",
            "--no-update-check", "--no-extract-archives", "--jobs", str(os.cpu_count() or 2),
            "-f", "jsonl", "-o", str(work / "kf-git.jsonl"),
        ]
    if "gitleaks" in files:
        extra = ["--staged"] if staged else []
        commands["gitleaks"] = [
            str(gitleaks), "git", str(repo), *extra, "-c", str(work / "gitleaks-poelis.toml"),
            "--no-banner", "-l", "error", "-f", "json", "-r", str(work / "gl-git.json"),
            "--exit-code", "0",
        ]
    return commands


def staged_repo() -> Path:
    """A repository with a 100 MB work tree and one small staged change (cached)."""
    root = cache_dir() / "staged-repo-v1"
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
    parser.add_argument("repo", type=Path, nargs="?",
                        help="a clone or bare mirror (default: a local sqlalchemy mirror)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-peers", dest="peers", action="store_false",
                        help="leave out Kingfisher and gitleaks")
    parser.add_argument("--only-history", action="store_true",
                        help="skip the --staged and --range measurements")
    args = parser.parse_args()
    ours = which("poelis-scan") or "poelis-scan"
    repo = args.repo or find_git_dir("sqlalchemy/sqlalchemy")
    if repo is None:
        raise SystemExit("no REPO given and no local mirror of sqlalchemy/sqlalchemy found")
    repo = repo.resolve()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        counts = subprocess.run(["git", "-C", str(repo), "rev-list", "--all", "--count"],
                                capture_output=True, text=True, check=True).stdout.strip()
        print(f"== full history of {repo} ({counts} commits)")
        commands = {"poelis-scan": [ours, "git", str(repo), "--quiet", "-o", os.devnull],
                    "cat-file limit": limit_command(repo)}
        if args.peers:
            commands.update(peer_commands(repo, work))
        cases = [Case(name, command) for name, command in commands.items()]
        interleave(cases, args.runs)
        print("| command | median wall s | min s | median CPU s | peak RSS MB |")
        print("|---|---|---|---|---|")
        for case in cases:
            print(f"| {case.name} | {case.median():.2f} | {min(s.wall for s in case.samples):.2f}"
                  f" | {case.median('cpu'):.2f} "
                  f"| {max(s.max_rss_kb for s in case.samples) / 1024:.0f} |")
        ours_case, limit = cases[0], cases[1]
        print(f"\npoelis-scan ÷ one cat-file --batch over every blob: "
              f"**{ours_case.median() / limit.median():.2f}×** (target ≤ 1.0)")
        if args.only_history:
            return

        staged = staged_repo()
        print(f"\n== --staged, 100 MB work tree ({staged})")
        commands = {"poelis-scan": [ours, "git", str(staged), "--staged", "--quiet"],
                    **(peer_commands(staged, work, staged=True) if args.peers else {})}
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
