"""Real services the tests need, as ``.ci/run`` provides them.

``.ci/run`` installs (apt-get) and starts each service on 127.0.0.1, then exports where it
listens. Locally a developer can run ``.ci/services start`` and export the same variables, or
let a test skip. In CI (``CI=true``) a missing service fails the test: a test that needs a
service is never skipped there.

| variable                | what                                                     |
|-------------------------|----------------------------------------------------------|
| POELIS_TEST_PG_DSN      | ``postgresql://USER@127.0.0.1:PORT/DB`` of a throwaway cluster |
| POELIS_TEST_REGISTRY    | ``127.0.0.1:PORT`` of a Distribution registry (plain HTTP)  |
| POELIS_TEST_SKOPEO      | path of the ``skopeo`` binary                            |
| POELIS_TEST_CHROMIUM    | path of the ``chromium`` binary (headless)               |
"""

from __future__ import annotations

import os
import shutil

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(variable: str, what: str, fallback: str | None = None) -> str:
    value = os.environ.get(variable) or fallback
    if value:
        return value
    message = f"{what} is not available: {variable} is unset (.ci/run sets it)"
    if _in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def postgres_dsn() -> str:
    """The DSN of a PostgreSQL server the test may create databases and tables in."""
    return _need("POELIS_TEST_PG_DSN", "PostgreSQL")


def registry_address() -> str:
    """``host:port`` of a container registry speaking the Registry HTTP API v2 over HTTP."""
    return _need("POELIS_TEST_REGISTRY", "a container registry")


def skopeo() -> str:
    """Path of ``skopeo``."""
    return _need("POELIS_TEST_SKOPEO", "skopeo", shutil.which("skopeo"))


def chromium() -> str:
    """Path of a Chromium that runs headless."""
    return _need("POELIS_TEST_CHROMIUM", "Chromium",
                 shutil.which("chromium") or shutil.which("chromium-browser"))
