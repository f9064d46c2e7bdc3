"""Hook rev sets (``sources/git/ranges.py``): what a push sends or brings, as ``git log``
arguments, worked out against a real repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GIT_ENV, git, repo_with

from poelis_scan.sources.git.plumbing import open_repository
from poelis_scan.sources.git.ranges import (
    pre_push_revs,
    pre_receive_revs,
    range_revs,
    skip_requested,
)

ZERO = "0" * 40


@pytest.fixture(autouse=True)
def _test_git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with two commits; returns it and the two commit ids."""
    repo = repo_with(tmp_path / "repo", {"a.txt": "one\n"})
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "a.txt").write_text("two\n")
    git(repo, "commit", "-qam", "second")
    return repo, first, git(repo, "rev-parse", "HEAD").strip()


def test_pre_push_lines(history: tuple[Path, str, str]) -> None:
    path, first, second = history
    repo = open_repository(str(path))
    lines = [
        f"refs/heads/main {second} refs/heads/main {first}",  # an update the remote can follow
        f"refs/heads/new {second} refs/heads/new {ZERO}",  # a new branch
        f"(delete) {ZERO} refs/heads/old {first}",  # a deletion sends nothing
        f"refs/heads/x {second} refs/heads/x {'e' * 40}",  # the remote is ahead of us
        "three fields only",
    ]
    assert pre_push_revs(repo, "origin", lines, env={}) == [
        [f"{first}..{second}"],
        [second, "--not", "--remotes=origin"],
        [second, "--not", "--remotes=origin"],
    ]
    assert pre_push_revs(repo, None, lines[1:2], env={}) == [[second, "--not", "--remotes"]]


def test_pre_push_from_the_pre_commit_framework(history: tuple[Path, str, str]) -> None:
    path, first, second = history
    repo = open_repository(str(path))
    env = {"PRE_COMMIT_FROM_REF": first, "PRE_COMMIT_TO_REF": second,
           "PRE_COMMIT_REMOTE_NAME": "up"}
    assert pre_push_revs(repo, None, ["ignored"], env=env) == [[f"{first}..{second}"]]
    env["PRE_COMMIT_FROM_REF"] = ZERO
    assert pre_push_revs(repo, None, [], env=env) == [[second, "--not", "--remotes=up"]]


def test_pre_receive_lines() -> None:
    old, new = "a" * 40, "b" * 40
    assert pre_receive_revs([
        f"{old} {new} refs/heads/main",
        f"{ZERO} {new} refs/heads/topic",
        f"{old} {ZERO} refs/heads/gone",
        "garbage",
    ]) == [[f"{old}..{new}"], [new, "--not", "--all"]]


def test_range_revs_resolves_both_ends(history: tuple[Path, str, str]) -> None:
    path, first, second = history
    repo = open_repository(str(path))
    assert range_revs(repo, first, "HEAD") == [f"{first}..{second}"]
    git(path, "branch", "other", first)
    # A new branch (all-zeros base): its commits that no other ref has.
    assert range_revs(repo, ZERO, second) == [second, "--not", "refs/heads/other"]


def test_skip_requested_needs_the_server_to_allow_it(history: tuple[Path, str, str]) -> None:
    path, _, _ = history
    repo = open_repository(str(path))
    push = {"GIT_PUSH_OPTION_COUNT": "1", "GIT_PUSH_OPTION_0": "poelis-scan.skip"}
    assert skip_requested(repo, {}) is None
    assert skip_requested(repo, push) is None  # not allowed by this repository
    git(path, "config", "poelis-scan.allowSkip", "true")
    assert skip_requested(repo, push) == ("push option poelis-scan.skip (allowed by "
                                          "poelis-scan.allowSkip)")
    assert skip_requested(repo, {"POELIS_SCAN_DISABLE": "1"}) == (
        "POELIS_SCAN_DISABLE=1 is set on the server")
