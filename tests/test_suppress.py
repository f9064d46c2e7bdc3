"""Suppression (``triage/suppress.py``): which findings are waved through, and why."""

from __future__ import annotations

from pathlib import Path

from conftest import make_key

from poelis_scan import Finding, scan_paths
from poelis_scan.config import AllowedSecret, Config, PathExclude
from poelis_scan.detect.grammar import secret_sha256
from poelis_scan.findings import Suppression
from poelis_scan.triage.baseline import Baseline, Entry
from poelis_scan.triage.suppress import suppress


def _findings(root: Path, files: dict[str, str]) -> dict[str, Finding]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    result = scan_paths([root], executor="serial")
    return {f.location.path: f for f in result.findings}


def test_each_kind_and_the_most_local_reason_wins(tmp_path: Path) -> None:
    inline, allowed, excluded, recorded, leak = (make_key() for _ in range(5))
    found = _findings(tmp_path, {
        "inline.env": f"K={inline}  # poelis-scan: allow\n",
        "allowed.env": f"K={allowed}\n",
        "fixtures/excluded.env": f"K={excluded}\n",
        "recorded.env": f"K={recorded}\n",
        "leak.env": f"K={leak}\n",
        "both.env": f"# poelis-scan: allow\nK={allowed}\n",  # inline beats configuration
    })
    config = Config(source="cfg.toml",
                    excludes=(PathExclude("fixtures", "test data"),),
                    allowed=(AllowedSecret(secret_sha256(allowed), "rotated in 2025"),))
    baseline = Baseline((Entry(secret_sha256(recorded), "f" * 64, "recorded.env"),))
    counts = suppress(found.values(), config=config, baseline=baseline, inline=True)
    assert {path: f.suppression for path, f in found.items()} == {
        "inline.env": Suppression("inline", "allow comment next to the key"),
        "allowed.env": Suppression("config", "rotated in 2025 (cfg.toml)"),
        "fixtures/excluded.env": Suppression("config", "test data (cfg.toml)"),
        "recorded.env": Suppression("baseline", "recorded in the baseline"),
        "leak.env": None,
        "both.env": Suppression("inline", "allow comment next to the key"),
    }
    assert counts == {"inline": 2, "config": 2, "baseline": 1}


def test_inline_comments_can_be_ignored(tmp_path: Path) -> None:
    key = make_key()
    found = _findings(tmp_path, {"a.env": f"K={key}  # pragma: allowlist secret\n"})
    counts = suppress(found.values(), config=Config(), baseline=None, inline=False)
    assert found["a.env"].suppression is None and counts == {}
    counts = suppress(found.values(), config=Config(), baseline=None, inline=True)
    assert found["a.env"].suppression == Suppression("inline", "allow comment next to the key")
