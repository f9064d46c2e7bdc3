"""Smoke tests: each service ``.ci/run`` provides is real, reachable and on loopback.

Why: the tests of the state database, container images and the HTML report rely on these
services. If one is missing or fake, those tests would fail far from the cause (or, locally,
skip); these fail first, naming the service.
"""

from __future__ import annotations

import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import services


def test_postgres_answers_queries_on_loopback() -> None:
    import psycopg  # the `postgres` extra; imported here so other tests do not need it

    dsn = services.postgres_dsn()
    assert urlsplit(dsn).hostname == "127.0.0.1"
    table = "smoke_" + secrets.token_hex(4)
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        address = conn.execute("select host(inet_server_addr())").fetchone()
        assert address == ("127.0.0.1",)
        # The test may create tables: write and read one row back, then drop the table.
        conn.execute(f"create table {table} (value text)")
        try:
            token = secrets.token_hex(8)
            conn.execute(f"insert into {table} values (%s)", (token,))
            assert conn.execute(f"select value from {table}").fetchall() == [(token,)]
        finally:
            conn.execute(f"drop table {table}")


def test_registry_speaks_the_v2_api() -> None:
    address = services.registry_address()
    assert address.startswith("127.0.0.1:")
    with urllib.request.urlopen(f"http://{address}/v2/", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    # An unknown repository is a 404 with a registry error body, not some other web server.
    try:
        urllib.request.urlopen(f"http://{address}/v2/no-such-repo/tags/list", timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 404
        assert b"NAME_UNKNOWN" in error.read()
    else:
        raise AssertionError("an unknown repository was found")


def test_skopeo_runs() -> None:
    result = subprocess.run([services.skopeo(), "--version"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("skopeo version ")


def test_chromium_runs_a_page_headless(tmp_path: Path) -> None:
    # The page builds its DOM in a script, so the dump proves a browser ran it (not a file read).
    token = secrets.token_hex(8)
    page = tmp_path / "page.html"
    page.write_text("<!doctype html><html><body><script>"
                    "const p = document.createElement('p'); p.id = 'out';"
                    f"p.textContent = ['{token[:8]}', '{token[8:]}'].join('');"
                    "document.body.append(p);</script></body></html>", encoding="utf-8")
    # --no-sandbox: Chromium refuses its sandbox as root (CI) and in containers without user
    # namespaces; the page is our own. A fresh profile keeps it out of $HOME.
    result = subprocess.run(
        [services.chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'<p id="out">{token}</p>' in result.stdout
