"""Liveness verification against a real HTTP server on 127.0.0.1 emulating the Poelis API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_key, run_cli
from poelis_emulator import Emulator, Recorded

from poelis_scan.detect.grammar import secret_sha256
from poelis_scan.verify import Settings, Verifier, VerifyConfigError, check_base_url

FAST = {"backoff": 0.05, "timeout": 1.0}


def _running() -> Iterator[Emulator]:
    emulator = Emulator()
    emulator.start()
    yield emulator
    emulator.stop()


api = pytest.fixture(_running, name="api")
# A second server: the target of a redirect, which must never hear from us.
elsewhere = pytest.fixture(_running, name="elsewhere")


def probes(api: Emulator, key: str) -> list[Recorded]:
    """The liveness questions asked about ``key`` (not the access count that follows)."""
    return [r for r in api.requests_for(key) if r.query == {"limit": ["1"]}]


def verifier(api: Emulator, **overrides: float | bool) -> Verifier:
    settings = Settings(base_url=api.base_url, **{**FAST, **overrides})  # type: ignore[arg-type]
    return Verifier(settings)


def test_every_documented_answer(api: Emulator, elsewhere: Emulator) -> None:
    plans = ["live", "revoked", "forbidden", "proxy403", "flaky500", "always503",
             "throttled", "redirect", "nonjson200"]
    keys = {plan: make_key() for plan in plans}
    api.plans = {k: plan for plan, k in keys.items()}
    api.redirect_to = elsewhere.base_url
    verdicts = verifier(api, retries=2, access_check=False).verify_many(
        [*keys.values(), keys["live"]])
    status = {plan: verdicts[k].status for plan, k in keys.items()}
    assert status == {
        "live": "live", "revoked": "revoked", "forbidden": "live", "proxy403": "unknown",
        "flaky500": "live", "always503": "unknown", "throttled": "live",
        "redirect": "unknown", "nonjson200": "unknown"}
    assert verdicts[keys["forbidden"]].http_status == 403
    assert "redirect" in (verdicts[keys["redirect"]].detail or "")
    assert "HTTP 503" in (verdicts[keys["always503"]].detail or "")
    assert all(v.request_id and v.request_id.startswith("req_") for v in verdicts.values())
    # One question per distinct key (the live key was passed twice); retries only where due.
    counts = {plan: len(api.requests_for(k)) for plan, k in keys.items()}
    assert counts == {"live": 1, "revoked": 1, "forbidden": 1, "proxy403": 1, "flaky500": 2,
                      "always503": 3, "throttled": 3, "redirect": 1, "nonjson200": 1}
    assert elsewhere.requests == []
    for request in api.requests:
        assert (request.method, request.path, request.query) == (
            "GET", "/v1/public/workspaces", {"limit": ["1"]})
        assert request.headers["Authorization"] == f"Bearer {request.key}"
        others = {k: v for k, v in request.headers.items() if k != "Authorization"}
        assert request.key and request.key not in json.dumps(others)
    # Retry-After: 1 was honoured before each retry of the throttled key.
    throttled = api.requests_for(keys["throttled"])
    assert throttled[1].at - throttled[0].at >= 0.95
    assert throttled[2].at - throttled[1].at >= 0.95


def test_a_response_slower_than_the_timeout(api: Emulator) -> None:
    k = make_key()
    api.plans = {k: "slow"}
    api.slow_seconds = 1.5
    verdict = verifier(api, timeout=0.3, retries=0).verify(k)
    assert verdict.status == "unknown" and "timed out" in (verdict.detail or "")


def test_rate_limit_window_is_respected_by_all_workers(api: Emulator) -> None:
    keys = [make_key() for _ in range(20)]
    api.plans = {k: "live" for k in keys}
    api.window = (5, 2.0)
    verdicts = verifier(api, access_check=False).verify_many(keys)
    assert [verdicts[k].status for k in keys] == ["live"] * 20
    assert api.violations == []  # no request while the emulator said to wait


@pytest.mark.parametrize("url", ["http://api.poelis.com", "ftp://127.0.0.1",
                                 "https://user:pw@api.poelis.com", "http://10.0.0.8:8080"])
def test_unsafe_base_urls_are_refused(url: str) -> None:
    with pytest.raises(VerifyConfigError):
        check_base_url(url)


def test_safe_base_urls() -> None:
    assert check_base_url("https://api.poelis.com")[1:] == ("api.poelis.com", 443, "")
    assert check_base_url("http://127.0.0.1:8080/prefix/")[1:] == ("127.0.0.1", 8080, "/prefix")
    assert check_base_url("http://[::1]:9")[1] == "::1"


# ---- through the command line -------------------------------------------------------------

def tree_with(tmp_path: Path, plans: dict[str, str], api: Emulator) -> dict[str, str]:
    keys = {plan: make_key() for plan in plans}
    api.plans = {keys[plan]: behaviour for plan, behaviour in plans.items()}
    for plan, k in keys.items():
        (tmp_path / f"{plan}.env").write_text(f"K={k}\nAGAIN={k}\n")
    return keys


def test_scan_with_verify_records_verdicts_and_filters(tmp_path: Path, api: Emulator) -> None:
    keys = tree_with(tmp_path, {"live": "live", "revoked": "revoked", "odd": "proxy403"}, api)
    base = ["scan", str(tmp_path), "--base-url", api.base_url, "--format", "json"]
    run = run_cli(*base, "--verify")
    assert run.status == 1
    status = {f["location"]["path"]: f["verification"]["status"] for f in run.findings()}
    assert status == {"live.env": "live", "odd.env": "unknown", "revoked.env": "revoked"}
    assert all(len(probes(api, k)) == 1 for k in keys.values())  # two findings, one ask
    live_only = run_cli(*base, "--verify", "--results", "live")
    assert [f["location"]["path"] for f in live_only.findings()] == ["live.env", "live.env"]
    shortcut = run_cli(*base, "--only-live")  # switches verification on by itself
    assert [f["location"]["path"] for f in shortcut.findings()] == ["live.env", "live.env"]
    none_live = run_cli("scan", str(tmp_path / "revoked.env"), "--base-url", api.base_url,
                        "--only-live")
    assert none_live.status == 0
    for output in (run, live_only, shortcut, none_live):
        for k in keys.values():
            assert k not in output.stdout and k not in output.stderr
    unverified = run_cli("scan", str(tmp_path), "--format", "json")
    assert {f["verification"]["status"] for f in unverified.findings()} == {"unverified"}


def test_base_url_from_the_environment(tmp_path: Path, api: Emulator) -> None:
    keys = tree_with(tmp_path, {"live": "live"}, api)
    run = run_cli("scan", str(tmp_path), "--verify", "--format", "json",
                  env={"POELIS_BASE_URL": api.base_url})
    assert run.findings()[0]["verification"]["status"] == "live"
    assert len(probes(api, keys["live"])) == 1
    refused = run_cli("scan", str(tmp_path), "--verify", "--base-url", "http://example.invalid")
    assert refused.status == 2 and refused.stderr.count("\n") == 1
    assert "plain HTTP" in refused.stderr


def test_verify_command_reads_keys_or_any_text(api: Emulator) -> None:
    live, revoked = make_key(), make_key()
    api.plans = {live: "live", revoked: "revoked"}
    text = f"{live}\nsome log line with {revoked} inside\n{live}\n"
    run = run_cli("verify", "--base-url", api.base_url, stdin=text.encode())
    assert run.status == 1
    lines = run.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == [f"{live[:15]}…{live[-3:]}", secret_sha256(live), "live"]
    assert lines[1].split()[1:] == [secret_sha256(revoked), "revoked"]
    assert live not in run.stdout + run.stderr and revoked not in run.stdout + run.stderr
    assert len(probes(api, live)) == 1
    only_revoked = run_cli("verify", "--base-url", api.base_url, stdin=revoked.encode())
    assert only_revoked.status == 0
