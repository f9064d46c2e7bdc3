"""The ``poelis-scan`` command's entry point: the pre-commit hook's ``git --staged`` answered
without the full command line when nothing staged holds a key; everything else goes to
``cli.main``.

Why: a commit waits for this hook, every time. The interpreter starts in about 20 ms; click,
the dataclasses of the pipeline, ``re`` and ``subprocess`` took another 150 ms before a byte
was read (``python -X importtime``), while a clean index is three git calls and a dozen
``bytes.find``. This module imports ``os``, ``sys`` and ``time`` (loaded at start-up anyway),
``scan/magic.py``, and only when needed the configuration reader (a repository with one) and
the detector (a blob holding a needle).

The shortcut only ever answers "clean": the simple forms (``git --staged``, ``-q``/``--quiet``,
one local ``REPO``), an ordinary repository (not bare, not shallow), at most ``MAX_OBJECTS``
staged blobs of at most ``MAX_BYTES`` together, none of them an archive, and no match in any
of them. Every match the scanner can report starts at a needle (``detect/encodings.py``), so
a blob without one is clean unread by the detector; a blob with one (``poelis_api_key`` is an
identifier, not a key) goes to the detector itself, and any match at all (a placeholder below
the floor too) declines. Its output is the full run's, byte for byte: the empty text report,
the summary line, the "nothing is staged" warning. Anything else, and any surprise on the way
(git failed, an answer out of shape, a configuration that does not load, an option we do not
parse), hands the untouched arguments to ``cli.main``, which does the whole work again and
says whatever there is to say: the shortcut never prints an error of its own.

git is started with ``os.posix_spawnp`` and pipes rather than ``subprocess`` (whose import
pulls ``locale``, ``re``, ``threading``, ``selectors``: about 8 ms), with exactly the
hardening every other git of the package gets (``sources/git/hardening.py``, a module that
imports nothing but ``os``).
"""

from __future__ import annotations

import os
import sys
import time

from .sources.git.hardening import HARDENING, git_env, vetted_env
from .units import human_bytes

# The shortcut's bounds: beyond them the full run is worth its start-up (and shows progress).
MAX_OBJECTS = 200  # pipeline.SERIAL_BELOW_OBJECTS
MAX_BYTES = 16 << 20  # bytes.find over this many bytes, for each needle: about 0.1 s

# Every needle of every encoding (``detect.encodings.ALL_NEEDLES``; a test keeps them equal).
NEEDLES: tuple[bytes, ...] = (
    b"poelis_api_", b"poelis_live_",
    b"p\0o\0e\0l\0i\0s\0_\0a\0p\0i\0_\0", b"p\0o\0e\0l\0i\0s\0_\0l\0i\0v\0e\0_\0",  # UTF-16
    b"cG9lbGl", b"zX2FwaV", b"BvZWxpc", b"19hcGlf", b"wb2VsaX", b"NfYXBpX",
    b"zX2xpdm", b"19saXZl", b"NfbGl2Z",
    b"6170695", b"6976655",
)

# The signal numbers, without ``signal`` (whose import builds enums): ``_signal`` is the
# built-in module underneath, no file to read.
_SIGNALS = __import__("_signal")
_ZERO_SHA = "0" * 40
_GITLINK_MODE = "160000"
_PROGRAM = "poelis-scan"


class _Decline(Exception):
    """The shortcut cannot answer: the full command line will."""


def main(argv: list[str] | None = None) -> int:
    """Entry point (the ``poelis-scan`` script, ``python -m poelis_scan``); returns the exit
    status. ``cli.main`` takes every command the shortcut does not answer."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        status = staged_shortcut(args)
    except KeyboardInterrupt:  # as cli.main says it
        sys.stderr.write(f"{_PROGRAM}: interrupted\n")
        return 130
    if status is not None:
        return status
    from .cli import main as full

    return full(args)


def staged_shortcut(args: list[str]) -> int | None:
    """The exit status of ``poelis-scan ARGS`` when it is a clean ``git --staged`` (after
    printing what the full run prints), or None: the full run must answer."""
    parsed = _parse(args)
    if parsed is None or sys.stdout is None or sys.stderr is None:
        return None
    path, quiet = parsed
    try:
        if (not quiet and "POELIS_SCAN_PROGRESS_DELAY" in os.environ
                and sys.stderr.isatty()):
            return None  # the full run may draw its progress line
        blobs, size, seconds = _scan(path)
        erase = "\r\033[K" if sys.stderr.isatty() else ""  # as console.warn does
    except Exception:  # a surprise of any kind: the full run says what it is
        return None
    for stream in (sys.stdout, sys.stderr):  # as cli.main does
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    lines = []
    if not quiet:
        lines.append(f"{_PROGRAM}: scanned {blobs} blob{'' if blobs == 1 else 's'}, 0 commits, "
                     f"0 tags ({human_bytes(size)}) in {seconds:.2f}s: 0 findings")
    if blobs == 0:
        lines.append(f"{erase}{_PROGRAM}: warning: nothing was scanned: nothing is staged")
    try:
        sys.stdout.flush()  # the text report of no finding is empty
        for line in lines:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        return None  # a closed pipe or stream: the full run knows what that means
    return 0


def _parse(args: list[str]) -> tuple[str, bool] | None:
    """(repository, quiet) of ``git --staged [-q|--quiet] [REPO]`` in any order, or None."""
    if not args or args[0] != "git":
        return None
    staged = quiet = False
    paths: list[str] = []
    for arg in args[1:]:
        if arg == "--staged":
            staged = True
        elif arg in ("-q", "--quiet"):
            quiet = True
        elif arg and not arg.startswith("-") and ":" not in arg:  # a URL is not for us
            paths.append(arg)
        else:
            return None
    if not staged or len(paths) > 1:
        return None
    return (paths[0] if paths else "."), quiet


class _Git:
    """One git process: its output read whole from a pipe, its input (if any) written into
    a pipe before it starts, so that neither side can wait on the other."""

    def __init__(self, path: str, args: tuple[str, ...], env: dict[str, str],
                 stdin: bytes | None = None) -> None:
        self.out = -1
        self.pid = 0
        self.status = -1
        fds: list[int] = []
        try:
            out_r, out_w = os.pipe()
            fds += (out_r, out_w)
            in_r = -1
            if stdin is not None:
                in_r, in_w = os.pipe()
                fds += (in_r, in_w)
                os.set_blocking(in_w, False)
                if os.write(in_w, stdin) != len(stdin):  # it must fit in the pipe
                    raise _Decline
            if min(fds) <= 2:
                raise _Decline  # a standard stream was closed: no descriptor games here
            devnull = os.devnull
            actions = [
                (os.POSIX_SPAWN_DUP2, in_r, 0) if stdin is not None
                else (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
            ]
            # As subprocess does: git gets the default action for the signals Python ignores.
            self.pid = os.posix_spawnp("git", ["git", "-C", path, *HARDENING, *args], env,
                                       file_actions=actions,
                                       setsigdef=(_SIGNALS.SIGPIPE, _SIGNALS.SIGXFSZ))
            self.out = out_r
            fds.remove(out_r)
        finally:
            for fd in fds:
                os.close(fd)

    def read(self, limit: int) -> tuple[int, bytes]:
        """(exit status, output); more than ``limit`` bytes of output is a ``_Decline``."""
        chunks: list[bytes] = []
        total = 0
        try:
            while chunk := os.read(self.out, 1 << 20):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise _Decline
        except BaseException:
            self.close(kill=True)
            raise
        self.close()
        return self.status, b"".join(chunks)

    def close(self, kill: bool = False) -> None:
        """Stop reading (git ends at a closed pipe) and reap the process; ``kill``: a git
        whose answer is not wanted, which may be stuck on what it reads (a FIFO)."""
        if self.out >= 0:
            os.close(self.out)
            self.out = -1
        if self.pid:
            if kill:
                os.kill(self.pid, _SIGNALS.SIGKILL)
            _, wait_status = os.waitpid(self.pid, 0)
            self.pid = 0
            self.status = os.waitstatus_to_exitcode(wait_status)


def _staged(raw: bytes) -> list[str]:
    """The distinct blobs of ``git diff --cached --raw -z`` that add or change content, in
    order (``objects._added_blobs``: deletions and gitlinks have nothing to scan)."""
    shas: dict[str, None] = {}
    parts = raw.split(b"\0")
    for meta, _path in zip(parts[0::2], parts[1::2], strict=False):
        if not meta.startswith(b":"):
            continue
        _, new_mode, _, new_sha, status = meta[1:].decode("ascii").split(" ")[:5]
        if new_sha == _ZERO_SHA or new_mode == _GITLINK_MODE or status.startswith("D"):
            continue
        shas[new_sha] = None
    return list(shas)


def _may_hold_config(work_tree: str) -> bool:
    """Whether ``config.find(work_tree, work_tree)`` could find a file (then ``config``
    itself reads it). ``pyproject.toml`` counts only with our table (``holds_our_table``)."""
    if os.path.isfile(os.path.join(work_tree, ".poelis-scan.toml")):
        return True
    pyproject = os.path.join(work_tree, "pyproject.toml")
    if not os.path.isfile(pyproject):
        return False
    try:
        with open(pyproject, "rb") as handle:
            data = handle.read((1 << 20) + 1)
    except OSError:
        return False
    return b"[tool.poelis-scan" in data or (b"poelis-scan" in data and b"[tool" in data)


def _scan(path: str) -> tuple[int, int, float]:
    """(blobs, bytes, seconds) of a clean staged scan of the repository at ``path``; a
    ``_Decline`` for anything the full run must see to."""
    if not hasattr(os, "posix_spawnp") or not os.path.isdir(path):
        raise _Decline
    diff_args = ("diff", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev",
                 "--no-ext-diff", "--no-textconv")
    # The diff starts with rev-parse, its environment guessed: a hook's GIT_INDEX_FILE (git
    # sets it for every pre-commit hook) belongs to this repository. If rev-parse says the
    # guess is wrong, that diff is dropped and another started with the vetted environment.
    index = os.environ.get("GIT_INDEX_FILE")
    guess = (("GIT_INDEX_FILE", os.path.abspath(index)),) if index else ()
    started: list[_Git] = []
    try:
        rev_parse = _Git(path, ("rev-parse", "--absolute-git-dir", "--is-bare-repository",
                                "--is-shallow-repository", "--show-toplevel"), git_env())
        started.append(rev_parse)
        diff = _Git(path, diff_args, git_env(guess))
        started.append(diff)
        _, out = rev_parse.read(1 << 20)
        lines = out.decode("utf-8", "surrogateescape").splitlines()
        if len(lines) < 4 or lines[1] == "true" or lines[2] == "true":
            raise _Decline  # not a repository, bare or shallow: the full run explains
        git_dir, work_tree = lines[0], lines[3]
        vetted = vetted_env(git_dir, receiving=False)
        env = git_env(vetted)
        if vetted != guess:
            diff.close(kill=True)
            diff = _Git(path, diff_args, env)
            started.append(diff)
        status, raw = diff.read(64 << 20)
    finally:
        for git in started:
            git.close(kill=True)  # (only those still running: a decline needs no answer)
    if status != 0:
        raise _Decline
    shas = _staged(raw)
    if len(shas) > MAX_OBJECTS:
        raise _Decline
    if _may_hold_config(work_tree):
        from .config import discover

        discover(work_tree, work_tree)  # only its errors matter to a clean run (and decline)
    began = time.perf_counter()
    size = _read_blobs(path, shas, env) if shas else 0
    return len(shas), size, time.perf_counter() - began


def _read_blobs(path: str, shas: list[str], env: dict[str, str]) -> int:
    """Read every blob from one ``cat-file --batch``; their total size if none is an archive
    and none holds a key, placeholder or identifier the detector would report."""
    from .scan.magic import HEAD_SIZE, container_kind

    cat = _Git(path, ("cat-file", "--batch"), env, "".join(f"{s}\n" for s in shas).encode())
    _, out = cat.read(MAX_BYTES + 100 * len(shas))
    size = 0
    at = 0
    suspects: list[bytes] = []
    for sha in shas:
        end = out.find(b"\n", at)
        header = out[at:end].decode("ascii", "replace").split() if end >= 0 else []
        if (len(header) != 3 or header[0] != sha or header[1] != "blob"
                or not header[2].isdigit()):
            raise _Decline  # missing, corrupt or out of turn: the full run warns
        length = int(header[2])
        data = out[end + 1 : end + 1 + length]
        if len(data) != length or out[end + 1 + length : end + 2 + length] != b"\n":
            raise _Decline
        if container_kind(data[:HEAD_SIZE]) is not None:
            raise _Decline  # archives are opened by the full run
        if any(needle in data for needle in NEEDLES):
            suspects.append(data)
        size += length
        at = end + 2 + length
    if size > MAX_BYTES:
        raise _Decline
    if suspects:
        _judge(suspects)
    return size


def _judge(suspects: list[bytes]) -> None:
    """Blobs holding a needle (``poelis_api_key`` in code is one): the detector itself, as
    the full run would call it on them (a whole blob is one window below ``IN_MEMORY_OBJECT``;
    the engines agree), and a ``_Decline`` if it reports anything at all, even below the
    confidence floor (the summary counts those)."""
    from .detect.matches import find_matches
    from .settings import ScanSettings

    settings = ScanSettings(engine="find")
    for data in suspects:
        if find_matches(data, settings=settings):
            raise _Decline
