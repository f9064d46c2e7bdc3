"""Shards, repository lists, URL identities and credential stripping."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import git
from hypothesis import given
from hypothesis import strategies as st

from poelis_scan.shard import (
    SHARD_ENV,
    ShardError,
    parse_repo_lines,
    parse_shard,
    read_repos_from,
    shard_from,
    shard_of,
)
from poelis_scan.sources.remote import (
    RemoteError,
    classify,
    default_cache_dir,
    display,
    ensure_mirror,
    identity,
    is_url,
    mirror_path,
    scrub,
    strip_credentials,
)

identities = st.text(min_size=1, max_size=80)


@given(identities, st.integers(min_value=1, max_value=64))
def test_every_identity_lands_in_exactly_one_shard(name: str, count: int) -> None:
    owners = [k for k in range(1, count + 1) if parse_shard(f"{k}/{count}").takes(name)]
    assert owners == [shard_of(name, count)]
    assert shard_of(name, count) == shard_of(str(name), count)  # same on every call


def test_shards_split_a_list_roughly_evenly() -> None:
    names = [f"github.com/org/repo{i}" for i in range(3000)]
    sizes = [sum(1 for n in names if shard_of(n, 3) == k) for k in (1, 2, 3)]
    assert sum(sizes) == 3000 and min(sizes) > 800


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", "", "1/3/4"])
def test_bad_shards_are_one_line_errors(text: str) -> None:
    with pytest.raises(ShardError, match="K/N") as error:
        parse_shard(text)
    assert "\n" not in str(error.value)


def test_shard_from_option_then_environment() -> None:
    assert shard_from(None, {SHARD_ENV: "2/4"}) == parse_shard("2/4")
    assert shard_from("1/2", {SHARD_ENV: "2/4"}) == parse_shard("1/2")
    assert shard_from(None, {}) is None


def test_repository_lists(tmp_path: Path) -> None:
    listing = tmp_path / "repos.txt"
    listing.write_text("# the org\n\nhttps://h/a.git\n  /srv/b  # local\n\tgit@h:c\n")
    assert read_repos_from(str(listing)) == ["https://h/a.git", "/srv/b", "git@h:c"]
    assert parse_repo_lines(["#only a comment", ""]) == []
    with pytest.raises(ShardError, match="cannot read"):
        read_repos_from(str(tmp_path / "absent.txt"))


@pytest.mark.parametrize("spellings", [
    ["https://GitHub.com/org/Repo.git", "https://github.com/org/Repo",
     "https://user:tok@github.com/org/Repo/", "ssh://git@github.com/org/Repo.git",
     "git@github.com:org/Repo.git", "https://github.com:443/org/Repo"],
    ["git://127.0.0.1:9999/x.git", "https://127.0.0.1:9999/x"],
])
def test_one_identity_for_every_spelling(spellings: list[str]) -> None:
    assert len({identity(s) for s in spellings}) == 1


def test_file_urls_share_the_identity_of_the_path(tmp_path: Path) -> None:
    assert identity(f"file://{tmp_path}/") == classify(str(tmp_path)).identity
    assert classify(f"file://{tmp_path}").is_remote
    assert not classify(str(tmp_path)).is_remote


@pytest.mark.parametrize(("arg", "remote"), [
    ("https://h/o/r", True), ("ssh://h/r", True), ("git@h:o/r.git", True),
    ("file:///srv/r", True), ("git://h/r", True), (".", False), ("./a:b", False),
    ("relative/dir", False), ("c:", False),
])
def test_is_url(arg: str, remote: bool) -> None:
    assert is_url(arg) is remote


_NOT_IN_USERINFO = "/?#@ \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029"
userinfo = st.text(alphabet=st.characters(blacklist_characters=_NOT_IN_USERINFO,
                                          blacklist_categories=("Cs", "Zs", "Cc")),
                   min_size=1, max_size=40)


@given(user=userinfo, password=userinfo,
       scheme=st.sampled_from(["https", "http", "ssh", "git", "HTTPS"]))
def test_credentials_never_survive_stripping(user: str, password: str, scheme: str) -> None:
    url = f"{scheme}://{user}:{password}@host.example/org/repo.git"
    text = f"fatal: unable to access '{url}': 403"
    for out in (strip_credentials(text), display(url), identity(url)):
        assert f"{user}:{password}@" not in out
        assert "host.example/org/repo" in out
    assert strip_credentials(text) == "fatal: unable to access " \
        f"'{scheme}://host.example/org/repo.git': 403"
    quoted_otherwise = f"unable to look up {user}:{password}@host.example (port 9418)"
    scrubbed = scrub(quoted_otherwise, url)
    assert f"{user}:{password}" not in scrubbed
    if len(password) >= 3 and "*" not in password:  # "***" marks what was scrubbed
        assert password not in scrubbed.replace("host.example", "")


def test_cache_dir_and_mirror_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == str(tmp_path / "poelis-scan" / "repos")
    path = mirror_path("/c", classify("https://tok@h/org/repo"))
    assert "tok" not in path and "org" not in path
    assert path == mirror_path("/c", classify("https://h/org/repo.git"))


def _repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    (path / "f.txt").write_text("one\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "one")
    return path


def test_mirror_is_full_and_updated(tmp_path: Path) -> None:
    source = _repo(tmp_path / "src")
    target = classify(f"file://{source}")
    mirror = ensure_mirror(target, str(tmp_path / "cache"))
    head = git(source, "rev-parse", "HEAD").strip()
    assert git(Path(mirror), "rev-parse", "refs/heads/main").strip() == head
    (source / "g.txt").write_text("two\n")
    git(source, "add", ".")
    git(source, "commit", "-qm", "two")
    git(source, "branch", "-q", "extra")
    assert ensure_mirror(target, str(tmp_path / "cache")) == mirror
    assert git(Path(mirror), "rev-parse", "refs/heads/extra").strip() == \
        git(source, "rev-parse", "HEAD").strip()
    git(source, "branch", "-qD", "extra")
    ensure_mirror(target, str(tmp_path / "cache"))
    refs = git(Path(mirror), "for-each-ref", "--format=%(refname)").split()
    assert refs == ["refs/heads/main"]  # pruned
    assert not os.path.exists(os.path.join(mirror, "shallow"))


def test_a_failed_fetch_names_the_repository_without_credentials(tmp_path: Path) -> None:
    url = f"file://someone:hunter2@{tmp_path}/absent.git"
    with pytest.raises(RemoteError) as error:
        ensure_mirror(classify(url), str(tmp_path / "cache"))
    assert "hunter2" not in str(error.value) and "someone" not in str(error.value)
    assert "absent" in str(error.value)
    config = subprocess.run(["grep", "-r", "hunter2", str(tmp_path / "cache")],
                            capture_output=True, check=False)
    assert config.returncode == 1  # nowhere on disk
