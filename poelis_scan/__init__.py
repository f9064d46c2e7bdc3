"""poelis-scan: find leaked Poelis REST API keys.

The public API is small on purpose::

    from poelis_scan import scan_bytes, scan_paths

    scan_bytes(b"token = poelis_api_...")      # -> list[Match], byte offsets
    scan_paths(["src/", "deploy.env"]).findings  # -> list[Finding], with line and column
    scan_git(["."], mode="staged").findings      # -> list[Finding], with git provenance

Names are imported lazily so that ``poelis-scan`` starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
# Where this project lives (pyproject.toml [project.urls] Repository; a test keeps the two
# equal). Hooks, recipes and report links point here, never at a package index.
__url__ = "https://github.com/poelis-scan/poelis-scan"
__all__ = [
    "Confidence",
    "Finding",
    "GitError",
    "Match",
    "ScanResult",
    "scan_bytes",
    "scan_git",
    "scan_paths",
    "__version__",
]

_LAZY = {
    "Confidence": "grammar",
    "Match": "detect",
    "scan_bytes": "detect",
    "Finding": "findings",
    "ScanResult": "scanner",
    "scan_paths": "scanner",
    "scan_git": "gitscan",
    "GitError": "gitscan",
}

if TYPE_CHECKING:
    from .detect import Match, scan_bytes
    from .findings import Finding
    from .gitscan import GitError, scan_git
    from .grammar import Confidence
    from .scanner import ScanResult, scan_paths


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'poelis_scan' has no attribute {name!r}")
