"""Org-scale timings: one unsharded run, N concurrent shards, and nightly rescans.

Run by hand (tests never time anything)::

    python benchmarks/bench_org.py REPO_OR_URL... [--shards 3] [--state postgresql://…]

Each REPO (a local repository or mirror, or a clone URL) is copied once into a bare
repository under a work directory and scanned through its ``file://`` URL, so the mirror
cache, the state and the rescan path are the real ones. Printed: the full run (mirroring
included), each shard and the shards' wall time, a rescan of the unchanged repositories, and a
rescan after one new commit (holding a new key) in the first repository, with the blobs read
by each run and the ratio rescan/full.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True).stdout.decode()


def scan(urls: list[str], state: str, cache: Path, *extra: str
         ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "poelis_scan", "git", *urls, "--state", state,
         "--cache-dir", str(cache), "--format", "json", "-q", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], started: float) -> tuple[float, dict[str, Any]]:
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"poelis-scan failed ({proc.returncode}): {err.decode()[-500:]}")
    return seconds, json.loads(out)


def timed(urls: list[str], state: str, cache: Path, *extra: str
          ) -> tuple[float, dict[str, Any]]:
    """Wall time and the JSON report; the run's CPU seconds (its processes and git's, which
    a loaded machine disturbs far less than wall time) go into ``stats["cpu"]``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    seconds, result = finish(scan(urls, state, cache, *extra), started)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["stats"]["cpu"] = (after.ru_utime - before.ru_utime
                              + after.ru_stime - before.ru_stime)
    return seconds, result


def new_key() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "poelis_api_" + "".join(secrets.choice(alphabet) for _ in range(43))


def add_commit(bare: Path) -> None:
    """One new commit on HEAD's branch adding one file that holds a key, written with plumbing
    straight into the served repository (no clone: a partial mirror cannot be cloned)."""
    branch = git("symbolic-ref", "HEAD", cwd=bare).strip()
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=bare, env=GIT_ENV,
                          input=f"POELIS_KEY={new_key()}\n".encode(), check=True,
                          capture_output=True).stdout.decode().strip()
    listing = git("ls-tree", "HEAD", cwd=bare) + f"100644 blob {blob}\tleaked-by-bench.env\n"
    tree = subprocess.run(["git", "mktree"], cwd=bare, env=GIT_ENV, input=listing.encode(),
                          check=True, capture_output=True).stdout.decode().strip()
    commit = git("commit-tree", tree, "-p", "HEAD", "-m", "bench: one new commit",
                 cwd=bare).strip()
    git("update-ref", branch, commit, cwd=bare)


def line(name: str, seconds: float, stats: dict[str, Any],
         full: dict[str, Any] | None = None, full_s: float = 0.0) -> str:
    cpu = f"  cpu {stats['cpu']:7.2f} s" if "cpu" in stats else ""
    ratio = ""
    if full is not None:
        ratio = f"  ratio wall {seconds / full_s:.3f}"
        if "cpu" in stats and full.get("cpu"):
            ratio += f" cpu {stats['cpu'] / full['cpu']:.3f}"
    return (f"{name:<26} {seconds:8.2f} s{cpu}  blobs read {stats['blobs_scanned']:>7}  "
            f"commits read {stats['commits_scanned']:>6}{ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repos", nargs="+", help="local repositories or clone URLs")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--state", help="a PostgreSQL DSN (default: SQLite files)")
    parser.add_argument("--workdir", help="keep the copies here (default: a temp dir)")
    parser.add_argument("--direct", action="store_true",
                        help="scan the copies as local paths instead of mirroring their "
                             "file:// URLs (for incomplete mirrors, which git cannot serve)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-org-"))
    served = work / "served"
    served.mkdir(parents=True, exist_ok=True)
    urls = []
    for i, repo in enumerate(args.repos):
        bare = served / f"r{i}-{Path(repo.rstrip('/')).name.removesuffix('.git')}.git"
        if not bare.exists():
            if os.path.isdir(repo):  # a plain copy also works for an incomplete mirror
                shutil.copytree(repo, bare, symlinks=True)
            else:
                git("clone", "-q", "--mirror", repo, str(bare))
            if args.direct:  # what a mirror made by poelis-scan has (fetch writes it)
                git("commit-graph", "write", "--reachable", cwd=bare)
        urls.append(str(bare) if args.direct else f"file://{bare}")
    if args.state:
        full_state = shard_state = args.state
        print("note: with --state, give an empty database: runs accumulate", file=sys.stderr)
    else:
        full_state, shard_state = str(work / "full.db"), str(work / "shards.db")
        for stale in (full_state, shard_state):
            for suffix in ("", "-wal", "-shm"):
                Path(stale + suffix).unlink(missing_ok=True)
    print(f"{len(urls)} repositories, {args.shards} shards, work dir {work}")

    full_s, full = timed(urls, full_state, work / "cache-full")
    print(line("full (mirror + scan)", full_s, full["stats"]))

    started = time.perf_counter()
    procs = [(k, time.perf_counter(), scan(urls, shard_state, work / f"cache-{k}",
                                           "--shard", f"{k}/{args.shards}"))
             for k in range(1, args.shards + 1)]
    shard_findings = 0
    for k, t0, proc in procs:
        seconds, result = finish(proc, t0)
        shard_findings += len(result["findings"])
        print(line(f"  shard {k}/{args.shards}", seconds, result["stats"]))
    print(f"{'shards (wall)':<28} {time.perf_counter() - started:8.2f} s  findings "
          f"{shard_findings} (full: {len(full['findings'])})")

    same_s, same = timed(urls, full_state, work / "cache-full")
    print(line("rescan, nothing new", same_s, same["stats"], full["stats"], full_s))
    add_commit(Path(urls[0].removeprefix("file://")))
    new_s, new = timed(urls, full_state, work / "cache-full", "--new-only")
    print(line("rescan after one commit", new_s, new["stats"], full["stats"], full_s))
    print(f"new findings reported by the rescan: {len(new['findings'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
