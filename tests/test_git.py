"""``poelis-scan git``: real repositories built by each test, findings and their provenance."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import GIT_ENV, make_key, run_cli

ZERO = "0" * 40


class Repo:
    """A real repository with a clock: every commit is one minute after the previous one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 1_700_000_000
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def env(self) -> dict[str, str]:
        date = f"@{self.clock} +0000"
        return {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}

    def git(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(["git", "-c", "init.defaultBranch=main", "-c",
                               "protocol.file.allow=always", *args],
                              cwd=self.path, input=stdin, capture_output=True, text=True,
                              env=self.env(), check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"git {args} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, name: str, text: str | bytes) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else text.encode())

    def commit(self, message: str, *paths: str) -> str:
        self.clock += 60
        self.git("add", "-A", *paths)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


def scan(path: Path, *args: str) -> tuple[list[dict[str, Any]], dict[str, Any], str, int]:
    run = run_cli("git", str(path), "--format", "json", *args)
    assert run.status in (0, 1), run.stderr
    report = run.json()
    return report["findings"], report["stats"], run.stderr, run.status


def one(findings: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(findings) == 1, [(f["location"], f["git"]) for f in findings]
    return findings[0]


def test_every_blob_with_its_introducing_commit(repo: Repo) -> None:
    k = make_key()
    repo.write("README.md", "hello\n")
    repo.commit("start")
    repo.write("deploy/app.env", f"A=1\nPOELIS_API_KEY={k}\n")
    introduced = repo.commit("add config")
    repo.write("other.txt", "x\n")
    repo.commit("later")  # the same blob lives on in this commit's tree
    findings, stats, _, status = scan(repo.path)
    f = one(findings)
    assert status == 1
    assert f["location"]["path"] == "deploy/app.env"
    assert (f["location"]["line"], f["location"]["column"]) == (2, 16)
    git = f["git"]
    assert git["commit"] == introduced and git["kind"] == "blob"
    assert (git["author"], git["email"]) == ("Test Author", "author@example.invalid")
    assert git["date"].startswith("2023-11-14T22:")
    assert git["refs"] == ["refs/heads/main"]
    blobs = repo.git("cat-file", "--batch-all-objects", "--batch-check=%(objecttype)").split()
    assert stats["blobs_scanned"] == blobs.count("blob")
    assert stats["commits_scanned"] == 3


def test_key_written_while_resolving_a_merge_conflict(repo: Repo) -> None:
    repo.write("settings.py", "KEY = None\n")
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("settings.py", "KEY = 'from-feature'\n")
    repo.commit("feature value")
    repo.git("checkout", "-q", "main")
    repo.write("settings.py", "KEY = 'from-main'\n")
    repo.commit("main value")
    repo.git("merge", "-q", "feature", check=False)  # conflicts
    k = make_key()
    repo.write("settings.py", f"KEY = '{k}'\n")
    repo.clock += 60
    repo.git("add", "settings.py")
    repo.git("commit", "-q", "--no-edit")
    merge = repo.git("rev-parse", "HEAD")
    f = one(scan(repo.path)[0])
    assert (f["git"]["commit"], f["location"]["path"]) == (merge, "settings.py")


def test_stash_note_and_commit_message(repo: Repo) -> None:
    stashed, noted, messaged = make_key(), make_key(), make_key()
    repo.write("a.txt", "one\n")
    first = repo.commit(f"initial\n\nthe body says {messaged}\n")
    repo.git("notes", "add", "-m", f"deploy note: {noted}", first)
    repo.write("a.txt", f"token={stashed}\n")
    repo.git("stash", "push", "-q")
    findings, _, _, _ = scan(repo.path)
    by_key = {f["secret_sha256"]: f for f in findings}
    from poelis_scan.detect.grammar import secret_sha256

    stash = by_key[secret_sha256(stashed)]
    assert "refs/stash" in stash["git"]["refs"] and stash["location"]["path"] == "a.txt"
    note = by_key[secret_sha256(noted)]
    assert (note["git"]["kind"], note["git"]["commit"]) == ("note", first)
    message = by_key[secret_sha256(messaged)]
    assert (message["git"]["kind"], message["git"]["commit"]) == ("commit-message", first)
    assert message["location"]["path"] == "<commit-message>"
    assert message["location"]["line"] == 3


def test_unreachable_commit_after_a_deleted_branch(repo: Repo) -> None:
    k = make_key()
    repo.write("a.txt", "one\n")
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "oops")
    repo.write("leak.env", f"K={k}\n")
    lost = repo.commit("leak")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "oops")
    repo.git("reflog", "expire", "--expire=now", "--all")
    f = one(scan(repo.path)[0])
    assert (f["git"]["kind"], f["git"]["commit"], f["location"]["path"]) == (
        "unreachable", lost, "leak.env")
    assert f["git"]["refs"] == []


def test_dangling_blob_that_no_commit_holds(repo: Repo) -> None:
    k = make_key()
    repo.write("a.txt", "one\n")
    repo.commit("base")
    repo.write("staged-then-dropped.env", f"K={k}\n")
    repo.git("add", "staged-then-dropped.env")
    repo.git("rm", "-q", "--cached", "staged-then-dropped.env")
    f = one(scan(repo.path)[0])
    assert f["git"]["kind"] == "unreachable" and f["git"]["commit"] is None
    assert f["location"]["path"].startswith("<unreachable-blob-")


def test_tag_only_commit_unmerged_branch_deleted_and_renamed_files(repo: Repo) -> None:
    tagged, unmerged, deleted, renamed = (make_key() for _ in range(4))
    repo.write("a.txt", "one\n")
    repo.commit("base")
    repo.git("checkout", "-q", "--detach")
    repo.write("tagged.env", f"K={tagged}\n")
    tag_commit = repo.commit("only a tag holds me")
    repo.git("tag", "v-secret")
    repo.git("checkout", "-q", "main")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("feature.env", f"K={unmerged}\n")
    repo.commit("feature work")
    repo.git("checkout", "-q", "main")
    repo.write("gone.env", f"K={deleted}\n")
    gone_commit = repo.commit("add gone")
    (repo.path / "gone.env").unlink()
    repo.commit("delete gone")
    repo.write("old-name.env", f"K={renamed}\n")
    old_commit = repo.commit("add old name")
    repo.git("mv", "old-name.env", "new-name.env")
    new_commit = repo.commit("rename")
    findings, _, _, _ = scan(repo.path)
    from poelis_scan.detect.grammar import secret_sha256

    def where(key: str) -> list[tuple[str, str, list[str]]]:
        return sorted((f["location"]["path"], f["git"]["commit"], f["git"]["refs"])
                      for f in findings if f["secret_sha256"] == secret_sha256(key))

    assert where(tagged) == [("tagged.env", tag_commit, ["refs/tags/v-secret"])]
    assert where(unmerged)[0][0] == "feature.env"
    assert where(unmerged)[0][2] == ["refs/heads/feature"]
    assert where(deleted) == [("gone.env", gone_commit, ["refs/heads/main"])]
    assert where(renamed) == [("new-name.env", new_commit, ["refs/heads/main"]),
                              ("old-name.env", old_commit, ["refs/heads/main"])]


def test_each_distinct_blob_is_scanned_once(repo: Repo) -> None:
    k = make_key()
    repo.write("key.env", f"K={k}\n")
    for i in range(5):
        repo.write(f"f{i}.txt", f"{i}\n")
        repo.commit(f"c{i}")
    f = one(scan(repo.path)[0])
    assert f["git"]["commit"] == repo.git("rev-list", "--max-parents=0", "HEAD")


def test_shallow_clone_says_history_is_cut(repo: Repo, tmp_path: Path) -> None:
    old, new = make_key(), make_key()
    repo.write("a.env", f"K={old}\n")
    repo.commit("old")
    repo.write("a.env", f"K={new}\n")
    repo.commit("new")
    clone = tmp_path / "shallow"
    repo.git("clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone))
    findings, stats, stderr, _ = scan(clone)
    from poelis_scan.detect.grammar import secret_sha256

    assert [f["secret_sha256"] for f in findings] == [secret_sha256(new)]
    assert stats["history_cut"] is True
    assert "shallow clone" in stderr
    run = run_cli("git", str(clone), "--range", f"{repo.git('rev-parse', 'HEAD~1')}..HEAD")
    assert run.status == 2 and run.stderr.count("\n") == 1
    assert "not in this repository" in run.stderr and "fetch" in run.stderr


def test_range_and_since_commit_scan_only_what_the_commits_introduced(repo: Repo) -> None:
    before, inside = make_key(), make_key()
    repo.write("old.env", f"K={before}\n")
    base = repo.commit("before the range")
    repo.write("new.env", f"K={inside}\n")
    repo.commit("in the range")
    repo.write("other.txt", "x\n")
    tip = repo.commit("also in the range")
    for args in (["--range", f"{base}..{tip}"], ["--since-commit", base]):
        findings, stats, _, _ = scan(repo.path, *args)
        f = one(findings)
        assert f["location"]["path"] == "new.env"
        assert stats["commits_scanned"] == 2


def test_zero_sha_range_scans_the_new_branch_only(repo: Repo) -> None:
    on_main, on_branch = make_key(), make_key()
    repo.write("main.env", f"K={on_main}\n")
    repo.commit("main")
    repo.git("checkout", "-q", "-b", "topic")
    repo.write("topic.env", f"K={on_branch}\n")
    repo.commit("topic 1")
    repo.write("more.txt", "x\n")
    tip = repo.commit("topic 2")
    findings, stats, _, _ = scan(repo.path, "--range", f"{ZERO}..{tip}")
    assert one(findings)["location"]["path"] == "topic.env"
    assert stats["commits_scanned"] == 2


def test_root_commit_in_a_range(repo: Repo) -> None:
    k = make_key()
    repo.write("a.env", f"K={k}\n")
    tip = repo.commit("root")
    findings, _, _, _ = scan(repo.path, "--range", f"{ZERO}..{tip}")
    assert one(findings)["git"]["commit"] == tip


def test_partial_staging_both_ways(repo: Repo) -> None:
    k = make_key()
    repo.write("app.py", "a = 1\n" + "\n" * 10 + "b = 2\n")
    repo.commit("base")
    # The work tree has a key in one hunk; only the other hunk is staged.
    repo.write("app.py", "a = 1  # changed\n" + "\n" * 10 + f"b = '{k}'\n")
    repo.git("add", "-p", "app.py", stdin="y\nn\n")
    assert k not in repo.git("show", ":app.py")
    findings, stats, _, status = scan(repo.path, "--staged")
    assert (findings, status, stats["blobs_scanned"]) == ([], 0, 1)
    # The other way round: the key's hunk is staged, the work tree no longer has it.
    repo.git("reset", "-q")
    repo.git("add", "-p", "app.py", stdin="n\ny\n")
    repo.write("app.py", "a = 1\n" + "\n" * 10 + "b = 2\n")
    f = one(scan(repo.path, "--staged")[0])
    assert (f["location"]["path"], f["location"]["line"]) == ("app.py", 12)
    assert f["git"]["kind"] == "staged"


def test_staged_in_a_repository_without_commits(repo: Repo) -> None:
    k = make_key()
    repo.write("first.env", f"K={k}\n")
    repo.git("add", "first.env")
    f = one(scan(repo.path, "--staged")[0])
    assert f["location"]["path"] == "first.env"
    run = run_cli("git", str(repo.path), "--staged")
    assert run.stdout.startswith(":first.env:1:3: Poelis API key ")


def test_not_a_repository_and_empty_repository(tmp_path: Path, repo: Repo) -> None:
    run = run_cli("git", str(tmp_path / "nowhere"))
    assert run.status == 2 and run.stderr.count("\n") == 1 and "not a directory" in run.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    run = run_cli("git", str(plain))
    assert run.status == 2 and "not a git repository" in run.stderr
    findings, stats, stderr, status = scan(repo.path)
    assert (findings, status, stats["blobs_scanned"]) == ([], 0, 0)
    assert "nothing was scanned" in stderr


def test_bare_clone_linked_worktree_and_several_repositories(repo: Repo, tmp_path: Path) -> None:
    k = make_key()
    repo.write("a.env", f"K={k}\n")
    repo.commit("one")
    bare = tmp_path / "bare.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    worktree = tmp_path / "wt"
    repo.git("worktree", "add", "-q", str(worktree))
    findings, _, _, _ = scan(bare)
    assert one(findings)["location"]["path"] == "a.env"
    assert one(scan(worktree)[0])["location"]["path"] == "a.env"
    run = run_cli("git", str(repo.path), str(bare), "--format", "json")
    assert sorted(f["git"]["repository"] for f in run.findings()) == sorted(
        [str(repo.path), str(bare)])


def test_odd_paths_corrupt_object_submodule_and_archive(repo: Repo, tmp_path: Path) -> None:
    import io
    import zipfile

    newline_key, latin_key, zipped_key = make_key(), make_key(), make_key()
    repo.write("line\nbreak.env", f"K={newline_key}\n")
    (repo.path / "caf\xe9.env".encode("latin-1").decode("utf-8", "surrogateescape")).write_bytes(
        f"K={latin_key}\n".encode())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner/.env", f"K={zipped_key}\n")
    repo.write("dist/bundle.zip", out.getvalue())
    sub = Repo(tmp_path / "sub")
    sub.write("x.txt", "x\n")
    sub.commit("sub")
    repo.git("submodule", "add", "-q", str(sub.path), "vendor/sub")
    repo.commit("odd things")
    # Corrupt one loose object that no finding depends on.
    junk = repo.git("hash-object", "-w", "--stdin", stdin="junk\n")
    obj = repo.path / ".git" / "objects" / junk[:2] / junk[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"not zlib at all")
    findings, stats, stderr, _ = scan(repo.path)
    paths = sorted((f["location"]["path"], f["location"]["member"]) for f in findings)
    assert paths == [("caf\\xe9.env", None), ("dist/bundle.zip", "inner/.env"),
                     ("line\nbreak.env", None)]
    assert stats["warnings"].get("unreadable_object") == 1
    assert "corrupt" in stderr and "Traceback" not in stderr


def test_annotated_tag_message_and_dropped_stash(repo: Repo) -> None:
    tag_key, dropped_key = make_key(), make_key()
    repo.write("a.txt", "one\n")
    repo.commit("base")
    repo.git("tag", "-a", "v1", "-m", f"release notes mention {tag_key}")
    repo.write("a.txt", f"two {dropped_key}\n")
    repo.git("stash", "push", "-q")
    repo.git("stash", "drop", "-q")
    findings, _, _, _ = scan(repo.path)
    from poelis_scan.detect.grammar import secret_sha256

    kinds = {f["secret_sha256"]: (f["git"]["kind"], f["location"]["path"]) for f in findings}
    assert kinds[secret_sha256(tag_key)] == ("tag-message", "<tag-message>")
    assert kinds[secret_sha256(dropped_key)] == ("unreachable", "a.txt")


def test_this_repository_holds_no_key() -> None:
    """Dogfood: the project's own history (every object) has no key worth reporting; test keys
    are made at run time and decoys are judged low."""
    project = Path(__file__).resolve().parent.parent
    if not (project / ".git").exists():
        pytest.skip("not a git checkout")
    run = run_cli("git", str(project), "--format", "json")
    assert run.status == 0, [(f["location"]["path"], f["git"]["commit"]) for f in run.findings()]
    assert run.json()["stats"]["blobs_scanned"] > 50
