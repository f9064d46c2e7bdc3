"""Streaming in bounded windows: nothing lost or doubled at a read boundary, positions exact."""

from __future__ import annotations

import io

import pytest
from conftest import make_key
from hypothesis import given, settings
from hypothesis import strategies as st

from poelis_scan.detect.matches import find_matches
from poelis_scan.scan.stream import CARRY, locate, scan_stream


def positions(
    data: bytes, chunk_size: int, reread: bool = False
) -> list[tuple[int, int, int, str]]:
    """Scan ``data`` as a stream; with ``reread``, lines are counted late through ``pread``."""
    pread = (lambda offset, size: data[offset : offset + size]) if reread else None
    result = scan_stream(io.BytesIO(data).readinto, chunk_size, pread)
    assert result.size == len(data)
    return [(lm.offset, lm.line, lm.column, lm.match.secret) for lm in result.matches]


def reference(data: bytes) -> list[tuple[int, int, int, str]]:
    return [(lm.offset, lm.line, lm.column, lm.match.secret)
            for lm in locate(data, find_matches(data))]


@pytest.mark.parametrize("reread", [False, True])
@pytest.mark.parametrize("chunk_size", [CARRY + 16, CARRY + 60, CARRY + 513, CARRY + 4096])
def test_key_straddling_every_boundary_offset(chunk_size: int, reread: bool) -> None:
    k = make_key().encode()
    for shift in range(-len(k) - 2, 3):
        start = chunk_size * 2 + shift
        data = b"a\n" * (start // 2) + b"." * (start % 2) + k + b"\nend"
        assert data.index(k) == start
        got = positions(data, chunk_size, reread)
        assert [g[0] for g in got] == [start], f"shift {shift}"
        assert got == reference(data)


@pytest.mark.parametrize("reread", [False, True])
def test_line_and_column_across_many_windows(reread: bool) -> None:
    k = make_key().encode()
    # A long line that spans windows, multi-byte characters before the key, CRLF line ends.
    data = b"x\r\n" * 1000 + "é".encode() * 5000 + b" " + k + b"\r\n" + b"tail"
    (hit,) = positions(data, CARRY + 1024, reread)
    assert hit[1:3] == (1001, 5002)
    assert hit == reference(data)[0]


def test_minified_single_line_of_two_megabytes() -> None:
    k = make_key().encode()
    filler = b'{"a":1,"b":[1,2,3],"c":"xyz"},' * 70000
    data = filler + b'{"key":"' + k + b'"}' + filler
    assert len(data) > 4_000_000
    (hit,) = positions(data, 1 << 20)
    assert hit[1:] == (1, len(filler) + 9, k.decode())


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.one_of(st.binary(max_size=200), st.just(b"KEY")), max_size=12),
    chunk_size=st.integers(CARRY + 32, CARRY + 700),
    reread=st.booleans(),
)
def test_windows_agree_with_one_buffer(pieces: list[bytes], chunk_size: int, reread: bool) -> None:
    data = b"".join(b" " + make_key().encode() + b" " if p == b"KEY" else p for p in pieces)
    assert positions(data, chunk_size, reread) == reference(data)


def test_short_reads_from_a_pipe_are_handled() -> None:
    """A pipe returns fewer bytes than asked; the scanner must keep reading until EOF."""
    k = make_key().encode()
    data = b"z" * 5000 + k + b"z"
    stream = io.BytesIO(b"\n" + data)

    def trickle(buffer: memoryview) -> int:
        return stream.readinto(buffer[:7])

    result = scan_stream(trickle, CARRY + 4096)
    assert [lm.match.secret for lm in result.matches] == []  # glued to "z": not a key
    data = b"z" * 5000 + b" " + k + b" "
    stream = io.BytesIO(data)
    result = scan_stream(trickle, CARRY + 4096)
    assert [(lm.offset, lm.column) for lm in result.matches] == [(5001, 5002)]
