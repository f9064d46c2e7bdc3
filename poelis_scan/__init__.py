"""poelis-scan: find leaked Poelis REST API keys.

The public API is small on purpose::

    from poelis_scan import scan_bytes, scan_paths

    scan_bytes(b"token = poelis_api_...")      # -> list[Match], byte offsets
    scan_paths(["src/", "deploy.env"]).findings  # -> list[Finding], with line and column
    scan_git(["."], mode="staged").findings      # -> list[Finding], with git provenance
    scan_image(["app.tar"]).findings             # -> list[Finding], with image provenance

Names are imported lazily so that ``poelis-scan`` starts fast; ``__all__`` is the whole public
API (a test pins it), and everything in submodules is private to the package.
"""

from __future__ import annotations

from .version import __url__ as __url__
from .version import __version__

__all__ = [
    "Confidence",
    "FileOrigin",
    "Finding",
    "GitError",
    "GitOrigin",
    "ImageOrigin",
    "Location",
    "Match",
    "ScanError",
    "ScanResult",
    "Stats",
    "__version__",
    "scan_bytes",
    "scan_git",
    "scan_image",
    "scan_paths",
]

_LAZY = {
    "Confidence": "detect.grammar",
    "Match": "detect.matches",
    "scan_bytes": "detect.matches",
    "FileOrigin": "findings",
    "Finding": "findings",
    "GitOrigin": "findings",
    "ImageOrigin": "findings",
    "Location": "findings",
    "ScanResult": "findings",
    "ScanError": "errors",
    "Stats": "stats",
    "scan_paths": "pipeline",
    "scan_git": "pipeline",
    "scan_image": "pipeline",
    "GitError": "sources.git.plumbing",
}

# Not ``typing.TYPE_CHECKING``: importing ``typing`` (and the ``re`` it imports) costs the
# pre-commit hook a few milliseconds it never needs (``entry.py``). Type checkers read this
# name as always true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .detect.grammar import Confidence
    from .detect.matches import Match, scan_bytes
    from .errors import ScanError
    from .findings import FileOrigin, Finding, GitOrigin, ImageOrigin, Location, ScanResult
    from .pipeline import scan_git, scan_image, scan_paths
    from .sources.git.plumbing import GitError
    from .stats import Stats


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'poelis_scan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
