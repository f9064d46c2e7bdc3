"""Incremental scan state: which objects each repository already had read, and every finding
with its first and last run, shared by all shards (DESIGN §11).

``open_state(target)``: a path is SQLite, ``postgresql://…`` is PostgreSQL. The schema is
created or migrated on open.
"""

from __future__ import annotations

from .model import Repo, RepositoryRef, Run, StateError, StoredFinding
from .store import State, describe, display_target, normalize_date

__all__ = [
    "Repo",
    "RepositoryRef",
    "Run",
    "State",
    "StateError",
    "StoredFinding",
    "describe",
    "display_target",
    "is_postgres",
    "normalize_date",
    "open_state",
]


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open_state(target: str) -> State:
    """The state at ``target``, schema up to date. Raises ``StateError`` (one line)."""
    state: State
    if is_postgres(target):
        from .postgres import PostgresState

        state = PostgresState(target)
    else:
        from .sqlite import SQLiteState

        state = SQLiteState(target)
    try:
        state.migrate()
    except StateError:
        state.close()
        raise
    except state.errors as error:
        state.close()
        raise StateError(f"cannot prepare state {display_target(target)}: "
                         f"{describe(error)}") from None
    return state
