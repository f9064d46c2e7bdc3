"""The entry point's shortcut for a clean ``git --staged`` (``poelis_scan/entry.py``).

It must say exactly what the full command line says, byte for byte (exit status, standard
output, standard error up to the measured seconds), and hand everything else over: each case
below runs both on a real repository and compares them, and says whether the shortcut
answered (from the modules the run imported, read in the process itself).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import GIT_ENV, git, make_key, make_legacy_key, read_terminal
from hypothesis import event, given, settings
from hypothesis import strategies as st

from poelis_scan import entry
from poelis_scan.cli import main as full_main

PROJECT = Path(__file__).resolve().parent.parent

# What the shortcut may import on top of the interpreter's start-up: the package root, the
# entry point and the archive check. Nothing else, above all none of HEAVY.
# ``__future__``: every module's ``from __future__ import annotations`` imports it (a few lines;
# an editable install's import hook has loaded it before the hook runs, a real install not).
LIGHT = {"poelis_scan", "poelis_scan.version", "poelis_scan.entry", "poelis_scan.scan",
         "poelis_scan.scan.magic", "poelis_scan.sources", "poelis_scan.sources.git",
         "poelis_scan.sources.git.hardening", "poelis_scan.units", "time", "_signal", "__future__"}
HEAVY = {"click", "dataclasses", "inspect", "typing", "re", "subprocess", "json", "hyperscan",
         "threading", "tomllib", "poelis_scan.cli", "poelis_scan.run", "poelis_scan.pipeline",
         "poelis_scan.findings", "poelis_scan.report", "poelis_scan.detect",
         "poelis_scan.sources.git.plumbing"}

# Run the entry point in a process of its own and write down the modules it imported.
_ENTRY = """
import sys
before = set(sys.modules)
from poelis_scan.entry import main
status = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write("\\n".join(sorted(set(sys.modules) - before)))
raise SystemExit(status)
"""
_FULL = "import sys\nfrom poelis_scan.cli import main\nraise SystemExit(main(sys.argv[1:]))\n"


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**base, **GIT_ENV, "PYTHONPATH": str(PROJECT), **extra}


@dataclass
class Run:
    status: int
    stdout: bytes
    stderr: bytes

    def same(self) -> tuple[int, bytes, bytes]:
        """The run as a comparable value: the seconds on the summary line vary."""
        return self.status, self.stdout, re.sub(rb" in \d+\.\d\ds: ", b" in Ts: ", self.stderr)


def run_entry(cwd: Path, *args: str, **env: str) -> tuple[Run, set[str]]:
    """``poelis-scan ARGS`` through the entry point: the run, and the modules it imported."""
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "modules"
        proc = subprocess.run([sys.executable, "-c", _ENTRY, str(listing), *args], cwd=cwd,
                              capture_output=True, env=_env(**env), timeout=300)
        imported = set(listing.read_text().split()) if listing.exists() else set()
    return Run(proc.returncode, proc.stdout, proc.stderr), imported


def run_full(cwd: Path, *args: str, **env: str) -> Run:
    """The same through the full command line only (``cli.main``)."""
    proc = subprocess.run([sys.executable, "-c", _FULL, *args], cwd=cwd, capture_output=True,
                          env=_env(**env), timeout=300)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def compare(cwd: Path, *args: str, **env: str) -> tuple[Run, bool]:
    """Both runs agree; returns the run and whether the shortcut answered."""
    fast, imported = run_entry(cwd, *args, **env)
    full = run_full(cwd, *args, **env)
    assert fast.same() == full.same()
    return fast, "poelis_scan.cli" not in imported


def new_repo(path: Path, files: dict[str, bytes] | None = None) -> Path:
    """A repository whose one commit holds ``files`` (default: a README)."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    for name, data in (files or {"README.md": b"hello\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "start")
    return path


def stage(repo: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
        git(repo, "add", "--", name)
    return repo


def _zip(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


# ---- the shortcut's needles are the detector's -------------------------------------------------

def test_the_needles_are_every_needle_of_every_encoding() -> None:
    """A new encoding or prefix must reach the shortcut too: else it would call a staged key
    in that encoding clean without looking."""
    from poelis_scan.detect.encodings import ALL_NEEDLES

    assert sorted(entry.NEEDLES) == sorted({n.pattern for n in ALL_NEEDLES})
    assert len(entry.NEEDLES) == len(set(entry.NEEDLES))


# ---- the same answers, case by case ------------------------------------------------------------

Case = Callable[[Path], tuple[Path, list[str]]]  # builds a repository: (cwd, arguments)


def _clean(tmp: Path) -> tuple[Path, list[str]]:
    return stage(new_repo(tmp / "r"), {"app.py": b"print('hello')\n"}), ["git", "--staged"]


def _clean_quiet(tmp: Path) -> tuple[Path, list[str]]:
    return _clean(tmp)[0], ["git", "-q", "--staged"]


def _repo_named(tmp: Path) -> tuple[Path, list[str]]:
    repo = stage(new_repo(tmp / "r r"), {"a b\nc.txt": b"x\n", "dir/\udce9.txt": b"y\n"})
    tmp.joinpath("elsewhere").mkdir()
    return tmp / "elsewhere", ["git", str(repo), "--staged", "--quiet"]


def _nothing(tmp: Path) -> tuple[Path, list[str]]:
    return new_repo(tmp / "r"), ["git", "--staged"]


def _nothing_quiet(tmp: Path) -> tuple[Path, list[str]]:
    return new_repo(tmp / "r"), ["git", "--staged", "-q"]


def _deletion(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r")
    git(repo, "rm", "-q", "README.md")
    return repo, ["git", "--staged"]


def _no_commit_yet(tmp: Path) -> tuple[Path, list[str]]:
    repo = tmp / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    return stage(repo, {"a.txt": b"first\n"}), ["git", "--staged"]


def _twice(tmp: Path) -> tuple[Path, list[str]]:
    return stage(new_repo(tmp / "r"), {"a.txt": b"same\n", "b.txt": b"same\n",
                                       "c.bin": bytes(range(256)) * 40}), ["git", "--staged"]


def _gitlink(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r")
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{head},sub")
    return repo, ["git", "--staged"]


def _config(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r", {".poelis-scan.toml": b'min-confidence = "low"\n'})
    return stage(repo, {"a.txt": b"x\n"}), ["git", "--staged"]


def _pyproject(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r", {"pyproject.toml": b'[project]\nname = "x"\n'})
    return stage(repo, {"a.txt": b"x\n"}), ["git", "--staged"]


def _pyproject_ours(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r", {"pyproject.toml": b'[tool.poelis-scan]\nmin-confidence = "low"\n'})
    return stage(repo, {"a.txt": b"x\n"}), ["git", "--staged"]


def _identifier(tmp: Path) -> tuple[Path, list[str]]:
    text = (b"poelis_api_key = os.environ['POELIS_API_KEY']\npoelis_api_YOUR_KEY_HERE\n"
            b"url = settings.poelis_api_base_url_for_production\n")
    return stage(new_repo(tmp / "r"), {"settings.py": text}), ["git", "--staged"]


SHORTCUT: dict[str, Case] = {
    "one clean file": _clean, "quiet": _clean_quiet, "a REPO named, odd paths": _repo_named,
    "nothing staged": _nothing, "nothing staged, quiet": _nothing_quiet,
    "a deletion only": _deletion, "no commit yet": _no_commit_yet,
    "the same blob twice": _twice, "a submodule only": _gitlink,
    "a configuration": _config, "a pyproject.toml": _pyproject,
    "a pyproject.toml with our table": _pyproject_ours, "identifiers": _identifier,
}


@pytest.mark.parametrize("case", SHORTCUT)
def test_the_shortcut_answers_clean_indexes_as_the_full_run_does(case: str,
                                                                 tmp_path: Path) -> None:
    cwd, args = SHORTCUT[case](tmp_path)
    run, answered = compare(cwd, *args)
    assert run.status == 0
    assert answered


def _key(tmp: Path) -> tuple[Path, list[str]]:
    return stage(new_repo(tmp / "r"), {"app.env": f"KEY={make_key()}\n".encode()}), \
        ["git", "--staged"]


def _encoded(encode: Callable[[bytes], bytes]) -> Case:
    def build(tmp: Path) -> tuple[Path, list[str]]:
        data = encode(f"token: {make_key()}\n".encode())
        return stage(new_repo(tmp / "r"), {"blob.dat": data}), ["git", "--staged"]

    return build


def _legacy(tmp: Path) -> tuple[Path, list[str]]:
    return stage(new_repo(tmp / "r"), {"old.cfg": f"{make_legacy_key()}\n".encode()}), \
        ["git", "--staged", "-q"]


def _placeholder(tmp: Path) -> tuple[Path, list[str]]:
    text = b"key = 'poelis_api_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n"
    return stage(new_repo(tmp / "r"), {"example.py": text}), ["git", "--staged"]


def _archive_quiet_needle(tmp: Path) -> tuple[Path, list[str]]:
    """A key only inside a compressed member: no needle in the raw bytes at all."""
    data = _zip("inner/app.env", f"KEY={make_key()}\n".encode() * 3)
    assert not any(needle in data for needle in entry.NEEDLES)
    return stage(new_repo(tmp / "r"), {"bundle.zip": data}), ["git", "--staged"]


def _gzip_clean(tmp: Path) -> tuple[Path, list[str]]:
    return stage(new_repo(tmp / "r"), {"notes.gz": gzip.compress(b"nothing\n")}), \
        ["git", "--staged"]


def _broken_config(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r", {".poelis-scan.toml": b"min-confidence = 3\n"})
    return stage(repo, {"a.txt": b"x\n"}), ["git", "--staged"]


def _broken_pyproject(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r", {"pyproject.toml": b"[tool.poelis-scan\nmin-confidence=\n"})
    return stage(repo, {"a.txt": b"x\n"}), ["git", "--staged"]


def _bare(tmp: Path) -> tuple[Path, list[str]]:
    bare = tmp / "bare.git"
    git(tmp, "init", "-q", "--bare", str(bare))
    return bare, ["git", "--staged"]


def _shallow(tmp: Path) -> tuple[Path, list[str]]:
    origin = new_repo(tmp / "origin")
    (origin / "more.txt").write_text("more\n")
    git(origin, "add", "more.txt")
    git(origin, "commit", "-qm", "more")
    clone = tmp / "clone"
    git(tmp, "clone", "-q", "--depth", "1", f"file://{origin}", str(clone))
    return stage(clone, {"a.txt": b"x\n"}), ["git", "--staged"]


def _not_a_repository(tmp: Path) -> tuple[Path, list[str]]:
    (tmp / "plain").mkdir()
    return tmp / "plain", ["git", "--staged"]


def _no_such_path(tmp: Path) -> tuple[Path, list[str]]:
    return tmp, ["git", str(tmp / "missing"), "--staged"]


def _missing_object(tmp: Path) -> tuple[Path, list[str]]:
    repo = stage(new_repo(tmp / "r"), {"gone.txt": b"soon gone\n"})
    sha = git(repo, "rev-parse", ":gone.txt").strip()
    (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()
    return repo, ["git", "--staged"]


def _many(tmp: Path) -> tuple[Path, list[str]]:
    repo = new_repo(tmp / "r")
    for n in range(entry.MAX_OBJECTS + 1):
        (repo / f"f{n}.txt").write_text(f"{n}\n")
    git(repo, "add", "-A")
    return repo, ["git", "--staged"]


def _other_options(tmp: Path) -> tuple[Path, list[str]]:
    return _clean(tmp)[0], ["git", "--staged", "--no-decode"]


def _two_repositories(tmp: Path) -> tuple[Path, list[str]]:
    repo = _clean(tmp)[0]
    return repo, ["git", str(repo), ".", "--staged"]


def _url(tmp: Path) -> tuple[Path, list[str]]:
    return _clean(tmp)[0], ["git", "file:///nowhere/at/all", "--staged"]


FULL_RUN: dict[str, Case] = {
    "a key": _key, "a base64 key": _encoded(base64.b64encode),
    "a hex key": _encoded(lambda b: b.hex().encode()),
    "a UTF-16 key": _encoded(lambda b: b.decode().encode("utf-16")),
    "a legacy credential": _legacy, "a placeholder": _placeholder,
    "a key deflated in a zip": _archive_quiet_needle, "a clean gzip": _gzip_clean,
    "a broken configuration": _broken_config, "a broken pyproject.toml": _broken_pyproject,
    "a bare repository": _bare, "a shallow clone": _shallow,
    "not a repository": _not_a_repository, "no such path": _no_such_path,
    "a missing object": _missing_object, "more than MAX_OBJECTS": _many,
    "another option": _other_options, "two repositories": _two_repositories, "a URL": _url,
}


@pytest.mark.parametrize("case", FULL_RUN)
def test_everything_else_goes_to_the_full_run(case: str, tmp_path: Path) -> None:
    cwd, args = FULL_RUN[case](tmp_path)
    run, answered = compare(cwd, *args)
    assert not answered
    if case in ("a key", "a base64 key", "a hex key", "a UTF-16 key", "a legacy credential",
                "a key deflated in a zip"):
        assert run.status == 1, run.stderr


def test_the_index_of_commit_a_is_the_one_read(tmp_path: Path) -> None:
    """Under ``git commit -a`` the hook gets GIT_INDEX_FILE; the shortcut reads that index
    (the default index holds nothing staged here) and says what the full run says."""
    repo = new_repo(tmp_path / "r")
    (repo / "README.md").write_text(f"KEY={make_key()}\n")
    git(repo, "read-tree", f"--index-output={repo / '.git' / 'next-index'}", "HEAD")
    other = str(repo / ".git" / "next-index")
    env = {"GIT_INDEX_FILE": other}
    subprocess.run(["git", "add", "README.md"], cwd=repo, env=_env(**env), check=True)
    run, answered = compare(repo, "git", "--staged", **env)
    assert run.status == 1 and not answered
    subprocess.run(["git", "reset", "-q", "--", "README.md"], cwd=repo, env=_env(**env),
                   check=True)
    (repo / "README.md").write_text("clean again\n")
    subprocess.run(["git", "add", "README.md"], cwd=repo, env=_env(**env), check=True)
    run, answered = compare(repo, "git", "--staged", **env)
    assert run.status == 0 and answered and b"scanned 1 blob" in run.stderr


def test_an_index_of_another_repository_is_not_read(tmp_path: Path) -> None:
    """GIT_INDEX_FILE outside the repository was set for something else: both runs read the
    repository's own index (here: nothing staged), not that one (a key staged)."""
    repo = new_repo(tmp_path / "r")
    foreign = tmp_path / "foreign-index"
    (repo / "README.md").write_text(f"KEY={make_key()}\n")
    subprocess.run(["git", "add", "README.md"], cwd=repo, env=_env(GIT_INDEX_FILE=str(foreign)),
                   check=True)
    run, answered = compare(repo, "git", "--staged", GIT_INDEX_FILE=str(foreign))
    assert run.status == 0 and answered and b"nothing is staged" in run.stderr


def test_the_shortcut_imports_only_what_it_needs(tmp_path: Path) -> None:
    """The modules a clean hook run loads, pinned (not its time): no click, no dataclasses,
    no subprocess, no pipeline. The same check sees them when there is a key."""
    cwd, args = _clean(tmp_path / "clean")
    run, imported = run_entry(cwd, *args)
    assert run.status == 0 and b"scanned 1 blob" in run.stderr
    assert imported - LIGHT == set()
    assert imported & HEAVY == set()
    cwd, args = _key(tmp_path / "key")
    run, imported = run_entry(cwd, *args)
    assert run.status == 1
    assert {"click", "poelis_scan.cli", "poelis_scan.pipeline"} <= imported


def test_a_needle_brings_in_the_detector_and_nothing_more(tmp_path: Path) -> None:
    """An identifier such as ``poelis_api_key`` is judged by the detector alone: still no
    click, no pipeline, no git plumbing module."""
    cwd, args = _identifier(tmp_path)
    run, imported = run_entry(cwd, *args)
    assert run.status == 0 and b"scanned 1 blob" in run.stderr
    assert "poelis_scan.detect.matches" in imported
    assert imported & {"click", "poelis_scan.cli", "poelis_scan.run", "poelis_scan.pipeline",
                       "poelis_scan.findings", "poelis_scan.sources.git.plumbing",
                       "subprocess", "hyperscan"} == set()


# ---- any content: the shortcut never calls clean what the scanner reports --------------------

_PIECES = [*entry.NEEDLES, b"poelis_", b"poelis_api", b"oelis_api_", b"PK\x03\x04", b"\x1f\x8b",
           b"BZh9", b"\n", b"\r\n", b" ", b"=", b"\0", b"A" * 43, b"_", b"-"]


_BODY = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_KEYS = st.builds(lambda prefix, body: prefix + body.encode(),
                  st.sampled_from([b"poelis_api_", b"poelis_live_org_prod_"]),
                  st.text(alphabet=_BODY, min_size=20, max_size=60))


@st.composite
def _contents(draw: st.DrawFn) -> bytes:
    """Bytes made of needles, their pieces, keys (encoded too), archive magic and noise."""
    key = st.one_of(_KEYS, _KEYS.map(base64.b64encode), _KEYS.map(lambda k: k.hex().encode()),
                    _KEYS.map(lambda k: k.decode().encode("utf-16-le")))
    parts = draw(st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=12), key),
                          max_size=12))
    return b"".join(parts)


def _in_process(run: Callable[[], int | None]) -> tuple[int | None, bytes, bytes]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run()
    return status, out.getvalue().encode(), re.sub(
        r" in \d+\.\d\ds: ", " in Ts: ", err.getvalue()).encode()


@settings(max_examples=40)
@given(files=st.lists(_contents(), min_size=1, max_size=3))
def test_the_shortcut_never_calls_clean_what_the_scanner_reports(files: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = stage(new_repo(Path(scratch) / "r"),
                     {f"f{n}.txt": data for n, data in enumerate(files)})
        args = ["git", str(repo), "--staged"]
        fast = _in_process(lambda: entry.staged_shortcut(args))
        full = _in_process(lambda: full_main(args))
    event(f"shortcut answered: {fast[0] is not None}")
    if fast[0] is not None:  # answered: clean, and word for word the full run's answer
        assert fast == full
        assert full[0] == 0
        assert b"finding" in full[2] and b"below confidence" not in full[2]


def _on_tty(cwd: Path, code: str, *args: str, **env: str) -> bytes:
    """Standard error of ``python -c CODE ARGS`` when it is a terminal."""
    import pty

    leader, follower = pty.openpty()
    clean = {k: v for k, v in _env(**env).items() if k != "POELIS_SCAN_PROGRESS_DELAY"}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=follower,
                            env={**clean, **env})
    os.close(follower)
    return re.sub(rb" in \d+\.\d\ds: ", b" in Ts: ", read_terminal(proc, leader))


_ENTRY_ONLY = ("import sys\nfrom poelis_scan.entry import main\n"
               "raise SystemExit(main(sys.argv[1:]))\n")


def test_on_a_terminal_the_warning_is_the_full_runs(tmp_path: Path) -> None:
    """On a terminal a warning first erases a progress line that may be showing."""
    repo = new_repo(tmp_path / "r")
    fast = _on_tty(repo, _ENTRY_ONLY, "git", "--staged", "-q")
    assert fast == _on_tty(repo, _FULL, "git", "--staged", "-q")
    assert fast.startswith(b"\r\x1b[Kpoelis-scan: warning: nothing was scanned")


def test_a_progress_line_asked_for_is_drawn_by_the_full_run(tmp_path: Path) -> None:
    """POELIS_SCAN_PROGRESS_DELAY=0 on a terminal: the progress line shows even for one blob,
    so the shortcut leaves the run to the full command line."""
    repo, args = _clean(tmp_path)
    shown = _on_tty(repo, _ENTRY_ONLY, *args, POELIS_SCAN_PROGRESS_DELAY="0")
    assert b"so far" in shown and b"scanned 1 blob" in shown
