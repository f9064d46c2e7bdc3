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


def _escape(code: int) -> str:
    named = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
    if code in named:
        return named[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# Characters a terminal acts on instead of showing: C0 controls and DEL (escape sequences,
# carriage return, erase), C1 controls (U+0085 "next line", CSI U+009B), the Unicode line and
# paragraph separators, and the bidirectional controls that reorder what a line appears to say.
_CONTROL_CODES = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, 0x061C,
                  0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROLS = {code: _escape(code) for code in _CONTROL_CODES}


def printable(text: str) -> str:
    """``text`` safe to print on a terminal or into a log read as lines.

    Everything shown as text (paths, archive members, refs, identities, messages, warnings)
    comes through here: a file named ``c\\x1b[8mhidden.env`` or one holding a newline and a
    forged ``path:1:1: Poelis API key`` line must not hide, retitle or forge anything, so
    control characters are shown as ``\\x1b``, ``\\n``, ``\\u202e``. Machine-readable formats
    (JSON, SARIF) keep the exact name and never call this.
    """
    return printable_path(text).translate(_CONTROLS)


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
