"""What the state stores and returns: plain typed records, no database types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class RepositoryRef(Protocol):
    """A repository as the state knows it: a stable ``identity`` (the key) and a ``display``
    safe to print (never credentials). ``sources.remote.Target`` is one."""

    @property
    def identity(self) -> str: ...

    @property
    def display(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Repo:
    """The simplest ``RepositoryRef``."""

    identity: str
    display: str


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    started_at: str  # ISO 8601, UTC
    finished_at: str | None
    shard: str | None
    tool_version: str


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """One finding as the state holds it: everything a report needs except the key."""

    repository: str  # identity
    repository_display: str
    fingerprint: str
    provenance_key: str
    object_sha: str | None
    secret_sha256: str
    secret_redacted: str
    rule_id: str
    confidence: str
    encoding: str
    display_path: str
    location: dict[str, Any]
    provenance: dict[str, Any] | None
    first_run: int
    last_run: int
    first_seen: str
    last_seen: str


class StateError(Exception):
    """A state that cannot be opened or used; the text is one line, without credentials."""
