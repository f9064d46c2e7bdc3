"""A scanned repository is hostile: its configuration must run nothing, the environment must not
redirect the scan, and a corrupt object must not stop it (issues 10 and 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import GIT_ENV, make_key, run_cli

ZERO = "0" * 40


def git(repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> str:
    proc = subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=repo,
                          input=stdin, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV, **(env or {})}, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr}")
    return proc.stdout.strip()


def marker_program(tmp: Path, name: str) -> Path:
    """A program that leaves ``tmp/ran-NAME`` behind if anything runs it."""
    program = tmp / f"prog-{name}"
    program.write_text(f"#!/bin/sh\ntouch '{tmp}/ran-{name}'\nexit 1\n")
    program.chmod(0o755)
    return program


def ran(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("ran-*"))


SIGNATURES = {
    "openpgp": "-----BEGIN PGP SIGNATURE-----\n\n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----",
    "ssh": "-----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----",
    "x509": "-----BEGIN SIGNED MESSAGE-----\n MIAGCSqG\n -----END SIGNED MESSAGE-----",
}


def signed_commit(repo: Path, kind: str, message: str) -> str:
    """A commit object with a ``gpgsig`` header of ``kind``, written as raw bytes, on HEAD."""
    tree = git(repo, "write-tree")
    head = git(repo, "rev-parse", "HEAD")
    body = (f"tree {tree}\nparent {head}\nauthor A <a@example.invalid> 1700000000 +0000\n"
            f"committer A <a@example.invalid> 1700000000 +0000\n"
            f"gpgsig {SIGNATURES[kind]}\n\n{message}\n")
    sha = git(repo, "hash-object", "-t", "commit", "-w", "--stdin", stdin=body)
    git(repo, "update-ref", "HEAD", sha)
    return sha


def hostile_repo(tmp: Path, key: str) -> Path:
    """A repository whose own configuration names a marker program for every setting through
    which git could run one, with signed commits, a textconv'ed file and a key to find."""
    repo = tmp / "hostile"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitattributes").write_text("*.env diff=evil\n")
    (repo / "app.env").write_text(f"KEY={key}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    for kind in SIGNATURES:
        signed_commit(repo, kind, f"signed {kind}")
    hooks = tmp / "hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "post-checkout", "post-index-change", "reference-transaction",
                 "pre-auto-gc", "post-rewrite"):
        shutil.copy(marker_program(tmp, f"hook-{hook}"), hooks / hook)
    settings = {
        "log.showSignature": "true",
        "gpg.program": marker_program(tmp, "gpg"),
        "gpg.openpgp.program": marker_program(tmp, "gpg-openpgp"),
        "gpg.x509.program": marker_program(tmp, "gpgsm"),
        "gpg.ssh.program": marker_program(tmp, "ssh-keygen"),
        "gpg.ssh.allowedSignersFile": tmp / "allowed",
        "core.fsmonitor": marker_program(tmp, "fsmonitor"),
        "core.hooksPath": hooks,
        "diff.external": marker_program(tmp, "diff-external"),
        "diff.evil.textconv": marker_program(tmp, "textconv"),
        "diff.evil.command": marker_program(tmp, "diff-command"),
        "core.pager": marker_program(tmp, "pager"),
        "pager.log": marker_program(tmp, "pager-log"),
        "pager.diff": marker_program(tmp, "pager-diff"),
    }
    for name, value in settings.items():
        git(repo, "config", name, str(value))
    # The next commit changes app.env, so a diff of it would go through textconv/external diff.
    (repo / "app.env").write_text(f"KEY={key}\nMORE=1\n")
    git(repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "commit", "-qam",
        "second")
    (repo / "staged.env").write_text(f"K={key}\n")
    git(repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "add", "staged.env")
    return repo


def test_every_vector_is_live_for_plain_git(tmp_path: Path, key: str) -> None:
    """The hostile repository is hostile: plain git commands run each program (so the test
    below, where none runs, means something)."""
    repo = hostile_repo(tmp_path, key)
    assert ran(tmp_path) == []
    git(repo, "log", "-1", "HEAD~1", check=False)  # showSignature + gpg.ssh.program
    git(repo, "log", "-1", "HEAD~2", check=False)  # x509
    git(repo, "log", "-1", "HEAD~3", check=False)  # openpgp
    git(repo, "diff", "--cached", "--stat", check=False)  # fsmonitor
    git(repo, "log", "-p", "-1", "--no-ext-diff", check=False)  # textconv
    git(repo, "diff", "HEAD~1", "HEAD", check=False)  # diff.evil.command
    git(repo, "diff", "--no-index", "/dev/null", ".gitattributes", check=False)  # diff.external
    # (core.pager and pager.*: git pages only on a terminal; ours is a pipe, and --no-pager)
    found = set(ran(tmp_path))
    for name in ("gpg-openpgp", "gpgsm", "ssh-keygen", "fsmonitor", "textconv",
                 "diff-command", "diff-external"):
        assert f"ran-{name}" in found, (name, found)


MODES = ["all", "range", "staged", "pre-push", "pre-receive"]


@pytest.mark.parametrize("mode", MODES)
def test_no_program_of_the_scanned_repository_ever_runs(tmp_path: Path, key: str,
                                                        mode: str) -> None:
    repo = hostile_repo(tmp_path, key)
    head, first = git(repo, "rev-parse", "HEAD"), git(repo, "rev-list", "--max-parents=0",
                                                      "HEAD")
    stdin = b""
    if mode == "all":
        args = ["git", str(repo)]
    elif mode == "range":
        args = ["git", str(repo), "--range", f"{first}..HEAD"]
    elif mode == "staged":
        args = ["git", str(repo), "--staged"]
    elif mode == "pre-push":
        args = ["hook", "pre-push", "origin", "nowhere"]
        stdin = f"refs/heads/main {head} refs/heads/main {ZERO}\n".encode()
    else:
        args = ["hook", "pre-receive"]
        stdin = f"{first} {head} refs/heads/main\n".encode()
    result = run_cli(*args, "--format", "json", cwd=repo, stdin=stdin)
    assert result.status == 1, result.stderr
    assert result.findings(), result.stdout
    assert ran(tmp_path) == []


def test_no_program_runs_when_the_hook_shortcut_answers_a_clean_index(tmp_path: Path,
                                                                      key: str) -> None:
    """The pre-commit shortcut (``entry.py``) starts its own gits: the same vectors, a clean
    staged file (so the shortcut, not the full command line, answers), nothing runs."""
    repo = hostile_repo(tmp_path, key)
    git(repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "rm", "-q",
        "--cached", "staged.env")
    (repo / "clean.txt").write_text("nothing to see\n")
    git(repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "add", "clean.txt")
    result = run_cli("git", "--staged", cwd=repo)
    assert result.status == 0, result.stderr
    assert "scanned 1 blob" in result.stderr
    assert ran(tmp_path) == []


def lazy_fetching_clone(tmp: Path, key: str) -> tuple[Path, str]:
    """A "partial clone" whose promisor remote is an ``ext::`` command, with a blob missing:
    reading that blob makes git fetch it, which runs the command."""
    repo = tmp / "partial"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "b.env").write_text(f"K={key}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "b")
    blob = git(repo, "rev-parse", "HEAD:b.env")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    marker = marker_program(tmp, "ext-transport")
    for name, value in {"core.repositoryformatversion": "1",
                        "extensions.partialClone": "origin",
                        "remote.origin.url": f"ext::{marker}",
                        "remote.origin.promisor": "true", "protocol.ext.allow": "always",
                        "protocol.allow": "always"}.items():
        git(repo, "config", name, value)
    return repo, first


def test_a_lazy_fetch_runs_no_transport(tmp_path: Path, key: str) -> None:
    repo, first = lazy_fetching_clone(tmp_path, key)
    blob = git(repo, "rev-parse", "HEAD:b.env")
    git(repo, "cat-file", "-p", blob, check=False)
    assert ran(tmp_path) == ["ran-ext-transport"]  # the vector is live for plain git
    (tmp_path / "ran-ext-transport").unlink()
    result = run_cli("git", str(repo), "--range", f"{first}..HEAD", "--format", "json")
    assert ran(tmp_path) == []
    assert result.status in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr


def two_repos(tmp: Path) -> tuple[Path, Path, str, str]:
    keys = make_key(), make_key()
    paths = []
    for name, k in zip(("named", "other"), keys, strict=True):
        repo = tmp / name
        repo.mkdir()
        git(repo, "init", "-q")
        (repo / f"{name}.env").write_text(f"K={k}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", name)
        paths.append(repo)
    return paths[0], paths[1], keys[0], keys[1]


@pytest.mark.parametrize("mode", ["all", "staged"])
def test_git_dir_in_the_environment_never_redirects_the_scan(tmp_path: Path, mode: str) -> None:
    named, other, _, _ = two_repos(tmp_path)
    (named / "new.env").write_text(f"N={make_key()}\n")
    git(named, "add", "new.env")
    elsewhere = {"GIT_DIR": str(other / ".git"), "GIT_WORK_TREE": str(other),
                 "GIT_INDEX_FILE": str(other / ".git" / "index"),
                 "GIT_OBJECT_DIRECTORY": str(other / ".git" / "objects")}
    extra = ["--staged"] if mode == "staged" else []
    result = run_cli("git", str(named), *extra, "--format", "json", env=elsewhere)
    assert result.status == 1, result.stderr
    paths = {f["location"]["path"] for f in result.findings()}
    assert "other.env" not in paths
    assert ("new.env" if mode == "staged" else "named.env") in paths
    assert {f["git"]["repository"] for f in result.findings()} == {str(named)}


def test_a_repository_owned_by_another_user_reports_git_safe_directory_reason(
        tmp_path: Path) -> None:
    named, _, _, _ = two_repos(tmp_path)
    env: dict[str, str] = {}
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "65534:65534", str(named)], check=True)
    else:  # git's own switch for the same check
        env["GIT_TEST_ASSUME_DIFFERENT_OWNER"] = "1"
    result = run_cli("git", str(named), env=env)
    assert result.status == 2
    assert "dubious ownership" in result.stderr and "safe.directory" in result.stderr
    assert "not a git repository" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# ---- corrupt objects: a warning naming the object, and the scan goes on ---------------------


def flip_loose(repo: Path, sha: str) -> None:
    path = repo / ".git" / "objects" / sha[:2] / sha[2:]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def corruptible(tmp: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """Three commits, keys in the first and last, an annotated tag on the middle one."""
    repo = tmp / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    keys = {"first": make_key(), "last": make_key(), "message": make_key()}
    (repo / "first.env").write_text(f"K={keys['first']}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first")
    (repo / "middle" / "deep").mkdir(parents=True)
    (repo / "middle" / "deep" / "m.txt").write_text("middle\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "middle")
    git(repo, "tag", "-a", "v1", "-m", "release")
    (repo / "last.env").write_text(f"K={keys['last']}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"last\n\nwith {keys['message']}")
    ids = {"middle_commit": git(repo, "rev-parse", "HEAD~1"),
           "middle_tree": git(repo, "rev-parse", "HEAD~1:middle"),
           "tag": git(repo, "rev-parse", "v1")}
    return repo, keys, ids


def scan_json(*args: str) -> tuple[Any, str, int]:
    result = run_cli(*args, "--format", "json")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.status == 1, result.stderr
    return result.json(), result.stderr, result.status


@pytest.mark.parametrize("damaged", ["middle_commit", "middle_tree", "tag"])
def test_a_corrupt_loose_object_is_a_warning_and_the_rest_is_scanned(
        tmp_path: Path, damaged: str) -> None:
    repo, keys, ids = corruptible(tmp_path)
    flip_loose(repo, ids[damaged])
    report, stderr, _ = scan_json("git", str(repo))
    from poelis_scan.detect.grammar import secret_sha256

    found = {f["secret_sha256"] for f in report["findings"]}
    assert found == {secret_sha256(k) for k in keys.values()}
    assert ids[damaged][:12] in stderr
    # Trees are not scanned (they hold names, not content): a corrupt one stops the history
    # walk that resolves provenance; a corrupt commit or tag is also unreadable as content.
    warnings = report["stats"]["warnings"]
    assert warnings.get("incomplete_history", 0) >= 1
    if damaged != "middle_tree":
        assert warnings.get("unreadable_object", 0) >= 1


def test_a_damaged_pack_is_a_warning_and_the_rest_is_scanned(tmp_path: Path) -> None:
    repo, keys, _ = corruptible(tmp_path)
    filler = "".join(f"line {i} of a file nobody needs\n" for i in range(4000))
    (repo / "big.txt").write_text(filler)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "filler")
    big = git(repo, "rev-parse", "HEAD:big.txt")
    git(repo, "repack", "-q", "-a", "-d")
    (index,) = (repo / ".git" / "objects" / "pack").glob("*.idx")
    listing = git(repo, "verify-pack", "-v", str(index)).splitlines()
    (row,) = [line.split() for line in listing if line.startswith(big)]
    size_in_pack, offset = int(row[3]), int(row[4])
    pack = index.with_suffix(".pack")
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    for i in range(offset + size_in_pack // 3, offset + size_in_pack // 3 + 16):
        data[i] ^= 0x5A
    pack.write_bytes(bytes(data))
    report, stderr, _ = scan_json("git", str(repo))
    from poelis_scan.detect.grammar import secret_sha256

    found = {f["secret_sha256"] for f in report["findings"]}
    assert found == {secret_sha256(k) for k in keys.values()}
    assert big[:12] in stderr
    assert report["stats"]["warnings"].get("unreadable_object", 0) >= 1


# ---- git metadata: keys in identities and ref names are findings, and never printed ------


def test_keys_in_identities_and_ref_names_are_findings_and_never_printed(tmp_path: Path) -> None:
    from poelis_scan.detect.grammar import redact
    from poelis_scan.report import FORMATS

    author, email, branch, in_file = make_key(), make_key(), make_key(), make_key()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "app.env").write_text(f"K={in_file}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add config", env={"GIT_AUTHOR_NAME": f"Dev {author}",
                                                  "GIT_AUTHOR_EMAIL": f"{email}@example.invalid"})
    git(repo, "branch", f"feature/{branch}")
    for fmt in FORMATS:
        result = run_cli("git", str(repo), "--format", fmt)
        assert result.status == 1, (fmt, result.stderr)
        for k in (author, email, branch, in_file):
            assert k not in result.stdout + result.stderr, fmt
    report = run_cli("git", str(repo), "--format", "json").json()
    by_path: dict[str, list[dict[str, Any]]] = {}
    for f in report["findings"]:
        by_path.setdefault(f["location"]["path"], []).append(f)
    identity = sorted(by_path["<identity>"], key=lambda f: f["location"]["column"])
    assert [f["git"]["kind"] for f in identity] == ["identity", "identity"]
    assert [(f["location"]["line"], f["location"]["column"]) for f in identity] == [
        (1, len("Dev ") + 1), (1, len(f"Dev {author} <") + 1)]
    assert identity[0]["secret_redacted"] == redact(author)
    ref = f"refs/heads/feature/{redact(branch)}"
    (named,) = by_path[f"<ref:{ref}>"]
    assert named["git"]["kind"] == "ref-name" and named["git"]["refs"] == [ref]
    assert (named["location"]["line"], named["location"]["column"]) == (
        1, len("refs/heads/feature/") + 1)
    (blob,) = by_path["app.env"]
    assert blob["git"]["author"] == f"Dev {redact(author)}"
    assert blob["git"]["email"] == f"{redact(email)}@example.invalid"
    assert sorted(blob["git"]["refs"]) == sorted(["refs/heads/main", ref])
    assert "<commit-message>" not in by_path


def test_a_message_finding_counts_lines_from_the_subject(tmp_path: Path) -> None:
    k = make_key()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", f"subject\n\nbody\n  token {k}")
    (f,) = run_cli("git", str(repo), "--format", "json").findings()
    assert f["location"]["path"] == "<commit-message>"
    # git log --format=%B: "subject", "", "body", "  token KEY"
    assert (f["location"]["line"], f["location"]["column"]) == (4, 9)


def test_range_scans_the_annotated_tags_on_its_commits(tmp_path: Path) -> None:
    k = make_key()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "old", "-m", f"before the range {make_key()}")
    git(repo, "commit", "-q", "--allow-empty", "-m", "in range")
    git(repo, "tag", "-a", "v1", "-m", f"notes\n\n{k}",
        env={"GIT_COMMITTER_NAME": "Rel Eng", "GIT_COMMITTER_EMAIL": "rel@example.invalid",
             "GIT_COMMITTER_DATE": "@1700000000 +0100"})
    git(repo, "tag", "light")
    tag = git(repo, "rev-parse", "v1")
    result = run_cli("git", str(repo), "--range", f"{base}..HEAD", "--format", "json")
    assert result.status == 1, result.stderr
    (f,) = result.findings()
    assert f["location"]["path"] == "<tag-message>"
    assert (f["location"]["line"], f["location"]["column"]) == (3, 1)
    g = f["git"]
    assert (g["kind"], g["blob"], g["object_type"]) == ("tag-message", tag, "tag")
    assert (g["author"], g["email"]) == ("Rel Eng", "rel@example.invalid")
    assert g["date"] == "2023-11-14T23:13:20+01:00"
    assert g["refs"] == ["refs/tags/v1"]
    assert result.json()["stats"]["tags_scanned"] == 1


def test_a_replace_ref_cannot_hide_a_blob(tmp_path: Path) -> None:
    """``refs/replace/*`` makes git show another object in place of the real one: the scan
    reads the objects themselves."""
    k = make_key()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "app.env").write_text(f"K={k}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "config")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "app.env").write_text("K=nothing to see\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "clean")
    leaky = git(repo, "rev-parse", f"{first}:app.env")
    git(repo, "replace", leaky, git(repo, "rev-parse", "HEAD:app.env"))
    assert k not in git(repo, "show", f"{first}:app.env")  # plain git is fooled
    for args in ([], ["--range", f"{ZERO}..HEAD"]):
        result = run_cli("git", str(repo), *args, "--format", "json")
        assert result.status == 1, (args, result.stderr)
        assert {f["location"]["path"] for f in result.findings()} == {"app.env"}
