"""The scan state, on SQLite and on a real PostgreSQL: schema, upserts, queries, and several
real processes writing at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_key
from pgdb import fresh_database
from state_worker import KEYS_PER_WORKER, SHARED, finding

from poelis_scan.state import Repo, StateError, open_state
from poelis_scan.state.schema import SCHEMA_VERSION


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "state.db")
    else:
        with fresh_database() as dsn:
            yield dsn


def test_schema_is_created_versioned_and_reopened(target: str) -> None:
    with open_state(target) as state:
        assert state.schema_version() == SCHEMA_VERSION
    with open_state(target) as state:  # a second open migrates nothing
        assert state.migrate() == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_state(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StateError, match="newer"):
        open_state(str(path))


def test_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no such directory"):
        open_state(str(tmp_path / "absent" / "state.db"))


def test_record_upserts_first_and_last_seen(target: str) -> None:
    repo = Repo("example.org/team/app", "https://example.org/team/app")
    key = make_key()
    a, b = finding(key, "a.env", "1" * 40), finding(key, "b.env", "2" * 40)
    with open_state(target) as state:
        run1 = state.begin_run("1/1")
        assert state.record(repo, [a, a], run1) == [a]  # a duplicate in one run is one row
        state.mark_scanned(repo, ["x" * 40, "y" * 40], run1)
        state.finish_run(run1)
        run2 = state.begin_run("1/1")
        new = state.record(repo, [a, b], run2)
        state.mark_scanned(repo, ["z" * 40], run2)
        state.finish_run(run2)
        assert new == [b]
        rows = {r.display_path: r for r in state.findings()}
        assert rows[f"{'1' * 12}:a.env"].first_run == run1
        assert {(r.first_run, r.last_run) for r in rows.values()} == {(run1, run2), (run2, run2)}
        assert state.scanned(repo) == {"x" * 40, "y" * 40, "z" * 40}
        assert [r.display_path for r in state.findings(new_only=True)] == [b.display_path]
        assert len(state.findings(new_only=True, run=run1)) == 1
        assert len(state.findings(since_run=run2)) == 2
        assert len(state.findings(since_run=run2, new_only=True)) == 1
        assert state.findings(repository="other/repo") == []
        assert all(run.finished_at for run in state.runs())
        stored = state.findings()[0]
        assert stored.secret_sha256 == a.secret_sha256 and stored.repository == repo.identity
        assert "repository" not in (stored.provenance or {})  # the checkout path is not kept


def test_since_a_date(target: str) -> None:
    repo = Repo("example.org/a", "example.org/a")
    with open_state(target) as state:
        run = state.begin_run()
        state.record(repo, [finding(make_key(), "k.env", "3" * 40)], run)
        assert len(state.findings(since_date="2000-01-01")) == 1
        assert state.findings(since_date="2999-01-01T00:00:00+02:00") == []


def test_the_key_itself_is_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    key = make_key()
    with open_state(str(path)) as state:
        state.record(Repo("r", "r"), [finding(key, "p", "4" * 40)], state.begin_run())
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in data
    assert key[len("poelis_api_"):].encode() not in data


# ---- several real processes at once -------------------------------------------------------

WORKER = os.path.join(os.path.dirname(__file__), "state_worker.py")


def test_concurrent_processes_lose_and_duplicate_nothing(target: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([make_key() for _ in range(KEYS_PER_WORKER)]))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.path.dirname(WORKER)])}
    procs = [subprocess.Popen([sys.executable, WORKER, target, str(w), str(keys)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for w in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    new_total = sum(int(out) for out, _ in outputs)
    expected = set(range(KEYS_PER_WORKER))  # shared steps by all, the others by one each
    with open_state(target) as state:
        rows = state.findings()
        steps = sorted(int(r.display_path.split(":f")[1].split(".")[0]) for r in rows)
        assert steps == sorted(expected)  # none lost, none twice
        assert new_total == len(expected)  # each row was new for exactly one process
        objects = set().union(*(state.scanned(Repo(f"example.org/r{i}", "")) for i in range(3)))
        wanted = {f"{s:040x}" for s in expected}
        wanted |= {f"{s + 1000 * w:040x}" for w in range(3) for s in range(KEYS_PER_WORKER)
                   if s < SHARED or s % 3 == w}
        assert objects == wanted
        assert len(state.runs()) == 3
