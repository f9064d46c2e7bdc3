"""Which container format a file's first bytes start, if any.

Apart from ``archives.py`` so that scanning a file that is no archive (nearly every file a
pre-commit hook sees) never imports the archive readers: the check is all it needs.
"""

from __future__ import annotations

HEAD_SIZE = 512  # enough to recognise every format below (tar's magic sits at offset 257)


def container_kind(head: bytes | bytearray | memoryview) -> str | None:
    """The archive or compression format that ``head`` (a file's first bytes) starts, if any."""
    start = bytes(head[:8])
    if start.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if start.startswith(b"\x1f\x8b"):
        return "gzip"
    if start.startswith(b"BZh") and start[3:4].isdigit():
        return "bzip2"
    if start.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if bytes(head[257:262]) == b"ustar":
        return "tar"
    return None
