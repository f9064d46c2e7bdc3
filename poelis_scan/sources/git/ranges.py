"""Which commits to scan: a CI range, what a push sends (``pre-push``) or brings
(``pre-receive``), and the selection of objects each mode of ``scan_git`` reads.

``pre-push`` (native: stdin lines ``<local ref> <local sha> <remote ref> <remote sha>``, or the
pre-commit framework's ``PRE_COMMIT_FROM_REF``/``PRE_COMMIT_TO_REF``) and ``pre-receive``
(stdin lines ``<old> <new> <ref>``, run by the server inside git's quarantine, whose
environment our git commands inherit, so the pushed objects are visible to them) are turned
into ``git log`` argument lists ("rev sets").
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ...stats import Skip
from .contents import BROKEN
from .objects import (
    Introduction,
    ObjectLister,
    RangeSelection,
    select_range,
    staged_blobs,
)
from .plumbing import GitError, GitObject, Repository, is_zero_sha, run_git, verify_commit

Mode = Literal["all", "range", "revs", "staged"]


@dataclass(slots=True)
class Selection:
    """The objects one repository's scan reads, and what is already known of where they came
    from: introductions for a range, index paths for the staged mode, the lister (every commit
    in the store, objects git could not read) for the whole store."""

    objects: list[GitObject] | ObjectLister
    introductions: dict[str, list[Introduction]] = field(default_factory=dict)
    staged_paths: dict[str, list[str]] = field(default_factory=dict)
    lister: ObjectLister | None = None
    notes: list[Skip] = field(default_factory=list)  # trouble found while resolving provenance
    # The refs a push updates, with what they will point at (hooks).
    ref_names: list[tuple[str, str]] = field(default_factory=list)

    def warnings(self) -> Iterator[Skip]:
        """What the scan of this selection could not read or resolve: objects git could not
        list, walks a corrupt object stopped."""
        if self.lister is not None:
            yield from (Skip(self.lister.repo.path, "unreadable_object", BROKEN.format(sha=sha))
                        for sha in self.lister.broken)
        yield from self.notes

    @property
    def count(self) -> int | None:
        """How many objects, when known before reading them (a range, the index)."""
        return len(self.objects) if isinstance(self.objects, list) else None


def select(repo: Repository, mode: Mode, since_commit: str | None = None,
           commit_range: str | None = None, rev_sets: list[list[str]] | None = None) -> Selection:
    """What ``mode`` reads in ``repo``; a bad revision is a ``GitError`` before any work."""
    if mode == "revs":
        ranges = RangeSelection()
        for revs in rev_sets or []:
            select_range(repo, revs, ranges)
        tips = [tip for revs in rev_sets or [] for tip in _positive_tips(revs)]
        refs = [(revs.ref, revs.sha) for revs in rev_sets or []
                if isinstance(revs, RevSet) and revs.ref]
        return Selection(ranges.objects + _tag_objects(repo, pushed_tags(repo, tips)),
                         ranges.introductions, ref_names=list(dict.fromkeys(refs)))
    if mode == "staged":
        paths: dict[str, list[str]] = {}
        for sha, path in staged_blobs(repo):
            paths.setdefault(sha, []).append(path)
        return Selection([GitObject(sha, "blob", 0) for sha in paths], staged_paths=paths)
    if mode == "range":
        if commit_range is not None:
            base, sep, tip = commit_range.partition("..")
            if not sep or not base or not tip or tip.startswith("."):
                raise GitError(f"--range takes A..B, not {commit_range!r}")
        else:
            base, tip = since_commit or "", "HEAD"
        ranges = select_range(repo, range_revs(repo, base, tip))
        commits = {o.sha for o in ranges.objects if o.type == "commit"}
        return Selection(ranges.objects + _tag_objects(repo, tags_into(repo, commits)),
                         ranges.introductions)
    lister = ObjectLister(repo)
    return Selection(lister, lister=lister)


def _tag_objects(repo: Repository, tags: list[str]) -> list[GitObject]:
    return [GitObject(sha, "tag", 0) for sha in dict.fromkeys(tags)]


def _positive_tips(revs: list[str]) -> list[str]:
    """The objects a rev set starts from: ``B`` of ``A..B``, a bare id before ``--not``."""
    tips: list[str] = []
    for arg in revs:
        if arg == "--not":
            break
        if arg.startswith("-"):
            continue
        _, sep, tip = arg.partition("..")
        tips.append(tip if sep else arg)
    return [t for t in tips if t]


def pushed_tags(repo: Repository, tips: list[str]) -> list[str]:
    """The annotated tag objects among what a push sends (a tag's ref points at the tag
    object itself), with the tags they point at in turn. A tag object is new content even
    when the commit it names was pushed long ago, so it is scanned whenever its ref moves."""
    tags: list[str] = []
    pending = list(dict.fromkeys(tips))
    while pending:
        out = run_git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
                      stdin="".join(f"{t}\n" for t in pending).encode(), check=False)
        pending = []
        for line in out.decode("ascii", "replace").splitlines():
            sha, _, kind = line.partition(" ")
            if kind == "tag" and sha not in tags:
                tags.append(sha)
                inner = _tag_target(repo, sha)  # one level: the tag's "object" line
                if inner:
                    pending.append(inner)
    return tags


def _tag_target(repo: Repository, tag: str) -> str | None:
    raw = run_git(repo, "cat-file", "tag", tag, check=False)
    first = raw.split(b"\n", 1)[0].decode("ascii", "replace")
    return first[len("object "):] if first.startswith("object ") else None


def tags_into(repo: Repository, commits: set[str]) -> list[str]:
    """``--range A..B``: the annotated tags (under ``refs/tags``) that name a commit of the
    range, i.e. the tags a push of that range would carry along."""
    if not commits:
        return []
    out = run_git(repo, "for-each-ref", "--format=%(objectname) %(objecttype) %(*objectname)",
                  "refs/tags")
    return [fields[0] for line in out.decode("ascii", "replace").splitlines()
            for fields in [line.split()] if len(fields) == 3 and fields[1] == "tag"
            and fields[2] in commits]


def range_revs(repo: Repository, base: str, tip: str) -> list[str]:
    """``git log`` arguments for "what ``base..tip`` introduced", as CI hands it over."""
    tip_sha = verify_commit(repo, tip, "range end")
    if is_zero_sha(base):
        # A new branch: its commits that no other ref already has.
        refs = run_git(repo, "for-each-ref", "--format=%(objectname) %(refname)")
        others = [ref for line in refs.decode("utf-8", "surrogateescape").splitlines()
                  for sha, ref in [line.split(" ", 1)] if sha != tip_sha]
        return [tip_sha, "--not", *others] if others else [tip_sha]
    base_sha = verify_commit(repo, base, "range start")
    return [f"{base_sha}..{tip_sha}"]


def _known(repo: Repository, sha: str) -> bool:
    out = run_git(repo, "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}", check=False)
    return bool(out.strip())


class RevSet(list[str]):
    """``git log`` arguments for one pushed ref, and the ref's name (``None``: not known),
    which is new content in its own right: a key in a branch name is pushed with it."""

    def __init__(self, revs: Iterable[str], ref: str | None = None, sha: str = "") -> None:
        super().__init__(revs)
        self.ref = ref
        self.sha = sha  # what the ref will point at


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
        _local_ref, local_sha, remote_ref, remote_sha = fields
        if is_zero_sha(local_sha):
            continue  # a deleted ref sends nothing
        if is_zero_sha(remote_sha) or not _known(repo, remote_sha):
            # A new branch (or a remote ahead of us): what no ref of that remote has.
            rev_sets.append(RevSet([local_sha, "--not", *not_on_remote], remote_ref,
                                   local_sha))
        else:
            rev_sets.append(RevSet([f"{remote_sha}..{local_sha}"], remote_ref, local_sha))
    return rev_sets


def pre_receive_revs(lines: Iterable[str]) -> list[list[str]]:
    """``git log`` argument lists for what a push brings to this (server) repository."""
    rev_sets: list[list[str]] = []
    for line in lines:
        fields = line.split()
        if len(fields) != 3:
            continue
        old, new, ref = fields
        if is_zero_sha(new):
            continue  # a deleted ref brings nothing
        if is_zero_sha(old):
            # refs are not updated yet: --all is the old state
            rev_sets.append(RevSet([new, "--not", "--all"], ref, new))
        else:
            rev_sets.append(RevSet([f"{old}..{new}"], ref, new))
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
        allowed = run_git(repo, "config", "--bool", "poelis-scan.allowSkip", check=False)
        if allowed.strip() == b"true":
            return "push option poelis-scan.skip (allowed by poelis-scan.allowSkip)"
    return None
