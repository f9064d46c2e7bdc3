"""Issue 16 items 1 and 2: legacy ``poelis_live_`` credentials under their own rule, and keys
glued to a suffix read as the 43-character key they hold (verification tries every reading).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from pathlib import Path

import pytest
from conftest import ALPHABET, make_key, make_legacy_key, make_real_key, run_cli
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from poelis_emulator import Emulator

from poelis_scan.detect.grammar import (
    KEY_BODY,
    LEGACY_RULE_ID,
    Confidence,
    classify_body,
    is_word_suffix,
    read_api_run,
    read_legacy_run,
    redact,
    secret_sha256,
)
from poelis_scan.detect.matches import scan_bytes
from poelis_scan.report.sarif import RULES
from poelis_scan.verify import LEGACY_REASON


def _encodings(key: str) -> dict[str, bytes]:
    """``key`` written every way the scanner reads, with neighbours that are not key bytes."""
    raw = key.encode()
    out = {
        "plain": b"x = '" + raw + b"'\n",
        "utf-16le": ("x = '" + key + "'\n").encode("utf-16-le"),
        "utf-16be": ("x = '" + key + "'\n").encode("utf-16-be"),
        "hex": b"v: " + binascii.hexlify(b"k=" + raw + b";") + b"\n",
    }
    for align in range(3):
        lead = b"=" * align  # 0, 1, 2 bytes before the prefix in its 3-byte group
        out[f"base64-{align}"] = b"s: " + base64.b64encode(lead + raw + b"\n") + b"\n"
        out[f"base64url-{align}"] = b"s: " + base64.urlsafe_b64encode(lead + raw + b";") + b"\n"
    return out


# ---- item 1: the legacy rule --------------------------------------------------------------

@pytest.mark.parametrize("env", ["prod", "dev", "staging", "eu-west"])
def test_a_legacy_credential_is_found_high_in_every_encoding(env: str) -> None:
    key = make_legacy_key(env)
    for name, data in _encodings(key).items():
        found = [m for m in scan_bytes(data) if m.secret == key]
        assert len(found) == 1, name
        assert found[0].confidence is Confidence.HIGH, name
        assert found[0].rule_id == LEGACY_RULE_ID, name


@pytest.mark.parametrize("text", [
    "poelis_live_abc", "poelis_live_A1B2C3...", "poelis_live_A1B2C3D4E5F6...",
    "poelis_live_org_prod_<client_id>_<client_secret>",
    "poelis_live_org_${ENV}_${CLIENT_ID}_${CLIENT_SECRET}",
    "poelis_live_org_prod_" + "x" * 32 + "_" + "y" * 64,
    "poelis_live_org_prod_YOUR_CLIENT_ID_HERE_YOUR_CLIENT_SECRET_HERE_PLEASE_REPLACE",
])
def test_legacy_placeholders_are_never_high(text: str) -> None:
    for name, data in _encodings(text).items():
        assert all(m.confidence is Confidence.LOW for m in scan_bytes(data)), name
    assert scan_bytes(text.encode(), Confidence.HIGH) == []


def test_legacy_redaction_keeps_the_environment_and_hides_the_secrets() -> None:
    key = make_legacy_key("staging")
    shown = redact(key)
    client_id, client_secret = key.split("_")[4], key[-64:]
    assert shown.startswith("poelis_live_org_staging_" + client_id[:4] + "…")
    assert client_id not in shown and client_secret[:-3] not in shown
    assert redact("poelis_live_A1B2C3") == "poelis_live_…"


def test_legacy_reading_of_runs() -> None:
    key = make_legacy_key()
    body = key[len("poelis_live_"):]
    assert read_legacy_run("abc") is None
    reading = read_legacy_run(body + "_old")
    assert reading is not None and reading.body == body and reading.confidence is Confidence.HIGH
    cut = read_legacy_run(body[:-1])
    assert cut is not None and cut.confidence is Confidence.LOW


def test_legacy_end_to_end_json_sarif_gitlab_text_and_verification(
        tmp_path: Path, api: Emulator) -> None:
    key, api_key = make_legacy_key(), make_key()
    api.plans = {api_key: "live"}
    (tmp_path / "notebook.py").write_text(f'creds = "{key}"\nk = "{api_key}"\n'
                                          'doc = "poelis_live_A1B2C3..."\n')
    base = ["scan", str(tmp_path), "--base-url", api.base_url]
    run = run_cli(*base, "--format", "json", "--verify")
    assert run.status == 1, run.stderr
    by_rule = {f["rule_id"]: f for f in run.findings()}
    assert set(by_rule) == {"poelis-api-key", LEGACY_RULE_ID}  # the placeholder stays quiet
    legacy = by_rule[LEGACY_RULE_ID]
    assert legacy["secret_sha256"] == secret_sha256(key)
    assert legacy["verification"]["status"] == "unknown"
    assert legacy["verification"]["detail"] == LEGACY_REASON
    assert api.requests_for(key) == []  # never sent
    assert by_rule["poelis-api-key"]["verification"]["status"] == "live"
    assert key not in run.stdout + run.stderr
    low = run_cli("scan", str(tmp_path), "--format", "json", "--min-confidence", "low")
    assert len([f for f in low.findings() if f["rule_id"] == LEGACY_RULE_ID]) == 2

    sarif = run_cli(*base, "--format", "sarif").json()
    driver = sarif["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == ["poelis-api-key", LEGACY_RULE_ID]
    assert driver["rules"] == RULES
    legacy_help = driver["rules"][1]["help"]["text"]
    assert "poelis_live_org_" in legacy_help and "cannot prove" in legacy_help
    for result in sarif["runs"][0]["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"poelis-api-key",
                                                                   LEGACY_RULE_ID}
    gitlab = run_cli(*base, "--format", "gitlab").json()
    values = {i["value"] for v in gitlab["vulnerabilities"] for i in v["identifiers"]
              if i["type"] == "poelis_scan_rule_id"}
    assert values == {"poelis-api-key", LEGACY_RULE_ID}
    text = run_cli(*base, "--format", "text")
    assert "Legacy Poelis credential" in text.stdout and LEGACY_RULE_ID in text.stdout
    assert key not in text.stdout + text.stderr


# ---- item 2: keys glued to a suffix -------------------------------------------------------

SUFFIX = st.lists(
    st.one_of(st.from_regex(r"[a-z]{1,8}", fullmatch=True),
              st.from_regex(r"[A-Z]{1,6}", fullmatch=True),
              st.from_regex(r"[0-9]{1,4}", fullmatch=True),
              st.from_regex(r"v[0-9]{1,2}", fullmatch=True),
              st.sampled_from(["prod", "rotated", "2026", "11", "28", "old", "Backup"])),
    min_size=1, max_size=5,
).flatmap(lambda words: st.lists(st.sampled_from("_-"), min_size=len(words),
                                 max_size=len(words)).map(
    lambda seps: "".join(s + w for s, w in zip(seps, words, strict=True))))


@settings(max_examples=200)
@given(suffix=SUFFIX)
def test_a_key_glued_to_a_word_suffix_is_found_as_the_key(suffix: str) -> None:
    assume(len(suffix) >= 3)
    key = make_real_key()
    data = f'TOKEN="{key}{suffix}"\n'.encode()
    found = scan_bytes(data)
    assert [m.secret for m in found] == [key]
    assert secret_sha256(found[0].secret) == secret_sha256(key)
    assert found[0].confidence is Confidence.HIGH
    assert (found[0].start, found[0].end) == (7, 7 + len(key))
    # A body of up to 49 characters is still a plausible key itself: it is the other reading.
    whole = key + suffix
    assert found[0].alternatives == ((whole,) if len(whole) - 11 <= 49 else ())


@pytest.mark.parametrize("suffix", ["_prod", "-2026-11-28-rotated", "_v2", "_OLD", "-dev_backup"])
def test_examples_from_the_issue(suffix: str) -> None:
    key = make_real_key()
    for name, data in _encodings(key + suffix).items():
        assert [m.secret for m in scan_bytes(data)] == [key], name


@settings(max_examples=300)
@given(body=st.text(ALPHABET, min_size=29, max_size=49))
def test_bodies_of_29_to_49_characters_alone_are_read_as_before(body: str) -> None:
    """Unchanged: same key, same confidence — unless the body is, character for character, a
    43-character random head that ends as 32 bytes do, a separator and a word suffix (then the
    body itself is the alternative reading, tried by verification)."""
    glued = (len(body) > KEY_BODY + 2 and is_word_suffix(body[KEY_BODY:])
             and body[KEY_BODY - 1] in "AEIMQUYcgkosw048"
             and classify_body(body[:KEY_BODY])[0] is Confidence.HIGH)
    assume(not glued)
    data = f" poelis_api_{body} ".encode()
    confidence, reason = classify_body(body)
    found = scan_bytes(data)
    assert [(m.secret, m.confidence, m.reason, m.alternatives) for m in found] == [
        ("poelis_api_" + body, confidence, reason, ())]


def test_a_long_run_with_a_random_head_is_reported_low_never_dropped() -> None:
    key = make_real_key()
    noise = "".join(secrets.choice(ALPHABET) for _ in range(20))
    data = f"x={key}{noise}X\n".encode()
    found = scan_bytes(data)
    assert [m.secret for m in found] == [key]
    assert found[0].confidence is Confidence.LOW and "run" in found[0].reason
    assert scan_bytes(data, Confidence.HIGH) == []
    # A long identifier is still no key at all.
    assert scan_bytes(b"poelis_api_base_url_for_the_production_environment_of_acme_corp") == []


def test_read_api_run_readings() -> None:
    head = make_real_key()[len("poelis_api_"):]
    short = read_api_run(head + "_v2")
    assert short is not None and short.body == head and short.alternatives == (head + "_v2",)
    long = read_api_run(head + "-2026-11-28-rotated")
    assert long is not None and long.body == head and long.alternatives == ()
    assert read_api_run(head[:28]) is None


def _glued_files(tmp_path: Path, suffix_live: str, suffix_whole: str
                 ) -> tuple[str, str, str]:
    """Two glued keys: one whose head is the live key, one whose whole run is."""
    head_live = make_real_key()
    whole_live = make_real_key() + suffix_whole
    (tmp_path / "a.env").write_text(f"A={head_live}{suffix_live}\n")
    (tmp_path / "b.env").write_text(f"B={whole_live}\n")
    return head_live, whole_live, whole_live[: len("poelis_api_") + KEY_BODY]


def test_glued_keys_are_verified_as_themselves(tmp_path: Path, api: Emulator) -> None:
    head_live, whole_live, whole_head = _glued_files(tmp_path, "-2026-11-28-rotated", "_v2")
    api.plans = {head_live: "live", whole_live: "live"}
    run = run_cli("scan", str(tmp_path), "--base-url", api.base_url, "--format", "json",
                  "--verify", "--results", "live")
    assert run.status == 1, run.stderr
    found = {f["location"]["path"]: f for f in run.findings()}
    assert found["a.env"]["secret_sha256"] == secret_sha256(head_live)
    assert found["b.env"]["secret_sha256"] == secret_sha256(whole_live)  # the live reading
    assert all(f["verification"]["status"] == "live" for f in found.values())
    # Each reading asked about once at most: the head first, then the whole run.
    assert len([r for r in api.requests_for(whole_head) if r.query == {"limit": ["1"]}]) == 1
    assert len([r for r in api.requests_for(whole_live) if r.query == {"limit": ["1"]}]) == 1
    assert len([r for r in api.requests_for(head_live) if r.query == {"limit": ["1"]}]) == 1
    # The other readings never show, not even hashed: only the reported key is in the output.
    assert secret_sha256(whole_head) not in run.stdout
    assert json.dumps(run.json()).count("alternatives") == 0
