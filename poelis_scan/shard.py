"""Deterministic shards: which repositories this job of a batch engine takes.

A batch engine (an Actions matrix, a Kubernetes Indexed Job, GitLab ``parallel``) starts N
copies of the same command; each must take a disjoint part of the repositories, the same part
on every machine and every night, without talking to the others. A SHA-256 of the
repository's stable identity, modulo N, gives exactly that: no coordination, no list order
dependence, and adding one repository moves no other.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

SHARD_ENV = "POELIS_SCAN_SHARD"


class ShardError(ValueError):
    """A malformed shard or repository list; the text is one line for the user."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``, 1-based like Jest and Playwright (``--shard 1/3``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, identity: str) -> bool:
        return in_shard(identity, self.index, self.count)


def parse_shard(text: str) -> Shard:
    """``"K/N"`` with ``1 <= K <= N``; anything else is a ``ShardError``."""
    index_text, sep, count_text = text.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index = count = 0
    if not sep or count < 1 or not 1 <= index <= count:
        raise ShardError(f"a shard is K/N with 1 <= K <= N (for example 2/5), not {text!r}")
    return Shard(index, count)


def shard_from(option: str | None, environ: dict[str, str] | None = None) -> Shard | None:
    """The shard from ``--shard``, else ``$POELIS_SCAN_SHARD``, else none (take everything)."""
    env = os.environ if environ is None else environ
    text = option if option is not None else env.get(SHARD_ENV) or None
    return parse_shard(text) if text is not None else None


def shard_of(identity: str, count: int) -> int:
    """The 1-based shard an identity belongs to among ``count``."""
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def in_shard(identity: str, index: int, count: int) -> bool:
    return shard_of(identity, count) == index


def parse_repo_lines(lines: Iterable[str]) -> list[str]:
    """One repository a line; blank lines and ``#`` comments (whole-line or trailing after
    whitespace) are ignored, so a list can document itself."""
    repos: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        for marker in (" #", "\t#"):
            line = line.split(marker, 1)[0].rstrip()
        repos.append(line)
    return repos


def read_repos_from(path: str) -> list[str]:
    """The repositories listed in ``path`` (``-``: standard input)."""
    if path == "-":
        return parse_repo_lines(sys.stdin.read().splitlines())
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_repo_lines(handle.read().splitlines())
    except OSError as error:
        raise ShardError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ShardError(f"{path} is not UTF-8 text") from None
