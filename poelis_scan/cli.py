"""Command line: parses options and wires sources, detector and reporters together.

Every user mistake ends as one ``poelis-scan: error: …`` line on stderr and exit status 2;
a traceback is a bug.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

import click

from . import __version__

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


class FatalError(Exception):
    """A problem the user can fix; its text is printed as one line."""


def _warn(message: str) -> None:
    click.echo(f"poelis-scan: warning: {message}", err=True)


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
        click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl"]),
                     default="text", show_default=True, help="Report format."),
        click.option("-o", "--output", type=str,
                     help="Write the report to FILE instead of stdout."),
        click.option("--reveal", is_flag=True, help="Print full keys (default: redacted)."),
        click.option("--min-confidence", type=click.Choice(["low", "high"]), default="high",
                     show_default=True,
                     help="low also reports placeholders, identifiers and the docs' example."),
        click.option("--decode/--no-decode", default=True, show_default=True,
                     help="Also find keys written in UTF-16, base64 and hex."),
        click.option("-j", "--jobs", type=click.IntRange(min=1),
                     help="Worker processes (default: cores)."),
        click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr."),
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
                     help="Poelis API base URL (default: $POELIS_BASE_URL, else "
                          "https://api.poelis.com)."),
        click.option("--verify-timeout", type=click.FloatRange(min=0.1), default=10.0,
                     show_default=True, help="Seconds to wait for one API answer."),
        click.option("--verify-concurrency", type=click.IntRange(min=1, max=32), default=4,
                     show_default=True, help="API requests in flight at once."),
    ]


def _verifier(base_url: str | None, timeout: float, concurrency: int) -> Any:
    from .verify import Settings, Verifier, VerifyConfigError, resolve_base_url

    try:
        return Verifier(Settings(base_url=resolve_base_url(base_url), timeout=timeout,
                                 concurrency=concurrency))
    except VerifyConfigError as error:
        raise FatalError(str(error)) from None


def _wanted_results(results: str | None, only_live: bool) -> set[str] | None:
    """The verification results to report (None: all of them)."""
    from .verify import STATUSES

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


def _verify_and_filter(result: Any, options: dict[str, Any]) -> None:
    """``--verify``/``--results``/``--only-live``: record verdicts, keep what was asked for.

    Asking for results other than "unverified" turns verification on: a filter on verdicts
    must never silently report nothing because nothing was verified.
    """
    wanted = _wanted_results(options["results"], options["only_live"])
    verify = options["verify"] or options["only_live"] or (
        wanted is not None and "unverified" not in wanted)
    if verify and result.findings:
        from .verify import apply_verdicts

        apply_verdicts(result.findings, _verifier(options["base_url"],
                                                  options["verify_timeout"],
                                                  options["verify_concurrency"]))
    if wanted is not None:
        kept = [f for f in result.findings if f.verification["status"] in wanted]
        result.stats.findings_filtered = len(result.findings) - len(kept)
        result.findings[:] = kept
        result.stats.findings_reported = len(kept)


def _on_problem(note: Any) -> None:
    if note.reason in ("unreadable", "error"):
        _warn(f"cannot read {note.display_path}: {note.detail}")
    elif note.reason not in ("symlink", "special", "excluded"):
        _warn(f"{note.display_path}: {note.detail}")


def _finish(result: Any, options: dict[str, Any]) -> int:
    _verify_and_filter(result, options)
    fmt, output, quiet = options["fmt"], options["output"], options["quiet"]
    reveal, min_confidence = options["reveal"], options["min_confidence"]
    _write_report(output, fmt, result, reveal)
    if not quiet:
        click.echo(_summary(result.stats, min_confidence), err=True)
    if result.stats.items_scanned == 0:
        _warn("nothing was scanned, so this is not a clean result")
    return EXIT_FINDINGS if result.findings else EXIT_CLEAN


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip matching paths (repeatable).")
@_report_options
def scan(paths: tuple[str, ...], exclude: tuple[str, ...], **options: Any) -> int:
    """Scan files and directories (default: .); '-' reads standard input.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    from .scanner import scan_paths

    roots = list(paths) or ["."]
    for root in roots:
        if root != "-" and not os.path.lexists(root):
            raise FatalError(f"no such file or directory: {root}")
    _wanted_results(options["results"], options["only_live"])  # a bad list fails before work
    result = scan_paths(roots, exclude=exclude, min_confidence=options["min_confidence"],
                        jobs=options["jobs"], on_skip=_on_problem, on_warning=_on_problem,
                        decode=options["decode"])
    return _finish(result, options)


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
    from .gitscan import GitError, scan_git

    if sum(x is not None and x is not False for x in (since_commit, commit_range, staged)) > 1:
        raise FatalError("--since-commit, --range and --staged exclude each other")
    mode = "staged" if staged else "range" if since_commit or commit_range else "all"
    _wanted_results(options["results"], options["only_live"])
    try:
        result = scan_git(list(repositories) or ["."], mode=mode, since_commit=since_commit,
                          commit_range=commit_range, min_confidence=options["min_confidence"],
                          jobs=options["jobs"], decode=options["decode"],
                          on_warning=_on_problem)
    except GitError as error:
        raise FatalError(str(error)) from None
    return _finish(result, options)


@cli.command()
@_apply(_verify_options())
def verify(base_url: str | None, verify_timeout: float, verify_concurrency: int) -> int:
    """Check keys read from standard input (one a line, or any text holding them).

    Prints each distinct key's redacted form, SHA-256 and status, never the key.
    Exit status: 1 if any key is live, else 0; 2 on error.
    """
    from .detect import scan_bytes
    from .findings import redact, secret_sha256

    keys = list(dict.fromkeys(m.secret for m in scan_bytes(sys.stdin.buffer.read())))
    if not keys:
        _warn("no Poelis API key found on standard input")
        return EXIT_CLEAN
    verdicts = _verifier(base_url, verify_timeout, verify_concurrency).verify_many(keys)
    for key in keys:
        verdict = verdicts[key]
        extra = f"  ({verdict.detail})" if verdict.status == "unknown" else ""
        click.echo(f"{redact(key)}  {secret_sha256(key)}  {verdict.status}{extra}")
    return EXIT_FINDINGS if any(v.status == "live" for v in verdicts.values()) else EXIT_CLEAN



def _write_report(output: str | None, fmt: str, result: Any, reveal: bool) -> None:
    from .report import render

    if output is None or output == "-":
        text = render(fmt, result.findings, result.stats, reveal=reveal,
                      color=fmt == "text" and _use_color(sys.stdout))
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    text = render(fmt, result.findings, result.stats, reveal=reveal, color=False)
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
