"""Shared test helpers: keys made at run time, and the real CLI run as a subprocess."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from poelis_emulator import Emulator

from poelis_scan.detect.grammar import classify_body, read_api_run

# Tests never assert on time, and Hypothesis's per-example deadline is a time assertion: on a
# loaded 2-core CI machine it fails examples that are merely slow. Turned off everywhere.
settings.register_profile("poelis", deadline=None)
settings.load_profile("poelis")

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def make_key(body_length: int = 43) -> str:
    """A fresh random key that the grammar judges ``high`` (never a committed string)."""
    while True:
        body = "".join(secrets.choice(ALPHABET) for _ in range(body_length))
        # A body starting or ending with "-"/"_" is a valid key, but keep tests' text simple.
        if body[0] in "-_" or body[-1] in "-_":
            continue
        if classify_body(body)[0].value != "high":
            continue
        # A rare 46-49 body reads as a 43-character key glued to a word suffix ("…K_ab"),
        # on purpose (grammar.read_api_run); tests that want a key read as itself skip those.
        reading = read_api_run(body)
        if reading is not None and reading.body == body:
            return "poelis_api_" + body


def make_real_key() -> str:
    """A key as Poelis issues them: 32 random bytes, base64url, 43 characters, judged high."""
    while True:
        body = secrets.token_urlsafe(32)
        if body[0] not in "-_" and body[-1] not in "-_" and classify_body(body)[0].value == "high":
            return "poelis_api_" + body


LEGACY_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def make_legacy_key(env: str = "prod") -> str:
    """A fresh ``poelis_live_org_<env>_<client_id>_<client_secret>`` credential judged high:
    a 32-alphanumeric Auth0 client id and a 64-character URL-safe client secret."""
    while True:
        client_id = "".join(secrets.choice(LEGACY_ALNUM) for _ in range(32))
        client_secret = secrets.token_urlsafe(48)
        if client_secret[-1] in "-_":
            continue  # keep tests' text simple, as make_key does
        if all(classify_body(p)[0].value == "high" for p in (client_id, client_secret)):
            return f"poelis_live_org_{env}_{client_id}_{client_secret}"


@dataclass
class CliRun:
    status: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def findings(self) -> list[dict[str, Any]]:
        return self.json()["findings"]


def run_cli(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
            env: dict[str, str] | None = None) -> CliRun:
    """Run ``python -m poelis_scan`` for real, as a user or CI would."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "poelis_scan", *args],
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=full_env,
        timeout=300,
    )
    return CliRun(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"))


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git with the tests' own identity and no user or system configuration."""
    proc = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args], cwd=repo, capture_output=True,
        env={**os.environ, **GIT_ENV}, check=True,
    )
    return proc.stdout.decode()


@pytest.fixture
def key() -> str:
    return make_key()


def output_on_tty(args: list[str], stream: str = "stdout",
                  env: dict[str, str] | None = None) -> str:
    """Run the CLI with ``stream`` (stdout or stderr) attached to a pseudo-terminal."""
    import pty

    leader, follower = pty.openpty()
    targets = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: follower}
    proc = subprocess.Popen([sys.executable, "-m", "poelis_scan", *args],
                            stdout=targets["stdout"], stderr=targets["stderr"],
                            env=env if env is not None else dict(os.environ))
    os.close(follower)
    return read_terminal(proc, leader).decode()


def read_terminal(proc: subprocess.Popen[bytes], leader: int) -> bytes:
    """Everything ``proc`` wrote to the pseudo-terminal whose leader end is ``leader``, until
    it ends; closes ``leader``."""
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks)


def repo_with(path: Path, files: dict[str, str], message: str = "add files") -> Path:
    """A real repository at ``path`` whose one commit holds ``files``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-qm", message)
    return path


@pytest.fixture(name="api")
def _api() -> Iterator[Emulator]:
    """A running emulator of the Poelis API on 127.0.0.1, stopped after the test."""
    emulator = Emulator()
    emulator.start()
    yield emulator
    emulator.stop()


# A fresh, small process starts the measured command and reports the child's peak: a child
# forked straight from pytest would carry pytest's own high-water mark across exec (Linux
# records the old address space's peak), and pytest is large by the end of the suite.
_MEASURE = """
import os, resource, subprocess, sys
out, err = open(sys.argv[1], "wb"), open(sys.argv[2], "wb")
status = subprocess.run(sys.argv[3:], stdout=out, stderr=err).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, status)
"""


@dataclass
class MeasuredRun:
    status: int
    stdout: bytes
    stderr: bytes
    peak_kib: int  # the command's peak resident memory


def run_measured(*args: str, work: Path) -> MeasuredRun:
    """Run ``python -m poelis_scan ARGS`` and measure its own peak memory (never its time)."""
    out, err = work / "measured.out", work / "measured.err"
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(out), str(err), sys.executable, "-m",
         "poelis_scan", *args], capture_output=True, text=True, check=True, timeout=600)
    peak, status = map(int, measured.stdout.split())
    return MeasuredRun(status, out.read_bytes(), err.read_bytes(), peak)


# ---- archives built in memory, for the archive tests ----------------------------------------

def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()
