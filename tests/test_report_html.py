"""The HTML report: rendered in-process, written by the real CLI, and opened in a real Chromium.

Paths and commit messages are attacker-controlled, so the tests plant markup in file names,
directory names and a commit message and check that it only ever shows as text. Chromium runs
headless from ``tests/services.py: chromium()``; ``--dump-dom`` gives the DOM after the page's
script ran, and the page reads its initial filter from the URL fragment, so a fragment URL
shows what a person would see after filtering.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_key, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poelis_emulator import Emulator
from services import chromium

from poelis_scan.detect.grammar import Confidence
from poelis_scan.detect.redaction import clean_external
from poelis_scan.findings import Finding, GitOrigin, Location, Verdict
from poelis_scan.report import ReportContext, render
from poelis_scan.stats import Stats

DATA_BLOCK = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>',
                        re.DOTALL)
IMG_NAME = "<img src=x onerror=alert(1)>.env"
# A file name cannot hold "/", so this path is a directory "<script>alert(1)<" and a file in it.
SCRIPT_PATH = "<script>alert(1)</script>.env"


def body_of(key: str) -> str:
    return key[len("poelis_api_"):]


def assert_no_key(text: str, keys: list[str]) -> None:
    for key in keys:
        body = body_of(key)
        assert body not in text and body[:16] not in text and body[-16:] not in text


def embedded(html: str) -> dict[str, Any]:
    (block,) = DATA_BLOCK.findall(html)
    return json.loads(block)  # type: ignore[no-any-return]


# ---- a DOM read back from Chromium ---------------------------------------------------------

@dataclass
class Row:
    attrs: dict[str, str | None]
    text: str = ""

    @property
    def hidden(self) -> bool:
        return "hidden" in self.attrs

    @property
    def verdict(self) -> str | None:
        return self.attrs.get("data-verdict")


class Dom(HTMLParser):
    """The finding rows, the body's attributes and the tags seen, from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[Row] = []
        self.body: dict[str, str | None] = {}
        self.tags: list[str] = []
        self.metas: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self._row: Row | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "body":
            self.body = attributes
        elif tag == "meta":
            self.metas.append(attributes)
        elif tag == "tr" and "finding" in (attributes.get("class") or "").split():
            self._row = Row(attributes)
            self.rows.append(self._row)
        elif tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        elif tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._row is not None:
            self._row.text += data + " "

    @property
    def visible(self) -> list[Row]:
        return [r for r in self.rows if not r.hidden]

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def parse_dom(text: str) -> Dom:
    dom = Dom()
    dom.feed(text)
    dom.close()
    return dom


class Browser:
    """Headless Chromium runs, each with its own profile, each killed if it outlives a test."""

    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary = binary
        self.tmp = tmp
        self.groups: list[int] = []
        self.runs = 0

    def _run(self, *args: str) -> tuple[str, str]:
        self.runs += 1
        profile = self.tmp / f"chromium-profile-{self.runs}"
        command = [self.binary, "--headless", "--no-sandbox", "--disable-gpu",
                   "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                   f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.groups.append(proc.pid)
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.close()
            proc.communicate()
            raise
        assert proc.returncode == 0, err.decode("utf-8", "replace")[-2000:]
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def dump(self, page: Path, fragment: str = "") -> tuple[Dom, str]:
        """The DOM after the page's script ran, and the console lines Chromium logged."""
        out, err = self._run("--dump-dom", page.resolve().as_uri() + fragment)
        console = [line for line in err.splitlines() if ":CONSOLE" in line]
        return parse_dom(out), "\n".join(console)

    def screenshot(self, page: Path, target: Path) -> None:
        self._run(f"--screenshot={target}", "--window-size=1400,900", "--hide-scrollbars",
                  page.resolve().as_uri())

    def close(self) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    running = Browser(chromium(), tmp_path)
    yield running
    running.close()


def clean_page(dom: Dom, console: str) -> None:
    """The page's own script finished, nothing raised, and Chromium logged nothing."""
    assert dom.body.get("data-ok") == "1", dom.body
    assert dom.body.get("data-errors") == "", dom.body
    assert console == ""
    assert "pwned" not in json.dumps(dom.body)
    csp = [m for m in dom.metas if (m.get("http-equiv") or "").lower()
           == "content-security-policy"]
    assert len(csp) == 1 and "default-src 'none'" in (csp[0].get("content") or "")
    assert "img" not in dom.tags and "iframe" not in dom.tags


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1024 and data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 900)


# ---- in-process rendering ------------------------------------------------------------------

def git_origin(**fields: Any) -> GitOrigin:
    """A typed git origin from the JSON-shaped fields a test names."""
    fields["refs"] = tuple(fields.get("refs", ()))
    return GitOrigin(blob=fields.get("commit") or "c" * 40, object_type="blob",
                     repository="/r", **fields)


def finding(key: str, path: str, **extra: Any) -> Finding:
    if "git" in extra:
        extra["origin"] = git_origin(**extra.pop("git"))
    return Finding(secret=key, confidence=Confidence.HIGH, reason="random body",
                   location=Location(path, 3, 5, 5 + len(key)), display_path=path, **extra)


def test_render_embeds_the_json_findings_and_never_a_key_even_with_reveal() -> None:
    keys = [make_key() for _ in range(3)]
    findings = [finding(keys[0], "src/app.env"),
                finding(keys[1], SCRIPT_PATH, encoding="base64"),
                finding(keys[2], "<commit-message>", git={
                    "commit": "a" * 40, "kind": "commit-message", "author": "<b>Eve</b>",
                    "email": "eve@example.invalid", "date": "2026-01-04T10:00:00+01:00",
                    "refs": ["refs/heads/main"]})]
    findings[0].verification = Verdict("live", 200, None, None,
                                       {"workspaces": 3, "products": 6,
                                        "workspace_names": ["</script><!--"],
                                        "complete": True})
    stats = Stats(files_scanned=2, bytes_scanned=100)
    html = render("html", findings, stats, reveal=True, context=ReportContext(root="/r")).text
    assert_no_key(html, keys)
    data = embedded(html)
    assert data["findings"] == [json.loads(json.dumps(f.to_dict(reveal=False)))
                                for f in findings]
    assert data["stats"] == stats.to_dict() and data["root"] == "/r"
    assert all("secret" not in f for f in data["findings"])
    # Markup in the data never reaches the document as markup.
    assert html.count("<script") == 2 and html.count("</script>") == 2
    assert "<!--" not in html and "<b>" not in html
    assert html.startswith("<!DOCTYPE html>") and "poelis-scan: 3 findings, 1 live" in html


def test_the_content_security_policy_allows_exactly_the_pages_own_script_and_style() -> None:
    html = render("html", [finding(make_key(), "a.env")], Stats(files_scanned=1),
                  context=ReportContext()).text
    (policy,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)

    def source(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == source(script)
    assert directives["style-src"] == source(style)
    page = html.split('id="report-data"')[0]
    assert not re.search(r"://|url\(|src=|href=|@import", page)  # the page loads nothing


def test_a_key_inside_a_path_is_redacted_there_too() -> None:
    key = make_key()
    f = finding(key, f"leaks/{key}.env")
    html = render("html", [f], Stats(files_scanned=1), reveal=True, context=ReportContext()).text
    assert_no_key(html, [key])
    assert embedded(html)["findings"][0]["location"]["path"] == f"leaks/{f.redacted}.env"


NASTY = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["</script>", "</SCRIPT >", "<!--", "-->", "<script>alert(1)</script>", "\u2028\u2029",
     "]]>", "&lt;", "\\u003c", "\"'`", "<img src=x onerror=alert(1)>"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(path=NASTY, author=NASTY, ref=NASTY, detail=NASTY, member=NASTY)
def test_any_text_in_any_field_stays_data(path: str, author: str, ref: str, detail: str,
                                          member: str) -> None:
    key = make_key()
    f = finding(key, path, git={"commit": "b" * 40, "kind": "blob", "author": author,
                                "email": ref, "date": None, "refs": [ref]})
    f.location.member = member or None
    f.verification = Verdict("unknown", 403, detail, None)
    html = render("html", [f], Stats(files_scanned=1), context=ReportContext(root=path)).text
    assert html.count("<script") == 2 and html.lower().count("</script") == 2
    assert "<!--" not in html
    data = embedded(html)
    (entry,) = data["findings"]
    assert entry["location"]["path"] == path and entry["location"]["member"] == (member or None)
    assert entry["git"]["author"] == author and entry["git"]["refs"] == [ref]
    # A verdict cleans what a server said (no control characters, no key, bounded length).
    assert entry["verification"]["detail"] == clean_external(detail, 300)
    assert data["root"] == path
    assert_no_key(html, [key])


# ---- through the CLI, in Chromium ----------------------------------------------------------

def planted_tree(root: Path) -> dict[str, str]:
    """Keys in plain files, in a file named like markup and under a directory named so."""
    keys = {name: make_key() for name in ("live", "revoked", "unknown", "app2", "img", "script")}
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.env").write_text(f"A={keys['live']}\nB={keys['app2']}\n")
    (root / "old.cfg").write_text(f"token: {keys['revoked']}\n")
    (root / "notes.md").write_text(f"try `{keys['unknown']}`\n")
    (root / IMG_NAME).write_text(f"K={keys['img']}\n")
    (root / SCRIPT_PATH).parent.mkdir()
    (root / SCRIPT_PATH).write_text(f"K={keys['script']}\n")
    return keys


def test_cli_html_for_files_renders_every_finding_in_chromium(
        tmp_path: Path, browser: Browser) -> None:
    tree = tmp_path / "tree"
    keys = planted_tree(tree)
    page = tmp_path / "out.html"
    plans = {keys["live"]: "live", keys["unknown"]: "proxy403"}
    with Emulator(plans=plans) as base:
        common = ("scan", str(tree), "--verify", "--base-url", base)
        run = run_cli(*common, "--format", "html", "-o", str(page))
        revealed = run_cli(*common, "--format", "html", "--reveal")
        truth = run_cli(*common, "--format", "json").findings()
    assert run.status == 1 and run.stdout == ""
    html = page.read_text()
    for text in (html, revealed.stdout, run.stderr, revealed.stderr):
        assert_no_key(text, list(keys.values()))
    assert len(truth) == len(keys) == 6

    dom, console = browser.dump(page)
    clean_page(dom, console)
    assert len(dom.rows) == len(truth) and len(dom.visible) == len(truth)
    assert sorted(r.verdict or "" for r in dom.rows) == sorted(
        f["verification"]["status"] for f in truth)
    assert {"live", "revoked", "unknown"} <= {r.verdict for r in dom.rows}
    assert dom.rows[0].verdict == "live"  # live keys first
    for f in truth:
        assert any(f["secret_redacted"] in r.text and f["location"]["path"] in r.text
                   for r in dom.rows), f["location"]["path"]
    # The planted names are text in cells, never elements.
    assert any(IMG_NAME in r.text for r in dom.rows)
    assert any(SCRIPT_PATH in r.text for r in dom.rows)
    unknown_row = next(r for r in dom.rows if r.verdict == "unknown")
    unknown = next(f for f in truth if f["verification"]["status"] == "unknown")
    assert unknown["verification"]["detail"] in unknown_row.text  # the reason shows
    assert "1 live key" in dom.all_text

    live, console = browser.dump(page, "#verdict=live")
    clean_page(live, console)
    assert [r.verdict for r in live.visible] == ["live"] and len(live.rows) == len(truth)
    app, _ = browser.dump(page, "#q=app.env")
    assert len(app.visible) == 2 and all("src/app.env" in r.text for r in app.visible)
    both, _ = browser.dump(page, "#verdict=revoked,unknown&q=.env")
    expected = [f for f in truth if f["verification"]["status"] in ("revoked", "unknown")
                and ".env" in f["location"]["path"]]
    assert len(both.visible) == len(expected) > 0
    none, _ = browser.dump(page, "#q=no-such-thing-anywhere")
    assert none.visible == [] and "No finding matches this filter." in none.all_text

    by_path, _ = browser.dump(page, "#sort=location&dir=desc")
    paths = [f["location"]["path"] for f in truth]
    shown = [next(p for p in paths if p + ":" in r.text) for r in by_path.rows]
    assert shown == sorted(paths, reverse=True)

    shot = tmp_path / "report.png"
    browser.screenshot(page, shot)
    assert_png(shot)


def test_cli_html_for_git_history_with_markup_in_names_and_messages(
        tmp_path: Path, browser: Browser) -> None:
    in_file, in_message, removed = make_key(), make_key(), make_key()
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / IMG_NAME).write_text(f"K={in_file}\n")
    (repo / "gone.env").write_text(f"K={removed}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add config")
    git(repo, "rm", "-q", "gone.env")
    git(repo, "commit", "-q", "--allow-empty", "-m",
        f"<script>document.body.dataset.pwned=1</script> rotate {in_message}")
    message_commit = git(repo, "rev-parse", "HEAD").strip()
    page = tmp_path / "history.html"
    run = run_cli("git", str(repo), "--format", "html", "-o", str(page), "--reveal")
    assert run.status == 1
    truth = run_cli("git", str(repo), "--format", "json").findings()
    html = page.read_text()
    assert_no_key(html, [in_file, in_message, removed])
    assert html.count("<script") == 2

    dom, console = browser.dump(page)
    clean_page(dom, console)
    assert_no_key(str(dom.rows) + dom.all_text, [in_file, in_message, removed])
    assert len(dom.rows) == len(truth) == 3
    kinds = sorted(f["git"]["kind"] for f in truth)
    assert kinds == ["blob", "blob", "commit-message"]
    message_row = next(r for r in dom.rows if "<commit-message>" in r.text)
    assert message_commit[:10] in message_row.text and "commit message" in message_row.text
    assert "Test Author <author@example.invalid>" in message_row.text
    assert any(IMG_NAME in r.text and "git blob" in r.text for r in dom.rows)
    assert "repo (git)" in dom.all_text  # the summary counts by repository

    only, console = browser.dump(page, "#q=" + message_commit[:10])
    clean_page(only, console)
    assert len(only.visible) == 1 and "<commit-message>" in only.visible[0].text


def test_reports_with_no_findings_say_what_was_covered(tmp_path: Path, browser: Browser) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "readme.txt").write_text("no keys here\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    # A scan that read nothing is not a clean result (exit 2), but its report is still written.
    for target, says, status in ((clean, "No Poelis API keys found in 1 file", 0),
                                 (empty, "The scan covered nothing", 2)):
        page = tmp_path / f"{target.name}.html"
        run = run_cli("scan", str(target), "--format", "html", "-o", str(page))
        assert run.status == status, run.stderr
        dom, console = browser.dump(page)
        clean_page(dom, console)
        assert dom.rows == [] and says in dom.all_text
        assert "Scan covered" in dom.all_text


def test_what_a_live_key_opens_is_shown(tmp_path: Path, browser: Browser) -> None:
    """``verification.access`` (filled by the access check) renders as "opens N workspaces"."""
    full, partial = finding(make_key(), "a.env"), finding(make_key(), "b.env")
    full.verification = Verdict("live", 200, None, None,
                                {"workspaces": 3, "products": 6, "complete": True,
                                 "workspace_names": ["Rockets", "<b>Moon</b>"]})
    partial.verification = Verdict("live", 200, None, None,
                                   {"workspaces": 1, "products": 250, "complete": False,
                                    "workspace_names": ["Big"]})
    page = tmp_path / "access.html"
    page.write_text(render("html", [full, partial], Stats(files_scanned=2),
                           context=ReportContext()).text)
    dom, console = browser.dump(page)
    clean_page(dom, console)
    texts = {r.text for r in dom.rows}
    assert any("opens 3 workspaces, 6 products" in t and "<b>Moon</b>" in t for t in texts)
    assert any("opens at least 1 workspace, 250 products" in t for t in texts)
    assert "b" not in dom.tags


def test_five_hundred_findings_all_render(tmp_path: Path, browser: Browser) -> None:
    keys = [make_key() for _ in range(500)]
    (tmp_path / "many").mkdir()
    for i in range(5):
        (tmp_path / "many" / f"dump{i}.txt").write_text("\n".join(keys[i * 100:(i + 1) * 100]))
    page = tmp_path / "many.html"
    assert run_cli("scan", str(tmp_path / "many"), "--format", "html", "-o",
                   str(page)).status == 1
    dom, console = browser.dump(page)
    clean_page(dom, console)
    assert len(dom.visible) == 500
    assert len({r.text for r in dom.rows}) == 500
    one_file, _ = browser.dump(page, "#q=dump3.txt")
    assert len(one_file.visible) == 100
    shot = tmp_path / "many.png"
    browser.screenshot(page, shot)
    assert_png(shot)
