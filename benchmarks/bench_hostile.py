"""Hostile inputs (issue 11): wall time and peak memory of a whole ``poelis-scan scan`` run.

Every input is built at run time in a temporary directory (no key is stored anywhere):

- ``cd-bomb``: a zip whose central directory holds 1.4 M entries pointing at one local header,
  deflated inside another zip (about 190 KB);
- ``cd-bomb-x16``: 16 such bombs in one zip (about 3 MB);
- ``flood-example``: 500,000 lines holding the documented example key (28.5 MB);
- ``flood-real``: 200,000 random keys, one a line (11 MB);
- ``flood-base64``: the base64 of the key prefix, repeated (10 MB).

Targets (issue 11): any input of 10 MB or less in 20 s and < 200 MB; 28.5 MB of look-alikes
in 30 s and < 200 MB; candidate-dense input at 5 MB/s or more.

    python benchmarks/bench_hostile.py [--only NAME ...] [--jobs N]

Each scan is a fresh process started by a small launcher; its peak RSS comes from ``wait4``
(the children it forks are not included: run with ``--jobs 1`` to see everything in one
process). Seconds include the launcher's start, about 20 ms.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
PREFIX = "poelis_api_"


def _key() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(43))


def _cd_bomb(count: int) -> bytes:
    data = f"K={_key()}\n".encode()
    crc = zlib.crc32(data)
    name = b"a"
    local = struct.pack("<4sHHHHHLLLHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data),
                        len(data), len(name), 0) + name + data
    entry = struct.pack("<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 45, 20, 0, 0, 0, 0, crc,
                        len(data), len(data), len(name), 0, 0, 0, 0, 0, 0) + name
    directory = entry * count
    z64 = len(local) + len(directory)
    tail = (struct.pack("<4sQHHLLQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
                        len(directory), len(local))
            + struct.pack("<4sLQL", b"PK\x06\x07", 0, z64, 1)
            + struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory),
                          len(local), 0))
    return local + directory + tail


def build_cd_bomb(path: Path, copies: int = 1) -> None:
    inner = _cd_bomb(1_400_000)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as outer:
        for i in range(copies):
            outer.writestr(f"bomb{i}.zip", inner)


def build_flood_example(path: Path) -> None:
    from poelis_scan.detect.grammar import DOCUMENTED_EXAMPLE_BODY

    line = f"k={PREFIX}{DOCUMENTED_EXAMPLE_BODY}\n".encode()  # 57 bytes: 28.5 MB in all
    with open(path, "wb") as out:
        out.writelines(line * 10_000 for _ in range(50))


def build_flood_real(path: Path) -> None:
    with open(path, "wb") as out:
        out.writelines("".join(f"{_key()}\n" for _ in range(10_000)).encode()
                       for _ in range(20))


def build_flood_base64(path: Path) -> None:
    chunk = base64.b64encode(PREFIX.encode() * 3000) + b"\n"
    with open(path, "wb") as out:
        while out.tell() < 10 << 20:
            out.write(chunk)


INPUTS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "cd-bomb": ("cd-bomb.zip", build_cd_bomb),
    "cd-bomb-x16": ("cd-bomb-x16.zip", lambda p: build_cd_bomb(p, 16)),
    "flood-example": ("flood-example.env", build_flood_example),
    "flood-real": ("flood-real.txt", build_flood_real),
    "flood-base64": ("flood-base64.txt", build_flood_base64),
}


# The scan runs under a fresh, small launcher that reports its peak: a child forked straight
# from this process would inherit this process's high-water mark (Linux carries it across
# exec), and after parsing 200,000 findings that is hundreds of MB.
_LAUNCHER = """
import os, subprocess, sys
with open(sys.argv[1], "wb") as out:
    proc = subprocess.Popen(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime)
"""


def measure(path: Path, jobs: int) -> tuple[float, float, int, int, int]:
    """Seconds, CPU seconds, peak RSS in MB, exit status and findings reported, of one scan
    (default confidence floor: what is below it is counted, not reported).

    CPU seconds are the scan's own (user + system, its workers included): on a shared machine
    wall time moves by 2x from one run to the next, CPU time by far less."""
    import json

    report = path.with_suffix(".report.json")
    started = time.perf_counter()
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(report), sys.executable, "-m", "poelis_scan",
         "scan", str(path), "-q", "--format", "json", "-j", str(jobs)],
        capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    peak_text, status_text, cpu_text = launched.stdout.split()
    peak, status, cpu = int(peak_text), int(status_text), float(cpu_text)
    try:
        findings = len(json.loads(report.read_bytes())["findings"])
    except (ValueError, KeyError):
        findings = -1
    report.unlink()
    return seconds, cpu, peak // 1024, status, findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(INPUTS), default=sorted(INPUTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--build", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:  # in a child process: this one's peak memory would be inherited by scans
        INPUTS[args.build[0]][1](Path(args.build[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'input':<15} {'size MB':>8} {'seconds':>8} {'MB/s':>7} {'cpu s':>7} "
              f"{'MB/cpu s':>8} {'peak MB':>8} {'exit':>4} {'findings':>9}")
        for name in args.only:
            file_name, _ = INPUTS[name]
            path = Path(tmp) / file_name
            subprocess.run([sys.executable, __file__, "--build", name, str(path)], check=True)
            size = path.stat().st_size / 1e6
            seconds, cpu, peak, status, findings = measure(path, args.jobs)
            print(f"{name:<15} {size:>8.1f} {seconds:>8.1f} {size / seconds:>7.1f} {cpu:>7.1f} "
                  f"{size / cpu:>8.1f} {peak:>8} {status:>4} {findings:>9}", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
