"""Benchmark inputs, built once and cached: a real source tree, a generated tree, one huge log.

Why three: users scan checkouts (tens of thousands of files, median a few KB), and the old
generated tree (12,869 files averaging 40 KB) hid the per-file cost that dominates there; a
single file of more than 2 GB measures raw search speed and whether both cores help on one
file. Every input lives under ``$POELIS_BENCH_CACHE`` (default ``~/.cache/poelis-scan-bench``)
and is rebuilt only when its version string changes or its manifest is missing (the manifest
is written last, so an interrupted build is redone).

The real tree is the ``HEAD`` snapshot of several public repositories (``git archive`` of local
bare mirrors or clones: nothing is downloaded here; point ``$POELIS_BENCH_MIRRORS`` at a
directory holding ``owner+name/repo``, ``owner+name``, ``name.git`` or ``name``) plus a copy of
the running interpreter's standard library without ``site-packages`` (which differs from one
machine to the next). Keys are generated at build time and planted in several encodings; only
their SHA-256 digests are kept in the manifest, never the keys.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

REAL_TREE_VERSION = "v1"
GENERATED_TREE_VERSION = "v1"
BIG_FILE_VERSION = "v1"
BIG_FILE_BYTES = 2_200_000_000
GENERATED_TARGET_BYTES = 520 * 1000 * 1000
MIN_REAL_FILES = 50_000

# The five repositories, then the ones added to pass 50,000 files (django/django and
# golang/go were over the 500 MB fetch limit here; these are mid-sized Go and Python projects
# whose checkouts include vendored code, as many users' do).
REAL_REPOS = (
    "sqlalchemy/sqlalchemy",
    "pytest-dev/pytest",
    "pallets/flask",
    "psf/requests",
    "trufflesecurity/trufflehog",
    "moby/moby",
    "ansible/ansible",
    "containerd/containerd",
    "istio/istio",
    "golang/tools",
    "hashicorp/terraform",
)

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
DECOY = b"\npoelis_api_base_url_for_production_environment = 1\nPOELIS_API_KEY=\n"


@dataclass(frozen=True)
class Workload:
    """A cached benchmark input and what was planted in it."""

    path: Path
    files: int
    total_bytes: int
    median_bytes: float
    planted: int

    def describe(self) -> str:
        if self.path.is_file():
            return (f"{self.path}: one file, {self.total_bytes / 1e6:,.0f} MB, "
                    f"planted keys {self.planted}")
        return (f"{self.path}: {self.files:,} files, {self.total_bytes / 1e6:,.0f} MB, "
                f"median file {self.median_bytes / 1e3:.1f} KB, planted keys {self.planted}")


def cache_dir() -> Path:
    root = os.environ.get("POELIS_BENCH_CACHE") or str(Path.home() / ".cache" / "poelis-scan-bench")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_key() -> str:
    """A fresh random key (43 alphanumeric characters: always judged high, never committed)."""
    return "poelis_api_" + "".join(secrets.choice(ALPHABET) for _ in range(43))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tree_stats(root: Path) -> tuple[int, int, float]:
    """Regular files (symbolic links not followed): count, total bytes, median size."""
    sizes: list[int] = []
    for directory, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(directory, name))
            if (st.st_mode & 0o170000) == 0o100000:
                sizes.append(st.st_size)
    return len(sizes), sum(sizes), statistics.median(sizes) if sizes else 0.0


def _load(path: Path, manifest: Path) -> Workload:
    data = json.loads(manifest.read_text())
    return Workload(path, data["files"], data["bytes"], data["median"], data["planted"])


def _write_manifest(root: Path, manifest: Path, planted: list[str], **extra: object) -> Workload:
    files, total, median = tree_stats(root) if root.is_dir() else (1, root.stat().st_size,
                                                                     root.stat().st_size)
    manifest.write_text(json.dumps({
        "files": files, "bytes": total, "median": median, "planted": len(planted),
        "key_sha256": sorted(_digest(k) for k in planted), **extra,
    }, indent=1))
    return _load(root, manifest)


# -- the real tree ---------------------------------------------------------------------------

def mirror_roots() -> list[Path]:
    env = os.environ.get("POELIS_BENCH_MIRRORS")
    roots = [Path(p) for p in env.split(os.pathsep)] if env else []
    return [*roots, Path("/work/.mirror"), cache_dir() / "mirrors"]


def find_git_dir(repo: str) -> Path | None:
    """A local bare mirror or clone of ``owner/name`` under one of the mirror roots."""
    owner, name = repo.split("/")
    for root in mirror_roots():
        for candidate in (root / f"{owner}+{name}" / "repo", root / f"{owner}+{name}",
                          root / f"{name}.git", root / name):
            if not candidate.is_dir():
                continue
            bare = subprocess.run(["git", "--git-dir", str(candidate), "rev-parse", "HEAD"],
                                  capture_output=True, check=False)
            if bare.returncode == 0:
                return candidate
            probe = subprocess.run(["git", "-C", str(candidate), "rev-parse", "--git-dir"],
                                   capture_output=True, text=True, check=False)
            if probe.returncode == 0:
                return (candidate / probe.stdout.strip()).resolve()
    return None


def _checkout(git_dir: Path, destination: Path) -> str:
    """The HEAD snapshot without .git, exactly what a user's checkout holds; returns HEAD."""
    destination.mkdir(parents=True)
    head = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.Popen(["git", "--git-dir", str(git_dir), "archive", "--format=tar",
                                head], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(destination)], stdin=archive.stdout, check=True)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0:
        raise SystemExit(f"git archive failed for {git_dir}")
    return head


def _plant_real(root: Path) -> list[str]:
    """Keys in the encodings users leak them in, placed where they are found in practice."""
    rng = random.Random(1128)
    planted: list[str] = []

    def key() -> str:
        planted.append(make_key())
        return planted[-1]

    src = root / "src"
    # Plain, in a dotenv file and in the middle of an existing source file.
    (src / "psf+requests" / ".env.local").write_text(f"POELIS_API_KEY={key()}\nDEBUG=1\n")
    candidates = sorted(p for p in (src / "moby+moby").rglob("*.go") if p.stat().st_size > 8000)
    victim = rng.choice(candidates)
    data = victim.read_bytes()
    middle = data.index(b"\n", len(data) // 2) + 1
    victim.write_bytes(data[:middle] + f'// token := "{key()}"\n'.encode() + data[middle:])
    # base64, as in a Kubernetes secret.
    encoded = base64.b64encode(key().encode()).decode()
    (src / "istio+istio" / "poelis-secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: poelis\ntype: Opaque\n"
        f"data:\n  api-key: {encoded}\n")
    # UTF-16 with a byte order mark, as Windows tools write it.
    (root / "stdlib" / "poelis-settings.ini").write_bytes(
        f"[poelis]\r\napi_key = {key()}\r\n".encode("utf-16"))
    # Inside a zip, as in a build artefact.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app/settings.py", f'POELIS_KEY = "{key()}"\n')
        archive.writestr("app/__init__.py", "")
    (src / "pallets+flask" / "examples" / "bundle.zip").write_bytes(buffer.getvalue())
    # A decoy that only looks like a key prefix.
    (src / "pytest-dev+pytest" / "poelis_decoy.py").write_bytes(DECOY)
    return planted


def real_tree(extra_repos: tuple[str, ...] = ()) -> Workload:
    """Checkouts of public repositories plus the standard library: at least 50,000 files."""
    root = cache_dir() / f"real-tree-{REAL_TREE_VERSION}"
    manifest = cache_dir() / f"real-tree-{REAL_TREE_VERSION}.json"
    if manifest.exists() and root.is_dir():
        return _load(root, manifest)
    repos = REAL_REPOS + extra_repos
    missing = [r for r in repos if find_git_dir(r) is None]
    if missing:
        roots = ", ".join(str(r) for r in mirror_roots())
        raise SystemExit(
            f"no local mirror of {', '.join(missing)} (looked under {roots}); e.g. "
            f"git clone --bare https://github.com/{missing[0]} "
            f"{cache_dir() / 'mirrors' / (missing[0].split('/')[1] + '.git')}")
    shutil.rmtree(root, ignore_errors=True)
    print(f"building the real tree in {root} …", file=sys.stderr)
    heads = {}
    for repo in repos:
        git_dir = find_git_dir(repo)
        assert git_dir is not None
        heads[repo] = _checkout(git_dir, root / "src" / repo.replace("/", "+"))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(stdlib, root / "stdlib", symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "dist-packages"))
    planted = _plant_real(root)
    workload = _write_manifest(root, manifest, planted, repos=heads,
                               stdlib=f"{stdlib} (Python {sys.version.split()[0]})")
    if workload.files < MIN_REAL_FILES:
        print(f"warning: the real tree has only {workload.files} files (< {MIN_REAL_FILES}); "
              "add repositories", file=sys.stderr)
    return workload


# -- the generated tree (the first benchmark's workload, kept for comparison) ----------------

def _corpus() -> list[bytes]:
    """Real text to build files from: the interpreter's own standard library sources."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(stdlib.rglob("*")):
        if "site-packages" in path.parts:
            continue
        if path.suffix in {".py", ".txt", ".rst", ".json", ".cfg", ".html", ".xml"}:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if 200 < len(data) < 2_000_000:
                texts.append(data)
    return texts


def generate_tree(root: Path, target_bytes: int = GENERATED_TARGET_BYTES,
                  binary: bool = True) -> int:
    """Write the generated tree (12,869 files averaging 40 KB); returns the planted key count."""
    rng = random.Random(1127)
    big = b"".join(_corpus())
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
            data = data[: len(data) // 2] + f'\nAPI_KEY="{make_key()}"\n'.encode() + data[
                len(data) // 2 :]
            planted += 1
        if index % 991 == 0:
            data += DECOY
        (directory / name).write_bytes(data)
        total += len(data)
    return planted


def generated_tree() -> Workload:
    root = cache_dir() / f"generated-tree-{GENERATED_TREE_VERSION}"
    manifest = cache_dir() / f"generated-tree-{GENERATED_TREE_VERSION}.json"
    if manifest.exists() and root.is_dir():
        return _load(root, manifest)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"generating the generated tree in {root} …", file=sys.stderr)
    planted = generate_tree(root)
    files, total, median = tree_stats(root)
    manifest.write_text(json.dumps({"files": files, "bytes": total, "median": median,
                                    "planted": planted}))
    return _load(root, manifest)


# -- one huge file ----------------------------------------------------------------------------

def big_file(size: int = BIG_FILE_BYTES) -> Workload:
    """A log of repeated real source text with keys at a few offsets, every byte written.

    Written in full (no sparse holes, which read as zeros faster than real data would), 64 MB
    at a time so that building it never holds more than that in memory.
    """
    path = cache_dir() / f"big-{BIG_FILE_VERSION}.log"
    manifest = cache_dir() / f"big-{BIG_FILE_VERSION}.json"
    if manifest.exists() and path.is_file():
        return _load(path, manifest)
    print(f"writing {size / 1e9:.1f} GB to {path} …", file=sys.stderr)
    corpus = b"".join(_corpus())
    chunk = 64 * 1024 * 1024
    # Key offsets: early, around the middle (one just past a 1 MiB boundary), near the end.
    offsets = sorted([4_000_000, size // 2 - 20, size // 2 + 3 * 1024 * 1024 - 30,
                      int(size * 0.77), size - 5_000_000])
    planted: list[str] = []
    written = 0
    start = 0
    with path.open("wb") as out:
        while written < size:
            piece = corpus[start : start + chunk]
            start = (start + len(piece)) % len(corpus)
            piece = piece[: size - written]
            inserts = [o - written for o in offsets if written <= o < written + len(piece)]
            for at in reversed(inserts):
                planted.append(make_key())
                piece = piece[:at] + f'\nPOELIS_API_KEY="{planted[-1]}"\n'.encode() + piece[at:]
            out.write(piece)
            written += len(piece)
    return _write_manifest(path, manifest, planted)


def main() -> None:
    """Build (or load) every workload and describe it: ``python benchmarks/workloads.py``."""
    for build in (real_tree, generated_tree, big_file):
        print(build().describe())


if __name__ == "__main__":
    main()
