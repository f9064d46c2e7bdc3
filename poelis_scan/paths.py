"""Paths as the user sees them: printable names, ``--exclude`` globs, the repository root.

Shared by the file walk, by configuration excludes (triage) and by the run, so a glob means
the same thing wherever it is written. Imports nothing from the package.
"""

from __future__ import annotations

import fnmatch
import os


def printable_path(path: str) -> str:
    """A path that is valid UTF-8 text: undecodable bytes become ``\\xNN`` escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class Excluder:
    """``--exclude`` globs: a glob without ``/`` matches any path component's name (like
    ``node_modules`` or ``*.min.js``); one with ``/`` matches the path below the scanned root."""

    def __init__(self, globs: tuple[str, ...] | list[str]) -> None:
        self._name_globs = [g for g in globs if "/" not in g.strip("/")]
        self._path_globs = [g.strip("/") for g in globs if "/" in g.strip("/")]

    def __bool__(self) -> bool:
        return bool(self._name_globs or self._path_globs)

    def excluded(self, name: str, relative: str) -> bool:
        if any(fnmatch.fnmatchcase(name, g) for g in self._name_globs):
            return True
        return any(fnmatch.fnmatchcase(relative, g) for g in self._path_globs)


def find_repository_root(path: str) -> str | None:
    """The work tree that holds ``path`` (a directory with a ``.git`` entry), if any.

    Looking for ``.git`` ourselves costs a few ``stat`` calls; asking ``git rev-parse`` would
    cost a process start on every scan, pre-commit hook runs included.
    """
    current = os.path.abspath(path)
    if not os.path.isdir(current):
        current = os.path.dirname(current)
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
