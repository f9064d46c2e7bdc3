"""Time ``poelis-scan image`` on a realistic image in every form.

Run by hand (tests never time anything)::

    python benchmarks/bench_image.py [--mb 150] [--runs 3] [--registry 127.0.0.1:PORT]

The image is built from the running interpreter's standard library (``python:3.11-slim`` is
about that size): its files, sorted, cut into four base layers plus a small application
layer, gzip-compressed as registries store them. A second image shares the four base layers
and has its own application layer. Measured, medians of ``--runs``, in one run:

1. the limit: decompressing every layer and reading every tar member (Python's gzip +
   tarfile, the same libraries the scanner uses), with no scanning;
2. ``poelis-scan image`` on the OCI layout directory, on a ``docker save`` archive (plain
   tars), and from a loopback registry (``--registry``, ``$POELIS_TEST_REGISTRY``, or a
   ``docker-registry`` started here if the binary is installed);
3. the second image's cost: scanning both images in one run minus scanning the first alone
   (its base layers are already read, so this should be near zero).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from images import (  # noqa: E402 (tests/ is put on the path above)
    ImageSpec,
    push,
    tar_of,
    write_docker_archive,
    write_oci_layout,
)


def stdlib_files(limit: int) -> list[tuple[str, bytes]]:
    """Files of the standard library (then of site-packages, if the library alone is smaller
    than ``limit``), no caches, up to ``limit`` bytes."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(root.rglob("*"))
    paths.sort(key=lambda p: "site-packages" in p.relative_to(root).parts)  # stable: lib first
    out: list[tuple[str, bytes]] = []
    total = 0
    for path in paths:
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or path.is_symlink() or not path.is_file() \
                or path.stat().st_size > 4 << 20:  # a static libpython.a is no user's file
            continue
        data = path.read_bytes()
        out.append((f"usr/lib/python3/{rel}", data))
        total += len(data)
        if total >= limit:
            break
    return out


def build_specs(limit: int) -> tuple[ImageSpec, ImageSpec, int]:
    """Four base layers and an application layer (the last ~7% of the bytes); the second
    image has the same base and another application layer."""
    files = stdlib_files(limit)
    total = sum(len(d) for _, d in files)
    base: list[tuple[str, bytes]] = []
    app: list[tuple[str, bytes]] = []
    size = 0
    for name, data in files:
        (app if size >= total - total // 15 else base).append((name, data))
        size += len(data)
    quarter = max(1, len(base) // 4)
    layers = [dict(base[i * quarter:(i + 1) * quarter] if i < 3 else base[3 * quarter:])
              for i in range(4)]
    first = ImageSpec([*layers, dict(app)])
    second = ImageSpec([*layers, {f"srv/{n}": d for n, d in app}])
    return first, second, total


def median_time(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def scan(*refs: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "poelis_scan", "image", "--format", "json",
                           "-q", *refs], cwd=ROOT, capture_output=True, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return json.loads(proc.stdout)["stats"]  # type: ignore[no-any-return]


def read_limit(blobs: list[bytes]) -> None:
    for blob in blobs:
        with tarfile.open(fileobj=gzip.GzipFile(fileobj=io.BytesIO(blob)), mode="r|") as tar:
            for info in tar:
                member = tar.extractfile(info)
                if member is not None:
                    while member.read(1 << 20):
                        pass


def start_registry(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("docker-registry")
    if binary is None:
        return None
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = workdir / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {workdir}/reg\n"
                      f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=150)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--registry", default=os.environ.get("POELIS_TEST_REGISTRY"))
    args = parser.parse_args()
    first_spec, second_spec, size = build_specs(args.mb << 20)
    first, second = first_spec.build(), second_spec.build()
    mb = size / 1e6
    print(f"image: {mb:.0f} MB uncompressed in {len(first.tars)} layers "
          f"({sum(map(len, first.blobs)) / 1e6:.0f} MB gzip); second image shares 4 layers")
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        work = Path(tmp)
        layout = str(write_oci_layout(work / "layout", [first]))
        layout2 = str(write_oci_layout(work / "layout2", [second]))
        archive = str(write_docker_archive(work / "docker.tar", first))
        layout_tar = str(tar_of(work / "layout", work / "layout.tar"))
        started = None
        registry = args.registry
        if registry is None:
            started = start_registry(work)
            registry = started[1] if started else None
        refs = {"OCI layout dir": [layout], "OCI layout tar": [layout_tar],
                "docker save archive": [archive]}
        if registry:
            push(registry, "bench/python", "one", first)
            push(registry, "bench/python", "two", second)
            refs["loopback registry"] = [f"{registry}/bench/python:one"]
        try:
            limit = median_time(lambda: read_limit(first.blobs), args.runs)
            print(f"{'limit: gunzip + read every member':36} {limit:6.2f} s "
                  f"{mb / limit:7.0f} MB/s")
            for name, these in refs.items():
                stats = scan(*these)
                took = median_time(lambda these=these: scan(*these), args.runs)  # type: ignore[misc]
                print(f"{'poelis-scan image, ' + name:36} {took:6.2f} s {mb / took:7.0f} MB/s "
                      f"({took / limit:.2f}x limit; {stats['layers_scanned']} layers, "
                      f"{stats['files_scanned']} files)")
            pairs = {"OCI layout": ([layout], [layout, layout2])}
            if registry:
                pairs["loopback registry"] = ([f"{registry}/bench/python:one"],
                                              [f"{registry}/bench/python:one",
                                               f"{registry}/bench/python:two"])
            for name, (alone, both) in pairs.items():
                one = median_time(lambda alone=alone: scan(*alone), args.runs)  # type: ignore[misc]
                two = median_time(lambda both=both: scan(*both), args.runs)  # type: ignore[misc]
                stats = scan(*both)
                print(f"second image sharing 4 base layers ({name}): {two - one:+.2f} s "
                      f"(one image {one:.2f} s, both {two:.2f} s; "
                      f"{stats['layers_scanned']} distinct layers read)")
        finally:
            if started:
                started[0].terminate()
                started[0].wait()


if __name__ == "__main__":
    main()
