"""What the user reads on stderr: warnings, the summary line, the progress line, and whether
to paint in colour.

The progress line appears after half a second (a pre-commit run never sees it), redraws at
most five times a second, and erases itself before the summary line. Every warning erases it
first, so the two never mix on one line.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from .paths import printable
from .stats import Skip, Stats
from .units import human_bytes

PROGRAM = "poelis-scan"
_KEY_SHAPED = re.compile(r"poelis_api_[A-Za-z0-9_-]+")


def _is_terminal(stream: IO[str]) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def redact_text(text: str) -> str:
    """``text`` with every key-shaped run redacted: for text that may quote content (a
    traceback under ``--debug``, an exception message) and is printed without ``--reveal``."""
    from .detect.grammar import redact

    return _KEY_SHAPED.sub(lambda match: redact(match.group()), text)


def _write(raw: str) -> None:
    sys.stderr.write(raw + "\n")
    sys.stderr.flush()


def echo(line: str) -> None:
    """One line on stderr, its control characters escaped (``paths.printable``)."""
    _write(printable(line))


def warn(message: str) -> None:
    # On a terminal, first erase a progress line that may be showing (our own sequence; the
    # message itself is escaped, so a name cannot erase or hide anything, and redacted, since
    # warnings quote file and member names, which may hold a key).
    erase = "\r\033[K" if _is_terminal(sys.stderr) else ""
    _write(f"{erase}{PROGRAM}: warning: {printable(redact_text(message))}")


def error(message: str) -> None:
    """The one ``poelis-scan: error: …`` line of a run that cannot go on."""
    _write(f"{PROGRAM}: error: {printable(redact_text(message))}")


def on_problem(note: Skip) -> None:
    """Tell the user about a path passed over or trouble inside content, when it matters:
    symbolic links, special files and excludes are counted in the summary only."""
    if note.reason in ("unreadable", "error"):
        warn(f"cannot read {note.display_path}: {note.detail}")
    elif note.reason not in ("symlink", "special", "excluded"):
        warn(f"{note.display_path}: {note.detail}")


def use_color(stream: IO[str]) -> bool:
    if "NO_COLOR" in os.environ:
        return False
    return _is_terminal(stream)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def summary(stats: Stats, min_confidence: str, *, untrusted: bool = False) -> str:
    """The last line of every scan: what was covered, what was found, what was left out."""
    if stats.git is not None:
        what = ", ".join([_plural(stats.git.blobs, "blob"), _plural(stats.git.commits, "commit"),
                          _plural(stats.git.tags, "tag")])
    elif stats.image is not None:
        what = ", ".join([_plural(stats.image.images, "image"),
                          _plural(stats.image.layers, "layer"),
                          _plural(stats.files_scanned, "file")])
    else:
        what = _plural(stats.files_scanned, "file")
    line = (
        f"{PROGRAM}: scanned {what} ({human_bytes(stats.bytes_scanned)}) in "
        f"{stats.seconds:.2f}s: {_plural(stats.findings_reported, 'finding')}"
    )
    if stats.findings_below_confidence:
        line += (
            f", {stats.findings_below_confidence} below confidence {min_confidence} not shown"
            " (--min-confidence low shows them)"
        )
    if stats.suppressed:
        suppressed = ", ".join(f"{n} {why}" for why, n in sorted(stats.suppressed.items()))
        line += f"; suppressed {suppressed}"
    if stats.skipped:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(stats.skipped.items()))
        line += f"; skipped {skipped}"
    if stats.git is not None and stats.git.history_cut:
        line += "; history is cut (shallow clone)"
    if untrusted:
        line += ("; untrusted (no configuration, baseline or allow comment from the scanned "
                 "content)")
    return line


class Progress:
    """The self-erasing progress line."""

    def __init__(self, stream: IO[str], delay: float | None = None, interval: float = 0.2) -> None:
        self.stream = stream
        self.delay = _progress_delay() if delay is None else delay
        self.interval = interval
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def update(self, stats: Stats, findings: int) -> None:
        now = time.monotonic()
        if now - self.started < self.delay or now - self.last < self.interval:
            return
        self.last = now
        if stats.git is not None:
            what = f"{_count(stats.git.blobs, 'blob')}, {_count(stats.git.commits, 'commit')}"
        elif stats.image is not None:
            what = f"{_count(stats.image.layers, 'layer')}, {_count(stats.files_scanned, 'file')}"
        else:
            what = _count(stats.files_scanned, "file")
        text = (f"{PROGRAM}: {what}, {stats.bytes_scanned / 1e6:,.0f} MB, "
                f"{_count(findings, 'finding')} so far")
        self.stream.write(f"\r{text}\033[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def _progress_delay() -> float:
    """``POELIS_SCAN_PROGRESS_DELAY`` seconds (tests set 0); a value that is not a finite
    number is ignored: a display setting never stops a scan."""
    try:
        delay = float(os.environ.get("POELIS_SCAN_PROGRESS_DELAY", "0.5"))
    except ValueError:
        return 0.5
    return delay if math.isfinite(delay) and delay >= 0 else 0.5


@contextmanager
def progress(quiet: bool) -> Iterator[Callable[[Stats, int], None] | None]:
    """A progress display on stderr when it is a terminal (never when ``quiet``)."""
    if quiet or not _is_terminal(sys.stderr):
        yield None
        return
    display = Progress(sys.stderr)
    try:
        yield display.update
    finally:
        display.close()
