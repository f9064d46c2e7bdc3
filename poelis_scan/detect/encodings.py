"""Every way a key can be written: its literal needles, and the decoder that reads a key
around a needle hit. ``ENCODINGS`` is the one table: adding an encoding is a decoder, its
needles and one line there.

Every encoding has its own literals, one set per key prefix (``poelis_api_`` and the legacy
``poelis_live_``): the prefix itself, its UTF-16 form, its base64 form at each of the three
alignments a 3-byte group allows, and a stretch of its hex form. Finding literals is the only
work done on every byte (``engines.py``); decoding happens around hits, and the needle says
which prefix, and so which grammar, the decoded bytes are read with.

Each decoder reads at most ``LOOKBEHIND`` bytes before and ``LOOKAHEAD`` bytes after its hit,
decodes just that, and applies the same grammar as plain text: the byte before the prefix must
not be a letter or digit, the body is a maximal run of key characters read by the prefix's
grammar (``grammar.read_api_run`` / ``read_legacy_run``). The span it returns is where the
encoded key sits in the scanned bytes.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from .grammar import (
    GLUE_BEFORE,
    LEGACY_PREFIX,
    MAX_LEGACY_BODY,
    MAX_RUN,
    PREFIX,
    Reading,
    read_api_run,
    read_legacy_run,
)

# How far around a needle's first byte a decoder may look. A scanner that streams must keep
# LOOKBEHIND bytes before, and have LOOKAHEAD bytes after, every needle it judges.
LOOKBEHIND = 32
# The longest run either grammar reads (a legacy credential with a suffix), hex-encoded.
_LONGEST = len(LEGACY_PREFIX) + max(MAX_RUN, MAX_LEGACY_BODY) + 1
LOOKAHEAD = 2 * _LONGEST + 16


@dataclass(frozen=True, slots=True)
class Needle:
    """One literal. ``encoding`` names its decoder; ``offset`` says where, relative to the hit,
    the encoded key begins (base64: the start of the 4-character group that holds the prefix's
    first byte; hex: the prefix's first hex digit), and ``align`` how many decoded bytes of that
    group come before the prefix."""

    pattern: bytes
    encoding: str
    offset: int = 0
    align: int = 0
    prefix: bytes = PREFIX  # which key prefix the literal encodes (and so which grammar)


def _base64_needles(prefix: bytes) -> list[Needle]:
    """The stable middle of base64(prefix) at alignments 0, 1 and 2, in two halves each.

    With ``a`` unknown bytes before the prefix in its group, the first characters mix unknown
    bits (2 of them for a=1, 3 for a=2) and the last one mixes in the byte after the prefix, so
    only the 14 characters in between are the same in every encoding of every key. They are
    searched as two halves of 7: wrapped base64 (``base64 FILE`` breaks lines every 76
    characters) may cut the 14, but never both halves, and 7 fixed characters still occur by
    chance about once in 4 * 10^12 positions of random base64.
    """
    needles = []
    for align, unstable in ((0, 0), (1, 2), (2, 3)):
        encoded = base64.b64encode(b"\0" * align + prefix)
        stable = encoded[unstable : ((align + len(prefix)) * 8) // 6]
        needles.append(Needle(stable[:7], "base64", -unstable, align, prefix))
        needles.append(Needle(stable[7:14], "base64", -unstable - 7, align, prefix))
    return needles


def _hex_needle(prefix: bytes) -> Needle:
    """The longest stretch of hex(prefix) with no letter digits, so both cases share it:
    ``6170695`` ("ap" + high nibble of "i") for the API prefix, ``6976655`` for the legacy one.
    """
    full = binascii.hexlify(prefix)
    middle = max(re.findall(rb"[0-9]+", full), key=len)
    return Needle(middle, "hex", -full.index(middle), prefix=prefix)


_BODY_RUN = re.compile(rb"[A-Za-z0-9_-]{0,%d}" % (max(MAX_RUN, MAX_LEGACY_BODY) + 1))
_BASE64_CHARS = re.compile(rb"[A-Za-z0-9+/_-]+")
_HEX_RUN = re.compile(rb"[0-9A-Fa-f]+")
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_ALPHABETS = {"base64": _BASE64_CHARS, "hex": _HEX_RUN}
_LINE_BREAK = re.compile(rb"[\r\n]")
_NOT_CR = re.compile(rb"[^\r]")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A key found through one encoding: ``start``/``end`` delimit its encoded form."""

    start: int
    end: int
    key: bytes = field(repr=False)  # never in a log line or a failing test's message
    encoding: str = "plain"
    reading: Reading | None = field(default=None, repr=False)  # judgement, other readings


_READERS = {PREFIX: read_api_run, LEGACY_PREFIX: read_legacy_run}
# What both prefixes start with: a needle that encodes only this much serves both grammars.
COMMON_PREFIX = b"poelis_"
# Readings already made, by (prefix, run): a flood repeats one run (500,000 copies of the
# documented example, the base64 of ``poelis_api_`` over and over), and a grammar is a pure
# function of the run. Bounded: emptied when full, so memory never grows with the input.
_READINGS: dict[tuple[bytes, bytes], Reading | None] = {}
_READINGS_MAX = 4096


def _reading(prefix: bytes, run: bytes) -> Reading | None:
    """``_READERS[prefix]`` applied to ``run``, remembered."""
    key = (prefix, run)
    try:
        return _READINGS[key]
    except KeyError:
        pass
    if len(_READINGS) >= _READINGS_MAX:
        _READINGS.clear()
    reading = _READINGS[key] = _READERS[prefix](run.decode("ascii"))
    return reading


def read_key(decoded: bytes, at: int, prefix: bytes = PREFIX) -> tuple[bytes, Reading] | None:
    """The key whose ``prefix`` starts at ``decoded[at]`` and how its grammar reads it
    (``COMMON_PREFIX``: whichever full prefix is there)."""
    if prefix not in _READERS:
        prefix = next((p for p in _READERS if decoded.startswith(p, at)), prefix)
    if not decoded.startswith(prefix, at) or prefix not in _READERS:
        return None
    if at > 0 and decoded[at - 1] in GLUE_BEFORE:
        return None
    body_start = at + len(prefix)
    run = _BODY_RUN.match(decoded, body_start)
    assert run is not None
    reading = _reading(prefix, run.group())
    if reading is None:
        return None
    return prefix + reading.body.encode("ascii"), reading


def key_in(decoded: bytes, at: int, prefix: bytes = PREFIX) -> bytes | None:
    """The key whose ``prefix`` starts at ``decoded[at]``, if its grammar holds there."""
    found = read_key(decoded, at, prefix)
    return found[0] if found is not None else None


def plain(data: bytes | bytearray, hit: int, end: int, prefix: bytes = PREFIX
          ) -> Decoded | None:
    """The plain needle: the key is the bytes themselves.

    Read in place (no copy of the bytes around the hit): on a flood of 500,000 keys the copy
    and the second pass over it cost as much as the judgement.
    """
    stop = min(end, hit + _LONGEST)
    if prefix not in _READERS:
        prefix = next((p for p in _READERS if data.startswith(p, hit, stop)), prefix)
    if prefix not in _READERS or not data.startswith(prefix, hit, stop):
        return None
    if hit > 0 and data[hit - 1] in GLUE_BEFORE:
        return None
    run = _BODY_RUN.match(data, hit + len(prefix), stop)
    assert run is not None
    reading = _reading(prefix, run.group())
    if reading is None:
        return None
    key = prefix + reading.body.encode("ascii")
    return Decoded(hit, hit + len(key), key, "plain", reading)


def utf16(data: bytes | bytearray, hit: int, end: int, prefix: bytes = PREFIX
          ) -> Decoded | None:
    """UTF-16 of either byte order: the LE needle also matches BE text, one byte later.

    Whole-file UTF-16 puts each character at an even offset, so a hit at an odd offset is
    big-endian text whose first byte (the zero high byte of "p") is one byte earlier.
    """
    big_endian = hit % 2 == 1
    first = hit - 1 if big_endian else hit  # the key's first byte
    lo = first - 2 if first >= 2 else first  # one character earlier decides "glued"
    raw = bytes(data[lo : min(end, first + 2 * _LONGEST)])
    raw = raw[: len(raw) - len(raw) % 2]
    codec = "utf-16-be" if big_endian else "utf-16-le"
    text = raw.decode(codec, "replace").encode("ascii", "replace")
    found = read_key(text, (first - lo) // 2, prefix)
    if found is None:
        return None
    key, reading = found
    return Decoded(first, first + 2 * len(key), key, "utf-16be" if big_endian else "utf-16le",
                   reading)


# The widths at which tools wrap encodings: base64 and MIME 76, OpenSSL and PEM 64, and for
# hex `xxd -p` 60.
_WRAP_WIDTHS = {"base64": (64, 76), "hex": (60, 64, 76)}


def _line_before(data: bytes | bytearray, end: int) -> bytes | None:
    """The line that ends at ``end`` (a line break, not included), up to 80 characters; None
    when it is longer (no tool wraps that wide).

    With no line break in the 80 bytes before ``end`` the line runs from the start of ``data``:
    it is never copied (on 12,000-character lines of base64 that copy of the whole buffer per
    line break cost more than all the decoding), only asked whether anything but the CRs that
    are stripped off lies past 80 characters.
    """
    start = data.rfind(b"\n", max(end - 80, 0), end) + 1
    if start == 0 and end > 80:
        if _NOT_CR.search(data, 80, end) is not None:
            return None
        end = 80
    return bytes(data[start:end]).rstrip(b"\r")


def _is_wrap(data: bytes | bytearray, at: int, after: int, alphabet: re.Pattern[bytes],
             widths: tuple[int, ...]) -> bool:
    """Whether the line break at ``at`` wraps one long encoding (it goes on at ``after``).

    Only a line of nothing but encoded characters, exactly as wide as the tools wrap, is
    joined to the next. A list of values, one per line, looks the same at any other width,
    and joining those would corrupt every key in it.
    """
    line = _line_before(data, at)
    return (line is not None and len(line) in widths and alphabet.fullmatch(line) is not None
            and alphabet.match(data, after) is not None)


def _unwrapped(data: bytes | bytearray, hit: int, end: int,
               encoding: str) -> tuple[bytes, Sequence[int], int]:
    """The bytes around ``hit`` with the line breaks of wrapped encodings removed.

    Returns the joined bytes, the position in ``data`` of each of them, and where ``hit`` is
    among them. Without a line break the positions are a ``range``: built in no time, where a
    list of 232 numbers cost more than the decoding on a flood of encoded candidates.
    """
    alphabet, widths = _ALPHABETS[encoding], _WRAP_WIDTHS[encoding]
    lo = max(hit - LOOKBEHIND, 0)
    raw = bytes(data[lo : min(end, hit + LOOKAHEAD)])
    if b"\n" not in raw:
        return raw, range(lo, lo + len(raw)), hit - lo
    # Piece by piece between line-break bytes, each break asked exactly as a byte-by-byte
    # walk would ask it (the CR of a CRLF first, then its LF if the CR stayed).
    keep: list[bytes] = []
    positions: list[int] = []
    i = 0
    for brk in _LINE_BREAK.finditer(raw):
        at = brk.start()
        if at < i:
            continue  # the LF of a CRLF already joined
        keep.append(raw[i:at])
        positions.extend(range(lo + i, lo + at))
        stop = at + (2 if raw[at : at + 2] == b"\r\n" else 1)
        if _is_wrap(data, lo + at, lo + stop, alphabet, widths):
            i = stop  # the encoding goes on after the break
            continue
        keep.append(raw[at : at + 1])
        positions.append(lo + at)
        i = at + 1
    keep.append(raw[i:])
    positions.extend(range(lo + i, lo + len(raw)))
    return b"".join(keep), positions, bisect.bisect_left(positions, hit)


def base64_hit(data: bytes | bytearray, hit: int, end: int, needle: Needle) -> Decoded | None:
    """Base64 (standard or URL-safe, wrapped or not) around a hit at any alignment."""
    lo = max(hit - LOOKBEHIND, 0)
    hi = min(end, hit + LOOKAHEAD)
    if data.find(b"\n", lo, hi) == -1:  # nothing to unwrap: read the bytes where they are
        return _base64_in(data, lo, hi, range(hi), hit, needle)
    text, positions, at_hit = _unwrapped(data, hit, end, "base64")
    return _base64_in(text, 0, len(text), positions, at_hit, needle)


def _base64_in(text: bytes | bytearray, lo: int, hi: int, positions: Sequence[int],
               at_hit: int, needle: Needle) -> Decoded | None:
    """The key around ``text[at_hit]``, reading only ``text[lo:hi]``; ``positions`` maps each
    index of ``text`` to its offset in the scanned bytes (``len(positions)`` is ``hi``)."""
    group = at_hit + needle.offset  # first character of the 4-character group holding "p"
    if group < lo:
        return None
    # One group earlier too, when it is base64: it holds the byte that decides "glued".
    first = (group - 4 if group - 4 >= lo and _BASE64_CHARS.fullmatch(text, group - 4, group)
             else group)
    # Enough characters for the longest key and the byte after it.
    run = _BASE64_CHARS.match(text, first, min(hi, group + 4 * ((_LONGEST + 4) // 3 + 1)))
    if run is None:
        return None
    chars = run.group()
    at = (group - first) // 4 * 3 + needle.align
    read = _base64_read(chars, at, needle.prefix)
    if read is None:
        return None
    key, reading, encoding = read
    # Map the decoded key back onto characters: 4 characters per 3 bytes, rounded outward.
    start = first + (at * 4) // 3
    stop = min(first + -(-(at + len(key)) * 4 // 3), len(positions)) - 1
    return Decoded(positions[start], positions[stop] + 1, key, encoding, reading)


# What a run of base64 characters holds at a decoded offset, by (characters, offset, prefix).
# A flood of encoded candidates repeats the same few runs, and both halves of a needle read
# the same one: each is decoded and judged once. Bounded like ``_READINGS``.
_BASE64_READS: dict[tuple[bytes, int, bytes], tuple[bytes, Reading, str] | None] = {}


def _base64_read(chars: bytes, at: int, prefix: bytes) -> tuple[bytes, Reading, str] | None:
    """The key ``chars`` (base64 or base64url, maybe missing padding) hold at decoded offset
    ``at``, how its grammar reads it, and which alphabet it was written in."""
    memo = (chars, at, prefix)
    try:
        return _BASE64_READS[memo]
    except KeyError:
        pass
    if len(_BASE64_READS) >= _READINGS_MAX:
        _BASE64_READS.clear()
    read = _BASE64_READS[memo] = _decode_base64_run(chars, at, prefix)
    return read


def _decode_base64_run(chars: bytes, at: int, prefix: bytes
                       ) -> tuple[bytes, Reading, str] | None:
    urlsafe = b"-" in chars or b"_" in chars
    if urlsafe and (b"+" in chars or b"/" in chars):
        return None  # two alphabets at once: not one encoding
    whole = len(chars) - len(chars) % 4
    tail = chars[whole:]  # 2 or 3 trailing characters still carry 1 or 2 bytes
    padded = chars[:whole] + (tail + b"=" * (4 - len(tail)) if len(tail) in (2, 3) else b"")
    if urlsafe:
        padded = padded.translate(_URLSAFE_TO_STANDARD)
    try:
        decoded = binascii.a2b_base64(padded)
    except binascii.Error:
        return None
    found = read_key(decoded, at, prefix)
    if found is None:
        return None
    return found[0], found[1], "base64url" if urlsafe else "base64"


def hex_hit(data: bytes | bytearray, hit: int, end: int, needle: Needle) -> Decoded | None:
    """Hex digits of either case (wrapped or not), read from the prefix's first digit."""
    text, positions, at_hit = _unwrapped(data, hit, end, "hex")
    first = at_hit + needle.offset
    if first < 0:
        return None
    lo = first - 2 if first >= 2 and _HEX_RUN.fullmatch(text, first - 2, first) else first
    run = _HEX_RUN.match(text, lo, first + 2 * _LONGEST)
    if run is None:
        return None
    digits = run.group()
    digits = digits[: len(digits) - len(digits) % 2]
    try:
        decoded = binascii.unhexlify(digits)
    except binascii.Error:
        return None
    found = read_key(decoded, (first - lo) // 2, needle.prefix)
    if found is None:
        return None
    key, reading = found
    return Decoded(positions[first], positions[first + 2 * len(key) - 1] + 1, key, "hex",
                   reading)


def _plain(data: bytes | bytearray, hit: int, end: int, needle: Needle) -> Decoded | None:
    return plain(data, hit, end, needle.prefix)


def _utf16(data: bytes | bytearray, hit: int, end: int, needle: Needle) -> Decoded | None:
    return utf16(data, hit, end, needle.prefix)


_PREFIXES = (PREFIX, LEGACY_PREFIX)


def _shared(needles: Iterable[Needle]) -> tuple[Needle, ...]:
    """One needle per literal: where both prefixes encode alike (the base64 of ``poelis_``),
    the literal is searched once and its decoder reads whichever prefix follows."""
    seen: dict[tuple[bytes, int, int], Needle] = {}
    for needle in needles:
        key = (needle.pattern, needle.offset, needle.align)
        both = key in seen and seen[key].prefix != needle.prefix
        seen[key] = replace(needle, prefix=COMMON_PREFIX) if both else needle
    return tuple(seen.values())


Decoder = Callable[[bytes | bytearray, int, int, Needle], "Decoded | None"]


@dataclass(frozen=True, slots=True)
class Encoding:
    """One way of writing a key: the literals that find it, the decoder that reads it."""

    needles: tuple[Needle, ...]
    decode: Decoder


ENCODINGS: dict[str, Encoding] = {
    "plain": Encoding(tuple(Needle(p, "plain", prefix=p) for p in _PREFIXES), _plain),
    # The UTF-16LE needle also finds UTF-16BE text, one byte later.
    "utf-16": Encoding(tuple(Needle(p.decode("ascii").encode("utf-16-le"), "utf-16", prefix=p)
                             for p in _PREFIXES), _utf16),
    "base64": Encoding(_shared(n for p in _PREFIXES for n in _base64_needles(p)), base64_hit),
    "hex": Encoding(tuple(_hex_needle(p) for p in _PREFIXES), hex_hit),
}
ALL_NEEDLES: tuple[Needle, ...] = tuple(n for e in ENCODINGS.values() for n in e.needles)
PLAIN_NEEDLES: tuple[Needle, ...] = ENCODINGS["plain"].needles


def needles(decode: bool) -> tuple[Needle, ...]:
    """What to search for: every encoding, or (``--no-decode``) the plain prefix only."""
    return ALL_NEEDLES if decode else PLAIN_NEEDLES


def decode(data: bytes | bytearray, hit: int, end: int, needle: Needle) -> Decoded | None:
    """The key a needle hit belongs to, read by its encoding's decoder, or None."""
    return ENCODINGS[needle.encoding].decode(data, hit, end, needle)
