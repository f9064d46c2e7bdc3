"""Time ``poelis-scan scan`` against ripgrep, Kingfisher and gitleaks on one directory tree.

Run by hand (tests never time anything)::

    pip install '.[bench]'
    python benchmarks/bench_files.py [DIR] [--runs 5]
    python benchmarks/bench_files.py --executors     # worker processes vs threads vs serial
    python benchmarks/bench_files.py --decoders      # cost of UTF-16/base64/hex decoding

Without DIR a tree of at least 500 MB of realistic text and binary files is generated once
(cached under the system temporary directory), with keys and decoys planted in it. Every tool
gets a one-rule configuration for Poelis keys. Runs are interleaved (tool A, B, C, A, B, C, …)
after one untimed warm-up each, so that page cache and machine load hit every tool alike; the
script prints median wall times and ratios measured in this one run, and how many of the
planted keys each tool reported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

TREE_VERSION = "v1"
TARGET_BYTES = 520 * 1000 * 1000
KEY_REGEX = r"(?:^|[^A-Za-z0-9])(poelis_api_[A-Za-z0-9_-]{29,49})(?:[^A-Za-z0-9_-]|$)"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def _corpus() -> list[bytes]:
    """Real text to build files from: the interpreter's own standard library sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in stdlib.rglob("*"):
        if path.suffix in {".py", ".txt", ".rst", ".json", ".cfg", ".html", ".xml"}:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if 200 < len(data) < 2_000_000:
                texts.append(data)
    return texts


def generate_tree(root: Path, target_bytes: int = TARGET_BYTES, binary: bool = True) -> int:
    """Write the benchmark tree; returns the number of planted keys."""
    rng = random.Random(1127)
    corpus = _corpus()
    big = b"".join(corpus)
    planted = 0
    total = 0
    index = 0
    while total < target_bytes:
        index += 1
        directory = root / f"pkg{index % 40}" / f"mod{index % 23}" / f"sub{index % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        kind = rng.random()
        if kind < 0.08 and binary:  # binary: images, archives, compiled objects
            size = int(rng.lognormvariate(11.5, 1.2))
            data = os.urandom(min(size, 8_000_000))
            name = f"asset{index}.bin"
        elif 0.08 <= kind < 0.0802:  # a few very large logs
            line = b"2026-11-27T09:00:00Z INFO request handled path=/v1/items status=200 ms=12\n"
            data = line * (40_000_000 // len(line))
            name = f"server{index}.log"
        else:  # source text, mostly small, a long tail
            size = min(int(rng.lognormvariate(8.8, 1.3)), 3_000_000)
            start = rng.randrange(0, max(1, len(big) - size))
            data = big[start : start + size]
            name = f"file{index}{rng.choice(['.py', '.txt', '.json', '.md', '.yaml'])}"
        if index % 997 == 0:
            key = "poelis_api_" + "".join(secrets.choice(ALPHABET) for _ in range(43))
            data = data[: len(data) // 2] + f'\nAPI_KEY="{key}"\n'.encode() + data[len(data) // 2 :]
            planted += 1
        if index % 991 == 0:
            data += b"\npoelis_api_base_url_for_production_environment = 1\nPOELIS_API_KEY=\n"
        (directory / name).write_bytes(data)
        total += len(data)
    (root / ".bench-manifest.json").write_text(json.dumps({"planted": planted, "bytes": total}))
    return planted


def default_tree() -> tuple[Path, int | None]:
    root = Path(tempfile.gettempdir()) / f"poelis-bench-tree-{TREE_VERSION}"
    manifest = root / ".bench-manifest.json"
    if not manifest.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        print(f"generating benchmark tree in {root} …", file=sys.stderr)
        generate_tree(root)
    return root, json.loads(manifest.read_text())["planted"]


def tool_commands(tree: Path, work: Path) -> dict[str, list[str]]:
    """Each tool's command line, with a one-rule Poelis configuration for the scanners."""
    commands: dict[str, list[str]] = {
        "poelis-scan": [shutil.which("poelis-scan") or "poelis-scan", "scan", str(tree),
                        "--format", "jsonl", "--quiet", "--output", str(work / "poelis.jsonl")],
    }
    if shutil.which("rg"):
        commands["rg -F -l"] = ["rg", "-F", "-l", "poelis_api_", str(tree)]
        commands["rg -uuu -F -l"] = ["rg", "-uuu", "-F", "-l", "poelis_api_", str(tree)]
    if shutil.which("kingfisher"):
        rule = work / "kingfisher-poelis.yaml"
        rule.write_text(
            # Vectorscan refuses "$" inside a one-line pattern, so the rule is in (?x) form.
            "rules:\n  - name: Poelis API Key\n    id: custom.poelis.1\n    pattern: |\n"
            "      (?x)\n      (?:^|[^A-Za-z0-9])\n      (poelis_api_[A-Za-z0-9_-]{29,49})\n"
            "      (?:[^A-Za-z0-9_-]|$)\n    min_entropy: 3.5\n    confidence: medium\n"
            "    examples:\n"
            "      - poelis_api_EXAMPLEaB3dE6gH9jK2mN5pQ8sT1vW4yZ7cF0hJ3lM6\n"
        )
        commands["kingfisher"] = [
            "kingfisher", "scan", str(tree), "--rules-path", str(rule), "--rule",
            "custom.poelis.1", "--load-builtins=false", "--no-validate", "--no-update-check",
            "--jobs", str(os.cpu_count() or 2), "-f", "jsonl", "-o", str(work / "kf.jsonl"),
        ]
    if shutil.which("gitleaks"):
        config = work / "gitleaks-poelis.toml"
        config.write_text(
            '[[rules]]\nid = "poelis-api-key"\ndescription = "Poelis API key"\n'
            f"regex = '''{KEY_REGEX}'''\nsecretGroup = 1\nentropy = 3.5\n"
            'keywords = ["poelis_api_"]\n'
        )
        commands["gitleaks"] = [
            "gitleaks", "dir", str(tree), "-c", str(config), "--no-banner", "-l", "error",
            "-f", "json", "-r", str(work / "gl.json"), "--exit-code", "0",
        ]
    return commands


def count_reported(tool: str, work: Path) -> str:
    """How many distinct keys a tool reported (for a sanity check against the planted ones)."""
    try:
        if tool == "poelis-scan":
            lines = (work / "poelis.jsonl").read_text().splitlines()
            return str(len({json.loads(x)["secret_sha256"] for x in lines}))
        if tool == "kingfisher":
            found = set()
            for line in (work / "kf.jsonl").read_text().splitlines():
                item = json.loads(line)
                if "finding" in item:
                    found.add(item["finding"]["snippet"])
            return str(len(found))
        if tool == "gitleaks":
            return str(len({f["Secret"] for f in json.loads((work / "gl.json").read_text())}))
    except (OSError, ValueError, KeyError):
        return "?"
    return "-"  # ripgrep lists files with the prefix, not keys


def time_command(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    for command in commands.values():  # warm the page cache and any rule caches
        time_command(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(time_command(command))
    return times


def report(times: dict[str, list[float]], reference: str, extra: dict[str, str]) -> None:
    ref = statistics.median(times[reference])
    print(f"{'tool':<16}{'median s':>10}{'min s':>9}{'÷ ' + reference:>18}  keys")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<16}{median:>10.2f}{min(samples):>9.2f}{median / ref:>18.2f}  "
              f"{extra.get(name, '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--executors", action="store_true",
                        help="compare worker processes, threads and a single process")
    parser.add_argument("--decoders", action="store_true",
                        help="compare all decoders on (default) with plain-only scanning")
    args = parser.parse_args()
    tree, planted = (args.tree, None) if args.tree else default_tree()
    size = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file() and not f.is_symlink())
    files = sum(1 for f in tree.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"tree {tree}: {files} files, {size / 1e6:.0f} MB, {os.cpu_count()} cores; "
          f"planted keys: {planted if planted is not None else 'unknown'}")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if args.executors:
            commands = {
                name: [sys.executable, "-c",
                       "import sys; from poelis_scan import scan_paths; "
                       f"scan_paths([sys.argv[1]], executor={name!r})", str(tree)]
                for name in ("process", "thread", "serial")
            }
            report(interleaved(commands, args.runs), "process", {})
            return
        if args.decoders:
            scan = [shutil.which("poelis-scan") or "poelis-scan", "scan", str(tree), "--quiet",
                    "--format", "jsonl", "--output", os.devnull]
            commands = {"all decoders": scan, "--no-decode": [*scan, "--no-decode"]}
            report(interleaved(commands, args.runs), "--no-decode", {})
            return
        commands = tool_commands(tree, work)
        times = interleaved(commands, args.runs)
        keys = {name: count_reported(name, work) for name in commands}
        report(times, "poelis-scan", keys)
        if "rg -F -l" in times:
            ours = statistics.median(times["poelis-scan"])
            for rg in ("rg -F -l", "rg -uuu -F -l"):
                print(f"poelis-scan ÷ {rg}: {ours / statistics.median(times[rg]):.2f}")


if __name__ == "__main__":
    main()
