"""Container images as a source: OCI layouts, ``docker save`` archives and registries.

Everything here reads images and knows nothing about keys: it yields layers (as streams of
files, with whiteouts), the image config as text, and the provenance each finding needs. The
worker body and the findings (``scan.py``) feed those streams to the content pipeline, run by
``pipeline.scan_image`` like every other source.
"""

from __future__ import annotations

from .model import (
    BlobError,
    Image,
    ImageConfigEntry,
    ImageError,
    ImageRef,
    Layer,
    Platform,
)
from .reference import classify, open_reference

__all__ = [
    "BlobError",
    "Image",
    "ImageConfigEntry",
    "ImageError",
    "ImageRef",
    "Layer",
    "Platform",
    "classify",
    "open_reference",
]
