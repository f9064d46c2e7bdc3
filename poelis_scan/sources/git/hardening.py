"""What every git this package starts is given, so that nothing of the scanned repository
runs: the options and settings on its command line, and its environment.

Kept apart from ``plumbing.py`` (and importing nothing but ``os``) so that the pre-commit
hook's light entry point (``entry.py``) starts its gits with exactly these, not a copy.
"""

from __future__ import annotations

import os

# The scanned repository is untrusted: its own ``.git/config`` (and ``.gitattributes``) can name
# programs git would run for us. Every git this package starts goes through ``git_process``,
# which overrides each such setting on the command line (command-line configuration wins over
# the repository's) and starts git in an environment that cannot point it at another
# repository. Settings that only commands we never run would read (editors, merge drivers,
# ``uploadpack.packObjectsHook``, ``core.alternateRefsCommand``: receive/upload-pack) are left
# alone; filters and diff drivers from ``.gitattributes`` run only for patches, ``--textconv``
# or ``--filters``, which we never ask for (and ``--no-ext-diff --no-textconv`` say so).
HARDENING: tuple[str, ...] = (
    "--no-pager",  # core.pager / pager.<cmd>: never pipe our output through a program
    "--no-replace-objects",  # refs/replace/* would show another object in place of the real one
    "-c", "core.fsmonitor=false",  # a hook program (or a daemon) run on every index read
    "-c", "core.hooksPath=/dev/null",  # no hook of the repository, should a command run one
    "-c", "log.showSignature=false",  # verifying a signature runs gpg.*.program
    "-c", "gpg.program=false",  # ... and if anything still verifies, it runs `false`
    "-c", "gpg.openpgp.program=false",
    "-c", "gpg.x509.program=false",
    "-c", "gpg.ssh.program=false",
    "-c", "core.quotepath=off",  # paths as bytes (-z), not octal escapes
)

# Variables that name another repository, object store, index or program: they are set for
# some other context (a hook of another repository, a wrapper) and would make ``git -C PATH``
# read something that is not PATH. Dropped from every git's environment (``GIT_SSH*`` too).
DROPPED = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH", "GIT_COMMON_DIR",
    "GIT_NAMESPACE", "GIT_SHALLOW_FILE", "GIT_GRAFT_FILE", "GIT_REPLACE_REF_BASE",
    "GIT_CONFIG",  # (legacy) `git config` would read this file instead of the repository's
    "GIT_EXTERNAL_DIFF", "GIT_DIFF_OPTS", "GIT_PAGER", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
    "GIT_ASKPASS", "GIT_PROXY_COMMAND",
})
# Kept from the pre-receive hook's environment (``open_repository(receiving=True)``): git
# receives a push into a quarantine directory, visible only through these.
QUARANTINE = ("GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")

# Set in every git's environment (``git_env`` says why).
SETTINGS = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_ALLOW_PROTOCOL": "", "GIT_NO_LAZY_FETCH": "1",
            "GIT_NO_REPLACE_OBJECTS": "1"}


def git_env(extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """The environment of every git we start.

    No prompt, no translation, no optional locks; no system configuration (only the user's
    own and the repository's, the latter neutralised by ``HARDENING``); no transport at all
    (``GIT_ALLOW_PROTOCOL`` empty overrides every ``protocol.*.allow`` of the repository, so a
    partial clone's lazy fetch cannot run ``ext::`` commands, ``core.sshCommand``, an
    ``uploadpack`` program or a credential helper; ``GIT_NO_LAZY_FETCH`` says it to git 2.44+);
    nothing that redirects git to another repository (``DROPPED``) except ``extra``, the
    variables ``open_repository`` vetted for this one.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in DROPPED and not k.startswith("GIT_SSH")}
    env.update(SETTINGS)
    env.update(extra)
    return env


def _inside(path: str, directory: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(directory)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def vetted_env(git_dir: str, receiving: bool) -> tuple[tuple[str, str], ...]:
    """The variables git set for this very repository, which its commands need.

    ``GIT_INDEX_FILE`` inside the repository's git directory: git's pre-commit hook under
    ``git commit -a`` or ``git commit PATH`` points it at the index being committed (the
    ``--staged`` scan must read that one). The quarantine variables when receiving a push,
    if they point into this repository's object store.
    """
    kept: list[tuple[str, str]] = []
    index = os.environ.get("GIT_INDEX_FILE")
    if index and _inside(os.path.abspath(index), git_dir):
        kept.append(("GIT_INDEX_FILE", os.path.abspath(index)))
    if receiving and os.environ.get("GIT_QUARANTINE_PATH"):
        objects = os.path.join(git_dir, "objects")
        values = {name: os.environ.get(name, "") for name in QUARANTINE}
        dirs = [d for name in QUARANTINE for d in values[name].split(os.pathsep) if d]
        if all(_inside(d, objects) for d in dirs):
            kept.extend((name, value) for name, value in values.items() if value)
    return tuple(kept)
