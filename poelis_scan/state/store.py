"""One state interface, two backends that share every SQL statement.

SQLite (a path) is the embedded default: WAL lets readers run beside the one writer, and a
``busy_timeout`` plus ``BEGIN IMMEDIATE`` makes concurrent shard processes on one machine wait
their turn instead of failing. PostgreSQL (``postgresql://``) is the state a fleet of shards
on many machines shares. Both write with ``INSERT … ON CONFLICT``, so concurrent shards
recording the same finding or object never lose or duplicate a row, and a shard killed
mid-run leaves only whole transactions behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Self

from .model import RepositoryRef, Run, StateError, StoredFinding
from .schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE, Dialect, pending

if TYPE_CHECKING:
    from ..findings import Finding

OBJECT_BATCH = 5000  # object ids per INSERT transaction: short locks, few round trips


def now() -> str:
    """The current time as the state writes it (ISO 8601 UTC, sortable as text)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_date(text: str) -> str:
    """A user's date or date-time as the state's UTC text; ``ValueError`` if it is neither."""
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def provenance_of(finding: Finding) -> dict[str, Any] | None:
    """The git provenance worth keeping (the local checkout path is not: it differs per
    machine and may be a cache directory)."""
    git = finding.git
    if git is None:
        return None
    return {k: v for k, v in git.to_dict().items() if k != "repository"}


def provenance_key(finding: Finding) -> str:
    """What makes two findings of one fingerprint distinct places: the object and commit
    holding the key and its position there. Refs and ``kind`` are left out: they change
    when a branch is deleted, the place does not."""
    git = finding.git
    loc = finding.location
    commit, blob, notes = (git.commit, git.blob, git.notes_commit) if git else (None,) * 3
    parts = [commit, blob, notes, loc.line,
             loc.column, loc.end_column, loc.member, finding.encoding]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


_FINDING_COLUMNS = (
    "r.identity, r.display, f.fingerprint, f.provenance_key, f.object_sha, f.secret_sha256, "
    "f.secret_redacted, f.rule_id, f.confidence, f.encoding, f.display_path, f.location, "
    "f.provenance, f.first_run, f.last_run, fr.started_at, lr.started_at")


def display_target(target: str) -> str:
    """A state's name as it may be printed (a DSN's password stripped)."""
    from ..sources.remote import strip_credentials

    return strip_credentials(target)


def describe(error: BaseException) -> str:
    """One line about a database error, credentials stripped."""
    from ..sources.remote import strip_credentials

    text = str(error).strip()
    return strip_credentials(text.splitlines()[0] if text else type(error).__name__)


class State:
    """The scan state. Use ``open_state``; close it (or use ``with``) when done."""

    dialect: Dialect
    errors: tuple[type[Exception], ...] = ()  # the backend's own exceptions
    object_batch = OBJECT_BATCH

    def __init__(self, connection: Any) -> None:
        self._conn = connection
        self._repo_ids: dict[str, int] = {}

    # -- backend hooks ------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """A write transaction; yields a cursor."""
        raise NotImplementedError
        yield  # pragma: no cover

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[Any]:
        with self._tx() as cur:
            yield cur

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> int:
        """Bring the schema to ``SCHEMA_VERSION``; returns the version found before."""
        with self._migration_lock() as cur:
            cur.execute(VERSION_TABLE)
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise StateError(f"this state has schema version {current}, newer than this "
                                 f"poelis-scan knows ({SCHEMA_VERSION}): upgrade poelis-scan")
            for version in pending(current):
                for statement in MIGRATIONS[version](self.dialect):
                    cur.execute(statement)
                cur.execute(self._sql("INSERT INTO schema_version (version, applied_at) "
                                      "VALUES (?, ?)"), (version, now()))
        return current

    def schema_version(self) -> int:
        cur = self._conn.cursor()
        cur.execute("SELECT MAX(version) FROM schema_version")
        row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- runs -----------------------------------------------------------------------------

    def begin_run(self, shard: str | None = None) -> int:
        """A new run (one invocation of one shard); returns its id."""
        from ..version import __version__

        with self._tx() as cur:
            cur.execute(self._sql("INSERT INTO runs (started_at, shard, tool_version) "
                                  "VALUES (?, ?, ?) RETURNING id"), (now(), shard, __version__))
            return int(cur.fetchone()[0])

    def finish_run(self, run: int) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("UPDATE runs SET finished_at = ? WHERE id = ?"), (now(), run))

    def runs(self) -> list[Run]:
        cur = self._conn.cursor()
        cur.execute("SELECT id, started_at, finished_at, shard, tool_version FROM runs "
                    "ORDER BY id")
        rows = [Run(int(r[0]), r[1], r[2], r[3], r[4]) for r in cur.fetchall()]
        self._end_read()
        return rows

    def _end_read(self) -> None:
        """Reads outside ``_tx`` must not hold a transaction open (PostgreSQL)."""

    # -- repositories and objects ---------------------------------------------------------

    def repository_id(self, repo: RepositoryRef) -> int:
        cached = self._repo_ids.get(repo.identity)
        if cached is not None:
            return cached
        with self._tx() as cur:
            cur.execute(self._sql(
                "INSERT INTO repositories (identity, display) VALUES (?, ?) "
                "ON CONFLICT (identity) DO UPDATE SET display = excluded.display "
                "RETURNING id"), (repo.identity, repo.display))
            repo_id = int(cur.fetchone()[0])
        self._repo_ids[repo.identity] = repo_id
        return repo_id

    def scanned(self, repo: RepositoryRef) -> set[str]:
        """Ids of the objects of ``repo`` that an earlier run read completely."""
        repo_id = self.repository_id(repo)
        cur = self._conn.cursor()
        cur.execute(self._sql("SELECT sha FROM scanned_objects WHERE repository_id = ?"),
                    (repo_id,))
        shas = {row[0] for row in cur.fetchall()}
        self._end_read()
        return shas

    def finding_objects(self, repo: RepositoryRef) -> set[str]:
        """Ids of the objects of ``repo`` that hold a recorded finding (a rescan reads them
        again, cheaply, so their provenance and last-seen stay current)."""
        repo_id = self.repository_id(repo)
        cur = self._conn.cursor()
        cur.execute(self._sql("SELECT DISTINCT object_sha FROM findings "
                              "WHERE repository_id = ? AND object_sha IS NOT NULL"), (repo_id,))
        shas = {row[0] for row in cur.fetchall()}
        self._end_read()
        return shas

    def mark_scanned(self, repo: RepositoryRef, shas: Iterable[str], run: int | None = None
                     ) -> int:
        """Record objects as read (in batches); with ``run``, also that this run scanned
        ``repo``. Call it only after ``record``: an object marked read is never read again."""
        repo_id = self.repository_id(repo)
        total = 0
        batch: list[str] = []
        for sha in sorted(set(shas)):  # one lock order for every process: no deadlock
            batch.append(sha)
            if len(batch) >= self.object_batch:
                total += self._insert_objects(repo_id, batch)
                batch = []
        if batch:
            total += self._insert_objects(repo_id, batch)
        if run is not None:
            with self._tx() as cur:
                cur.execute(self._sql(
                    "INSERT INTO repository_runs (repository_id, run_id, objects_read) "
                    "VALUES (?, ?, ?) ON CONFLICT (repository_id, run_id) DO UPDATE SET "
                    "objects_read = repository_runs.objects_read + excluded.objects_read"),
                    (repo_id, run, total))
        return total

    def tips(self, repo: RepositoryRef) -> tuple[list[str], str] | None:
        """The ref tips and the object-store mark recorded when a run last finished reading
        ``repo`` (``set_tips``), or None: then nothing is known and the store is listed."""
        repo_id = self.repository_id(repo)
        cur = self._conn.cursor()
        cur.execute(self._sql("SELECT tips, store FROM repository_tips WHERE repository_id = ?"),
                    (repo_id,))
        row = cur.fetchone()
        self._end_read()
        return (json.loads(row[0]), row[1]) if row else None

    def set_tips(self, repo: RepositoryRef, tips: Sequence[str], store: str, run: int) -> None:
        """Every object the ``tips`` reach, and every object of the store marked ``store``,
        has been read. Call it last, after ``mark_scanned``."""
        repo_id = self.repository_id(repo)
        with self._tx() as cur:
            cur.execute(self._sql(
                "INSERT INTO repository_tips (repository_id, tips, store, run_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (repository_id) DO UPDATE SET "
                "tips = excluded.tips, store = excluded.store, run_id = excluded.run_id"),
                (repo_id, json.dumps(sorted(set(tips))), store, run))

    def touch(self, repo: RepositoryRef, shas: Iterable[str], run: int) -> None:
        """Findings held by these objects, still in the repository, were seen by ``run``
        (the objects themselves are not read again)."""
        repo_id = self.repository_id(repo)
        sql = self._sql("UPDATE findings SET last_run = ? WHERE repository_id = ? "
                        "AND object_sha = ? AND last_run < ?")
        rows = [(run, repo_id, sha, run) for sha in sorted(set(shas))]
        if rows:
            with self._tx() as cur:
                cur.executemany(sql, rows)

    def _insert_objects(self, repo_id: int, shas: Sequence[str]) -> int:
        """One transaction adding ``shas`` (sorted) to the objects read."""
        sql = self._sql("INSERT INTO scanned_objects (repository_id, sha) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING")
        with self._tx() as cur:
            cur.executemany(sql, [(repo_id, sha) for sha in shas])
        return len(shas)

    # -- findings -------------------------------------------------------------------------

    def record(self, repo: RepositoryRef, findings: Iterable[Finding], run: int
               ) -> list[Finding]:
        """Upsert the findings of ``repo`` seen by ``run``; returns those seen for the first
        time (a row's first run stays, its last run moves forward). One transaction."""
        repo_id = self.repository_id(repo)
        unique: dict[tuple[str, str], Finding] = {}  # sorted below: one lock order
        for finding in findings:
            unique.setdefault((finding.fingerprint, provenance_key(finding)), finding)
        sql = self._sql(
            "INSERT INTO findings (repository_id, fingerprint, provenance_key, object_sha, "
            "secret_sha256, secret_redacted, rule_id, confidence, encoding, display_path, "
            "location, provenance, first_run, last_run) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (repository_id, fingerprint, provenance_key) DO UPDATE SET "
            "last_run = CASE WHEN excluded.last_run > findings.last_run "
            "THEN excluded.last_run ELSE findings.last_run END, "
            "provenance = excluded.provenance, display_path = excluded.display_path "
            "RETURNING first_run")
        new: list[Finding] = []
        with self._tx() as cur:
            for (fp, key), finding in sorted(unique.items(), key=lambda item: item[0]):
                blob = finding.git.blob if finding.git is not None else None
                cur.execute(sql, (
                    repo_id, fp, key, blob, finding.secret_sha256, finding.redacted,
                    finding.rule_id, finding.confidence.value, finding.encoding,
                    finding.display_path, json.dumps(finding.location.to_dict()),
                    json.dumps(provenance_of(finding)), run, run))
                if int(cur.fetchone()[0]) == run:
                    new.append(finding)
        return new

    def findings(self, *, repository: str | None = None, since_run: int | None = None,
                 since_date: str | None = None, new_only: bool = False,
                 run: int | None = None) -> list[StoredFinding]:
        """Every finding the state holds, with its repository and first/last seen run.

        ``repository``: an identity. ``since_run``/``since_date``: seen at or after (with
        ``new_only``: first seen at or after). ``new_only`` alone: first seen in ``run``, or
        else in the latest run that scanned the finding's repository."""
        where: list[str] = []
        params: list[Any] = []
        if repository is not None:
            where.append("r.identity = ?")
            params.append(repository)
        seen = "fr" if new_only else "lr"
        if since_run is not None:
            where.append(f"{seen}.id >= ?")
            params.append(since_run)
        if since_date is not None:
            where.append(f"{seen}.started_at >= ?")
            params.append(since_date)
        if new_only and since_run is None and since_date is None:
            if run is not None:
                where.append("f.first_run = ?")
                params.append(run)
            else:
                where.append("f.first_run = (SELECT MAX(rr.run_id) FROM repository_runs rr "
                             "WHERE rr.repository_id = f.repository_id)")
        sql = (f"SELECT {_FINDING_COLUMNS} FROM findings f "
               "JOIN repositories r ON r.id = f.repository_id "
               "JOIN runs fr ON fr.id = f.first_run JOIN runs lr ON lr.id = f.last_run"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY r.identity, f.display_path, f.fingerprint, f.provenance_key")
        cur = self._conn.cursor()
        cur.execute(self._sql(sql), params)
        rows = cur.fetchall()
        self._end_read()
        return [StoredFinding(
            repository=r[0], repository_display=r[1], fingerprint=r[2], provenance_key=r[3],
            object_sha=r[4], secret_sha256=r[5], secret_redacted=r[6], rule_id=r[7],
            confidence=r[8], encoding=r[9], display_path=r[10], location=json.loads(r[11]),
            provenance=json.loads(r[12]), first_run=int(r[13]), last_run=int(r[14]),
            first_seen=r[15], last_seen=r[16]) for r in rows]

    def repositories(self) -> list[tuple[str, str]]:
        """(identity, display) of every repository the state knows."""
        cur = self._conn.cursor()
        cur.execute("SELECT identity, display FROM repositories ORDER BY identity")
        rows = [(r[0], r[1]) for r in cur.fetchall()]
        self._end_read()
        return rows
