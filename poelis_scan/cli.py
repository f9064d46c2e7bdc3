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
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _on_problem(note: Any) -> None:
    if note.reason in ("unreadable", "error"):
        _warn(f"cannot read {note.display_path}: {note.detail}")
    elif note.reason not in ("symlink", "special", "excluded"):
        _warn(f"{note.display_path}: {note.detail}")


def _finish(result: Any, fmt: str, output: str | None, reveal: bool, quiet: bool,
            min_confidence: str) -> int:
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
def scan(paths: tuple[str, ...], exclude: tuple[str, ...], fmt: str, output: str | None,
         reveal: bool, min_confidence: str, decode: bool, jobs: int | None,
         quiet: bool) -> int:
    """Scan files and directories (default: .); '-' reads standard input.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    from .scanner import scan_paths

    roots = list(paths) or ["."]
    for root in roots:
        if root != "-" and not os.path.lexists(root):
            raise FatalError(f"no such file or directory: {root}")
    result = scan_paths(roots, exclude=exclude, min_confidence=min_confidence, jobs=jobs,
                        on_skip=_on_problem, on_warning=_on_problem, decode=decode)
    return _finish(result, fmt, output, reveal, quiet, min_confidence)


@cli.command()
@click.argument("repositories", nargs=-1, metavar="[REPO]...")
@click.option("--since-commit", metavar="REV",
              help="Only what the commits after REV (up to HEAD) introduced.")
@click.option("--range", "commit_range", metavar="A..B",
              help="Only what the commits in A..B introduced (A may be the all-zeros SHA).")
@click.option("--staged", is_flag=True, help="Only the index: what the next commit would add.")
@_report_options
def git(repositories: tuple[str, ...], since_commit: str | None, commit_range: str | None,
        staged: bool, fmt: str, output: str | None, reveal: bool, min_confidence: str,
        decode: bool, jobs: int | None, quiet: bool) -> int:
    """Scan git repositories (default: .): every object of every ref, reflog and dangling
    commit, or only a range of commits, or only the staged content.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    from .gitscan import GitError, scan_git

    if sum(x is not None and x is not False for x in (since_commit, commit_range, staged)) > 1:
        raise FatalError("--since-commit, --range and --staged exclude each other")
    mode = "staged" if staged else "range" if since_commit or commit_range else "all"
    try:
        result = scan_git(list(repositories) or ["."], mode=mode, since_commit=since_commit,
                          commit_range=commit_range, min_confidence=min_confidence, jobs=jobs,
                          decode=decode, on_warning=_on_problem)
    except GitError as error:
        raise FatalError(str(error)) from None
    return _finish(result, fmt, output, reveal, quiet, min_confidence)


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
