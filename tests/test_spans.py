"""One large file cut into spans scanned apart (``scan/spans.py``): the matches, lines and
columns are exactly those of one pass, wherever the cuts fall."""

from __future__ import annotations

import base64
import itertools
import os
import zipfile
from pathlib import Path

import pytest
from conftest import make_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poelis_scan import scan_paths
from poelis_scan.detect.matches import find_matches
from poelis_scan.paths import Excluder
from poelis_scan.scan import newlines
from poelis_scan.scan.spans import SPAN_MIN, SPLIT_FROM, assemble, plan, scan_span
from poelis_scan.scan.stream import CARRY, locate
from poelis_scan.settings import DEFAULT
from poelis_scan.sources import files

Row = tuple[int, int, int, int, str, str, bool]


def _rows(located: list) -> list[Row]:  # type: ignore[type-arg]
    return [(lm.offset, lm.line, lm.column, lm.end_column, lm.match.encoding, lm.match.secret,
             lm.inline_allow) for lm in located]


def _one_pass(data: bytes) -> list[Row]:
    return _rows(locate(data, find_matches(data)))


def _by_spans(path: Path, cuts: list[int], chunk_size: int) -> list[Row]:
    data_size = path.stat().st_size
    bounds = sorted({c & ~1 for c in cuts if 0 < c & ~1 < data_size})
    firsts = [0, *bounds]
    lasts: list[int | None] = [*bounds, None]
    fd = os.open(path, os.O_RDONLY)
    try:
        spans = [scan_span(fd, first, last, DEFAULT, chunk_size)
                 for first, last in zip(firsts, lasts, strict=True)]
    finally:
        os.close(fd)
    with open(path, "rb") as handle:
        head = handle.read(2)
    return _rows(assemble(spans[::-1], head in (b"\xff\xfe", b"\xfe\xff")))


def _written(key: str, form: str) -> bytes:
    line = f"k={key}\n"
    if form == "utf16le":
        return line.encode("utf-16-le")
    if form == "utf16be":
        return line.encode("utf-16-be")
    if form == "base64":
        return base64.b64encode(line.encode()) + b"\n"
    if form == "hex":
        return line.encode().hex().encode() + b"\n"
    if form == "allowed":
        return f"k={key}  # poelis-scan: allow\n".encode()
    return line.encode()


_FORMS = ["plain", "utf16le", "utf16be", "base64", "hex", "allowed"]
_filler = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"\n", b"\r\n", "é€😀".encode(), b"\n\x00", b"\xff\xfe", b"x" * 700]),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(st.one_of(_filler, st.sampled_from(_FORMS)), max_size=14),
    bom=st.sampled_from([b"", b"\xff\xfe", b"\xfe\xff"]),
    cuts=st.lists(st.integers(1, 6000), max_size=6),
    chunk_size=st.sampled_from([CARRY + 64, CARRY + 998, 1 << 20]),
)
def test_spans_agree_with_one_pass(tmp_path: Path, pieces: list[bytes | str], bom: bytes,
                                   cuts: list[int], chunk_size: int) -> None:
    data = bom + b"".join(_written(make_key(), p) if isinstance(p, str) else p for p in pieces)
    path = tmp_path / "big.log"
    path.write_bytes(data)
    assert _by_spans(path, cuts, chunk_size) == _one_pass(data)


@pytest.mark.parametrize("form", _FORMS)
def test_a_key_on_every_offset_around_a_cut(tmp_path: Path, form: str) -> None:
    """Cut at every (even) offset from before the key's line to after its end."""
    written = _written(make_key(), form)
    data = "ab\nçd ".encode() * 40 + written + b"tail\n" * 30
    path = tmp_path / "cut.log"
    path.write_bytes(data)
    expected = _one_pass(data)
    assert len(expected) == 1
    at = data.index(written)
    for cut in range(at - 8, at + len(written) + 8):
        assert _by_spans(path, [cut], CARRY + 64) == expected, f"cut at {cut}"


def test_a_line_that_spans_many_spans_keeps_its_columns(tmp_path: Path) -> None:
    key = make_key()
    data = b"a\n" + "é".encode() * 9000 + f" {key} ".encode() + b"z" * 500
    path = tmp_path / "one-line.log"
    path.write_bytes(data)
    ((_, line, column, *_),) = _by_spans(path, list(range(1000, 18000, 997)), CARRY + 4096)
    assert (line, column) == (2, 9002)


def test_spans_that_do_not_meet_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        first, third = scan_span(fd, 0, 10, DEFAULT), scan_span(fd, 20, None, DEFAULT)
    finally:
        os.close(fd)
    with pytest.raises(ValueError, match="do not meet"):
        assemble([first, third], bom=False)


def test_plan_covers_the_file_once() -> None:
    assert plan(10 * SPAN_MIN, 1) == []
    assert plan(2 * SPAN_MIN - 1, 8) == []
    for size in (2 * SPAN_MIN, 7 * SPAN_MIN + 3, 1000 * SPAN_MIN):
        spans = plan(size, 2)
        assert spans[0][0] == 0 and spans[-1][1] is None
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert all(last - first >= SPAN_MIN for first, last in spans if last is not None)
        assert 2 <= len(spans) <= 8


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=20000), start=st.integers(0, 20000), stop=st.integers(0, 20000))
def test_numpy_counts_newlines_as_bytes_count_does(data: bytes, start: int, stop: int) -> None:
    counter = newlines.numpy_counter()
    assert counter is not None  # NumPy is a dependency: present wherever the tests run
    start, stop = min(start, len(data)), min(max(start, stop), len(data))
    expected = data.count(b"\n", start, stop)
    assert counter(data, start, stop) == expected
    assert counter(bytearray(data), start, stop) == expected
    assert newlines.plain_count(data, start, stop) == expected


def _findings(path: Path, **options: object) -> list[tuple[str, int, int, str, str, str | None]]:
    result = scan_paths([str(path)], min_confidence="low", **options)  # type: ignore[arg-type]
    return sorted((f.location.path, f.location.line, f.location.column, f.encoding, f.secret,
                   f.location.member) for f in result.findings)


def _large_log(path: Path, keys: list[str]) -> int:
    """A log just over the size that is cut into spans, with a key in every encoding written
    across the middle cut (where two workers' spans meet) and near both ends."""
    size = SPLIT_FROM + (1 << 20)
    middle = size // 2 & ~1
    line = "2026-11-28T06:00:00Z INFO request served in 3 ms — ok\n".encode()
    filler = line * (size // len(line) + 1)
    forms = [_written(k, form) for k, form in zip(keys, _FORMS, strict=False)]
    with open(path, "wb") as out:
        out.write(forms[0])
        written = len(forms[0])
        for form in forms[1:]:  # each form straddles the cut a little further along
            at = middle - len(form) // 2 - written + 7 * len(form)
            out.write(filler[: max(at, 0)])
            out.write(form)
            written += max(at, 0) + len(form)
        out.write(filler[: size - written])
        out.write(forms[0])
    return middle


def test_a_large_file_gives_the_same_findings_cut_or_whole(tmp_path: Path) -> None:
    keys = [make_key() for _ in _FORMS]
    path = tmp_path / "app.log"
    _large_log(path, keys)
    assert plan(path.stat().st_size, 2), "the file must be large enough to be cut"
    whole = _findings(path, jobs=1)
    assert {row[4] for row in whole} == set(keys)
    assert _findings(path, jobs=2) == whole
    assert _findings(path, jobs=2, executor="thread") == whole
    # Met while walking a tree, with small files around it: the same.
    (tmp_path / "small.env").write_text(f"K={keys[0]}\n")
    tree = _findings(tmp_path, jobs=2)
    assert [row for row in tree if row[0] == "app.log"] == [
        ("app.log", *row[1:]) for row in whole]


def test_a_large_archive_is_read_whole_not_cut(tmp_path: Path) -> None:
    """A container must be opened in one pass: its member findings come from that pass."""
    key = make_key()
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("pad.bin", os.urandom(SPLIT_FROM))
        bundle.writestr("conf/app.env", f"K={key}\n")
    assert plan(path.stat().st_size, 2)
    cut = _findings(path, jobs=2)
    assert cut == _findings(path, jobs=1)
    assert ("conf/app.env", key) in {(row[5], row[4]) for row in cut}


def test_a_file_that_shrinks_between_spans_is_unreadable_and_keeps_its_first_keys(
        tmp_path: Path) -> None:
    """A log truncated (rotated) while its spans are read: one clear skip, no exception, and
    the key in the part that was read is still reported, at its true line."""
    key = make_key()
    path = tmp_path / "rotating.log"
    path.write_bytes(b"start\n" + f"token={key}\n".encode() + b"x" * 100_000)
    large = files.LargeFile(files.FileTask(str(path), "rotating.log", "", ""), 100_000, False)
    done = files.scan_work([files.SpanTask(0, str(path), 0, 50_000)], DEFAULT, Excluder(()))
    os.truncate(path, 40_000)
    later = files.scan_work([files.SpanTask(0, str(path), 50_000, None)], DEFAULT, Excluder(()))
    assembled = files._assembled(large, [*later.spans, *done.spans])
    assert [(s.reason, s.detail) for s in assembled.skips] == [
        ("unreadable", "changed while it was read")]
    assert [(f.secret, f.location.line) for f in assembled.found] == [(key, 2)]
    assert assembled.scanned["file"] == 0
