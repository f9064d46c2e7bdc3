"""A command, start to end: source → scan → findings (``pipeline.py``) → triage → report →
summary and exit status. The CLI parses options into a ``Request`` and calls one of the
``*_command`` functions; everything the user can fix surfaces as a one-line ``ScanError``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ScanError
from .findings import Finding, ScanResult
from .pipeline import scan_git, scan_paths
from .stats import Stats

if TYPE_CHECKING:
    from .config import Config
    from .report import Report, ReportContext
    from .sources.git.plumbing import Repository
    from .sources.git.ranges import Mode
    from .triage.policy import Policy
    from .verify import Verifier

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

_WHAT_TO_DO = (
    "poelis-scan: what to do: remove the key from the content. If it ever left this machine "
    "(pushed, shared, uploaded), revoke it: Poelis Settings > Manage REST API Keys > Revoke. "
    "A false alarm? Put 'poelis-scan: allow' in a comment on that line."
)


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


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a scan looked: the root report paths are relative to, and the repository."""

    root: str
    git_dir: str | None = None


def verifier(request: Request, config: Config | None = None) -> Verifier:
    """A verifier from options, then environment, then configuration, then defaults."""
    from .verify import Settings, Verifier, resolve_base_url

    settings = dict(config.verify) if config is not None else {}
    return Verifier(Settings(
        base_url=resolve_base_url(request.base_url, settings.get("base-url")),
        timeout=float(request.verify_timeout or settings.get("timeout") or 10.0),
        concurrency=int(request.verify_concurrency or settings.get("concurrency") or 4),
        access_check=request.access_check,
    ))


def _policy(request: Request, start: str, stop: str | None) -> tuple[Policy, str]:
    """Options and configuration resolved before any work, so mistakes cost nothing; returns
    the policy and the confidence floor."""
    from .config import discover
    from .config import load as load_config
    from .triage.baseline import load as load_baseline
    from .triage.policy import Policy

    config = load_config(request.config_path) if request.config_path else discover(start, stop)
    baseline = load_baseline(request.baseline_path) if request.baseline_path else None
    wanted = request.results
    verify = request.verify or (wanted is not None and "unverified" not in wanted)
    policy = Policy(config=config, baseline=baseline, inline_allow=request.inline_allow,
                    show_suppressed=request.show_suppressed,
                    results=set(wanted) if wanted is not None else None, verify=verify)
    return policy, request.min_confidence or config.min_confidence or "high"


def _scan_files(paths: Iterable[str], exclude: Iterable[str], request: Request
                ) -> tuple[ScanResult, Policy, str, _Where]:
    from . import console
    from .paths import find_repository_root

    roots = list(paths) or ["."]
    for root in roots:
        if root != "-" and not os.path.lexists(root):
            raise ScanError(f"no such file or directory: {root}")
    first = next((r for r in roots if r != "-"), ".")
    repository = find_repository_root(first)
    policy, floor = _policy(request, first, repository)
    with console.progress(request.quiet) as progress:
        result = scan_paths(roots, exclude=exclude, min_confidence=floor, jobs=request.jobs,
                            on_skip=console.on_problem, on_warning=console.on_problem,
                            on_progress=progress, decode=request.decode)
    root = repository or os.path.abspath(first if os.path.isdir(first)
                                         else os.path.dirname(first) or ".")
    return result, policy, floor, _Where(root)


def _scan_repositories(repositories: Iterable[str | Repository], mode: Mode,
                       since_commit: str | None, commit_range: str | None, request: Request,
                       rev_sets: list[list[str]] | None = None
                       ) -> tuple[ScanResult, Policy, str, _Where]:
    """Each repository is opened once, here, and handed on as it is."""
    from . import console
    from .sources.git.plumbing import open_repository

    repos = [open_repository(r) if isinstance(r, str) else r for r in repositories]
    repos = repos or [open_repository(".")]
    first = repos[0]
    policy, floor = _policy(request, first.work_tree or first.git_dir, first.work_tree)
    with console.progress(request.quiet) as progress:
        result = scan_git(repos, mode=mode, since_commit=since_commit,
                          commit_range=commit_range, min_confidence=floor, jobs=request.jobs,
                          decode=request.decode, on_warning=console.on_problem,
                          rev_sets=rev_sets, on_progress=progress)
    return result, policy, floor, _Where(first.work_tree or first.git_dir, first.path)


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


def _context(request: Request, where: _Where, stats: Stats) -> ReportContext:
    """What SARIF and GitLab reports say about the scan as a whole (git asked only for them)."""
    from .report import ReportContext

    revision = uri = None
    if request.fmt in ("sarif", "gitlab"):
        from .sources.git.plumbing import public_remote, run_git

        at = where.git_dir or where.root
        revision = run_git(at, "rev-parse", "--verify", "--quiet", "HEAD",
                           check=False).decode().strip() or None
        uri = public_remote(run_git(at, "remote", "get-url", "origin",
                                    check=False).decode("utf-8", "replace"))
    return ReportContext(root=where.root, repository_uri=uri, revision=revision,
                         started_at=stats.started_at)


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
    report = _render(request, outcome.reported, stats, _context(request, where, stats))
    write_text(request.output, report.chunks())
    for note in report.notes:
        console.warn(note)
    if request.report_stale:
        for entry in outcome.stale:
            console.warn(f"stale baseline entry: secret {entry.secret_sha256[:16]}… once at "
                         f"{entry.path} is not found any more")
    if outcome.failing and request.fmt == "text" and not request.quiet:
        console.echo(_WHAT_TO_DO)
    if not request.quiet:
        console.echo(console.summary(stats, floor))
    if stats.items_scanned == 0:
        console.warn("nothing was scanned, so this is not a clean result")
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

    if use_git:
        result, policy, _, _ = _scan_repositories(targets, "all", None, None, request)
    else:
        result, policy, _, _ = _scan_files(targets, (), request)
    outcome = triage(result.findings, policy, lambda: None)
    write_text(output, dumps(from_findings(outcome.reported)))
    console.warn(f"baseline of {len(outcome.reported)} findings written to "
                 f"{'standard output' if output == '-' else output}")
    return EXIT_CLEAN


def write_text(output: str | None, text: str | Iterable[str]) -> None:
    """``text`` (or its pieces, written as they come) to standard output (``None`` or ``-``)
    or to the file ``output``."""
    import sys

    parts = [text] if isinstance(text, str) else text
    if output is None or output == "-":
        for part in parts:
            sys.stdout.write(part)
        sys.stdout.flush()
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.writelines(parts)
    except OSError as error:
        raise ScanError(f"cannot write {output}: {error.strerror or error}") from None
