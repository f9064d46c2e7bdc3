"""Command line: parses options, calls the run (``run.py``), and turns every problem the user
can fix into one ``poelis-scan: error: …`` line on stderr and exit status 2; a traceback is a
bug.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from .errors import ScanError
from .report import FORMATS
from .version import __version__

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


# --debug: an internal error shows its (redacted) traceback. Read by ``main`` from the raw
# arguments too, since an error may come before click has parsed them.
_DEBUG = {"on": False}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="poelis-scan")
@click.option("--debug", is_flag=True,
              help="On an internal error, show the traceback (keys redacted).")
def cli(debug: bool) -> None:
    """Find leaked Poelis REST API keys in files, streams, git history and container
    images."""
    _DEBUG["on"] = debug or _DEBUG["on"]


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
        click.option("--untrusted", is_flag=True,
                     help="The scanned content may be hostile (a pull request, a pushed "
                          "branch): no configuration, baseline or allow comment from it counts; "
                          "repository files are read as of the range's base commit."),
        click.option("--strict", is_flag=True,
                     help="Exit 2 (after the report) if any input was skipped for an error: "
                          "an unreadable file, a corrupt object, an archive limit."),
        click.option("--verify", is_flag=True,
                     help="Ask the Poelis API whether each distinct key is live."),
        click.option("--results", metavar="LIST",
                     help="Report only these verification results: any of live, unknown, "
                          "revoked, unverified (default: all). Implies --verify unless "
                          "unverified is listed."),
        click.option("--only-live", is_flag=True, help="Shortcut: --verify --results live."),
        *_verify_options(),
    ]
    decorated: Callable[..., Any] = _apply(options)(command)
    return decorated


def _check_base_url(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """A base URL git or HTTP could choke on later is a usage error now (one line)."""
    if value is None:
        return None
    from urllib.parse import urlsplit

    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise click.BadParameter("must not hold spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not one)
    except ValueError as error:
        raise click.BadParameter(f"not a valid URL ({error})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise click.BadParameter("must be https://HOST[:PORT][/PATH]")
    return value


def _finite(_: click.Context, __: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number of seconds")
    return value


def _verify_options() -> list[Callable[..., Any]]:
    return [
        click.option("--base-url", metavar="URL", callback=_check_base_url,
                     help="Poelis API base URL (default: $POELIS_BASE_URL, then "
                          "configuration, then https://api.poelis.com)."),
        click.option("--verify-timeout", type=click.FloatRange(min=0.1, max=3600),
                     callback=_finite,
                     help="Deadline in seconds for each API request, from connect to "
                          "last byte (default: 10)."),
        click.option("--verify-concurrency", type=click.IntRange(min=1, max=32),
                     help="API requests in flight at once (default: 4)."),
        click.option("--no-access-check", is_flag=True,
                     help="Do not count what a live key opens (workspaces, products)."),
    ]


def _request(options: dict[str, Any]) -> Any:
    """The run's ``Request`` from the parsed options of a scanning command."""
    from .run import Request

    wanted = _wanted_results(options.get("results"), bool(options.get("only_live")))
    return Request(
        fmt=options.get("fmt", "text"), output=options.get("output"),
        reveal=bool(options.get("reveal")), min_confidence=options.get("min_confidence"),
        decode=options.get("decode", True), jobs=options.get("jobs"),
        quiet=bool(options.get("quiet")), config_path=options.get("config_path"),
        baseline_path=options.get("baseline_path"),
        report_stale=bool(options.get("report_stale")),
        show_suppressed=bool(options.get("show_suppressed")),
        inline_allow=not options.get("no_inline_allow"),
        verify=bool(options.get("verify") or options.get("only_live")),
        results=frozenset(wanted) if wanted is not None else None,
        base_url=options.get("base_url"), verify_timeout=options.get("verify_timeout"),
        verify_concurrency=options.get("verify_concurrency"),
        access_check=not options.get("no_access_check"),
        strict=bool(options.get("strict")), untrusted=bool(options.get("untrusted")),
    )


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


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip matching paths (repeatable).")
@_report_options
def scan(paths: tuple[str, ...], exclude: tuple[str, ...], **options: Any) -> int:
    """Scan files and directories (default: .); '-' reads standard input.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    from .run import files_command

    return files_command(paths, exclude, _request(options))


def _git_mode(since_commit: str | None, commit_range: str | None, staged: bool) -> Any:
    if sum(x is not None and x is not False for x in (since_commit, commit_range, staged)) > 1:
        raise ScanError("--since-commit, --range and --staged exclude each other")
    return "staged" if staged else "range" if since_commit or commit_range else "all"


def _org_options() -> list[Callable[..., Any]]:
    """The ``git`` command's organization options (README: "Scanning an organization")."""
    return [
        click.option("--repos-from", metavar="FILE",
                     help="Also scan the repositories listed in FILE (one a line, '#' "
                          "comments; '-': standard input)."),
        click.option("--shard", metavar="K/N",
                     help="Scan only shard K of N (1-based) of the repositories, split by a "
                          "stable hash of each repository (default: $POELIS_SCAN_SHARD)."),
        click.option("--cache-dir", metavar="DIR",
                     help="Where URLs are mirrored (default: $XDG_CACHE_HOME/poelis-scan/"
                          "repos)."),
        click.option("--cleanup", is_flag=True,
                     help="Delete each mirror after its scan (disk stays O(jobs))."),
        click.option("--state", metavar="DB",
                     help="Incremental state: a SQLite file, or postgresql://… shared by "
                          "shards. Objects read by earlier runs are not read again."),
        click.option("--new-only", is_flag=True,
                     help="Report only findings this run saw first (needs --state)."),
    ]


_ORG_OPTIONS = ("repos_from", "shard", "cache_dir", "cleanup", "state", "new_only")


@cli.command()
@click.argument("repositories", nargs=-1, metavar="[REPO]...")
@click.option("--since-commit", metavar="REV",
              help="Only what the commits after REV (up to HEAD) introduced.")
@click.option("--range", "commit_range", metavar="A..B",
              help="Only what the commits in A..B introduced (A may be the all-zeros SHA).")
@click.option("--staged", is_flag=True, help="Only the index: what the next commit would add.")
@_apply(_org_options())
@_report_options
def git(repositories: tuple[str, ...], since_commit: str | None, commit_range: str | None,
        staged: bool, **options: Any) -> int:
    """Scan git repositories (default: .): every object of every ref, reflog and dangling
    commit, or only a range of commits, or only the staged content. A REPO may be a clone
    URL (https://, ssh://, git@host:path, file://): it is mirrored into the cache first.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    from .run import OrgRequest, git_command, org_command, org_wanted

    mode = _git_mode(since_commit, commit_range, staged)
    org = OrgRequest(**{name: options.pop(name) for name in _ORG_OPTIONS})
    if org_wanted(repositories, org):
        if mode != "all":
            raise ScanError("--state, --shard, --repos-from and URLs scan whole histories; "
                            "they exclude --since-commit, --range and --staged")
        return org_command(repositories, _request(options), org)
    return git_command(repositories, mode, _request(options), since_commit, commit_range)


@cli.command()
@click.option("--state", "state_target", metavar="DB", required=True,
              help="The state shards wrote: a SQLite file or postgresql://….")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="text",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=str, help="Write the report to FILE instead of stdout.")
@click.option("--repository", metavar="REPO",
              help="Only this repository (its URL, path or identity).")
@click.option("--since", metavar="RUN|DATE",
              help="Only findings seen in run RUN or later, or on or after DATE (ISO 8601).")
@click.option("--new-only", is_flag=True,
              help="Only findings first seen in the latest run of their repository (with "
                   "--since: first seen since then).")
def report(state_target: str, fmt: str, output: str | None, repository: str | None,
           since: str | None, new_only: bool) -> int:
    """Report everything a state holds: all repositories, shards and runs, merged.

    Exit status: 0 nothing reported, 1 findings reported, 2 error.
    """
    from .run import state_report_command

    return state_report_command(state_target, fmt, output, repository, since, new_only)


@cli.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Of a multi-platform image, scan only this platform (default: all).")
@_report_options
def image(refs: tuple[str, ...], platform: str | None, **options: Any) -> int:
    """Scan container images: OCI layout directories or tars, docker/podman save archives,
    or registry references HOST[:PORT]/NAME[:TAG|@DIGEST]. Every layer (deleted files too)
    and the image config.

    Exit status: 0 nothing reported, 1 findings reported, 2 error or something not read.
    """
    from .run import image_command
    from .sources.image.model import Platform

    if platform is not None:
        try:
            Platform.parse(platform)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="'--platform'") from None
    return image_command(refs, platform, _request(options))


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
    from .run import git_command
    from .sources.git.plumbing import open_repository
    from .sources.git.ranges import pre_push_revs

    request = _request(options)
    repo = open_repository(".")
    lines = [] if os.environ.get("PRE_COMMIT_TO_REF") else sys.stdin.read().splitlines()
    rev_sets = pre_push_revs(repo, remote, lines)
    if not rev_sets:
        return EXIT_CLEAN  # only deletions: nothing is sent
    return git_command([repo], "revs", request, rev_sets=rev_sets)


@hook.command("pre-receive")
@_report_options
def hook_pre_receive(**options: Any) -> int:
    """Server side: scan what a push brings (stdin: git's pre-receive lines) and reject the
    push if it holds a key. Always --untrusted: the pusher wrote what is scanned. Escape
    hatch: see the README."""
    from .console import warn
    from .run import git_command
    from .sources.git.plumbing import open_repository
    from .sources.git.ranges import pre_receive_revs, skip_requested

    request = _request({**options, "untrusted": True})
    repo = open_repository(".", receiving=True)  # the pushed objects wait in quarantine
    skip = skip_requested(repo)
    if skip:
        warn(f"scan skipped: {skip}")
        return EXIT_CLEAN
    rev_sets = pre_receive_revs(sys.stdin.read().splitlines())
    if not rev_sets:
        return EXIT_CLEAN
    status = git_command([repo], "revs", request, rev_sets=rev_sets)
    if status == EXIT_FINDINGS:
        warn("push rejected: the pushed commits hold a Poelis API key (commit:path:line "
             "above). Rewrite those commits without the key, revoke the key, and push again.")
    return status


@cli.command()
@_apply(_verify_options())
def verify(**options: Any) -> int:
    """Check keys read from standard input (one a line, or any text holding them).

    Prints each distinct key's redacted form, SHA-256 and status, never the key.
    Exit status: 1 if any key is live, else 0; 2 on error.
    """
    from .console import warn
    from .detect.grammar import redact, secret_sha256
    from .detect.matches import scan_bytes
    from .paths import printable
    from .run import verifier

    checker = verifier(_request(options))
    if sys.stdin is None:
        raise ScanError("standard input is closed: pipe the keys to check into 'verify'")
    try:
        text = sys.stdin.buffer.read()
    except OSError as error:
        raise ScanError(f"cannot read standard input: {error.strerror or error}") from None
    keys = list(dict.fromkeys(m.secret for m in scan_bytes(text)))
    if not keys:
        warn("no Poelis API key found on standard input")
        return EXIT_CLEAN
    verdicts = checker.verify_many(keys)
    for key in keys:
        verdict = verdicts[key]
        extra = f"  ({verdict.detail})" if verdict.status == "unknown" else ""
        click.echo(f"{redact(key)}  {secret_sha256(key)}  {verdict.status}"
                   f"{printable(extra)}")
    live = sum(v.status == "live" for v in verdicts.values())
    unknown = sum(v.status == "unknown" for v in verdicts.values())
    if live:
        warn(f"{live} live key{'s' if live != 1 else ''}: revoke now in Poelis Settings > "
             "Manage REST API Keys")
    if unknown:
        warn(f"{unknown} key{'s' if unknown != 1 else ''} could not be verified (the reason "
             "is on each line): treat as live until you know better")
    return EXIT_FINDINGS if live else EXIT_CLEAN


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
    from .run import baseline_command

    return baseline_command(targets, use_git, output, _request({**options, "fmt": "json"}))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status instead of raising ``SystemExit``.

    Every way a run can fail ends here as one ``poelis-scan: error: …`` line and exit status
    2 (1 means findings, so a crash must never look like one); an unexpected exception is a
    bug, shown as its type and redacted message, with the traceback under ``--debug``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG["on"] = "--debug" in (args[: args.index("--")] if "--" in args else args)
    for stream in (sys.stdout, sys.stderr):
        # A redacted key holds "…"; never die of an ASCII-only terminal or pipe.
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    if not args:  # no command: the help is the answer, but nothing was done
        context = click.Context(cli, info_name="poelis-scan", **cli.context_settings)
        click.echo(cli.get_help(context), err=True)
        return EXIT_ERROR
    try:
        return _run(args)
    except BaseException as error:  # the last line of defence, see above
        if isinstance(error, SystemExit):
            raise
        return _internal_error(error)


def _run(args: list[str]) -> int:
    from .console import error as print_error

    try:
        status = cli.main(args=args, prog_name="poelis-scan", standalone_mode=False)
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
        print_error(f"{error.format_message()}{hint}")
        return EXIT_ERROR
    except click.ClickException as error:
        print_error(error.format_message())
        return EXIT_ERROR
    except ScanError as error:  # a git, configuration, baseline, worker or option problem
        print_error(str(error))
        return EXIT_ERROR
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("poelis-scan: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``). Something was being printed, so never claim a
        # clean result; point stdout at /dev/null so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FINDINGS
    except RecursionError:
        print_error("input nested too deeply to read (RecursionError)")
        return EXIT_ERROR
    except BlockingIOError as error:
        print_error(f"the system refused to start more processes or threads ({error}); "
                    "try fewer --jobs")
        return EXIT_ERROR
    except OSError as error:  # the system said no: E2BIG, EAGAIN, ENOSPC, EMFILE, ...
        _show_traceback(error)
        print_error(f"{error.strerror or error}"
                    + (f": {error.filename}" if error.filename else "")
                    + ("; rerun with --debug" if not _DEBUG['on'] else ""))
        return EXIT_ERROR
    if isinstance(status, int):
        return status
    return EXIT_CLEAN


def _show_traceback(error: BaseException) -> None:
    if not _DEBUG["on"]:
        return
    import traceback

    from .console import redact_text

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    with contextlib.suppress(Exception):
        sys.stderr.write(redact_text(text))
        sys.stderr.flush()


def _internal_error(error: BaseException) -> int:
    """A bug: one line, the traceback only under ``--debug``, a key never."""
    try:
        from .console import error as print_error

        _show_traceback(error)
        message = str(error).splitlines()[0] if str(error) else ""
        print_error(f"internal error ({type(error).__name__}): {message}"
                    + ("" if _DEBUG["on"] else "; rerun with --debug"))
    except BaseException:  # stderr itself may be gone
        pass
    return EXIT_ERROR
