"""``--untrusted``: which configuration and baseline a run may believe when the scanned content
is written by someone else (a pull request, a pushed branch, a cloned repository).

Whoever controls the scanned content controls every file inside it, so a configuration or a
baseline found there could silence the scan (``[[exclude]] path = "*"``, an ``allow`` entry or a
baseline entry for the very key the change adds). Under ``--untrusted``:

- ``scan``: only ``--config``/``--baseline`` files outside the scanned paths count; a
  configuration discovered next to the content is ignored, with a warning naming it.
- ``git`` with a base (``--range A..B``, ``--since-commit A``, ``--staged``: ``HEAD``): files
  of the scanned work tree are read as of the base commit (``git cat-file blob A:path``), which
  the change under review cannot have written; never from the head or the work tree.
- ``git`` without a base (the whole repository): no repository file at all.
- a bare repository (a server receiving a push): its own directory is not written by pushes, so
  a configuration placed there by the administrator still counts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..config import CONFIG_NAME, MAX_FILE_BYTES, Config, ConfigError, find, holds_our_table
from ..config import load as load_config
from ..config import loads as loads_config
from ..errors import ScanError
from .baseline import Baseline, BaselineError
from .baseline import load as load_baseline
from .baseline import loads as loads_baseline

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Trusted:
    """The configuration and baseline a run may believe."""

    config: Config
    baseline: Baseline | None


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(path))


def _inside(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or lies below one of them."""
    target = _real(path)
    for root in roots:
        base = _real(root)
        if target == base or target.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def for_files(roots: list[str], config_path: str | None, baseline_path: str | None,
              start: str, stop: str | None, warn: Warn) -> Trusted:
    """``scan --untrusted``: files named on the command line from outside the scanned paths."""
    scanned = [r for r in roots if r != "-"]
    for option, path in (("--config", config_path), ("--baseline", baseline_path)):
        if path is not None and _inside(path, scanned):
            raise ScanError(f"--untrusted: {option} {path} lies inside the scanned paths, so "
                            "the scanned content may have written it; pass a file from "
                            "outside them")
    if config_path is not None:
        config = load_config(config_path)
    else:
        config = Config()
        found = find(start, stop)
        if found is not None:
            warn(f"--untrusted: ignoring the configuration {found} (it belongs to the "
                 "scanned content)")
    baseline = load_baseline(baseline_path) if baseline_path is not None else None
    return Trusted(config, baseline)


def _relative(path: str, work_tree: str) -> str:
    return os.path.relpath(_real(path), _real(work_tree)).replace(os.sep, "/")


def for_repository(run_git: Callable[..., bytes], repo_path: str, git_dir: str,
                   work_tree: str | None, base: str | None, config_path: str | None,
                   baseline_path: str | None, warn: Warn) -> Trusted:
    """``git --untrusted``: repository files as of ``base`` (``None``: no repository file).

    ``run_git(repo_path, *args, check=False)`` is the one way this module reaches git.
    """
    def at_base(relative: str) -> bytes | None:
        if base is None:
            return None
        spec = f"{base}:{relative}"
        size = run_git(repo_path, "cat-file", "-s", spec, check=False).strip()
        if not size.isdigit():
            return None  # not in the base commit
        if int(size) > MAX_FILE_BYTES:
            raise ScanError(f"{spec}: larger than {MAX_FILE_BYTES >> 20} MiB: not a "
                            "configuration or baseline file")
        return run_git(repo_path, "cat-file", "blob", spec, check=False)

    where = f"as of {base[:12]}" if base else "(no base commit: the whole repository is scanned)"

    def in_tree(path: str) -> bool:
        return work_tree is not None and _inside(path, [work_tree])

    # Configuration.
    config = Config()
    if config_path is not None and not in_tree(config_path):
        config = load_config(config_path)
    elif work_tree is None:
        from ..config import discover

        config = discover(git_dir, git_dir)  # a server's own directory: pushes cannot write it
    else:
        names = ([_relative(config_path, work_tree)] if config_path is not None
                 else [CONFIG_NAME, "pyproject.toml"])
        for name in names:
            data = at_base(name)
            if data is None:
                continue
            is_pyproject = os.path.basename(name) == "pyproject.toml"
            if is_pyproject and config_path is None and not holds_our_table(data):
                continue
            config = loads_config(data, f"{base}:{name}", pyproject=is_pyproject,
                                  discovered=True)
            break
        on_disk = config_path or find(work_tree, work_tree)
        if on_disk is not None and config.source is None:
            warn(f"--untrusted: ignoring the configuration {on_disk}: the scanned content may "
                 f"have written it, and it is not in the base commit {where}")
        elif on_disk is not None:
            warn(f"--untrusted: configuration read {where} ({config.source}), not from the "
                 "work tree")
    # Baseline.
    baseline = None
    if baseline_path is not None and not in_tree(baseline_path):
        baseline = load_baseline(baseline_path)
    elif baseline_path is not None and work_tree is not None:
        name = _relative(baseline_path, work_tree)
        data = at_base(name)
        if data is None:
            warn(f"--untrusted: ignoring the baseline {baseline_path}: it is not in the base "
                 f"commit {where}")
        else:
            baseline = loads_baseline(data, f"{base}:{name}")
    return Trusted(config, baseline)


__all__ = ["BaselineError", "ConfigError", "Trusted", "for_files", "for_repository"]
