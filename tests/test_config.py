"""Configuration parsing (``config.py``): every key checked, every mistake named exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from poelis_scan.config import (
    AllowedSecret,
    Config,
    ConfigError,
    PathExclude,
    discover,
    load,
    parse,
)

SHA = "ab" * 32


def test_a_full_table_parses_into_typed_entries() -> None:
    config = parse({
        "min-confidence": "low",
        "exclude": [{"path": "fixtures/", "reason": "test data"}],
        "allow": [{"secret-sha256": SHA, "reason": "the docs' example"}],
        "verify": {"base-url": "http://127.0.0.1:9", "timeout": 2.5, "concurrency": 3},
    }, "x.toml")
    assert config == Config(
        source="x.toml", min_confidence="low",
        excludes=(PathExclude("fixtures/", "test data"),),
        allowed=(AllowedSecret(SHA, "the docs' example"),),
        verify={"base-url": "http://127.0.0.1:9", "timeout": 2.5, "concurrency": 3},
    )


@pytest.mark.parametrize("table, message", [
    ({"min-confidnce": "low"},
     "x.toml: min-confidnce: unknown key (expected: allow, exclude, min-confidence, verify)"),
    ({"min-confidence": "medium"}, 'x.toml: min-confidence: must be "low" or "high"'),
    ({"exclude": {"path": "a"}}, "x.toml: exclude: must be a list of tables ([[...]])"),
    ({"exclude": ["a"]}, "x.toml: exclude[0]: must be a table"),
    ({"exclude": [{"path": "a"}]}, "x.toml: exclude[0].reason: is required"),
    ({"exclude": [{"path": "a", "reason": " "}]},
     "x.toml: exclude[0].reason: must be a non-empty string"),
    ({"exclude": [{"path": "a", "reason": "r", "why": "w"}]},
     "x.toml: exclude[0].why: unknown key (expected: path, reason)"),
    ({"allow": [{"secret-sha256": SHA.upper(), "reason": "r"}]},
     "x.toml: allow[0].secret-sha256: must be 64 lower-case hex digits"),
    ({"verify": []}, "x.toml: verify: must be a table"),
    ({"verify": {"timeout": "5"}}, "x.toml: verify.timeout: must be a number"),
    ({"verify": {"concurrency": True}}, "x.toml: verify.concurrency: must be a number"),
    ({"verify": {"concurrency": 0}}, "x.toml: verify.concurrency: must be positive"),
    ({"verify": {"base-url": 1}}, "x.toml: verify.base-url: must be a string"),
    ({"verify": {"proxy": "x"}},
     "x.toml: verify.proxy: unknown key (expected: base-url, concurrency, timeout)"),
])
def test_each_mistake_is_one_exact_line(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(table, "x.toml")
    assert str(caught.value) == message


def test_load_reads_our_file_and_the_pyproject_table(tmp_path: Path) -> None:
    own = tmp_path / ".poelis-scan.toml"
    own.write_text('min-confidence = "low"\n')
    assert load(str(own)) == Config(source=str(own), min_confidence="low")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n\n[tool.poelis-scan]\nmin-confidence = "high"\n')
    assert load(str(pyproject)) == Config(source=f"{pyproject} [tool.poelis-scan]",
                                          min_confidence="high")


@pytest.mark.parametrize("text, problem", [
    (None, "no such configuration file"),
    ("min-confidence = \n", "not valid TOML"),
])
def test_load_failures_name_the_file(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / ".poelis-scan.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load(str(path))
    assert str(caught.value).startswith(f"{path}: {problem}")
    assert "\n" not in str(caught.value)


def test_discover_walks_up_to_the_repository_root_and_no_further(tmp_path: Path) -> None:
    repo, deep = tmp_path / "repo", tmp_path / "repo" / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / ".poelis-scan.toml").write_text('min-confidence = "low"\n')  # outside: ignored
    assert discover(str(deep), str(repo)) == Config()
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no table of ours
    assert discover(str(deep), str(repo)) == Config()
    (repo / "a" / ".poelis-scan.toml").write_text('min-confidence = "high"\n')
    found = discover(str(deep), str(repo))
    assert found.source == str(repo / "a" / ".poelis-scan.toml")
    assert found.min_confidence == "high"
