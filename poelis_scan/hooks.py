"""What a git hook hands over, turned into the commits to scan.

``pre-push`` (native: stdin lines ``<local ref> <local sha> <remote ref> <remote sha>``, or the
pre-commit framework's ``PRE_COMMIT_FROM_REF``/``PRE_COMMIT_TO_REF``) and ``pre-receive``
(stdin lines ``<old> <new> <ref>``, run by the server inside git's quarantine, whose
environment our git commands inherit, so the pushed objects are visible to them).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from .sources.git import Repository, is_zero_sha, run_git


def _known(repo: Repository, sha: str) -> bool:
    out = run_git(repo.path, "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", check=False)
    return bool(out.strip())


def pre_push_revs(repo: Repository, remote: str | None, lines: Iterable[str],
                  env: Mapping[str, str] = os.environ) -> list[list[str]]:
    """``git log`` argument lists for what a push sends and the remote does not have yet."""
    from_ref, to_ref = env.get("PRE_COMMIT_FROM_REF"), env.get("PRE_COMMIT_TO_REF")
    remote = remote or env.get("PRE_COMMIT_REMOTE_NAME")
    not_on_remote = [f"--remotes={remote}"] if remote else ["--remotes"]
    if to_ref:  # the pre-commit framework already worked out the range
        if from_ref and not is_zero_sha(from_ref):
            return [[f"{from_ref}..{to_ref}"]]
        return [[to_ref, "--not", *not_on_remote]]
    rev_sets: list[list[str]] = []
    for line in lines:
        fields = line.split()
        if len(fields) != 4:
            continue
        _local_ref, local_sha, _remote_ref, remote_sha = fields
        if is_zero_sha(local_sha):
            continue  # a deleted ref sends nothing
        if is_zero_sha(remote_sha) or not _known(repo, remote_sha):
            # A new branch (or a remote ahead of us): what no ref of that remote has.
            rev_sets.append([local_sha, "--not", *not_on_remote])
        else:
            rev_sets.append([f"{remote_sha}..{local_sha}"])
    return rev_sets


def pre_receive_revs(lines: Iterable[str]) -> list[list[str]]:
    """``git log`` argument lists for what a push brings to this (server) repository."""
    rev_sets: list[list[str]] = []
    for line in lines:
        fields = line.split()
        if len(fields) != 3:
            continue
        old, new, _ref = fields
        if is_zero_sha(new):
            continue  # a deleted ref brings nothing
        if is_zero_sha(old):
            rev_sets.append([new, "--not", "--all"])  # refs are not updated yet: old state
        else:
            rev_sets.append([f"{old}..{new}"])
    return rev_sets


def skip_requested(repo: Repository, env: Mapping[str, str] = os.environ) -> str | None:
    """The admin escape hatch for ``pre-receive``, if used: why the scan is skipped.

    ``POELIS_SCAN_DISABLE=1`` in the server's environment, or ``git push -o poelis-scan.skip``
    when the server sets ``git config poelis-scan.allowSkip true`` (and
    ``receive.advertisePushOptions true``).
    """
    if env.get("POELIS_SCAN_DISABLE") == "1":
        return "POELIS_SCAN_DISABLE=1 is set on the server"
    count = int(env.get("GIT_PUSH_OPTION_COUNT", "0") or 0)
    options = {env.get(f"GIT_PUSH_OPTION_{i}", "") for i in range(count)}
    if "poelis-scan.skip" in options:
        allowed = run_git(repo.path, "config", "--bool", "poelis-scan.allowSkip", check=False)
        if allowed.strip() == b"true":
            return "push option poelis-scan.skip (allowed by poelis-scan.allowSkip)"
    return None


__all__ = ["pre_push_revs", "pre_receive_revs", "skip_requested"]
