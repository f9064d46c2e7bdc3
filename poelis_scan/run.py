"""A command, start to end: source → scan → findings (``pipeline.py``) → triage → report →
summary and exit status. The CLI parses options into a ``Request`` and calls one of the
``*_command`` functions; everything the user can fix surfaces as a one-line ``ScanError``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ScanError
from .findings import Finding, ScanResult
from .pipeline import scan_git, scan_image, scan_paths
from .stats import Stats

if TYPE_CHECKING:
    from .config import Config
    from .report import Report, ReportContext
    from .sources.git.plumbing import Repository
    from .sources.git.ranges import Mode
    from .triage.policy import Policy
    from .triage.trust import Trusted
    from .verify import Verifier

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2



@dataclass(frozen=True, slots=True)
class Request:
    """What a scanning command asks for, its options parsed (the CLI builds it)."""

    fmt: str = "text"
    output: str | None = None
    reveal: bool = False
    min_confidence: str | None = None  # None: configuration, else high
    decode: bool = True
    jobs: int | None = None
    quiet: bool = False
    config_path: str | None = None
    baseline_path: str | None = None
    report_stale: bool = False
    show_suppressed: bool = False
    inline_allow: bool = True
    verify: bool = False
    results: frozenset[str] | None = None  # verification results to report; None: all
    base_url: str | None = None
    verify_timeout: float | None = None
    verify_concurrency: int | None = None
    access_check: bool = True  # after a live verdict, count what the key opens
    strict: bool = False  # any input skipped for an error fails the run (after the report)
    untrusted: bool = False  # the scanned content may be hostile: see triage/trust.py


@dataclass(frozen=True, slots=True)
class OrgRequest:
    """The ``git`` command's organization options, as parsed (``run.org_command`` resolves
    them: the shard, the list file, the state)."""

    repos_from: str | None = None
    shard: str | None = None  # "K/N"; None: $POELIS_SCAN_SHARD, else everything
    cache_dir: str | None = None
    cleanup: bool = False
    state: str | None = None
    new_only: bool = False

    @property
    def wanted(self) -> bool:
        """Whether any option asks for the organization path."""
        return bool(self.repos_from or self.shard or self.cache_dir or self.cleanup
                    or self.state or self.new_only)


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a scan looked: the root report paths are relative to, and the repository (an
    image scan has neither: its paths are inside the image); and, for a scan that may
    legitimately read nothing (nothing staged, no new commits), why."""

    root: str | None
    git_dir: str | None = None
    empty_is_clean: str | None = None


def verifier(request: Request, config: Config | None = None) -> Verifier:
    """A verifier from options, then environment, then configuration, then defaults."""
    from .verify import Settings, Verifier, resolve_base_url

    settings = dict(config.verify) if config is not None else {}
    if config is not None and config.discovered and "base-url" in settings:
        # Whoever wrote the scanned content wrote this file: it may not choose where every key
        # found (the organization's old leaks included) is sent.
        from .console import warn

        warn(f"{config.source}: [verify] base-url ignored: only a file passed with --config, "
             "--base-url or POELIS_BASE_URL may choose where keys are sent")
        del settings["base-url"]
    return Verifier(Settings(
        base_url=resolve_base_url(request.base_url, settings.get("base-url")),
        timeout=float(request.verify_timeout or settings.get("timeout") or 10.0),
        concurrency=int(request.verify_concurrency or settings.get("concurrency") or 4),
        access_check=request.access_check,
    ))


def _trusted(request: Request, start: str, stop: str | None) -> Trusted:
    """Configuration (given, else discovered) and baseline, as a trusting run reads them."""
    from .config import discover
    from .config import load as load_config
    from .triage.baseline import load as load_baseline
    from .triage.trust import Trusted

    config = load_config(request.config_path) if request.config_path else discover(start, stop)
    baseline = load_baseline(request.baseline_path) if request.baseline_path else None
    return Trusted(config, baseline)


def _policy(request: Request, trusted: Trusted) -> tuple[Policy, str]:
    """Options and configuration resolved before any work, so mistakes cost nothing; returns
    the policy and the confidence floor."""
    from .triage.policy import Policy

    config, baseline = trusted.config, trusted.baseline
    wanted = request.results
    verify = request.verify or (wanted is not None and "unverified" not in wanted)
    inline = request.inline_allow and not request.untrusted
    policy = Policy(config=config, baseline=baseline, inline_allow=inline,
                    show_suppressed=request.show_suppressed,
                    results=set(wanted) if wanted is not None else None, verify=verify)
    return policy, request.min_confidence or config.min_confidence or "high"


def _scan_files(paths: Iterable[str], exclude: Iterable[str], request: Request
                ) -> tuple[ScanResult, Policy, str, _Where]:
    from . import console
    from .paths import find_repository_root
    from .sources.files import report_base

    check_targets(request)
    roots = list(paths) or ["."]
    for root in roots:
        if root != "-" and not os.path.lexists(root):
            raise ScanError(f"no such file or directory: {root}")
    first = next((r for r in roots if r != "-"), ".")
    repository = find_repository_root(first)
    if request.untrusted:
        from .triage.trust import for_files

        trusted = for_files(roots, request.config_path, request.baseline_path, first,
                            repository, console.warn)
    else:
        trusted = _trusted(request, first, repository)
    policy, floor = _policy(request, trusted)
    with console.progress(request.quiet) as progress:
        result = scan_paths(roots, exclude=exclude, min_confidence=floor, jobs=request.jobs,
                            on_skip=console.on_problem, on_warning=console.on_problem,
                            on_progress=progress, decode=request.decode)
    root = repository or report_base(roots)
    return result, policy, floor, _Where(root)


def _scan_repositories(repositories: Iterable[str | Repository], mode: Mode,
                       since_commit: str | None, commit_range: str | None, request: Request,
                       rev_sets: list[list[str]] | None = None
                       ) -> tuple[ScanResult, Policy, str, _Where]:
    """Each repository is opened once, here, and handed on as it is."""
    from . import console
    from .sources.git.plumbing import open_repository

    check_targets(request)
    repos = [open_repository(r) if isinstance(r, str) else r for r in repositories]
    repos = repos or [open_repository(".")]
    first = repos[0]
    if request.untrusted:
        from .sources.git.plumbing import run_git
        from .triage.trust import for_repository

        trusted = for_repository(run_git, first.path, first.git_dir, first.work_tree,
                                 _base_commit(mode, since_commit, commit_range),
                                 request.config_path, request.baseline_path, console.warn)
    else:
        trusted = _trusted(request, first.work_tree or first.git_dir, first.work_tree)
    policy, floor = _policy(request, trusted)
    with console.progress(request.quiet) as progress:
        result = scan_git(repos, mode=mode, since_commit=since_commit,
                          commit_range=commit_range, min_confidence=floor, jobs=request.jobs,
                          decode=request.decode, on_warning=console.on_problem,
                          rev_sets=rev_sets, on_progress=progress)
    # Nothing to read can be the true answer here; a repository whose objects are missing
    # says so in warnings, which keep an empty scan from counting as clean.
    empty = {"staged": "nothing is staged", "range": "the range holds no new commits",
             "revs": "the push brings no new commits"}.get(mode)
    if mode == "all" and result.stats.items_scanned == 0 and not any(map(_has_refs, repos)):
        empty = "the repository has no commits yet"
    return result, policy, floor, _Where(first.work_tree or first.git_dir, first.path, empty)


def _has_refs(repo: Repository) -> bool:
    """Whether any ref exists: a repository with refs whose scan read no object has lost its
    objects (missing packs), which is no clean result."""
    from .sources.git.plumbing import run_git

    return bool(run_git(repo.path, "for-each-ref", "--format=%(refname)", "--count=1",
                        check=False).strip())


def _base_commit(mode: Mode, since_commit: str | None, commit_range: str | None) -> str | None:
    """The commit a change under review started from: what ``--untrusted`` reads the
    repository's configuration and baseline at (``None``: there is none)."""
    from .sources.git.plumbing import is_zero_sha

    if mode == "staged":
        return "HEAD"
    if mode != "range":
        return None
    base = since_commit
    if commit_range is not None:
        base = commit_range.split("..", 1)[0] if ".." in commit_range else None
    if not base or base.startswith("-") or is_zero_sha(base):
        return None
    return base


def files_command(paths: Iterable[str], exclude: Iterable[str], request: Request) -> int:
    """``poelis-scan scan``: files and directories, ``-`` for standard input."""
    return _finish(*_scan_files(paths, exclude, request), request)


def git_command(repositories: Iterable[str | Repository], mode: Mode, request: Request,
                since_commit: str | None = None, commit_range: str | None = None,
                rev_sets: list[list[str]] | None = None) -> int:
    """``poelis-scan git`` and the hooks: git objects, with provenance."""
    scanned = _scan_repositories(repositories, mode, since_commit, commit_range, request,
                                 rev_sets)
    return _finish(*scanned, request)


def image_command(refs: Iterable[str], platform: str | None, request: Request) -> int:
    """``poelis-scan image``: container images, layer by layer. Exit status 2 when any
    image, layer or blob was not read (or not verified), whatever was found in the rest."""
    from . import console
    from .paths import find_repository_root

    refs = list(refs)
    check_targets(request)
    repository = find_repository_root(".")
    if request.untrusted:  # a local image (a layout directory, an archive) is scanned content
        from .triage.trust import for_files

        local = [ref for ref in refs if os.path.exists(ref)]
        trusted = for_files(local, request.config_path, request.baseline_path, ".",
                            repository, console.warn)
    else:
        trusted = _trusted(request, ".", repository)
    policy, floor = _policy(request, trusted)
    with console.progress(request.quiet) as progress:
        result = scan_image(refs, platform=platform, min_confidence=floor, jobs=request.jobs,
                            decode=request.decode, on_warning=console.on_problem,
                            on_progress=progress)
    status = _finish(result, policy, floor, _Where(None), request)
    image = result.stats.image
    return EXIT_ERROR if image is not None and image.unread else status


def _context(request: Request, where: _Where, stats: Stats, failure: str | None
             ) -> ReportContext:
    """What SARIF and GitLab reports say about the scan as a whole (git asked only for them)."""
    from .report import ReportContext

    revision = uri = None
    if (request.fmt in ("sarif", "gitlab") and stats.shard is None  # not many repositories
            and (where.git_dir or where.root)):
        from .sources.git.plumbing import public_remote, run_git

        at = where.git_dir or where.root or "."
        revision = run_git(at, "rev-parse", "--verify", "--quiet", "HEAD",
                           check=False).decode().strip() or None
        uri = public_remote(run_git(at, "remote", "get-url", "origin",
                                    check=False).decode("utf-8", "replace"))
    return ReportContext(root=where.root, repository_uri=uri, revision=revision,
                         started_at=stats.started_at, failure=failure)


def _coverage_failure(stats: Stats, where: _Where, strict: bool) -> str | None:
    """Why the run cannot call its result clean although it may have no finding: it read
    nothing, or (``--strict``) it skipped input for an error. ``None``: coverage is fine."""
    problems = stats.problems
    # An incremental scan (--state) that found every object already read read nothing new,
    # which is a clean result, not an empty one.
    incremental = stats.skipped["already_scanned"] or stats.skipped["unchanged_repository"]
    if stats.items_scanned == 0 and not incremental and not (where.empty_is_clean
                                                             and not problems):
        left = ", ".join(f"{n} {why}" for why, n in sorted(stats.skipped.items()))
        broken = ", ".join(f"{n} {why}" for why, n in sorted(stats.warnings.items()))
        what = "; ".join(part for part in (left and f"skipped {left}",
                                          broken and f"warnings: {broken}") if part)
        none = "no git object could be read" if stats.git is not None else "no file to read"
        return f"nothing was read ({what or none}), so this is not a clean result"
    if strict and problems:
        return (f"--strict: {problems} input{'s' if problems != 1 else ''} could not be read "
                "in full (see the warnings above)")
    return None


def _finish(result: ScanResult, policy: Policy, floor: str, where: _Where,
            request: Request) -> int:
    from . import console
    from .triage.policy import triage

    stats = result.stats
    outcome = triage(result.findings, policy, lambda: verifier(request, policy.config))
    stats.suppressed.update(outcome.suppressed)
    stats.findings_filtered = outcome.filtered
    stats.findings_reported = outcome.failing
    if request.report_stale:
        stats.baseline_stale = len(outcome.stale)
    failure = _coverage_failure(stats, where, request.strict)
    report = _render(request, outcome.reported, stats,
                     _context(request, where, stats, failure))
    write_text(request.output, report.chunks())
    for note in report.notes:
        console.warn(note)
    if request.report_stale:
        for entry in outcome.stale:
            console.warn(f"stale baseline entry: secret {entry.secret_sha256[:16]}… once at "
                         f"{entry.path} is not found any more")
    if outcome.failing and request.fmt == "text" and not request.quiet:
        from .report.text import advice  # what to do depends on where the keys are

        for line in advice(outcome.reported):
            console.echo(line)
    if policy.verify and not request.quiet:
        from .report.text import tally

        console.echo(f"{console.PROGRAM}: verification: {tally(outcome.reported)}")
    if not request.quiet:
        console.echo(console.summary(stats, floor, untrusted=request.untrusted))
    if stats.items_scanned == 0 and where.empty_is_clean and not stats.problems:
        console.warn(f"nothing was scanned: {where.empty_is_clean}")
    if failure is not None:
        # Written after the report, so CI keeps its findings; the exit status and the report
        # both say the result is not clean (CI reads those, not stderr).
        console.error(failure)
        return EXIT_ERROR
    return EXIT_FINDINGS if outcome.failing else EXIT_CLEAN


def _render(request: Request, findings: list[Finding], stats: Stats,
            context: ReportContext) -> Report:
    import sys

    from .console import use_color
    from .report import render

    to_stdout = request.output is None or request.output == "-"
    color = to_stdout and request.fmt == "text" and use_color(sys.stdout)
    return render(request.fmt, findings, stats, reveal=request.reveal, color=color,
                  context=context)


def baseline_command(targets: Iterable[str], use_git: bool, output: str,
                     request: Request) -> int:
    """``poelis-scan baseline create``: today's findings, as a baseline file."""
    from . import console
    from .triage.baseline import dumps, from_findings
    from .triage.policy import triage

    check_targets(request, output)
    if use_git:
        result, policy, _, _ = _scan_repositories(targets, "all", None, None, request)
    else:
        result, policy, _, _ = _scan_files(targets, (), request)
    outcome = triage(result.findings, policy, lambda: None)
    write_text(output, dumps(from_findings(outcome.reported)))
    console.warn(f"baseline of {len(outcome.reported)} findings written to "
                 f"{'standard output' if output == '-' else output}")
    return EXIT_CLEAN


def check_targets(request: Request, output: str | None = None) -> None:
    """Fail before any scanning when the report could not be written: a scan of a whole
    history must not end in "cannot write". (Baselines and configurations are read before the
    scan too, by ``_policy``.)"""
    target = output if output is not None else request.output
    if target is None or target == "-":
        return
    if os.path.isdir(target):
        raise ScanError(f"cannot write {target}: it is a directory")
    if os.path.lexists(target) and not os.path.isfile(target):
        if not os.access(target, os.W_OK):
            raise ScanError(f"cannot write {target}: permission denied")
        return  # a device or a pipe (/dev/stdout, /dev/null): written in place
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise ScanError(f"cannot write {target}: no such directory {os.path.dirname(target)}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ScanError(f"cannot write {target}: permission denied in "
                        f"{os.path.dirname(target) or '.'}")


def org_wanted(repositories: Iterable[str], org: OrgRequest) -> bool:
    """Whether ``git`` takes the organization path: an organization option, a URL, or
    ``$POELIS_SCAN_SHARD`` with several repositories (alone it shards only lists, so that a
    ``git --staged`` hook in a sharded job stays a hook)."""
    from .shard import SHARD_ENV

    names = list(repositories)
    if org.wanted or (os.environ.get(SHARD_ENV) and len(names) > 1):
        return True
    if not names:  # the hooks' case: no module for URLs needed
        return False
    from .sources.remote import is_url

    return any(is_url(r) for r in names)


def org_command(repositories: Iterable[str], request: Request, org: OrgRequest) -> int:
    """``poelis-scan git`` over many repositories: this shard's share, each repository
    scanned against the state, one report. Options, the state and the output are checked
    before any clone."""
    from . import console
    from .org import ScanOptions, describe_shard, new_only, scan_many, targets
    from .shard import ShardError, read_repos_from, shard_from
    from .sources.remote import RemoteError, default_cache_dir
    from .state import StateError, describe, open_state

    if org.new_only and not org.state:
        raise ScanError("--new-only needs --state DB (what was seen before)")
    check_targets(request)
    try:
        shard = shard_from(org.shard)
        names = list(repositories)
        if org.repos_from:
            names += read_repos_from(org.repos_from)
        chosen = targets(names or ["."])
    except (ShardError, RemoteError) as error:
        raise ScanError(str(error)) from None
    policy, floor = _policy(request, _trusted(request, ".", None))
    try:
        state = open_state(org.state) if org.state else None
    except StateError as error:
        raise ScanError(str(error)) from None
    errors: tuple[type[Exception], ...] = state.errors if state is not None else ()
    try:
        with console.progress(request.quiet) as progress:
            out = scan_many(
                chosen, shard=shard, cache_dir=org.cache_dir or default_cache_dir(),
                cleanup=org.cleanup, state=state, inline_allow=policy.inline_allow,
                options=ScanOptions(floor, request.jobs, request.decode,
                                    console.on_problem, progress),
                on_failure=lambda message: console.warn(f"skipped {message}"))
    except errors as error:
        raise ScanError(f"state: {describe(error)}") from None
    finally:
        if state is not None:
            state.close()
    if org.new_only:
        new_only(out)
    if not request.quiet:
        console.echo(f"poelis-scan: {describe_shard(out.result.stats)}")
    shard_counts = out.result.stats.shard
    # A shard whose hash took none of the repositories has nothing to read: that is clean.
    nothing = ("this shard took none of the repositories"
               if shard_counts is not None and shard_counts.repositories == 0 else None)
    status = _finish(out.result, policy, floor, _Where(os.path.abspath("."), None, nothing),
                     request)
    if out.failed:
        count = len(out.failed)
        console.warn(f"{count} {'repository' if count == 1 else 'repositories'} could not "
                     "be scanned (see above)")
        return EXIT_ERROR
    return status


def state_report_command(target: str, fmt: str, output: str | None, repository: str | None,
                         since: str | None, new_only: bool) -> int:
    """``poelis-scan report --state DB``: everything the state holds, in one report."""
    from .report.stored import ReportError, render_state

    check_targets(Request(output=output))
    try:
        text, count = render_state(target, fmt, repository=repository, since=since,
                                   new_only=new_only)
    except ReportError as error:
        raise ScanError(str(error)) from None
    write_text(output, text)
    return EXIT_FINDINGS if count else EXIT_CLEAN


def write_text(output: str | None, text: str | Iterable[str]) -> None:
    """``text`` (or its pieces, written as they come: a large JSON report is never one
    string) to standard output (``None`` or ``-``) or to the file ``output``.

    A file is written whole or not at all: into a temporary file in the same directory, renamed
    over ``output`` on success, so a full disk never leaves a truncated SARIF for CI to upload.
    A device or pipe named as output (``/dev/stdout``) is written in place.
    """
    import sys

    parts = [text] if isinstance(text, str) else text
    if output is None or output == "-":
        try:
            for part in parts:
                sys.stdout.write(part)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            # Quiet the interpreter's last flush of what could not be written.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise ScanError(f"cannot write standard output: {error.strerror or error}") from None
        return
    try:
        if os.path.lexists(output) and not os.path.isfile(output):
            with open(output, "w", encoding="utf-8") as handle:
                handle.writelines(parts)
            return
        import tempfile  # only for a file: it imports shutil and random, which stdout never needs

        directory = os.path.dirname(os.path.abspath(output))
        fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(output)}.",
                                         suffix=".tmp", dir=directory)
        try:
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(fd, 0o666 & ~mask)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.writelines(parts)
            os.replace(temporary, output)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as error:
        raise ScanError(f"cannot write {output}: {error.strerror or error}") from None
