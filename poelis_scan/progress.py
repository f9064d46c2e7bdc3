"""A one-line progress display on stderr for long scans, shown only on a terminal.

It appears after half a second (a pre-commit run never sees it), redraws at most five times a
second, and erases itself before the summary line.
"""

from __future__ import annotations

import os
import time
from typing import IO, Any


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


class Progress:
    def __init__(self, stream: IO[str], delay: float | None = None, interval: float = 0.2) -> None:
        self.stream = stream
        self.delay = float(os.environ.get("POELIS_SCAN_PROGRESS_DELAY", "0.5")) \
            if delay is None else delay
        self.interval = interval
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def update(self, stats: Any, findings: int) -> None:
        now = time.monotonic()
        if now - self.started < self.delay or now - self.last < self.interval:
            return
        self.last = now
        if stats.source == "git":
            what = f"{_count(stats.blobs_scanned, 'blob')}, {_count(stats.commits_scanned, 'commit')}"
        else:
            what = _count(stats.files_scanned, "file")
        text = (f"poelis-scan: {what}, {stats.bytes_scanned / 1e6:,.0f} MB, "
                f"{_count(findings, 'finding')} so far")
        self.stream.write(f"\r{text}\033[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False
