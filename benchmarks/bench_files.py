"""Time ``poelis-scan scan`` against ripgrep, Kingfisher and gitleaks on trees and one huge file.

Run by hand (tests never time anything)::

    pip install '.[bench]'
    python benchmarks/bench_files.py [--runs 5]      # every workload below, in one run
    python benchmarks/bench_files.py DIR             # your own tree instead of the real one
    python benchmarks/bench_files.py --only real,big --no-peers
    python benchmarks/bench_files.py --executors     # worker processes vs threads vs serial
    python benchmarks/bench_files.py --decoders      # cost of UTF-16/base64/hex decoding

Workloads (``workloads.py``, built once and cached under ``$POELIS_BENCH_CACHE``):

- ``real``: checkouts of public repositories plus the standard library, > 50,000 files with a
  median of a few KB, keys planted in plain text, base64, UTF-16 and a zip; poelis-scan against
  ``rg -F -l --no-ignore --hidden -a poelis_api_`` (every file, like us), Kingfisher and
  gitleaks with one-rule Poelis configurations, and ``-j 1`` against the default job count;
- ``big``: one log of more than 2 GB, against ``rg -F -c -a``; peak RSS of the scan is printed;
- ``generated``: the first benchmark's tree (about 13,000 files averaging 40 KB) against rg.

Every command runs once untimed (page cache, rule caches), then all of them in turn, N rounds,
so that load from anything else on the machine hits every command alike; the tables give
medians of wall time, CPU time (user + system, the command and its children) and peak RSS
(``wait4``), and ratios measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import workloads
from workloads import Workload, generate_tree  # noqa: F401  (bench_git imports it here)

KEY_REGEX = r"(?:^|[^A-Za-z0-9])(poelis_api_[A-Za-z0-9_-]{29,49})(?:[^A-Za-z0-9_-]|$)"
RG_TREE = ["-F", "-l", "--no-ignore", "--hidden", "-a", "poelis_api_"]
RG_FILE = ["-F", "-c", "-a", "poelis_api_"]


def which(name: str) -> str | None:
    """A tool next to this interpreter first (the venv with the bench extra), then on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


@dataclass
class Sample:
    wall: float
    cpu: float
    max_rss_kb: int
    status: int


@dataclass
class Case:
    """One command to time, and where its report goes (for counting the keys it found)."""

    name: str
    command: list[str]
    kind: str = "rg"  # poelis | kingfisher | gitleaks | rg | other: how to read its report
    report: Path | None = None
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str = "wall") -> float:
        return float(statistics.median(float(getattr(s, attr)) for s in self.samples))


def run(command: list[str]) -> Sample:
    """Wall time, CPU and peak RSS of one command (``wait4`` covers its reaped children)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, process.returncode)


def interleave(cases: list[Case], runs: int) -> None:
    for case in cases:  # warm the page cache and any rule caches, untimed
        run(case.command)
    for round_ in range(runs):
        for case in cases:
            case.samples.append(run(case.command))
        print(f"  round {round_ + 1}/{runs} done", file=sys.stderr)


# -- commands ---------------------------------------------------------------------------------

def poelis(target: Path, report: Path, *extra: str) -> list[str]:
    return [which("poelis-scan") or "poelis-scan", "scan", str(target), "--format", "jsonl",
            "--quiet", "--output", str(report), *extra]


def write_peer_rules(work: Path) -> tuple[Path, Path]:
    """One-rule configurations: the same regex and entropy floor for Kingfisher and gitleaks."""
    kingfisher = work / "kingfisher-poelis.yaml"
    kingfisher.write_text(
        # Vectorscan refuses "$" inside a one-line pattern, so the rule is in (?x) form.
        "rules:\n  - name: Poelis API Key\n    id: custom.poelis.1\n    pattern: |\n"
        "      (?x)\n      (?:^|[^A-Za-z0-9])\n      (poelis_api_[A-Za-z0-9_-]{29,49})\n"
        "      (?:[^A-Za-z0-9_-]|$)\n    min_entropy: 3.5\n    confidence: medium\n    examples:\n"
        "      - poelis_api_EXAMPLEaB3dE6gH9jK2mN5pQ8sT1vW4yZ7cF0hJ3lM6\n"
    )
    gitleaks = work / "gitleaks-poelis.toml"
    gitleaks.write_text(
        '[[rules]]\nid = "poelis-api-key"\ndescription = "Poelis API key"\n'
        f"regex = '''{KEY_REGEX}'''\nsecretGroup = 1\nentropy = 3.5\n"
        'keywords = ["poelis_api_"]\n'
    )
    return kingfisher, gitleaks


def tool_commands(tree: Path, work: Path) -> dict[str, list[str]]:
    """Each tool's command line on a tree (also writes the peers' rule files into ``work``)."""
    kingfisher_rule, gitleaks_rule = write_peer_rules(work)
    commands = {"poelis-scan": poelis(tree, work / "poelis.jsonl")}
    if rg := which("rg"):
        commands["rg -F -l"] = [rg, *RG_TREE, str(tree)]
    if kingfisher := which("kingfisher"):
        commands["kingfisher"] = [
            kingfisher, "scan", str(tree), "--rules-path", str(kingfisher_rule), "--rule",
            "custom.poelis.1", "--load-builtins=false", "--no-validate", "--no-update-check",
            "--jobs", str(os.cpu_count() or 2), "-f", "jsonl", "-o", str(work / "kf.jsonl"),
        ]
    if gitleaks := which("gitleaks"):
        commands["gitleaks"] = [
            gitleaks, "dir", str(tree), "-c", str(gitleaks_rule), "--no-banner", "-l", "error",
            "-f", "json", "-r", str(work / "gl.json"), "--exit-code", "0",
        ]
    return commands


def tree_cases(label: str, tree: Path, work: Path, peers: bool, jobs_one: bool) -> list[Case]:
    out = work / label
    out.mkdir()
    commands = tool_commands(tree, out)
    cases = [Case(f"{label}: poelis-scan", commands["poelis-scan"], "poelis",
                  out / "poelis.jsonl")]
    if jobs_one:
        cases.append(Case(f"{label}: poelis-scan -j 1",
                          poelis(tree, out / "poelis-j1.jsonl", "-j", "1"), "poelis",
                          out / "poelis-j1.jsonl"))
    if "rg -F -l" in commands:
        cases.append(Case(f"{label}: rg -F -l", commands["rg -F -l"]))
    if peers and "kingfisher" in commands:
        cases.append(Case(f"{label}: kingfisher", commands["kingfisher"], "kingfisher",
                          out / "kf.jsonl"))
    if peers and "gitleaks" in commands:
        cases.append(Case(f"{label}: gitleaks", commands["gitleaks"], "gitleaks",
                          out / "gl.json"))
    return cases


def big_cases(path: Path, work: Path) -> list[Case]:
    cases = [Case("big: poelis-scan", poelis(path, work / "big.jsonl"), "poelis",
                  work / "big.jsonl"),
             Case("big: poelis-scan -j 1", poelis(path, work / "big-j1.jsonl", "-j", "1"),
                  "poelis", work / "big-j1.jsonl")]
    if rg := which("rg"):
        cases.append(Case("big: rg -F -c", [rg, *RG_FILE, str(path)]))
    return cases


# -- results ----------------------------------------------------------------------------------

def reported_digests(case: Case) -> set[str] | None:
    """SHA-256 of each distinct key a scanner reported (ripgrep lists files, not keys)."""
    import hashlib

    def digest(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    if case.report is None:
        return None
    try:
        text = case.report.read_text()
        if case.kind == "poelis":
            return {json.loads(line)["secret_sha256"] for line in text.splitlines() if line}
        if case.kind == "kingfisher":
            found = set()
            for line in text.splitlines():
                item = json.loads(line)
                if "finding" in item:
                    found.add(digest(item["finding"]["snippet"]))
            return found
        if case.kind == "gitleaks":
            return {digest(f["Secret"]) for f in json.loads(text or "[]")}
    except (OSError, ValueError, KeyError):
        return None
    return None


def keys_column(case: Case, planted: set[str] | None) -> str:
    found = reported_digests(case)
    if found is None:
        return "-"
    if planted is None:
        return str(len(found))
    return f"{len(found & planted)}/{len(planted)}" + (f" (+{len(found - planted)} other)"
                                                      if found - planted else "")


def print_commands_table(cases: list[Case], planted: dict[str, set[str] | None]) -> None:
    print("| command | median wall s | min s | median CPU s | CPU ÷ wall | peak RSS MB "
          "| planted keys found |")
    print("|---|---|---|---|---|---|---|")
    for case in cases:
        label = case.name.split(":")[0]
        wall, cpu = case.median("wall"), case.median("cpu")
        rss = max(s.max_rss_kb for s in case.samples) / 1024
        print(f"| {case.name} | {wall:.2f} | {min(s.wall for s in case.samples):.2f} "
              f"| {cpu:.2f} | {cpu / wall:.2f} | {rss:.0f} "
              f"| {keys_column(case, planted.get(label))} |")


def print_ratio_table(cases: list[Case]) -> None:
    by_name = {case.name: case for case in cases}
    rows = [
        ("real", "real: poelis-scan", "real: rg -F -l", "target ≤ 2.0 (stretch 1.3)"),
        ("real", "real: poelis-scan", "real: kingfisher", ""),
        ("real", "real: poelis-scan", "real: gitleaks", ""),
        ("real", "real: poelis-scan", "real: poelis-scan -j 1", "target ≤ 1.0"),
        ("big", "big: poelis-scan", "big: rg -F -c", "target ≤ 2.0"),
        ("big", "big: poelis-scan", "big: poelis-scan -j 1", "both cores on one file"),
        ("generated", "generated: poelis-scan", "generated: rg -F -l", ""),
        ("generated", "generated: poelis-scan", "generated: poelis-scan -j 1", ""),
    ]
    print("| work | poelis-scan | reference | ratio (wall) | ratio (CPU) | note |")
    print("|---|---|---|---|---|---|")
    for work, ours, reference, note in rows:
        if ours not in by_name or reference not in by_name:
            continue
        a, b = by_name[ours], by_name[reference]
        print(f"| {work} | {ours.split(': ')[1]} {a.median():.2f} s "
              f"(CPU {a.median('cpu'):.2f} s) | {reference.split(': ')[1]} {b.median():.2f} s "
              f"| **{a.median() / b.median():.2f}×** "
              f"| {a.median('cpu') / b.median('cpu'):.2f}× | {note} |")
    if "big: poelis-scan" in by_name:
        rss = max(s.max_rss_kb for s in by_name["big: poelis-scan"].samples) / 1024
        print(f"| big | peak RSS {rss:.0f} MB | | | | target < 64 MB |")


# -- the older modes, kept ----------------------------------------------------------------

def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Wall times of named commands, interleaved (kept for ``--executors`` and bench_git)."""
    cases = [Case(name, command) for name, command in commands.items()]
    interleave(cases, runs)
    return {case.name: [s.wall for s in case.samples] for case in cases}


def report(times: dict[str, list[float]], reference: str, extra: dict[str, str]) -> None:
    ref = statistics.median(times[reference])
    print(f"{'tool':<16}{'median s':>10}{'min s':>9}{'÷ ' + reference:>18}  keys")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<16}{median:>10.2f}{min(samples):>9.2f}{median / ref:>18.2f}  "
              f"{extra.get(name, '')}")


def legacy_modes(args: argparse.Namespace, tree: Path) -> None:
    if args.executors:
        commands = {
            name: [sys.executable, "-c",
                   ("import sys; from poelis_scan import scan_paths; "
                    f"scan_paths([sys.argv[1]], executor={name!r})"), str(tree)]
            for name in ("process", "thread", "serial")
        }
        report(interleaved(commands, args.runs), "process", {})
    else:
        scan = poelis(tree, Path(os.devnull))
        commands = {"all decoders": scan, "--no-decode": [*scan, "--no-decode"]}
        report(interleaved(commands, args.runs), "--no-decode", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?", type=Path,
                        help="a tree to use instead of the cached real tree")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="real,big,generated",
                        help="comma-separated workloads: real, big, generated")
    parser.add_argument("--no-peers", dest="peers", action="store_false",
                        help="leave out Kingfisher and gitleaks (they take most of the time)")
    parser.add_argument("--big-file", type=Path, help="a file to use instead of the cached log")
    parser.add_argument("--executors", action="store_true",
                        help="compare worker processes, threads and a single process")
    parser.add_argument("--decoders", action="store_true",
                        help="compare all decoders on (default) with plain-only scanning")
    args = parser.parse_args()
    only = set(args.only.split(","))

    real: Workload | None = None
    if args.tree:
        files, total, median = workloads.tree_stats(args.tree)
        real = Workload(args.tree, files, total, median, 0)
    elif "real" in only or args.executors or args.decoders:
        real = workloads.real_tree()
    if args.executors or args.decoders:
        assert real is not None
        print(real.describe())
        legacy_modes(args, real.path)
        return
    generated = workloads.generated_tree() if "generated" in only else None
    big = None
    if "big" in only:
        big = (Workload(args.big_file, 1, args.big_file.stat().st_size, 0, 0) if args.big_file
               else workloads.big_file())

    planted: dict[str, set[str] | None] = {}
    for label, workload in (("real", real), ("big", big), ("generated", generated)):
        if workload is None or label not in only:
            continue
        print(f"{label}: {workload.describe()}")
        manifest = workload.path.parent / f"{workload.path.name.rsplit('.', 1)[0]}.json"
        planted[label] = None
        if manifest.exists() and workload.planted:
            data = json.loads(manifest.read_text())
            planted[label] = set(data.get("key_sha256", [])) or None
    print(f"{os.cpu_count()} cores; {args.runs} interleaved rounds after one warm-up; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        cases: list[Case] = []
        if real is not None and "real" in only:
            cases += tree_cases("real", real.path, work, args.peers, jobs_one=True)
        if big is not None:
            cases += big_cases(big.path, work)
        if generated is not None:
            cases += tree_cases("generated", generated.path, work, peers=False, jobs_one=True)
        interleave(cases, args.runs)
        print()
        print_commands_table(cases, planted)
        print()
        print_ratio_table(cases)


if __name__ == "__main__":
    main()
