"""Verification against a hostile or broken server (issue 11, items 8-12), and what a live key
can reach (issue 16, item 3), against real servers on 127.0.0.1.

No test asserts wall time. Where a bug would be a hang, the call runs under a guard that fails
only if it never returns: a hang detector with a limit far above the expected run time. Waits
the client must make (a backoff floor) are asserted as lower bounds on the gaps between
requests the server saw: that is the behaviour under test, not a speed.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import CliRun, make_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poelis_emulator import Emulator, RawServer, Workspace, workspaces

from poelis_scan.detect.redaction import clean_external, redact_text
from poelis_scan.findings import redact
from poelis_scan.verify import (
    LEGACY_REASON,
    Settings,
    Verifier,
    VerifyConfigError,
    check_base_url,
    describe_access,
    parse_json,
    parse_reset,
    parse_retry_after,
)

T = TypeVar("T")
GUARD = 90.0  # seconds: a hang detector, far above any expected run time
QUICK = {"backoff": 0.05, "timeout": 2.0}


def verifier(api: Emulator | RawServer, **overrides: Any) -> Verifier:
    return Verifier(Settings(base_url=api.base_url, **{**QUICK, **overrides}))


def bounded(call: Callable[[], T], guard: float = GUARD) -> T:
    """``call()``, failing the test if it has not returned after ``guard`` seconds (a hang)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(guard)
    if thread.is_alive():
        pytest.fail(f"hang: the call had not returned after the {guard:g} s guard")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def run_cli(*args: str, guard: float = GUARD) -> CliRun:
    """The real CLI in a subprocess; a run still going after ``guard`` seconds is a hang."""
    try:
        proc = subprocess.run([sys.executable, "-m", "poelis_scan", *args], input=b"",
                              capture_output=True, timeout=guard, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: poelis-scan {args[0]} was still running after the {guard:g} s guard")
    return CliRun(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"))


def tree(tmp_path: Path, keys: list[str]) -> Path:
    for n, key in enumerate(keys):
        (tmp_path / f"k{n}.env").write_text(f"POELIS_KEY={key}\n")
    return tmp_path


def verdicts_by_key(run: CliRun, keys: list[str]) -> list[dict[str, Any]]:
    by_path = {f["location"]["path"]: f["verification"] for f in run.findings()}
    return [by_path[f"k{n}.env"] for n in range(len(keys))]


def gaps(api: Emulator, key: str) -> list[float]:
    times = [r.at for r in api.requests_for(key)]
    return [b - a for a, b in itertools.pairwise(times)]


def legacy_key() -> str:
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    client_id = "".join(secrets.choice(alnum) for _ in range(32))
    return f"poelis_live_org_prod_{client_id}_{secrets.token_urlsafe(48)}"


# ---- item 8: absurd waits are capped, never slept, never an overflow -----------------------

ABSURD = ["3600", "99999999", "inf", "1e300", "1e309", "Fri, 01 Jan 2100 00:00:00 GMT"]


@pytest.mark.parametrize("value", ABSURD)
def test_an_absurd_retry_after_makes_keys_unknown_at_once(api: Emulator, value: str) -> None:
    first, second = make_key(), make_key()
    answer = (429, {"error": "rate_limit_exceeded"}, {"Retry-After": value})
    api.plans = {first: "custom", second: "custom"}
    api.custom = {first: answer, second: answer}
    verdicts = bounded(lambda: verifier(api, concurrency=1).verify_many([first, second]))
    assert verdicts[first].status == "unknown" and verdicts[first].http_status == 429
    assert "longer than this key may wait (60 s)" in (verdicts[first].detail or "")
    # The gate remembers the server's wish: the second key is not sent into it.
    assert verdicts[second].status == "unknown"
    assert "asks to wait" in (verdicts[second].detail or "")
    assert len(api.requests_for(first)) == 1 and api.requests_for(second) == []


@pytest.mark.parametrize("value", ["3600", "99999999", "inf", "1e300"])
def test_an_absurd_rate_limit_reset_makes_keys_unknown_at_once(api: Emulator,
                                                                value: str) -> None:
    keys = [make_key() for _ in range(3)]
    spent = (200, {"items": [], "count": 0},
             {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": value})
    api.plans = dict.fromkeys(keys, "custom")
    api.custom = dict.fromkeys(keys, spent)
    verdicts = bounded(lambda: verifier(api, concurrency=1, access_check=False)
                       .verify_many(keys))
    assert [verdicts[k].status for k in keys] == ["live", "unknown", "unknown"]
    assert "rate limit resets in" in (verdicts[keys[1]].detail or "")
    assert len(api.requests) == 1


@pytest.mark.parametrize("value", ["nan", "garbage", "-1", "0", "-inf", "1e3x", ""])
def test_a_garbage_rate_limit_reset_is_ignored(api: Emulator, value: str) -> None:
    keys = [make_key() for _ in range(3)]
    spent = (200, {"items": [], "count": 0},
             {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": value})
    api.plans = dict.fromkeys(keys, "custom")
    api.custom = dict.fromkeys(keys, spent)
    verdicts = bounded(lambda: verifier(api, concurrency=2, access_check=False)
                       .verify_many(keys))
    assert [verdicts[k].status for k in keys] == ["live"] * 3
    assert len(api.requests) == 3


@given(st.one_of(st.text(max_size=80), st.from_regex(r"-?[0-9.eE+-]{1,30}", fullmatch=True),
                 st.sampled_from(["nan", "inf", "-inf", "1e309", "NaN", "Infinity"])))
def test_header_numbers_parse_to_a_finite_wait_or_nothing(value: str) -> None:
    for parsed in (parse_reset(value, time.time()), parse_retry_after(value, time.time())):
        assert parsed is None or 0.0 <= parsed <= 1e7


# ---- item 9: one deadline for the whole request; Ctrl-C at the first press ---------------

@pytest.mark.parametrize("plan", ["drip_headers", "drip_body"])
def test_a_dripping_server_is_cut_at_the_deadline(tmp_path: Path, api: Emulator,
                                                  plan: str) -> None:
    key = make_key()
    api.plans = {key: plan}  # one byte every 0.8 s: each read is quick, the answer never ends
    run = run_cli("scan", str(tree(tmp_path, [key])), "--verify", "--verify-timeout", "2",
                  "--base-url", api.base_url, "--format", "json")
    assert run.status == 1
    [verdict] = verdicts_by_key(run, [key])
    assert verdict["status"] == "unknown" and verdict["detail"] == "timed out after 2 s"
    assert len(api.requests_for(key)) == 1  # a timeout is not retried: it bounds the key


def test_raw_drip_of_the_status_line_is_cut_too() -> None:
    server = RawServer([(b"H", 0.0), *[(b"T", 0.8)] * 200])
    try:
        verdict = bounded(lambda: verifier(server, timeout=1.5).verify(make_key()))
    finally:
        server.stop()
    assert verdict.status == "unknown" and "timed out" in (verdict.detail or "")


def test_ctrl_c_stops_verification_at_the_first_press(tmp_path: Path, api: Emulator) -> None:
    keys = [make_key() for _ in range(6)]
    api.plans = dict.fromkeys(keys, "hang")  # answers nothing for two minutes
    proc = subprocess.Popen(
        [sys.executable, "-m", "poelis_scan", "scan", str(tree(tmp_path, keys)), "--verify",
         "--verify-timeout", "100", "--base-url", api.base_url],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        waited = 0.0
        while not api.requests and waited < GUARD:  # verification has begun
            time.sleep(0.05)
            waited += 0.05
        assert api.requests, "verification never started"
        proc.send_signal(signal.SIGINT)  # once
        try:
            out, err = proc.communicate(timeout=GUARD)
        except subprocess.TimeoutExpired:
            pytest.fail("hang: one Ctrl-C did not stop verification")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert err.decode().strip().splitlines()[-1] == "poelis-scan: interrupted"
    assert "Traceback" not in err.decode()
    assert not any(k in (out + err).decode() for k in keys)


# ---- item 10: bodies are capped, nesting is bounded ---------------------------------------

@pytest.mark.parametrize("plan", ["deep_body", "huge_body"])
def test_deep_and_huge_bodies_end_as_unknown_with_a_report(tmp_path: Path, api: Emulator,
                                                           plan: str) -> None:
    key = make_key()
    api.plans = {key: plan}  # 1 MiB of "[" / 16 MiB without a Content-Length
    run = run_cli("scan", str(tree(tmp_path, [key])), "--verify", "--base-url", api.base_url,
                  "--format", "json")
    assert run.status == 1 and "Traceback" not in run.stderr
    [verdict] = verdicts_by_key(run, [key])
    assert verdict["status"] == "unknown"
    assert verdict["detail"].startswith("HTTP 200 without the documented JSON list")


def test_deep_json_inside_the_body_cap(api: Emulator) -> None:
    key = make_key()
    api.plans = {key: "custom"}
    api.custom = {key: (200, "[" * 20000 + "]" * 20000, {})}  # 40 KB: read whole, too deep
    verdict = verifier(api).verify(key)
    assert verdict.status == "unknown" and verdict.http_status == 200


def test_the_documented_list_still_parses_when_nested_a_little(api: Emulator) -> None:
    key = make_key()
    api.plans = {key: "custom"}
    api.custom = {key: (200, {"items": [{"id": "ws_1", "tags": [[["a"]]]}], "count": 1}, {})}
    assert verifier(api, access_check=False).verify(key).status == "live"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="ab[]{}\"\\ ", max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=30)


@given(json_values)
def test_parse_json_agrees_with_json_loads_on_shallow_values(value: Any) -> None:
    body = json.dumps(value).encode()
    assert parse_json(body) == json.loads(body)


@given(st.integers(min_value=33, max_value=70000), st.sampled_from("[{"))
def test_parse_json_refuses_deep_nesting_without_recursing(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    inner = '"x"' if opener == "[" else ""
    text = (opener + ('"k":' if opener == "{" else "")) * depth
    assert parse_json((text + inner + closer * depth).encode()) is None


# ---- item 11: backoff never zero, attempts capped, budget held across windows ------------

@pytest.mark.parametrize("value", ["0", "-1", "nan", "garbage", "-inf", ""])
def test_a_zero_or_garbage_retry_after_still_backs_off(api: Emulator, value: str) -> None:
    key = make_key()
    api.plans = {key: "custom"}
    api.custom = {key: (429, {"error": "rate_limit_exceeded"}, {"Retry-After": value})}
    verdict = bounded(lambda: verifier(api, min_wait=0.2).verify(key))
    assert verdict.status == "unknown" and verdict.http_status == 429
    assert verdict.detail == "rate limited (HTTP 429) 5 times"
    assert len(api.requests_for(key)) == 5  # the per-key attempt cap
    assert min(gaps(api, key)) >= 0.2  # the floor, never zero


def test_a_429_storm_through_the_cli(tmp_path: Path, api: Emulator) -> None:
    keys = [make_key() for _ in range(3)]
    storm = (429, {"error": "rate_limit_exceeded"}, {"Retry-After": "0"})
    api.plans = dict.fromkeys(keys, "custom")
    api.custom = dict.fromkeys(keys, storm)
    run = run_cli("scan", str(tree(tmp_path, keys)), "--verify", "--base-url", api.base_url,
                  "--format", "json")
    assert run.status == 1
    for verdict in verdicts_by_key(run, keys):
        assert verdict["status"] == "unknown" and verdict["http_status"] == 429
    for key in keys:
        assert len(api.requests_for(key)) == 5
        assert min(gaps(api, key)) >= 1.0  # the default floor of one second
    # After every 429 the whole run waits: no request lands within a second of the last 429.
    times = sorted(r.at for r in api.requests)
    bursts = [b - a for a, b in itertools.pairwise(times) if b - a > 0.5]
    assert len(bursts) >= 5 and min(bursts) >= 1.0


def test_a_run_wide_429_storm_stops_sending(api: Emulator) -> None:
    keys = [make_key() for _ in range(8)]
    storm = (429, {"error": "rate_limit_exceeded"}, {"Retry-After": "0"})
    api.plans = dict.fromkeys(keys, "custom")
    api.custom = dict.fromkeys(keys, storm)
    verdicts = bounded(lambda: verifier(api, concurrency=1, min_wait=0.05).verify_many(keys))
    assert all(v.status == "unknown" for v in verdicts.values())
    assert len(api.requests) == 20  # four keys of five attempts, then nobody is sent
    assert [len(api.requests_for(k)) for k in keys] == [5, 5, 5, 5, 0, 0, 0, 0]
    assert "429 to the last 20 requests in a row" in (verdicts[keys[-1]].detail or "")


@pytest.mark.parametrize("send_limit", [True, False], ids=["limit-known", "limit-unknown"])
def test_the_rate_budget_holds_across_reset_windows(api: Emulator, send_limit: bool) -> None:
    keys = [make_key() for _ in range(10)]
    api.plans = dict.fromkeys(keys, "live")
    api.window = (2, 1.0)
    api.send_limit = send_limit
    verdicts = bounded(lambda: verifier(api, concurrency=8, access_check=False)
                       .verify_many(keys))
    assert [verdicts[k].status for k in keys] == ["live"] * 10
    assert api.limited == 0  # no request was over the budget
    assert max(api.window_counts) <= 2 and sum(api.window_counts) == 10
    assert api.violations == []


def test_access_requests_pass_the_same_gate(api: Emulator) -> None:
    keys = [make_key() for _ in range(3)]
    api.plans = dict.fromkeys(keys, "live")
    api.workspaces = dict.fromkeys(keys, workspaces(2, products=1))
    api.window = (3, 1.0)
    verdicts = bounded(lambda: verifier(api, concurrency=4).verify_many(keys))
    assert all(verdicts[k].access == {"workspaces": 2, "products": 2,
                                      "workspace_names": ["Workspace 1", "Workspace 2"],
                                      "complete": True, "reason": None} for k in keys)
    assert len(api.requests) == 3 * 4  # probe, one page, two product counts
    assert api.limited == 0 and api.violations == []


# ---- item 12: nothing the server says carries a key into a report ------------------------

@pytest.mark.parametrize("fmt", ["json", "sarif", "text", "gitlab"])
def test_a_server_echoing_the_key_is_redacted_everywhere(tmp_path: Path, api: Emulator,
                                                         fmt: str) -> None:
    live, rejected = make_key(), make_key()
    api.plans = {live: "echo", rejected: "echo401"}
    run = run_cli("scan", str(tree(tmp_path, [live, rejected])), "--verify", "--base-url",
                  api.base_url, "--format", fmt)
    assert run.status == 1
    for key in (live, rejected):
        assert key not in run.stdout and key not in run.stderr
        assert key[len("poelis_api_"):][:20] not in run.stdout  # not even a long fragment
    if fmt == "json":
        echoed, refused = verdicts_by_key(run, [live, rejected])
        assert echoed["status"] == "live"
        assert echoed["request_id"] == f"Bearer {redact(live)}"
        assert echoed["access"]["workspace_names"] == [f"Workspace Bearer {redact(live)}"]
        assert refused["status"] == "unknown" and refused["request_id"] == (
            f"req_Bearer {redact(rejected)}")
        assert f"bad credentials: Bearer {redact(rejected)}" in refused["detail"]


KEY_BODY = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                   min_size=29, max_size=60)


KEY_SHAPED = re.compile(r"poelis_(?:api|live)_[A-Za-z0-9_-]{8,}")
SEPARATORS = st.text(alphabet=" \t\n:=\"'/<>é€", min_size=1, max_size=20)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.text(max_size=30), KEY_BODY, st.sampled_from(["api", "live"])),
                min_size=1, max_size=5), st.text(max_size=30))
def test_redact_text_leaves_nothing_key_shaped(parts: list[tuple[str, str, str]],
                                               tail: str) -> None:
    text = "".join(f"{before}poelis_{kind}_{body}" for before, body, kind in parts) + tail
    out = redact_text(text)
    assert KEY_SHAPED.search(out) is None
    assert redact_text(out) == out  # redacting twice changes nothing


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(SEPARATORS, KEY_BODY, st.sampled_from(["api", "live"])),
                min_size=1, max_size=5), SEPARATORS)
def test_redact_text_hides_every_key_between_separators(parts: list[tuple[str, str, str]],
                                                        tail: str) -> None:
    text = "".join(f"{before}poelis_{kind}_{body}" for before, body, kind in parts) + tail
    out = redact_text(text)
    for before, body, kind in parts:
        assert body not in out
        shown = redact(f"poelis_api_{body}") if kind == "api" else "poelis_live_…"
        assert f"{before}{shown}" in out  # the text around a key is kept as it was


@given(st.text(max_size=200).filter(lambda t: "poelis_" not in t))
def test_redact_text_leaves_other_text_alone(text: str) -> None:
    assert redact_text(text) == text


def test_clean_external_strips_controls_before_redacting() -> None:
    key = make_key()
    split = key[:20] + "\x00\x1b" + key[20:]  # a control character must not hide a key
    cleaned = clean_external(f"\u202eid {split}\r\n", 200)
    assert cleaned == f"id {redact(key)}"
    assert len(clean_external("x" * 10000, 50)) == 50


# ---- issue 16 item 3: what a live key opens ---------------------------------------------

def test_a_live_key_says_what_it_opens(api: Emulator) -> None:
    key = make_key()
    api.plans = {key: "live"}
    api.workspaces = {key: [Workspace("ws_a", "Design", 3), Workspace("ws_b", "Ops", 0),
                            Workspace("ws c/../x?y", "Odd\x1b[31m id", 4)]}
    verdict = verifier(api).verify(key)
    assert verdict.status == "live"
    assert verdict.access == {"workspaces": 3, "products": 7,
                              "workspace_names": ["Design", "Ops", "Odd[31m id"],
                              "complete": True, "reason": None}
    asked = [(r.method, r.path, r.query) for r in api.requests_for(key)]
    assert asked == [
        ("GET", "/v1/public/workspaces", {"limit": ["1"]}),
        ("GET", "/v1/public/workspaces", {"limit": ["100"], "offset": ["0"]}),
        ("GET", "/v1/public/products", {"workspace_id": ["ws_a"]}),
        ("GET", "/v1/public/products", {"workspace_id": ["ws_b"]}),
        ("GET", "/v1/public/products", {"workspace_id": ["ws c/../x?y"]}),
    ]


def test_the_access_count_stops_at_ten_requests(api: Emulator) -> None:
    key = make_key()
    api.plans = {key: "live"}
    api.workspaces = {key: workspaces(120, products=2)}  # pages of 50: 3 pages, 120 counts
    verdict = verifier(api).verify(key)
    assert verdict.access is not None
    assert verdict.access["workspaces"] == 120 and verdict.access["complete"] is False
    assert verdict.access["products"] == 7 * 2  # 10 requests: 3 pages, then 7 workspaces
    assert verdict.access["workspace_names"] == [f"Workspace {n}" for n in range(1, 6)]
    assert "limit of 10 requests" in verdict.access["reason"]
    offsets = [r.query.get("offset") for r in api.requests_for(key)
               if r.path == "/v1/public/workspaces"]
    assert offsets == [None, ["0"], ["50"], ["100"]]
    assert len(api.requests_for(key)) == 1 + 10


def test_an_access_count_cut_by_an_error_is_incomplete(api: Emulator) -> None:
    key = make_key()
    api.plans = {key: "live"}
    api.workspaces = {key: [Workspace("ws_1", "A", 1)]}
    api.page_max = 0  # the server lists nothing although it counts one workspace
    verdict = verifier(api).verify(key)
    assert verdict.status == "live" and verdict.access is not None
    assert verdict.access["complete"] is False and verdict.access["workspaces"] == 1


def test_describe_access() -> None:
    assert describe_access(None) == ""
    assert describe_access({"workspaces": 3, "products": 6, "workspace_names": [],
                            "complete": True, "reason": None}) == "opens 3 workspaces, 6 products"
    assert describe_access({"workspaces": 1, "products": 1, "workspace_names": [],
                            "complete": False, "reason": "limit"}) == (
        "opens at least 1 workspace, 1 product")


def test_access_through_the_cli_and_its_switch(tmp_path: Path, api: Emulator) -> None:
    key = make_key()
    api.plans = {key: "live"}
    api.workspaces = {key: workspaces(3, products=2)}
    base = ["scan", str(tree(tmp_path, [key])), "--verify", "--base-url", api.base_url,
            "--format", "json"]
    [verdict] = verdicts_by_key(run_cli(*base), [key])
    assert verdict["access"] == {"workspaces": 3, "products": 6,
                                 "workspace_names": ["Workspace 1", "Workspace 2",
                                                     "Workspace 3"],
                                 "complete": True, "reason": None}
    assert {r.method for r in api.requests} == {"GET"}
    api.requests.clear()
    [verdict] = verdicts_by_key(run_cli(*base, "--no-access-check"), [key])
    assert verdict["status"] == "live" and "access" not in verdict
    assert len(api.requests) == 1


def test_no_access_count_for_a_key_that_is_not_live(api: Emulator) -> None:
    revoked, forbidden = make_key(), make_key()
    api.plans = {revoked: "revoked", forbidden: "forbidden"}
    verdicts = verifier(api).verify_many([revoked, forbidden])
    assert verdicts[revoked].access is None and verdicts[forbidden].access is None
    assert len(api.requests) == 2


# ---- issue 16 item 1: legacy credentials are never sent ----------------------------------

def test_a_legacy_credential_is_never_sent(api: Emulator) -> None:
    old = legacy_key()
    verdicts = verifier(api).verify_many([old, "not_a_key_at_all"])
    assert verdicts[old].status == "unknown" and verdicts[old].detail == LEGACY_REASON
    assert verdicts["not_a_key_at_all"].status == "unknown"
    assert api.requests == []


# ---- broken HTTP from a raw socket --------------------------------------------------------

BROKEN = {
    "no answer": [],
    "not http": [(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", 0.0)],
    "huge headers": [(b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 200_000 + b"\r\n\r\n", 0.0)],
    "bad header": [(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n{}", 0.0)],
    "bad length": [(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n[]", 0.0)],
    "short body": [(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[]", 0.0)],
    "bad chunk": [(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0.0)],
    "endless chunk": [(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"7fffffffffffffff\r\n" + b"[" * 100_000, 0.0)],
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_http_answer_is_unknown(name: str) -> None:
    server = RawServer(BROKEN[name])
    try:
        verdict = bounded(lambda: verifier(server, retries=0).verify(make_key()))
    finally:
        server.stop()
    assert verdict.status == "unknown" and verdict.detail


def test_a_chunked_answer_is_read() -> None:
    body = b'{"items": [], "count": 0}'
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                      for i in range(0, len(body), 7))
    server = RawServer([(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0.0),
                        (chunks + b"0\r\n\r\n", 0.1)])
    try:
        verdict = verifier(server, access_check=False).verify(make_key())
    finally:
        server.stop()
    assert verdict.status == "live"


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_from_the_server_end_in_a_verdict(answer: bytes) -> None:
    server = RawServer([(answer, 0.0)])
    try:
        verdict = bounded(lambda: verifier(server, retries=0, timeout=1.0,
                                           access_check=False).verify(make_key()))
    finally:
        server.stop()
    assert verdict.status in ("live", "revoked", "unknown")


def test_a_closed_port_is_unknown_after_retries() -> None:
    with RawServer([]) as server:
        url = server.base_url
    verdict = bounded(lambda: Verifier(Settings(base_url=url, backoff=0.05)).verify(make_key()))
    assert verdict.status == "unknown"
    assert verdict.detail == "connection failed: ConnectionRefusedError"


def test_a_tls_handshake_dripped_byte_by_byte_is_cut_at_the_deadline() -> None:
    record = b"\x16\x03\x03\x40\x00"  # a TLS handshake record of 16 KiB, sent one byte at a time
    with RawServer([(record, 0.0), *[(b"\x00", 0.8)] * 200]) as server:
        url = server.base_url.replace("http://", "https://")
        verdict = bounded(lambda: Verifier(Settings(base_url=url, timeout=1.5)).verify(make_key()))
    assert verdict.status == "unknown" and verdict.detail == "timed out after 1.5 s"


def test_an_untrusted_certificate_ends_the_exchange_before_the_key_is_sent(
        tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    heard: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    heard.append(tls.recv(65536))
            except (ssl.SSLError, OSError):
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}"
        verdict = bounded(lambda: Verifier(Settings(base_url=url)).verify(make_key()))
        thread.join(GUARD)
    finally:
        listener.close()
    assert verdict.status == "unknown"
    assert verdict.detail == "TLS failure: CERTIFICATE_VERIFY_FAILED"
    assert heard == []  # the request (and the key in it) never left the client


# ---- settings that would hang or overflow -------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://127.0.0.1:abc",
                                 "http://[::1", "http://127.0.0.1 x", "http://127.0.0.1\r\nX: y",
                                 "http://127.0.0.1/a b", "http://127.0.0.1:0"])
def test_malformed_base_urls_are_refused(url: str) -> None:
    with pytest.raises(VerifyConfigError):
        check_base_url(url)


@pytest.mark.parametrize("value", ["nan", "inf", "1e309"])
def test_a_verify_timeout_that_is_not_a_number_is_one_line(tmp_path: Path, api: Emulator,
                                                           value: str) -> None:
    run = run_cli("scan", str(tree(tmp_path, [make_key()])), "--verify", "--base-url",
                  api.base_url, "--verify-timeout", value)
    assert run.status == 2 and run.stderr.count("\n") == 1 and "timeout" in run.stderr
    assert api.requests == []


def test_settings_are_checked() -> None:
    for bad in ({"timeout": float("nan")}, {"min_wait": 0.0}, {"max_attempts": 0},
                {"concurrency": 0}, {"retry_after_cap": float("inf")}):
        with pytest.raises(VerifyConfigError):
            Verifier(Settings(base_url="http://127.0.0.1:9", **bad))


def test_a_proxy_in_the_environment_never_sees_a_key(api: Emulator,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    key = make_key()
    api.plans = {key: "revoked"}
    with RawServer([]) as proxy:  # would record a connection if a key were sent there
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("http_proxy", proxy.base_url)
        assert verifier(api).verify(key).status == "revoked"
        assert proxy.connections == 0
