"""Project configuration: ``.poelis-scan.toml``, or ``[tool.poelis-scan]`` in ``pyproject.toml``.

Found from the scanned directory upward to the repository root (or given with ``--config``).
Every key is checked: a misspelt key or a wrong type is an error naming the key and the file,
because a silently ignored allow-list entry or exclude is how secrets get waved through.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from .errors import ScanError

CONFIG_NAME = ".poelis-scan.toml"
# Configuration and baselines are small; a bigger file (or /dev/zero) is a mistake or an attack,
# refused before it costs memory.
MAX_FILE_BYTES = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ConfigError(ScanError, ValueError):
    """One line: which key of which file is wrong, and why."""


@dataclass(frozen=True, slots=True)
class PathExclude:
    glob: str
    reason: str


@dataclass(frozen=True, slots=True)
class AllowedSecret:
    secret_sha256: str
    reason: str


@dataclass(frozen=True, slots=True)
class Config:
    source: str | None = None  # the file it came from
    min_confidence: str | None = None
    excludes: tuple[PathExclude, ...] = ()
    allowed: tuple[AllowedSecret, ...] = ()
    verify: dict[str, Any] = field(default_factory=dict)  # base-url, timeout, concurrency
    # Found next to the scanned content rather than named with --config: whoever controls that
    # content wrote it, so it may never choose where keys are sent (``run.verifier``).
    discovered: bool = False


_TOP_KEYS = {"min-confidence", "exclude", "allow", "verify"}
_VERIFY_KEYS: dict[str, type | tuple[type, ...]] = {"base-url": str, "timeout": (int, float),
                                                  "concurrency": int}


def _fail(source: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {problem}")


def _table_list(source: str, key: str, value: Any, fields: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _fail(source, key, "must be a list of tables ([[...]])")
    for index, entry in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict):
            raise _fail(source, where, "must be a table")
        for name in entry:
            if name not in fields:
                raise _fail(source, f"{where}.{name}", f"unknown key (expected: "
                            f"{', '.join(sorted(fields))})")
        for name, check in fields.items():
            if name not in entry:
                raise _fail(source, f"{where}.{name}", "is required")
            if not isinstance(entry[name], str) or not check(entry[name]):
                raise _fail(source, f"{where}.{name}", "must be a non-empty string"
                            if name != "secret-sha256" else "must be 64 lower-case hex digits")
    return value


def _nonempty(text: str) -> bool:
    return bool(text.strip())


def parse(data: dict[str, Any], source: str) -> Config:
    """Validate one configuration table (already read from TOML)."""
    for key in data:
        if key not in _TOP_KEYS:
            raise _fail(source, key, f"unknown key (expected: {', '.join(sorted(_TOP_KEYS))})")
    confidence = data.get("min-confidence")
    if confidence is not None and confidence not in ("low", "high"):
        raise _fail(source, "min-confidence", 'must be "low" or "high"')
    excludes = _table_list(source, "exclude", data.get("exclude", []),
                           {"path": _nonempty, "reason": _nonempty})
    allowed = _table_list(source, "allow", data.get("allow", []),
                          {"secret-sha256": _SHA256.fullmatch, "reason": _nonempty})
    verify = data.get("verify", {})
    if not isinstance(verify, dict):
        raise _fail(source, "verify", "must be a table")
    for key, value in verify.items():
        expected = _VERIFY_KEYS.get(key)
        if expected is None:
            raise _fail(source, f"verify.{key}", f"unknown key (expected: "
                        f"{', '.join(sorted(_VERIFY_KEYS))})")
        if isinstance(value, bool) or not isinstance(value, expected):
            kind = "a string" if expected is str else "a number"
            raise _fail(source, f"verify.{key}", f"must be {kind}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(source, f"verify.{key}", "must be a finite number")
        if isinstance(value, (int, float)) and value <= 0:
            raise _fail(source, f"verify.{key}", "must be positive")
    return Config(
        source=source,
        min_confidence=confidence,
        excludes=tuple(PathExclude(e["path"], e["reason"]) for e in excludes),
        allowed=tuple(AllowedSecret(a["secret-sha256"], a["reason"]) for a in allowed),
        verify=dict(verify),
    )


def read_small_file(path: str, what: str, error: type[ScanError]) -> bytes:
    """The bytes of ``path``, a regular file of at most ``MAX_FILE_BYTES``.

    A FIFO would block the read and ``/dev/zero`` never ends, so the file is opened without
    blocking and checked to be regular before a byte is read; the read itself is capped.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except OSError as problem:
        raise error(f"{path}: cannot read it ({problem.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as problem:
        raise error(f"{path}: cannot read it ({problem.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB: not a {what} file")
    return data


def loads(data: bytes, source: str, *, pyproject: bool, discovered: bool = False) -> Config:
    """Parse configuration bytes (read from a file or from a commit) named ``source``."""
    import tomllib

    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not valid TOML (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML ({error})") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML (nested too deeply)") from None
    if pyproject:
        tool = document.get("tool", {})
        if not isinstance(tool, dict):
            raise _fail(source, "tool", "must be a table")
        table = tool.get("poelis-scan", {})
        if not isinstance(table, dict):
            raise _fail(source, "tool.poelis-scan", "must be a table")
        config = parse(table, f"{source} [tool.poelis-scan]")
    else:
        config = parse(document, source)
    return Config(config.source, config.min_confidence, config.excludes, config.allowed,
                  config.verify, discovered)


def load(path: str, *, discovered: bool = False) -> Config:
    """Read ``path``: a ``pyproject.toml`` (its ``[tool.poelis-scan]``) or our own file."""
    data = read_small_file(path, "configuration", ConfigError)
    return loads(data, path, pyproject=os.path.basename(path) == "pyproject.toml",
                 discovered=discovered)


def holds_our_table(data: bytes) -> bool:
    """Whether a ``pyproject.toml``'s bytes mention ``[tool.poelis-scan]`` (cheap test)."""
    return b"[tool.poelis-scan" in data or (b"poelis-scan" in data and b"[tool" in data)


def _has_our_table(pyproject: str) -> bool:
    try:
        with open(pyproject, "rb") as handle:
            return holds_our_table(handle.read(MAX_FILE_BYTES + 1))
    except OSError:
        return False


def find(start: str, stop: str | None) -> str | None:
    """The first configuration file from ``start`` up to ``stop`` (the repository root)."""
    current = os.path.abspath(start if os.path.isdir(start) else os.path.dirname(start) or ".")
    boundary = os.path.abspath(stop) if stop else current
    while True:
        own = os.path.join(current, CONFIG_NAME)
        if os.path.isfile(own):
            return own
        pyproject = os.path.join(current, "pyproject.toml")
        if os.path.isfile(pyproject) and _has_our_table(pyproject):
            return pyproject
        parent = os.path.dirname(current)
        if current == boundary or parent == current or not current.startswith(boundary):
            return None
        current = parent


def discover(start: str, stop: str | None) -> Config:
    """The first configuration from ``start`` up to ``stop`` (the repository root), if any."""
    path = find(start, stop)
    return load(path, discovered=True) if path is not None else Config()
