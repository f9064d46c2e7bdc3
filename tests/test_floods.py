"""Candidate floods (issue 11, item 7): many keys in one file cost memory in proportion to
what is reported, never a multiple of it, and finding them faster changes nothing found."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_key
from hypothesis import given, settings
from hypothesis import strategies as st

from poelis_scan.detect.grammar import Confidence, secret_sha256
from poelis_scan.detect.matches import _PLAINNESS, Match, _drop_overlapping_duplicates
from poelis_scan.findings import FileOrigin, Finding, GitOrigin, Location, Suppression, Verdict
from poelis_scan.report import REPORT_SCHEMA_VERSION, ReportContext, render
from poelis_scan.stats import Stats
from poelis_scan.version import __version__

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


# --- the JSON report, written finding by finding -----------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    location = Location(draw(st.text(max_size=12)), draw(st.integers(1, 10**6)),
                        draw(st.integers(1, 500)), draw(st.integers(1, 600)),
                        draw(st.none() | st.text(max_size=8)))
    origin: FileOrigin | GitOrigin = FileOrigin()
    if draw(st.booleans()):
        origin = GitOrigin(draw(st.sampled_from(["blob", "note"])), "a" * 40, "blob", "r",
                           draw(st.none() | st.just("b" * 40)), draw(st.none() | st.text()),
                           refs=tuple(draw(st.lists(st.text(max_size=6), max_size=2))),
                           notes_commit=draw(st.none() | st.just("c" * 40)))
    access = draw(st.none() | st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3))
    finding = Finding(make_key(), draw(st.sampled_from(list(Confidence))), "why", location,
                      location.path, draw(st.sampled_from(ENCODINGS)), origin=origin,
                      verification=Verdict(draw(st.sampled_from(["live", "unknown"])), 200,
                                           draw(st.none() | st.text(max_size=10)),
                                           access=access))
    if draw(st.booleans()):
        finding.suppression = Suppression("config", draw(st.text(max_size=10)))
    return finding


@settings(max_examples=300)
@given(st.lists(findings(), max_size=4), st.booleans(), st.integers(0, 3))
def test_json_report_is_what_json_dumps_writes(found: list[Finding], reveal: bool,
                                               files: int) -> None:
    stats = Stats(files_scanned=files)
    envelope = {"version": REPORT_SCHEMA_VERSION,
                "tool": {"name": "poelis-scan", "version": __version__},
                "findings": [f.to_dict(reveal) for f in found], "stats": stats.to_dict()}
    report = render("json", found, stats, reveal=reveal, context=ReportContext())
    assert report.text == json.dumps(envelope, indent=2) + "\n"
    assert "".join(report.chunks()) == report.text
    lines = render("jsonl", found, stats, reveal=reveal, context=ReportContext()).text
    assert lines == "".join(json.dumps(f.to_dict(reveal)) + "\n" for f in found)


def test_json_report_of_many_findings_comes_in_pieces() -> None:
    k = make_key()
    found = [Finding(k, Confidence.HIGH, "r", Location("a.env", i, 1, 55), "a.env")
             for i in range(1, 2000)]
    report = render("json", found, Stats(), context=ReportContext())
    pieces = list(report.chunks())
    assert len(pieces) > 3
    assert json.loads("".join(pieces))["findings"] == [f.to_dict() for f in found]


# --- a flood of real keys, every one reported, in bounded memory --------------------------

FLOOD_MAKER = """
import secrets, sys
alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
with open(sys.argv[1], "w") as out:
    for _ in range(int(sys.argv[2])):
        out.write("poelis_api_" + "".join(secrets.choice(alphabet) for _ in range(43)) + "\\n")
"""


# A fresh, small process runs the scan and reports its peak: a child forked straight from
# this test process would count this process's pages too (Linux carries the high-water mark
# across exec).
MEASURE = """
import resource, subprocess, sys
with open(sys.argv[1], "wb") as out:
    status = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, status)
"""


def peak_of_scan(path: Path, fmt: str, report: Path) -> int:
    """Peak RSS (KiB) of one real scan of ``path`` in its own process; its report goes to
    ``report``."""
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, str(report), sys.executable, "-m", "poelis_scan",
         "scan", str(path), "-q", "--format", fmt, "-j", "1"],
        capture_output=True, text=True, check=True)
    peak, status = map(int, measured.stdout.split())
    assert status == 1
    return peak


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_flood_of_real_keys_is_reported_whole_in_bounded_memory(tmp_path: Path,
                                                                 fmt: str) -> None:
    """20,000 random keys (1.1 MB): each is a finding. Rendered as one string, the report
    alone took about 100 MB more than the scan (5 KB per finding, a gigabyte at 200,000); the
    bound leaves the interpreter, the findings (a few hundred bytes each) and the reused
    window buffers, and nothing that grows with the report's text."""
    keys = 20_000
    flood = tmp_path / "flood.txt"
    subprocess.run([sys.executable, "-c", FLOOD_MAKER, str(flood), str(keys)], check=True)
    peak = peak_of_scan(flood, fmt, tmp_path / "report")
    out = (tmp_path / "report").read_bytes()
    wanted = flood.read_text().split()
    if fmt == "json":
        reported = json.loads(out)["findings"]
    else:
        reported = [json.loads(line) for line in out.splitlines()]
    assert len(reported) == keys
    assert [f["location"]["line"] for f in reported] == list(range(1, keys + 1))
    assert {f["secret_sha256"] for f in reported} == {secret_sha256(k) for k in wanted}
    assert peak < 80 * 1024  # KiB
