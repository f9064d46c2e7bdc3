"""Candidate floods (issue 11, item 7): many keys in one file cost memory in proportion to
what is reported, never a multiple of it, and finding them faster changes nothing found."""

from __future__ import annotations

from conftest import make_key
from hypothesis import given, settings
from hypothesis import strategies as st

from poelis_scan.detect.grammar import Confidence
from poelis_scan.detect.matches import _PLAINNESS, Match, _drop_overlapping_duplicates

ENCODINGS = [*sorted(_PLAINNESS), "unknown"]


def reference_drop(matches: list[Match]) -> list[Match]:
    """The plain statement of the rule: plainest first, each kept unless it overlaps one kept
    before of the same secret; then in order of start."""
    kept: dict[str, list[Match]] = {}
    for match in sorted(matches, key=lambda m: _PLAINNESS.get(m.encoding, 9)):
        same = kept.setdefault(match.secret, [])
        if not any(k.start < match.end and match.start < k.end for k in same):
            same.append(match)
    return sorted((m for group in kept.values() for m in group), key=lambda m: m.start)


SECRETS = [make_key() for _ in range(3)]


@st.composite
def match_lists(draw: st.DrawFn) -> list[Match]:
    """Dense, overlapping sightings of a few secrets in a short stretch of bytes."""
    out = []
    for _ in range(draw(st.integers(0, 40))):
        start = draw(st.integers(0, 200))
        length = draw(st.integers(1, 90))
        out.append(Match(start, start + length, draw(st.sampled_from(SECRETS)),
                         Confidence.HIGH, "random-looking body",
                         draw(st.sampled_from(ENCODINGS))))
    return out


@settings(max_examples=500)
@given(match_lists())
def test_duplicate_drop_is_the_plain_rule(matches: list[Match]) -> None:
    expected = reference_drop(matches)
    got = _drop_overlapping_duplicates(list(matches))
    # Match compares every field: same matches, same order (ties in start included).
    assert got == expected


def test_duplicate_drop_of_a_flood_keeps_each_copy() -> None:
    k = make_key()
    step = len(k) + 1
    copies = [Match(i * step, i * step + len(k), k, Confidence.HIGH, "r", "plain")
              for i in range(50_000)]
    encoded = [Match(m.start, m.end, k, Confidence.HIGH, "r", "base64") for m in copies[::7]]
    kept = _drop_overlapping_duplicates(encoded + copies)
    assert kept == copies

