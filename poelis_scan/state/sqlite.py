"""The embedded backend: one SQLite file, safe for concurrent shard processes on one machine.

WAL keeps readers off the writer's back; ``BEGIN IMMEDIATE`` takes the write lock at the
start of a transaction (no deadlock-prone lock upgrade), and ``busy_timeout`` makes a process
wait for it instead of failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

from .model import StateError
from .store import State

BUSY_TIMEOUT_MS = 120_000


class SQLiteState(State):
    dialect = "sqlite"
    errors = (sqlite3.Error,)

    def __init__(self, path: str) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StateError(f"cannot open state {path}: no such directory {directory}")
        try:
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000,
                                         isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as error:
            raise StateError(f"cannot open state {path}: {error}") from None
        super().__init__(connection)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
