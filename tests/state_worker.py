"""One shard process for the state concurrency test: ``state_worker.py TARGET WORKER KEYS``.

Records its share of findings and objects (overlapping with the other workers') in its own
run and prints how many findings were new to the state."""

from __future__ import annotations

import json
import sys

from poelis_scan.detect.matches import scan_bytes
from poelis_scan.findings import Finding, GitOrigin
from poelis_scan.scan.stream import LocatedMatch
from poelis_scan.state import Repo, open_state

KEYS_PER_WORKER = 12
SHARED = 6  # the first SHARED steps every worker records


def finding(key: str, path: str, commit: str, line: int = 1) -> Finding:
    """A real finding: the detector's match of ``key``, placed at ``path`` in ``commit``."""
    match = scan_bytes(key.encode())[0]
    located = LocatedMatch(match=match, offset=0, line=line, column=1)
    return Finding.at(located, path, f"{commit[:12]}:{path}",
                      GitOrigin("blob", commit[::-1], "blob", "/tmp/some/checkout", commit))


def main(target: str, worker: int, keys: list[str]) -> int:
    repos = [Repo(f"example.org/r{i}", f"example.org/r{i}") for i in range(3)]
    new = 0
    with open_state(target) as state:
        run = state.begin_run(f"{worker + 1}/3")
        for step, key in enumerate(keys):
            if step >= SHARED and step % 3 != worker:
                continue
            repo = repos[step % 3]
            new += len(state.record(repo, [finding(key, f"f{step}.env", f"{step:040x}")], run))
            state.mark_scanned(repo, [f"{step:040x}", f"{step + 1000 * worker:040x}"], run)
        state.finish_run(run)
    print(new)
    return 0


if __name__ == "__main__":
    with open(sys.argv[3], encoding="utf-8") as handle:
        sys.exit(main(sys.argv[1], int(sys.argv[2]), json.load(handle)))
