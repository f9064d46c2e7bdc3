"""What a scan is told to do, as one small frozen value handed to every worker.

Nothing here is a process-wide switch: two scans in one process with different settings
(``decode=False``, then the defaults) cannot leak into each other, and a forked or threaded
worker sees exactly the settings of the scan that started it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Engine = Literal["auto", "find", "hyperscan"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one outer file (an archive, a compressed file) may expand to."""

    max_depth: int = 3
    max_member_bytes: int = 256 << 20
    max_total_bytes: int = 1 << 30
    # Beyond ``ratio_free`` bytes, a member may expand at most ``max_ratio`` times its
    # compressed size. Text legitimately compresses 1000:1 (padding, repeated lines), so the
    # allowance is large; it exists to stop a bomb early, the byte caps stop it for sure.
    max_ratio: int = 200
    ratio_free: int = 64 << 20
    # Archive entries read per outer file, all nesting levels together, each counted before it
    # is opened: bounds the per-entry cost of a central directory of a million entries.
    max_members: int = 100_000
    # An archive arriving on a pipe (standard input, a large git blob) is copied to a spool
    # file (memory, then $TMPDIR) for the archive view, up to this; every byte is scanned as
    # it is whatever its size, and a warning says what the archive view did not see.
    max_spool_bytes: int = 4 << 30


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """How bytes are searched.

    ``decode``: also find keys written in UTF-16, base64 and hex (off: the plain prefix only).
    ``engine``: ``auto`` uses Hyperscan where it is installed and works; ``find`` skips its
    import (11 ms), which a pre-commit hook's few files never win back; ``POELIS_SCAN_ENGINE``
    in the environment overrides both, for benchmarks and tests.
    """

    decode: bool = True
    engine: Engine = "auto"
    limits: Limits = Limits()
    # Matches whose confidence rank is below this (0: none; 1: ``low`` ones when the floor is
    # ``high``) are counted as they are found, not kept: 500,000 copies of the documented
    # example key cost a counter, not 500,000 findings held in memory.
    hidden_below: int = 0


DEFAULT = ScanSettings()
