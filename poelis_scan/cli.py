"""Command line: parses options and wires sources, detector and reporters together.

Every user mistake ends as one ``poelis-scan: error: …`` line on stderr and exit status 2;
a traceback is a bug.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import click

from . import __version__
from .report import FORMATS

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


class FatalError(Exception):
    """A problem the user can fix; its text is printed as one line."""


def _warn(message: str) -> None:
    # On a terminal, first erase a progress line that may be showing.
    erase = "\r\033[K" if hasattr(sys.stderr, "isatty") and sys.stderr.isatty() else ""
    click.echo(f"{erase}poelis-scan: warning: {message}", err=True)


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _use_color(stream: IO[str]) -> bool:
    if "NO_COLOR" in os.environ:
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(stats: Any, min_confidence: str) -> str:
    if stats.source == "git":
        what = ", ".join([_plural(stats.blobs_scanned, "blob"),
                          _plural(stats.commits_scanned, "commit"),
                          _plural(stats.tags_scanned, "tag")])
    else:
        what = _plural(stats.files_scanned, "file")
    line = (
        f"poelis-scan: scanned {what} ({_human_bytes(stats.bytes_scanned)}) in "
        f"{stats.seconds:.2f}s: {_plural(stats.findings_reported, 'finding')}"
    )
    if stats.findings_below_confidence:
        line += (
            f", {stats.findings_below_confidence} below confidence {min_confidence} not shown"
            " (--min-confidence low shows them)"
        )
    if stats.suppressed:
        suppressed = ", ".join(f"{n} {why}" for why, n in sorted(stats.suppressed.items()))
        line += f"; suppressed {suppressed}"
    if stats.skipped:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(stats.skipped.items()))
        line += f"; skipped {skipped}"
    if stats.history_cut:
        line += "; history is cut (shallow clone)"
    return line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="poelis-scan")
def cli() -> None:
    """Find leaked Poelis REST API keys in files, streams and git history."""


def _apply(options: list[Callable[..., Any]]) -> Callable[..., Any]:
    """Decorate a command with ``options``, first one first in ``--help``."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _report_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every scanning command shares (DESIGN §5: names users script against)."""
    options = [
        click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="text",
                     show_default=True, help="Report format."),
        click.option("-o", "--output", type=str,
                     help="Write the report to FILE instead of stdout."),
        click.option("--reveal", is_flag=True,
                     help="Print full keys in text, json and jsonl (default: redacted)."),
        click.option("--min-confidence", type=click.Choice(["low", "high"]),
                     help="low also reports placeholders, identifiers and the docs' example "
                          "(default: configuration, else high)."),
        click.option("--decode/--no-decode", default=True, show_default=True,
                     help="Also find keys written in UTF-16, base64 and hex."),
        click.option("-j", "--jobs", type=click.IntRange(min=1),
                     help="Worker processes (default: cores)."),
        click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr."),
        click.option("--config", "config_path", metavar="FILE",
                     help="Configuration file (default: .poelis-scan.toml or pyproject.toml "
                          "[tool.poelis-scan], from the scanned root up to the repository root)."),
        click.option("--baseline", "baseline_path", metavar="FILE",
                     help="Suppress the secrets recorded in this baseline."),
        click.option("--report-stale", is_flag=True,
                     help="List baseline entries that no finding matches any more."),
        click.option("--show-suppressed", is_flag=True,
                     help="Also report suppressed findings, marked as such."),
        click.option("--no-inline-allow", is_flag=True,
                     help="Ignore allow comments in the scanned content (for CI reviewing "
                          "untrusted changes)."),
        click.option("--verify", is_flag=True,
                     help="Ask the Poelis API whether each distinct key is live."),
        click.option("--results", metavar="LIST",
                     help="Report only these verification results: any of live, unknown, "
                          "revoked, unverified (default: all). Implies --verify unless "
                          "unverified is listed."),
        click.option("--only-live", is_flag=True, help="Shortcut: --verify --results live."),
        *_verify_options(),
    ]
    return _apply(options)(command)


def _verify_options() -> list[Callable[..., Any]]:
    return [
        click.option("--base-url", metavar="URL",
                     help="Poelis API base URL (default: $POELIS_BASE_URL, then "
                          "configuration, then https://api.poelis.com)."),
        click.option("--verify-timeout", type=click.FloatRange(min=0.1),
                     help="Deadline in seconds for each API request, from connect to "
                          "last byte (default: 10)."),
        click.option("--verify-concurrency", type=click.IntRange(min=1, max=32),
                     help="API requests in flight at once (default: 4)."),
        click.option("--no-access-check", is_flag=True,
                     help="Do not count what a live key opens (workspaces, products)."),
    ]


def _verifier(options: dict[str, Any], config: Any = None) -> Any:
    """A verifier from options, then environment, then configuration, then defaults."""
    from .verify import Settings, Verifier, VerifyConfigError, resolve_base_url

    settings = dict(config.verify) if config is not None else {}
    try:
        return Verifier(Settings(
            base_url=resolve_base_url(options.get("base_url"), settings.get("base-url")),
            timeout=float(options.get("verify_timeout") or settings.get("timeout") or 10.0),
            concurrency=int(options.get("verify_concurrency") or settings.get("concurrency")
                            or 4),
            access_check=not options.get("no_access_check"),
        ))
    except VerifyConfigError as error:
        raise FatalError(str(error)) from None


def _wanted_results(results: str | None, only_live: bool) -> set[str] | None:
    """The verification results to report (None: all of them)."""
    from .findings import VERIFICATION_STATUSES as STATUSES

    if only_live:
        return {"live"}
    if results is None:
        return None
    wanted = {r.strip() for r in results.split(",") if r.strip()}
    unknown = wanted - set(STATUSES)
    if unknown or not wanted:
        raise click.BadParameter(f"expected a comma-separated list of {', '.join(STATUSES)}",
                                 param_hint="'--results'")
    return wanted


def _policy(options: dict[str, Any], start: str, stop: str | None) -> Any:
    """Options and configuration resolved before any work, so mistakes cost nothing."""
    from .baseline import BaselineError
    from .baseline import load as load_baseline
    from .config import ConfigError, discover
    from .config import load as load_config
    from .triage import Policy

    try:
        config = (load_config(options["config_path"]) if options["config_path"]
                  else discover(start, stop))
        baseline = load_baseline(options["baseline_path"]) if options["baseline_path"] else None
    except (ConfigError, BaselineError) as error:
        raise FatalError(str(error)) from None
    wanted = _wanted_results(options["results"], options["only_live"])
    verify = options["verify"] or options["only_live"] or (
        wanted is not None and "unverified" not in wanted)
    options["min_confidence"] = options["min_confidence"] or config.min_confidence or "high"
    return Policy(config=config, baseline=baseline, inline_allow=not options["no_inline_allow"],
                  show_suppressed=options["show_suppressed"], results=wanted, verify=verify)


@contextlib.contextmanager
def _progress(options: dict[str, Any]) -> Iterator[Callable[[Any, int], None] | None]:
    """A progress display on stderr when it is a terminal (never with --quiet)."""
    if options.get("quiet") or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        yield None
        return
    from .progress import Progress

    display = Progress(sys.stderr)
    try:
        yield display.update
    finally:
        display.close()


def _on_problem(note: Any) -> None:
    if note.reason in ("unreadable", "error"):
        _warn(f"cannot read {note.display_path}: {note.detail}")
    elif note.reason not in ("symlink", "special", "excluded"):
        _warn(f"{note.display_path}: {note.detail}")


def _context(fmt: str, root: str | None, git_dir: str | None, stats: Any) -> Any:
    """What SARIF and GitLab reports say about the scan as a whole (git asked only for them)."""
    from .report import ReportContext

    revision = uri = None
    if fmt in ("sarif", "gitlab") and (git_dir or root):
        from .sources.git import public_remote, run_git

        where = git_dir or root or "."
        revision = run_git(where, "rev-parse", "--verify", "--quiet", "HEAD",
                           check=False).decode().strip() or None
        uri = public_remote(run_git(where, "remote", "get-url", "origin",
                                    check=False).decode("utf-8", "replace"))
    return ReportContext(root=root, repository_uri=uri, revision=revision,
                         started_at=stats.started_at)


_WHAT_TO_DO = (
    "poelis-scan: what to do: remove the key from the content. If it ever left this machine "
    "(pushed, shared, uploaded), revoke it: Poelis Settings > Manage REST API Keys > Revoke. "
    "A false alarm? Put 'poelis-scan: allow' in a comment on that line."
)


def _finish(result: Any, options: dict[str, Any], policy: Any, root: str | None,
            git_dir: str | None) -> int:
    from .triage import triage

    outcome = triage(result.findings, result.stats, policy,
                     lambda: _verifier(options, policy.config))
    if options["report_stale"]:
        result.stats.baseline_stale = len(outcome.stale)
    context = _context(options["fmt"], root, git_dir, result.stats)
    _write_report(options["output"], options["fmt"], outcome.reported, result.stats,
                  options["reveal"], context)
    for note in context.notes:
        _warn(note)
    if options["report_stale"]:
        for entry in outcome.stale:
            _warn(f"stale baseline entry: secret {entry.secret_sha256[:16]}… once at "
                  f"{entry.path} is not found any more")
    if outcome.failing and options["fmt"] == "text" and not options["quiet"]:
        click.echo(_WHAT_TO_DO, err=True)
    if not options["quiet"]:
        click.echo(_summary(result.stats, options["min_confidence"]), err=True)
    if result.stats.items_scanned == 0:
        _warn("nothing was scanned, so this is not a clean result")
    return EXIT_FINDINGS if outcome.failing else EXIT_CLEAN


def _scan_paths(paths: tuple[str, ...], exclude: tuple[str, ...], options: dict[str, Any]
                ) -> tuple[Any, Any, str]:
    """Run a directory scan under the options; returns (result, policy, report root)."""
    from .scanner import scan_paths
    from .sources.files import find_repository_root

    roots = list(paths) or ["."]
    for root in roots:
        if root != "-" and not os.path.lexists(root):
            raise FatalError(f"no such file or directory: {root}")
    first = next((r for r in roots if r != "-"), ".")
    repository = find_repository_root(first)
    policy = _policy(options, first, repository)
    with _progress(options) as progress:
        result = scan_paths(roots, exclude=exclude, min_confidence=options["min_confidence"],
                            jobs=options["jobs"], on_skip=_on_problem, on_warning=_on_problem,
                            on_progress=progress, decode=options["decode"])
    report_root = repository or os.path.abspath(first if os.path.isdir(first)
                                                else os.path.dirname(first) or ".")
    return result, policy, report_root


def _scan_git(repositories: tuple[Any, ...], mode: str, since_commit: str | None,
              commit_range: str | None, options: dict[str, Any],
              rev_sets: list[list[str]] | None = None) -> tuple[Any, Any, str, str]:
    """Run a git scan under the options; returns (result, policy, report root, git path).

    Each repository is opened once, here, and handed on as it is."""
    from .gitscan import GitError, scan_git

    repos = [_open_repo(r) if isinstance(r, str) else r for r in repositories or (".",)]
    first = repos[0]
    try:
        policy = _policy(options, first.work_tree or first.git_dir, first.work_tree)
        with _progress(options) as progress:
            result = scan_git(repos, mode=mode,  # type: ignore[arg-type]
                              since_commit=since_commit, commit_range=commit_range,
                              min_confidence=options["min_confidence"], jobs=options["jobs"],
                              decode=options["decode"], on_warning=_on_problem,
                              rev_sets=rev_sets, on_progress=progress)
    except GitError as error:
        raise FatalError(str(error)) from None
    return result, policy, first.work_tree or first.git_dir, first.path


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip matching paths (repeatable).")
@_report_options
def scan(paths: tuple[str, ...], exclude: tuple[str, ...], **options: Any) -> int:
    """Scan files and directories (default: .); '-' reads standard input.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    result, policy, root = _scan_paths(paths, exclude, options)
    return _finish(result, options, policy, root, None)


def _git_mode(since_commit: str | None, commit_range: str | None, staged: bool) -> str:
    if sum(x is not None and x is not False for x in (since_commit, commit_range, staged)) > 1:
        raise FatalError("--since-commit, --range and --staged exclude each other")
    return "staged" if staged else "range" if since_commit or commit_range else "all"


@cli.command()
@click.argument("repositories", nargs=-1, metavar="[REPO]...")
@click.option("--since-commit", metavar="REV",
              help="Only what the commits after REV (up to HEAD) introduced.")
@click.option("--range", "commit_range", metavar="A..B",
              help="Only what the commits in A..B introduced (A may be the all-zeros SHA).")
@click.option("--staged", is_flag=True, help="Only the index: what the next commit would add.")
@_report_options
def git(repositories: tuple[str, ...], since_commit: str | None, commit_range: str | None,
        staged: bool, **options: Any) -> int:
    """Scan git repositories (default: .): every object of every ref, reflog and dangling
    commit, or only a range of commits, or only the staged content.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    mode = _git_mode(since_commit, commit_range, staged)
    result, policy, root, git_path = _scan_git(repositories, mode, since_commit, commit_range,
                                               options)
    return _finish(result, options, policy, root, git_path)


@cli.group()
def hook() -> None:
    """Entry points for git hooks (hooks/ and the pre-commit framework call these)."""


@hook.command("pre-push")
@click.argument("remote", required=False)
@click.argument("url", required=False)
@_report_options
def hook_pre_push(remote: str | None, url: str | None, **options: Any) -> int:
    """Scan the commits a push sends that the remote does not have (stdin: git's pre-push
    lines; or PRE_COMMIT_FROM_REF/PRE_COMMIT_TO_REF from the pre-commit framework)."""
    from .hooks import pre_push_revs

    repo = _open_repo(".")
    lines = [] if os.environ.get("PRE_COMMIT_TO_REF") else sys.stdin.read().splitlines()
    rev_sets = pre_push_revs(repo, remote, lines)
    if not rev_sets:
        return EXIT_CLEAN  # only deletions: nothing is sent
    result, policy, root, git_path = _scan_git((repo,), "revs", None, None, options, rev_sets)
    return _finish(result, options, policy, root, git_path)


@hook.command("pre-receive")
@_report_options
def hook_pre_receive(**options: Any) -> int:
    """Server side: scan what a push brings (stdin: git's pre-receive lines) and reject the
    push if it holds a key. Escape hatch: see the README."""
    from .hooks import pre_receive_revs, skip_requested

    repo = _open_repo(".")
    skip = skip_requested(repo)
    if skip:
        _warn(f"scan skipped: {skip}")
        return EXIT_CLEAN
    rev_sets = pre_receive_revs(sys.stdin.read().splitlines())
    if not rev_sets:
        return EXIT_CLEAN
    result, policy, root, git_path = _scan_git((repo,), "revs", None, None, options, rev_sets)
    status = _finish(result, options, policy, root, git_path)
    if status == EXIT_FINDINGS:
        _warn("push rejected: the pushed commits hold a Poelis API key (commit:path:line "
              "above). Rewrite those commits without the key, revoke the key, and push again.")
    return status


def _open_repo(path: str) -> Any:
    from .sources.git import GitError, open_repository

    try:
        return open_repository(path)
    except GitError as error:
        raise FatalError(str(error)) from None


@cli.command()
@_apply(_verify_options())
def verify(**options: Any) -> int:
    """Check keys read from standard input (one a line, or any text holding them).

    Prints each distinct key's redacted form, SHA-256 and status, never the key.
    Exit status: 1 if any key is live, else 0; 2 on error.
    """
    from .detect import scan_bytes
    from .findings import redact, secret_sha256

    verifier = _verifier(options)
    keys = list(dict.fromkeys(m.secret for m in scan_bytes(sys.stdin.buffer.read())))
    if not keys:
        _warn("no Poelis API key found on standard input")
        return EXIT_CLEAN
    verdicts = verifier.verify_many(keys)
    for key in keys:
        verdict = verdicts[key]
        extra = f"  ({verdict.detail})" if verdict.status == "unknown" else ""
        click.echo(f"{redact(key)}  {secret_sha256(key)}  {verdict.status}{extra}")
    return EXIT_FINDINGS if any(v.status == "live" for v in verdicts.values()) else EXIT_CLEAN


@cli.group()
def baseline() -> None:
    """Record today's findings so that only new leaks fail the run (--baseline FILE)."""


@baseline.command("create")
@click.argument("targets", nargs=-1, metavar="[PATH|REPO]...")
@click.option("--git", "use_git", is_flag=True, help="Record the findings of a git scan.")
@click.option("-o", "--output", default="-", show_default=True,
              help="Baseline file to write ('-': standard output).")
@click.option("--min-confidence", type=click.Choice(["low", "high"]))
@click.option("--config", "config_path", metavar="FILE")
@click.option("--no-inline-allow", is_flag=True)
@click.option("-j", "--jobs", type=click.IntRange(min=1))
def baseline_create(targets: tuple[str, ...], use_git: bool, output: str,
                    **options: Any) -> int:
    """Write a baseline of the findings a scan of PATHs (or, with --git, of REPOs) reports.

    It holds secret hashes and fingerprints, never a key, sorted and without timestamps.
    """
    from .baseline import dumps, from_findings
    from .triage import triage

    options.update(fmt="json", baseline_path=None, results=None, only_live=False, verify=False,
                   show_suppressed=False, decode=True)
    if use_git:
        result, policy, _, _ = _scan_git(targets, "all", None, None, options)
    else:
        result, policy, _ = _scan_paths(targets, (), options)
    outcome = triage(result.findings, result.stats, policy, lambda: None)
    text = dumps(from_findings(outcome.reported))
    _write_text(output, text)
    _warn(f"baseline of {len(outcome.reported)} findings written to "
          f"{'standard output' if output == '-' else output}")
    return EXIT_CLEAN


def _write_report(output: str | None, fmt: str, findings: list[Any], stats: Any,
                  reveal: bool, context: Any) -> None:
    from .report import render

    to_stdout = output is None or output == "-"
    color = to_stdout and fmt == "text" and _use_color(sys.stdout)
    _write_text(output, render(fmt, findings, stats, reveal=reveal, color=color,
                               context=context))


def _write_text(output: str | None, text: str) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise FatalError(f"cannot write {output}: {error.strerror or error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status instead of raising ``SystemExit``."""
    args = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        # A redacted key holds "…"; never die of an ASCII-only terminal or pipe.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if not args:  # no command: the help is the answer, but nothing was done
        click.echo(cli.get_help(click.Context(cli, info_name="poelis-scan")), err=True)
        return EXIT_ERROR
    try:
        status = cli.main(args=args, prog_name="poelis-scan", standalone_mode=False)
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
        click.echo(f"poelis-scan: error: {error.format_message()}{hint}", err=True)
        return EXIT_ERROR
    except click.ClickException as error:
        click.echo(f"poelis-scan: error: {error.format_message()}", err=True)
        return EXIT_ERROR
    except FatalError as error:
        click.echo(f"poelis-scan: error: {error}", err=True)
        return EXIT_ERROR
    except click.exceptions.Abort:
        click.echo("poelis-scan: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("poelis-scan: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``). Something was being printed, so never claim a
        # clean result; point stdout at /dev/null so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FINDINGS
    if isinstance(status, int):
        return status
    return EXIT_CLEAN
