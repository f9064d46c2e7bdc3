"""Command line: parses options and wires sources, detector and reporters together.

Every user mistake ends as one ``poelis-scan: error: …`` line on stderr and exit status 2;
a traceback is a bug.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
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


def _summary(stats: Any, min_confidence: str) -> str:
    files = "file" if stats.files_scanned == 1 else "files"
    found = stats.findings_reported
    line = (
        f"poelis-scan: scanned {stats.files_scanned} {files} "
        f"({_human_bytes(stats.bytes_scanned)}) in {stats.seconds:.2f}s: "
        f"{found} finding{'' if found == 1 else 's'}"
    )
    if stats.findings_below_confidence:
        line += (
            f", {stats.findings_below_confidence} below confidence {min_confidence} not shown"
            " (--min-confidence low shows them)"
        )
    if stats.skipped:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(stats.skipped.items()))
        line += f"; skipped {skipped}"
    return line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="poelis-scan")
def cli() -> None:
    """Find leaked Poelis REST API keys in files, streams and git history."""


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "jsonl"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option("-o", "--output", type=str, help="Write the report to FILE instead of stdout.")
@click.option("--reveal", is_flag=True, help="Print full keys (default: redacted).")
@click.option(
    "--min-confidence",
    type=click.Choice(["low", "high"]),
    default="high",
    show_default=True,
    help="low also reports placeholders, identifiers and the documented example key.",
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip matching paths (repeatable).")
@click.option(
    "--decode/--no-decode",
    default=True,
    show_default=True,
    help="Also find keys written in UTF-16, base64 and hex.",
)
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: cores).")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
def scan(
    paths: tuple[str, ...],
    fmt: str,
    output: str | None,
    reveal: bool,
    min_confidence: str,
    exclude: tuple[str, ...],
    decode: bool,
    jobs: int | None,
    quiet: bool,
) -> int:
    """Scan files and directories (default: .); '-' reads standard input.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    from .report import render
    from .scanner import scan_paths

    roots = list(paths) or ["."]
    for root in roots:
        if root != "-" and not os.path.lexists(root):
            raise FatalError(f"no such file or directory: {root}")

    def on_skip(skip: Any) -> None:
        if skip.reason in ("unreadable", "error"):
            _warn(f"cannot read {skip.display_path}: {skip.detail}")

    def on_warning(note: Any) -> None:
        _warn(f"{note.display_path}: {note.detail}")

    result = scan_paths(roots, exclude=exclude, min_confidence=min_confidence, jobs=jobs,
                        on_skip=on_skip, on_warning=on_warning, decode=decode)
    _write_report(output, fmt, result, reveal)
    if not quiet:
        click.echo(_summary(result.stats, min_confidence), err=True)
    if result.stats.files_scanned == 0:
        _warn("nothing was scanned: 0 files read, so this is not a clean result")
    return EXIT_FINDINGS if result.findings else EXIT_CLEAN


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
