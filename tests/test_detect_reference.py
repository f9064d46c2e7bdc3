"""The fast detector against plain statements of its rules, written here for the test.

``grammar.classify_body`` counts character classes with ``bytes.translate`` and neighbours with
an integer XOR; ``find_matches`` reads plain keys in place, decodes base64 from the bytes where
they are, skips the second half of a base64 literal and remembers readings. None of that may
change a single finding: each reference below does the same job the slow, obvious way (one
character, one hit, one byte at a time) and Hypothesis compares them on dense, adversarial
input (mixed encodings, keys glued together, near-miss lengths, base64 cut at every offset,
wrapped lines with CR runs).
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
from collections.abc import Callable

import pytest
from conftest import ALPHABET, make_key, make_legacy_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_floods import reference_drop

from poelis_scan.detect.encodings import (
    ALL_NEEDLES,
    LOOKAHEAD,
    LOOKBEHIND,
    PLAIN_NEEDLES,
    Needle,
    utf16,
)
from poelis_scan.detect.grammar import (
    DOCUMENTED_EXAMPLE_BODY,
    LEGACY_PREFIX,
    MAX_LEGACY_BODY,
    MAX_RUN,
    PREFIX,
    Confidence,
    Reading,
    classify_body,
    read_api_run,
    read_legacy_run,
)
from poelis_scan.detect.matches import Match, find_matches
from poelis_scan.settings import ScanSettings

# --- classify_body -------------------------------------------------------------------------

PLACEHOLDERS = ("your_key", "yourkey", "your-key", "your_api", "placeholder", "example",
                "changeme", "change_me", "redacted", "replace_me", "replaceme", "insert_key",
                "dummy_key", "fake_key", "test_key", "xxxxxxx", "0000000")


def reference_classify(body: str) -> tuple[Confidence, str]:
    """The judgement as the design states it, one character at a time."""
    if body == DOCUMENTED_EXAMPLE_BODY:
        return Confidence.LOW, "documented example key"
    if any(word in body.lower() for word in PLACEHOLDERS):
        return Confidence.LOW, "placeholder text"
    has_digit = False
    letters = lower = 0
    for c in body:
        has_digit = has_digit or c.isdigit()
        if c.isalpha():
            letters += 1
            lower += c.islower()
    if not has_digit and (letters == 0 or max(lower, letters - lower) / letters >= 0.8):
        return Confidence.LOW, "identifier-like body"
    if len(set(body)) < len(body) * 0.4:
        return Confidence.LOW, "repetitive body"
    counts: dict[str, int] = {}
    for c in body:
        counts[c] = counts.get(c, 0) + 1
    entropy = -sum(k / len(body) * math.log2(k / len(body)) for k in counts.values())
    if entropy < 3.5:
        return Confidence.LOW, "low-entropy body"
    steps = 0
    for i in range(len(body) - 1):
        if abs(ord(body[i]) - ord(body[i + 1])) == 1:
            steps += 1
    if steps / (len(body) - 1) > 0.4:
        return Confidence.LOW, "sequential body"
    return Confidence.HIGH, "random-looking body"


def _random(n: int, alphabet: str = ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _text(alphabet: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=low, max_size=high)


@st.composite
def sequential(draw: st.DrawFn) -> str:
    """Stretches stepping by one code point (up or down), joined by random characters."""
    out = ""
    for _ in range(draw(st.integers(1, 6))):
        first, step = draw(st.integers(40, 125)), draw(st.sampled_from([1, -1]))
        out += "".join(chr(first + step * i) for i in range(draw(st.integers(1, 20))))
        out += draw(_text(ALPHABET, 0, 4))
    return out


@st.composite
def stepped(draw: st.DrawFn) -> str:
    """A random body with a chosen share of its neighbours forced one code point apart: the
    sequential verdict's threshold (0.4) falls inside the range drawn."""
    chars = list(draw(_text(ALPHABET, 12, 60)))
    for i in draw(st.lists(st.integers(1, len(chars) - 1), max_size=len(chars))):
        chars[i] = chr(max(ord(chars[i - 1]) + draw(st.sampled_from([1, -1])), 33))
    return "".join(chars)


@st.composite
def concentrated(draw: st.DrawFn) -> str:
    """One character many times and a chosen number of others once: the least entropy for
    that many distinct characters, on both sides of 3.5 bits."""
    n = draw(st.integers(12, 110))
    others = draw(st.integers(1, min(n - 1, 63)))
    chars = list(ALPHABET[1:others + 1] + ALPHABET[0] * (n - others))
    return "".join(draw(st.permutations(chars)))


BODIES = st.one_of(
    stepped(),
    concentrated(),
    _text(ALPHABET, 0, 110),  # random bodies of every near-miss length
    _text("abcdefghij_", 1, 60),  # identifier-like
    _text("ABCDEFGabc-1", 1, 60),
    _text("aB1", 2, 60),  # repetitive
    _text("abcdefghABCD0123", 12, 60),  # entropy around 3.5-4
    sequential(),
    st.tuples(_text(ALPHABET, 0, 30), st.sampled_from(PLACEHOLDERS),
              _text(ALPHABET, 0, 30)).map(lambda t: t[0] + t[1].upper() + t[2]),
    st.text(max_size=60),  # any text at all: the general (non-ASCII) path
    st.text("aAb1\u00b2\u0660\u00e9\u00c9_-", max_size=60),  # Unicode digits and cases
    st.just(DOCUMENTED_EXAMPLE_BODY),
    st.integers(0, 42).map(lambda i: DOCUMENTED_EXAMPLE_BODY[:i] + DOCUMENTED_EXAMPLE_BODY[i + 1:]),
)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_classify_body_is_the_plain_rule(body: str) -> None:
    assert classify_body(body) == reference_classify(body)


def test_the_classify_strategies_reach_every_verdict() -> None:
    """The comparison above is worth something only if every verdict occurs in it."""
    reasons = {reference_classify(b)[1] for b in (
        make_key()[len("poelis_api_"):], "abcdefghij_" * 4, "aB1" * 14,
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG", "xx" + "your_key" + _random(30),
        DOCUMENTED_EXAMPLE_BODY, "a" * 19 + "1bcdefghijk",  # 12 distinct of 30, 2.2 bits
    )}
    assert reasons == {"random-looking body", "identifier-like body", "repetitive body",
                       "sequential body", "placeholder text", "documented example key",
                       "low-entropy body"}


# --- find_matches --------------------------------------------------------------------------

READERS: dict[bytes, Callable[[str], Reading | None]] = {
    PREFIX: read_api_run, LEGACY_PREFIX: read_legacy_run}
KEY_CHARS = set(ALPHABET.encode())
BASE64_CHARS = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
HEX_CHARS = set(b"0123456789abcdefABCDEF")
GLUE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
RUN = max(MAX_RUN, MAX_LEGACY_BODY) + 1  # a body run is read this far, to see it is longer
LONGEST = len(LEGACY_PREFIX) + RUN  # the longest key text either grammar reads
BEHIND, AHEAD = LOOKBEHIND, LOOKAHEAD
WIDTHS = {"base64": (64, 76), "hex": (60, 64, 76)}


def reference_read(decoded: bytes, at: int, prefix: bytes) -> tuple[bytes, Reading] | None:
    """The key a prefix at ``decoded[at]`` starts, read byte by byte."""
    prefixes = [prefix] if prefix in READERS else [
        p for p in READERS if decoded[at:at + len(p)] == p][:1]
    if not prefixes or decoded[at:at + len(prefixes[0])] != prefixes[0]:
        return None
    prefix = prefixes[0]
    if at > 0 and decoded[at - 1] in GLUE:
        return None
    i = at + len(prefix)
    while i < len(decoded) and i - at - len(prefix) < RUN and decoded[i] in KEY_CHARS:
        i += 1
    reading = READERS[prefix](decoded[at + len(prefix):i].decode("ascii"))
    if reading is None:
        return None
    return prefix + reading.body.encode("ascii"), reading


def reference_plain(data: bytes, hit: int, end: int, needle: Needle
                    ) -> tuple[int, int, bytes, Reading, str] | None:
    window = data[max(hit - 1, 0):min(end, hit + LONGEST)]
    found = reference_read(window, 1 if hit > 0 else 0, needle.prefix)
    if found is None:
        return None
    return hit, hit + len(found[0]), found[0], found[1], "plain"


def reference_line_is_wrap(data: bytes, at: int, after: int, encoding: str) -> bool:
    """A line break joins two lines of one wrapped encoding: the line before it is exactly as
    wide as a tool wraps (its CRs not counted) and all encoded characters, and the text goes on
    with one. The line starts after the last LF in the 80 bytes before, else at byte 0."""
    alphabet = BASE64_CHARS if encoding == "base64" else HEX_CHARS
    start = 0
    for i in range(at - 1, max(at - 80, 0) - 1, -1):
        if data[i] == 10:
            start = i + 1
            break
    line = data[start:at].rstrip(b"\r")
    return (len(line) in WIDTHS[encoding] and all(b in alphabet for b in line)
            and after < len(data) and data[after] in alphabet)


def reference_unwrap(data: bytes, hit: int, end: int, encoding: str
                     ) -> tuple[bytes, list[int], int]:
    """The bytes around ``hit`` with wrapping line breaks taken out, one byte at a time."""
    lo = max(hit - BEHIND, 0)
    raw = data[lo:min(end, hit + AHEAD)]
    if b"\n" not in raw:
        return raw, list(range(lo, lo + len(raw))), hit - lo
    text = bytearray()
    positions: list[int] = []
    i = 0
    while i < len(raw):
        if raw[i] in b"\r\n":
            stop = i + (2 if raw[i:i + 2] == b"\r\n" else 1)
            if reference_line_is_wrap(data, lo + i, lo + stop, encoding):
                i = stop
                continue
        text.append(raw[i])
        positions.append(lo + i)
        i += 1
    return bytes(text), positions, positions.index(hit) if hit in positions else len(positions)


def reference_base64(data: bytes, hit: int, end: int, needle: Needle
                     ) -> tuple[int, int, bytes, Reading, str] | None:
    text, positions, at_hit = reference_unwrap(data, hit, end, "base64")
    group = at_hit + needle.offset
    if group < 0:
        return None
    first = group
    if group >= 4 and all(b in BASE64_CHARS for b in text[group - 4:group]):
        first = group - 4
    last, limit = first, min(len(text), group + 4 * ((LONGEST + 4) // 3 + 1))
    while last < limit and text[last] in BASE64_CHARS:
        last += 1
    chars = text[first:last]
    if not chars:
        return None
    urlsafe = any(c in b"-_" for c in chars)
    if urlsafe and any(c in b"+/" for c in chars):
        return None
    # Decode group by group: four characters are three bytes, a last two or three carry one
    # or two, a last single one carries nothing.
    decoded = b""
    for i in range(0, len(chars), 4):
        piece = chars[i:i + 4]
        if len(piece) == 1:
            break
        if urlsafe:
            piece = piece.replace(b"-", b"+").replace(b"_", b"/")
        decoded += base64.b64decode(piece + b"=" * (-len(piece) % 4))
    at = (group - first) // 4 * 3 + needle.align
    found = reference_read(decoded, at, needle.prefix)
    if found is None:
        return None
    key, reading = found
    start = first + (at * 4) // 3
    stop = min(first + math.ceil((at + len(key)) * 4 / 3), len(positions)) - 1
    return (positions[start], positions[stop] + 1, key, reading,
            "base64url" if urlsafe else "base64")


def reference_hex(data: bytes, hit: int, end: int, needle: Needle
                  ) -> tuple[int, int, bytes, Reading, str] | None:
    text, positions, at_hit = reference_unwrap(data, hit, end, "hex")
    first = at_hit + needle.offset
    if first < 0:
        return None
    lo = first
    if first >= 2 and all(b in HEX_CHARS for b in text[first - 2:first]):
        lo = first - 2
    last = lo
    while last < min(len(text), first + 2 * LONGEST) and text[last] in HEX_CHARS:
        last += 1
    digits = text[lo:last]
    if not digits:
        return None
    decoded = bytes.fromhex(digits[:len(digits) - len(digits) % 2].decode("ascii"))
    found = reference_read(decoded, (first - lo) // 2, needle.prefix)
    if found is None:
        return None
    key, reading = found
    return (positions[first], positions[first + 2 * len(key) - 1] + 1, key, reading, "hex")


def reference_utf16(data: bytes, hit: int, end: int, needle: Needle
                    ) -> tuple[int, int, bytes, Reading, str] | None:
    found = utf16(data, hit, end, needle.prefix)  # unchanged by the fast path
    if found is None or found.reading is None:
        return None
    return found.start, found.end, found.key, found.reading, found.encoding


REFERENCE_DECODERS = {"plain": reference_plain, "base64": reference_base64,
                      "hex": reference_hex, "utf-16": reference_utf16}


def reference_find(data: bytes, start: int, stop: int, end: int, decode: bool) -> list[Match]:
    """Every needle at every offset in ``[start, stop)`` that ends by ``end``, each hit decoded
    on its own, then the duplicate drop's plain rule."""
    matches = []
    for hit in range(start, stop):
        for needle in ALL_NEEDLES if decode else PLAIN_NEEDLES:
            if hit + len(needle.pattern) > end or not data.startswith(needle.pattern, hit):
                continue
            found = REFERENCE_DECODERS[needle.encoding](data, hit, end, needle)
            if found is None:
                continue
            first, last, key, reading, encoding = found
            secret = key.decode("ascii")
            prefix = secret[:len(secret) - len(reading.body)]
            matches.append(Match(first, last, secret, reading.confidence, reading.reason,
                                 encoding, tuple(prefix + b for b in reading.alternatives)))
    return reference_drop(matches)


def _wrap(encoded: bytes, width: int, newline: bytes) -> bytes:
    return newline.join(encoded[i:i + width] for i in range(0, len(encoded), width))


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "base64": base64.b64encode, "base64url": base64.urlsafe_b64encode,
    "hex": binascii.hexlify, "HEX": lambda b: binascii.hexlify(b).upper(),
    "utf-16": lambda b: b.decode("latin-1").encode("utf-16-le"),
}


@st.composite
def keys(draw: st.DrawFn) -> bytes:
    """A key, a legacy credential, a near miss or a decoy, glued to what follows or not."""
    kind = draw(st.sampled_from(["key", "legacy", "length", "example", "glued", "prefix"]))
    if kind == "key":
        return make_key().encode()
    if kind == "legacy":
        return make_legacy_key().encode()
    if kind == "length":  # every length around the grammar's limits
        return PREFIX + draw(_text(ALPHABET, 25, 105)).encode()
    if kind == "example":
        return PREFIX + DOCUMENTED_EXAMPLE_BODY.encode()
    if kind == "glued":  # keys back to back, or a key and a word suffix
        return make_key().encode() + draw(st.sampled_from(
            [b"", b"_prod", b"-2026-11-28-rotated", make_key().encode(), b"_", b"x"]))
    return draw(st.sampled_from([PREFIX, LEGACY_PREFIX, b"poelis_", PREFIX * 3]))


@st.composite
def pieces(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["raw", "key", "encoded", "prefixes", "noise"]))
    if kind == "raw":
        return draw(st.binary(max_size=12))
    if kind == "noise":
        return draw(st.sampled_from([b"\n", b"\r\n", b"\r" * 90, b"=", b"==\n", b" ", b"A" * 70,
                                     b"0" * 7, b"x"]))
    if kind == "key":
        return draw(keys())
    # Encoded: a few bytes before (every alignment), cut at any offset, maybe wrapped.
    payload = draw(st.binary(max_size=4)) + b"".join(
        draw(st.lists(keys(), min_size=1, max_size=3)))
    if kind == "prefixes":  # a flood of encoded prefixes
        payload = draw(st.sampled_from([PREFIX, LEGACY_PREFIX])) * draw(st.integers(1, 12))
    encoded = ENCODERS[draw(st.sampled_from(sorted(ENCODERS)))](payload)
    encoded = encoded[draw(st.integers(0, 5)):]
    width = draw(st.sampled_from([0, 0, 60, 64, 76, 13]))
    if width:
        encoded = _wrap(encoded, width, draw(st.sampled_from([b"\n", b"\r\n", b"\r\r\n"])))
    return encoded


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.data_too_large])
@given(st.lists(pieces(), max_size=14), st.data())
def test_find_matches_is_the_reference(parts: list[bytes], data: st.DataObject) -> None:
    buf = b"".join(parts)
    n = len(buf)
    start = data.draw(st.integers(0, n), label="start")
    end = data.draw(st.integers(start, n), label="end")
    stop = data.draw(st.integers(start, end), label="stop")
    decode = data.draw(st.booleans(), label="decode")
    expected = reference_find(buf, start, stop, end, decode)
    for engine in ("auto", "find"):
        got = find_matches(buf, start, stop, end, ScanSettings(decode=decode, engine=engine))
        assert got == expected  # every field, the order too


@pytest.mark.parametrize("cut", range(12))
@pytest.mark.parametrize("lead", [b"", b"#", b"##", b"a", b"ab", b"abc", b"abcd"])
def test_a_flood_of_encoded_prefixes_cut_at_every_offset(cut: int, lead: bytes) -> None:
    """Runs of base64 of the prefix with keys among them, from every starting character, at
    the very start of the bytes and after other text; a letter before a prefix glues it."""
    k = make_key().encode()
    payload = lead + k + b" " + PREFIX * 5 + b" " + k + b"\n" + lead + PREFIX * 5
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(payload)[cut:]
        buf = encoded + b"\n" + b"x=" + encoded
        expected = reference_find(buf, 0, len(buf), len(buf), True)
        assert find_matches(buf) == expected
        if cut == 0:  # the second key is found both times, the first unless glued
            glued = lead[-1:].isalpha()
            assert [m.secret for m in expected if m.confidence is Confidence.HIGH] == [
                k.decode()] * (4 - 2 * glued)


def test_the_reference_strategies_reach_every_encoding() -> None:
    # Three 0xFF bytes first: every base64 alphabet shows itself ("////", "____").
    buf = b" ".join(enc(b"\xff" * 3 + b" " + make_key().encode() + b" ")
                    for enc in ENCODERS.values())
    found = {m.encoding for m in reference_find(buf, 0, len(buf), len(buf), True)}
    assert found == {"base64", "base64url", "hex", "utf-16le"}

