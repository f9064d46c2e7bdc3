"""A self-contained HTML report: one file a person opens from ``file://`` and reads.

The page is built only from the JSON form of the findings (``to_dict(reveal=False)``) and of
the stats, so it never depends on how findings are made, and it never holds a full key:
``--reveal`` is ignored, because an HTML file gets attached to tickets and mailed around.

Paths, refs and author names are attacker-controlled (anyone can commit a file named
``<script>.env``). So the data travels as one JSON document inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as ``\\u00XX``
(nothing in it can close the block or open a comment), the page's own script builds every row
with ``textContent``, and a Content-Security-Policy that allows only the page's own script and
style (by hash) stops anything else from running even if a bug let markup through. The page
loads nothing: no fonts, no images, no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterable
from typing import Any, Protocol

from ..version import __version__
from . import REPORT_SCHEMA_VERSION, Report, ReportContext


class _Finding(Protocol):
    """What this report needs of a finding (kept narrow so module moves do not touch it)."""

    @property
    def secret(self) -> str: ...

    @property
    def redacted(self) -> str: ...

    def to_dict(self, reveal: bool = False) -> dict[str, Any]: ...


class _Stats(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


# A run of key characters after a Poelis prefix, as it would appear in the JSON text. Only runs
# that hold one of the report's own keys are rewritten (see _scrub).
_KEYISH = re.compile(r"poelis_[A-Za-z0-9_-]{20,}")

_CSS = r"""
:root{--bg:#f6f7f9;--panel:#fff;--ink:#1f2328;--muted:#656d76;--line:#d8dee4;--head:#24292f;
--live:#c62828;--live-bg:#fdecea;--unk:#8a5a00;--unk-bg:#fff4d6;--unk-line:#e6b93c;
--rev:#8c959f;--unv:#57606a;--accent:#0969da;--zebra:#fafbfc;--hover:#eef4ff}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--panel:#161b22;--ink:#e6edf3;
--muted:#8d96a0;--line:#30363d;--head:#010409;--live:#ff6b6b;--live-bg:#3b1519;--unk:#e3b341;
--unk-bg:#3a2d0b;--unk-line:#9e7a1e;--rev:#6e7681;--unv:#8d96a0;--accent:#4493f8;
--zebra:#11161d;--hover:#1c2536}}
*{box-sizing:border-box}
[hidden]{display:none!important}
html{background:var(--bg);color:var(--ink)}
body{margin:0;font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,
sans-serif}
code,.mono{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",
monospace;font-size:12px}
header{background:var(--head);color:#f0f3f6;padding:12px 24px;display:flex;flex-wrap:wrap;
align-items:baseline;gap:4px 18px}
header h1{font-size:17px;margin:0;font-weight:600}
header .meta{color:#b6bfc8;font-size:12px}
header .meta code{color:#dfe5eb}
main{padding:16px 24px 32px;max-width:1800px}
.banner{border-radius:6px;padding:10px 14px;margin:0 0 14px;border:1px solid var(--line);
background:var(--panel)}
.banner.live{border-color:var(--live);background:var(--live-bg);color:var(--ink)}
.banner.live strong{color:var(--live)}
.banner.warn{border-color:var(--unk-line);background:var(--unk-bg)}
.banner.clean{border-color:#2da44e}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:10px;
margin-bottom:16px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:9px 12px;
min-width:0}
.card h2{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);
margin:0 0 6px;font-weight:600}
.card .big{font-size:26px;font-weight:600;line-height:1.1}
.card ul{list-style:none;margin:0;padding:0}
.card li{display:flex;justify-content:space-between;gap:10px;padding:1px 0}
.card li span:first-child{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.card li .n{font-variant-numeric:tabular-nums;font-weight:600}
.card h2.later{margin-top:8px}
.card .note{color:var(--muted);font-size:12px;margin-top:4px}
.toolbar{display:flex;flex-wrap:wrap;align-items:center;gap:8px 16px;background:var(--panel);
border:1px solid var(--line);border-bottom:0;border-radius:6px 6px 0 0;padding:8px 12px}
.toolbar fieldset{border:0;margin:0;padding:0;display:flex;gap:10px;align-items:center}
.toolbar legend{float:left;margin-right:6px;color:var(--muted);font-weight:600}
.toolbar label{display:inline-flex;align-items:center;gap:4px;cursor:pointer;white-space:nowrap}
.toolbar input[type=search]{flex:1 1 260px;max-width:480px;padding:5px 8px;border:1px solid
var(--line);border-radius:5px;background:var(--bg);color:var(--ink);font:inherit}
.toolbar .count{margin-left:auto;color:var(--muted);font-variant-numeric:tabular-nums}
.tablewrap{overflow-x:auto;background:var(--panel);border:1px solid var(--line);
border-radius:0 0 6px 6px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 10px;border-bottom:1px solid var(--line)}
thead th{position:sticky;top:0;background:var(--panel);z-index:1;padding:0;
box-shadow:inset 0 -1px 0 var(--line)}
th button{all:unset;display:block;padding:7px 10px;cursor:pointer;font-weight:600;
color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.04em;
white-space:nowrap}
th button:hover,th button:focus-visible{color:var(--accent)}
th[aria-sort=ascending] button::after{content:" \25B2";font-size:9px}
th[aria-sort=descending] button::after{content:" \25BC";font-size:9px}
tbody tr:nth-child(even){background:var(--zebra)}
tbody tr:hover{background:var(--hover)}
tr.v-live td:first-child{box-shadow:inset 3px 0 0 var(--live)}
tr.v-unknown td:first-child{box-shadow:inset 3px 0 0 var(--unk-line)}
tr.v-revoked{color:var(--rev)}
tr.v-revoked code{color:var(--rev)}
tr.suppressed{font-style:italic;opacity:.7}
.chip{display:inline-block;border-radius:10px;padding:0 8px;font-size:11px;font-weight:600;
line-height:18px;border:1px solid transparent;white-space:nowrap}
.chip.live{background:var(--live);color:#fff;font-weight:800;text-transform:uppercase;
letter-spacing:.03em}
.chip.unknown{background:var(--unk-bg);color:var(--unk);border-color:var(--unk-line)}
.chip.revoked{color:var(--rev);border-color:var(--line)}
.chip.unverified{color:var(--unv);border-color:var(--line)}
.chip.kind{background:var(--bg);color:var(--muted);border-color:var(--line);font-weight:500}
.chip.high{color:var(--ink);border-color:var(--muted)}
.chip.medium,.chip.low{color:var(--muted);border-color:var(--line);font-weight:500}
.verdict-cell{min-width:150px;max-width:300px}
.http{color:var(--muted);font-size:11px;margin-left:6px;white-space:nowrap}
.sub{display:block;color:var(--muted);font-size:12px}
.reason{display:block;color:var(--unk);font-size:12px}
.access{display:block;color:var(--live);font-weight:600;font-size:12px}
.loc{word-break:break-all}
.nowrap{white-space:nowrap}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:6px;
vertical-align:middle}
.dot.live{background:var(--live)}.dot.unknown{background:var(--unk-line)}
.dot.revoked{background:var(--rev)}.dot.unverified{background:var(--line);
border:1px solid var(--unv)}
.empty{padding:28px;text-align:center;color:var(--muted)}
footer{color:var(--muted);font-size:12px;padding:0 24px 24px}
"""

_JS = r"""
(function () {
  "use strict";
  var errors = [];
  function noteError(message) {
    errors.push(String(message));
    if (document.body) { document.body.setAttribute("data-errors", errors.join(" | ")); }
  }
  window.addEventListener("error", function (event) {
    noteError((event && event.message) || "script error");
  });
  document.addEventListener("securitypolicyviolation", function (event) {
    noteError("CSP blocked " + event.violatedDirective + " " + (event.blockedURI || "inline"));
  });

  var VERDICTS = ["live", "unknown", "unverified", "revoked"];
  var VERDICT_RANK = {live: 0, unknown: 1, unverified: 2, revoked: 3};
  var CONFIDENCE_RANK = {high: 0, medium: 1, low: 2};
  var KIND_LABEL = {blob: "git blob", note: "git note", "commit-message": "commit message",
                    "tag-message": "tag message"};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function plural(n, one, many) { return n + " " + (n === 1 ? one : (many || one + "s")); }
  function bytes(n) {
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    n = Number(n) || 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }
  function baseName(path) {
    var parts = String(path).split("/").filter(function (p) { return p; });
    return parts.length ? parts[parts.length - 1] : String(path);
  }

  function verdictOf(f) {
    var status = f.verification && f.verification.status;
    return VERDICT_RANK.hasOwnProperty(status) ? status : (status ? String(status) : "unverified");
  }
  function kindOf(f) {
    if (f.image) {
      if (f.image.layer_index === null || f.image.layer_index === undefined) {
        return "image config";
      }
      return f.image.deleted ? "image layer, deleted" : "image layer";
    }
    if (f.git) {
      var kind = f.git.kind || "git";
      return KIND_LABEL[kind] || String(kind).replace(/-/g, " ");
    }
    return f.location && f.location.member ? "archive member" : "file";
  }
  function placeOf(f) {
    if (f.image) { return String(f.image.reference) + " (image)"; }
    if (f.git && f.git.repository) { return baseName(f.git.repository) + " (git)"; }
    var path = (f.location && f.location.path) || "";
    var slash = path.indexOf("/");
    return slash > 0 ? path.slice(0, slash + 1) : "./";
  }
  function accessText(access) {
    if (!access || typeof access !== "object") { return null; }
    var w = Number(access.workspaces) || 0, p = Number(access.products) || 0;
    var text = "opens " + (access.complete === false ? "at least " : "") +
      plural(w, "workspace") + ", " + plural(p, "product");
    return text;
  }
  function shortDate(value) {
    if (!value) { return ""; }
    var s = String(value);
    return /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(s) ? s.slice(0, 16).replace("T", " ") : s;
  }

  function tally(findings, keyOf) {
    var counts = {};
    findings.forEach(function (f) {
      var key = keyOf(f);
      counts[key] = (counts[key] || 0) + 1;
    });
    return Object.keys(counts).map(function (k) { return [k, counts[k]]; })
      .sort(function (a, b) { return b[1] - a[1] || (a[0] < b[0] ? -1 : 1); });
  }

  function card(parent, title) {
    var box = add(parent, el("section", "card"));
    add(box, el("h2", null, title));
    return box;
  }
  function list(box, entries, dotClass) {
    var ul = add(box, el("ul"));
    entries.forEach(function (entry) {
      var li = add(ul, el("li"));
      var name = add(li, el("span"));
      if (dotClass) { add(name, el("span", "dot " + dotClass(entry[0]))); }
      add(name, document.createTextNode(entry[0]));
      name.title = entry[0];
      add(li, el("span", "n", entry[1]));
    });
    return ul;
  }

  function renderSummary(data, findings) {
    var stats = data.stats || {};
    var tool = data.tool || {};
    var meta = document.getElementById("meta");
    add(meta, document.createTextNode((tool.name || "poelis-scan") + " " + (tool.version || "")));
    if (data.root) {
      add(meta, document.createTextNode(" \u00b7 root "));
      add(meta, el("code", null, data.root));
    }
    if (data.generated_at) {
      add(meta, document.createTextNode(" \u00b7 " + data.generated_at));
    }

    var scanned = (stats.files_scanned || 0) + (stats.blobs_scanned || 0) +
      (stats.commits_scanned || 0) + (stats.tags_scanned || 0);
    var isGit = stats.hasOwnProperty("blobs_scanned");
    var isImage = stats.hasOwnProperty("images_scanned");
    scanned += (stats.images_scanned || 0) + (stats.layers_scanned || 0);
    var covered = [];
    if (isImage) {
      covered.push(plural(stats.images_scanned || 0, "image"));
      covered.push(plural(stats.layers_scanned || 0, "layer"));
    }
    if (stats.files_scanned || !isGit) { covered.push(plural(stats.files_scanned || 0, "file")); }
    if (isGit) {
      covered.push(plural(stats.blobs_scanned || 0, "blob"));
      covered.push(plural(stats.commits_scanned || 0, "commit"));
      if (stats.tags_scanned) { covered.push(plural(stats.tags_scanned, "tag")); }
    }
    var coveredText = covered.join(", ") + " (" + bytes(stats.bytes_scanned) + ")";

    var banners = document.getElementById("banners");
    var verdicts = {};
    findings.forEach(function (f) { verdicts[verdictOf(f)] = (verdicts[verdictOf(f)] || 0) + 1; });
    if (verdicts.live) {
      var b = add(banners, el("p", "banner live"));
      add(b, el("strong", null, plural(verdicts.live, "live key") + ": "));
      add(b, document.createTextNode("revoke now in Poelis Settings \u203a Manage REST API " +
        "Keys \u203a Revoke. Removing a key from the code or rewriting history does not " +
        "un-leak it."));
    }
    if (scanned === 0) {
      add(banners, el("p", "banner warn", "The scan covered nothing: no file or git object " +
        "was read. Check the paths, excludes and skipped counts below."));
    } else if (!findings.length) {
      add(banners, el("p", "banner clean", "No Poelis API keys found in " + coveredText + "."));
    }
    if (stats.history_cut) {
      add(banners, el("p", "banner warn", "History was cut short: not every commit was read."));
    }

    var cards = document.getElementById("cards");
    var total = card(cards, "Findings");
    add(total, el("div", "big", findings.length));
    var tallyText = VERDICTS.filter(function (v) { return verdicts[v]; })
      .map(function (v) { return verdicts[v] + " " + v; }).join(", ");
    add(total, el("div", "note", tallyText || "none"));
    if (findings.length && verdicts.unverified === findings.length) {
      add(total, el("div", "note", "Not verified: run with --verify to learn which keys " +
        "are live."));
    }

    if (findings.length) {
      list(card(cards, "By verification"), VERDICTS.map(function (v) {
        return [v, verdicts[v] || 0];
      }), function (v) { return v; });
      list(card(cards, "By location"), tally(findings, placeOf).slice(0, 8));
      list(card(cards, "By kind"), tally(findings, kindOf));
      list(card(cards, "By confidence"), tally(findings, function (f) {
        return f.confidence || "?";
      }));
      var encodings = tally(findings, function (f) { return f.encoding || "plain"; });
      if (encodings.length > 1 || (encodings[0] && encodings[0][0] !== "plain")) {
        list(card(cards, "By encoding"), encodings);
      }
    }

    var scan = card(cards, "Scan covered");
    var rows = [];
    if (!isGit || stats.files_scanned) { rows.push(["files", stats.files_scanned || 0]); }
    if (isImage) {
      rows.push(["images", stats.images_scanned || 0], ["layers", stats.layers_scanned || 0]);
    }
    if (isGit) {
      rows.push(["git blobs", stats.blobs_scanned || 0], ["commits", stats.commits_scanned || 0]);
      if (stats.tags_scanned) { rows.push(["tags", stats.tags_scanned]); }
    }
    rows.push(["bytes", bytes(stats.bytes_scanned)]);
    if (stats.archive_members_scanned) {
      rows.push(["archive members", stats.archive_members_scanned]);
    }
    if (stats.seconds !== undefined) { rows.push(["seconds", stats.seconds]); }
    list(scan, rows);

    var skippedEntries = Object.keys(stats.skipped || {}).map(function (k) {
      return [k, stats.skipped[k]];
    });
    var warnings = Object.keys(stats.warnings || {}).map(function (k) {
      return ["warning: " + k, stats.warnings[k]];
    });
    var hiddenEntries = [];
    if (stats.findings_below_confidence) {
      hiddenEntries.push(["below min confidence", stats.findings_below_confidence]);
    }
    if (stats.findings_filtered_by_results) {
      hiddenEntries.push(["filtered by --results", stats.findings_filtered_by_results]);
    }
    Object.keys(stats.suppressed || {}).forEach(function (k) {
      hiddenEntries.push(["suppressed (" + k + ")", stats.suppressed[k]]);
    });
    if (stats.baseline_stale) {
      hiddenEntries.push(["stale baseline entries", stats.baseline_stale]);
    }
    var all = skippedEntries.concat(warnings, hiddenEntries);
    add(scan, el("h2", "later", "Skipped / not shown"));
    if (all.length) { list(scan, all); } else { add(scan, el("div", "note", "nothing")); }
  }

  function provenanceCell(f, td) {
    add(td, el("span", "chip kind", kindOf(f)));
    if (f.image) { imageCell(f.image, td); return; }
    var g = f.git;
    if (!g) { return; }
    if (g.commit) {
      add(td, document.createTextNode(" "));
      var c = add(td, el("code", null, String(g.commit).slice(0, 10)));
      c.title = g.commit;
    }
    if (g.date) {
      var d = add(td, el("span", "http", shortDate(g.date)));
      d.title = g.date;
    }
    var line = add(td, el("span", "sub"));
    if (g.author || g.email) {
      add(line, document.createTextNode((g.author || "") + (g.email ? " <" + g.email + ">" : "")));
    }
    var refs = Array.isArray(g.refs) ? g.refs : [];
    if (refs.length) {
      var shown = refs.slice(0, 3).map(function (r) {
        return String(r).replace(/^refs\/(heads|tags|remotes)\//, "");
      }).join(", ");
      if (line.firstChild) { add(line, document.createTextNode(" \u00b7 ")); }
      var r = add(line, el("span", null, shown + (refs.length > 3 ? " +" +
        (refs.length - 3) + " more" : "")));
      r.title = refs.join("\n");
    }
    if (!line.firstChild) { td.removeChild(line); }
  }

  function imageCell(im, td) {
    if (im.layer_digest) {
      add(td, document.createTextNode(" "));
      var d = add(td, el("code", null, "layer " + im.layer_index + " " +
        String(im.layer_digest).slice(7, 19)));
      d.title = im.layer_digest;
    }
    if (im.digest_verified === false) { add(td, el("span", "http", "digest mismatch")); }
    var line = add(td, el("span", "sub", String(im.reference) +
      (im.platform ? " \u00b7 " + im.platform : "")));
    line.title = im.manifest_digest || "";
    if (im.created_by) {
      var step = add(td, el("span", "sub", String(im.created_by).slice(0, 120)));
      step.title = im.created_by;
    }
  }

  function verdictCell(f, verdict, td) {
    var v = f.verification || {};
    var chip = add(td, el("span", "chip " + verdict, verdict));
    if (v.detail && verdict !== "unknown") { chip.title = v.detail; }
    if (v.http_status) { add(td, el("span", "http", "HTTP " + v.http_status)); }
    var access = accessText(v.access);
    if (access) {
      var a = add(td, el("span", "access", access));
      var names = v.access && Array.isArray(v.access.workspace_names) ?
        v.access.workspace_names : [];
      if (names.length) {
        add(td, el("span", "sub", names.join(", ")));
        a.title = names.join("\n");
      }
    }
    if (v.detail && verdict === "unknown") { add(td, el("span", "reason", v.detail)); }
  }

  function searchText(f) {
    var g = f.git || {}, loc = f.location || {}, v = f.verification || {};
    var im = f.image || {};
    return [loc.path, loc.member, im.reference, im.layer_digest, im.created_by, g.commit,
            g.author, g.email, g.date, (g.refs || []).join(" "), g.kind, f.encoding,
            f.secret_redacted, f.secret_sha256, f.confidence, verdictOf(f),
            v.detail, kindOf(f), f.suppression && f.suppression.justification]
      .filter(function (x) { return x; }).join("\n").toLowerCase();
  }

  var withSuppression = false;  // the column shows only when a finding is suppressed

  function buildRow(f, index) {
    var verdict = verdictOf(f);
    var loc = f.location || {};
    var tr = el("tr", "finding v-" + verdict + (f.suppression ? " suppressed" : ""));
    tr.setAttribute("data-verdict", verdict);
    tr.setAttribute("data-index", String(index));

    verdictCell(f, verdict, add(tr, el("td", "verdict-cell")));
    add(add(tr, el("td", "nowrap")), el("code", null, f.secret_redacted || "\u2026"));
    var sha = add(add(tr, el("td")), el("code", null, String(f.secret_sha256 || "").slice(0, 12)));
    sha.title = f.secret_sha256 || "";

    var where = add(tr, el("td", "loc"));
    add(where, el("span", "mono",
      (loc.path || "") + ":" + (loc.line || 0) + ":" + (loc.column || 0)));
    if (loc.member) { add(where, el("span", "sub", "member " + loc.member)); }

    provenanceCell(f, add(tr, el("td")));
    add(tr, el("td", "nowrap", f.encoding || "plain"));
    var conf = add(add(tr, el("td")), el("span", "chip " + (f.confidence || ""),
      f.confidence || "?"));
    if (f.confidence_reason) { conf.title = f.confidence_reason; }
    if (!withSuppression) { return tr; }
    var sup = add(tr, el("td"));
    if (f.suppression) {
      add(sup, el("span", "chip kind", f.suppression.kind || "suppressed"));
      if (f.suppression.justification) {
        add(sup, el("span", "sub", f.suppression.justification));
      }
    }
    return tr;
  }

  var SORTS = {
    verdict: function (f) { var r = VERDICT_RANK[verdictOf(f)]; return [r === undefined ? 9 : r]; },
    key: function (f) { return [f.secret_redacted || ""]; },
    sha: function (f) { return [f.secret_sha256 || ""]; },
    location: function (f) {
      var l = f.location || {};
      return [l.path || "", l.member || "", l.line || 0, l.column || 0];
    },
    provenance: function (f) {
      var g = f.git || {};
      return [kindOf(f), g.date || "", g.commit || ""];
    },
    encoding: function (f) { return [f.encoding || ""]; },
    confidence: function (f) {
      var r = CONFIDENCE_RANK[f.confidence]; return [r === undefined ? 9 : r];
    },
    suppression: function (f) { return [f.suppression ? f.suppression.kind || "" : ""]; }
  };
  function compareKeys(a, b) {
    for (var i = 0; i < Math.max(a.length, b.length); i += 1) {
      if (a[i] < b[i]) { return -1; }
      if (a[i] > b[i]) { return 1; }
    }
    return 0;
  }

  function start() {
    var body = document.body;
    body.setAttribute("data-errors", errors.join(" | "));
    var data = JSON.parse(document.getElementById("report-data").textContent);
    var findings = Array.isArray(data.findings) ? data.findings : [];
    renderSummary(data, findings);
    withSuppression = findings.some(function (f) { return f.suppression; });
    if (!withSuppression) {
      var th = document.querySelector("th[data-sort=suppression]");
      th.parentNode.removeChild(th);
    }

    var tbody = document.getElementById("rows");
    var rows = findings.map(buildRow);
    var texts = findings.map(searchText);
    var search = document.getElementById("q");
    var boxes = document.getElementById("verdicts");
    var checks = {};
    var counts = {};
    findings.forEach(function (f) { counts[verdictOf(f)] = (counts[verdictOf(f)] || 0) + 1; });
    VERDICTS.forEach(function (v) {
      var label = add(boxes, el("label"));
      var box = add(label, el("input"));
      box.type = "checkbox";
      box.checked = true;
      box.value = v;
      box.id = "verdict-" + v;
      add(label, el("span", "chip " + v, v));
      add(label, el("span", "sub", String(counts[v] || 0)));
      checks[v] = box;
    });

    var sortState = {column: "verdict", dir: 1};
    var headers = Array.prototype.slice.call(document.querySelectorAll("th[data-sort]"));

    function applySort() {
      var keyOf = SORTS[sortState.column] || SORTS.verdict;
      var order = findings.map(function (f, i) {
        return {i: i, k: keyOf(f).concat(SORTS.verdict(f), SORTS.location(f), [i])};
      });
      order.sort(function (a, b) { return sortState.dir * compareKeys(a.k, b.k); });
      var fragment = document.createDocumentFragment();
      order.forEach(function (o) { fragment.appendChild(rows[o.i]); });
      tbody.appendChild(fragment);
      headers.forEach(function (th) {
        th.setAttribute("aria-sort", th.getAttribute("data-sort") === sortState.column ?
          (sortState.dir > 0 ? "ascending" : "descending") : "none");
      });
    }

    function applyFilter() {
      var query = search.value.trim().toLowerCase();
      var terms = query ? query.split(/\s+/) : [];
      var shown = 0;
      findings.forEach(function (f, i) {
        var verdict = verdictOf(f);
        var ok = checks[verdict] ? checks[verdict].checked : true;
        for (var t = 0; ok && t < terms.length; t += 1) {
          ok = texts[i].indexOf(terms[t]) !== -1;
        }
        rows[i].hidden = !ok;
        if (ok) { shown += 1; }
      });
      document.getElementById("count").textContent =
        "showing " + shown + " of " + plural(findings.length, "finding");
      document.getElementById("nomatch").hidden = !(findings.length && shown === 0);
      body.setAttribute("data-shown", String(shown));
    }

    function readHash() {
      var params = new URLSearchParams(location.hash.replace(/^#/, ""));
      var wanted = params.get("verdict");
      VERDICTS.forEach(function (v) {
        checks[v].checked = wanted === null ? true : wanted.split(",").indexOf(v) !== -1;
      });
      search.value = params.get("q") || "";
      var column = params.get("sort");
      if (column && SORTS[column]) {
        sortState = {column: column, dir: params.get("dir") === "desc" ? -1 : 1};
      }
    }

    function writeHash() {
      var params = new URLSearchParams();
      var on = VERDICTS.filter(function (v) { return checks[v].checked; });
      if (on.length !== VERDICTS.length) { params.set("verdict", on.join(",")); }
      if (search.value) { params.set("q", search.value); }
      if (sortState.column !== "verdict" || sortState.dir !== 1) {
        params.set("sort", sortState.column);
        if (sortState.dir < 0) { params.set("dir", "desc"); }
      }
      var text = params.toString();
      try {
        history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
      } catch (e) { /* a local file may refuse; the filter still applies */ }
    }

    headers.forEach(function (th) {
      th.querySelector("button").addEventListener("click", function () {
        var column = th.getAttribute("data-sort");
        sortState = {column: column, dir: sortState.column === column ? -sortState.dir : 1};
        applySort();
        writeHash();
      });
    });
    VERDICTS.forEach(function (v) {
      checks[v].addEventListener("change", function () { applyFilter(); writeHash(); });
    });
    search.addEventListener("input", function () { applyFilter(); writeHash(); });
    window.addEventListener("hashchange", function () { readHash(); applySort(); applyFilter(); });

    readHash();
    rows.forEach(function (row) { tbody.appendChild(row); });
    applySort();
    applyFilter();
    document.getElementById("findings").hidden = findings.length === 0;
    body.setAttribute("data-ok", "1");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      try { start(); } catch (e) { noteError(e && e.message ? e.message : e); }
    });
  } else {
    try { start(); } catch (e) { noteError(e && e.message ? e.message : e); }
  }
})();
"""

_COLUMNS = (("verdict", "Verification"), ("key", "Key"), ("sha", "SHA-256"),
            ("location", "Location"), ("provenance", "Provenance"), ("encoding", "Encoding"),
            ("confidence", "Confidence"), ("suppression", "Suppressed"))


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Only the page's own script and style may run: nothing is fetched, nothing is framed.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_csp_hash(_JS)}; style-src {_csp_hash(_CSS)}; "
    "img-src 'none'; base-uri 'none'; form-action 'none'"
)


def embed_json(value: Any) -> str:
    """JSON that is inert inside ``<script type="application/json">``.

    ``ensure_ascii`` turns every non-ASCII character (U+2028/U+2029 included, and lone
    surrogates from undecodable paths) into ``\\uXXXX``; ``<``, ``>`` and ``&`` follow, so no
    ``</script>`` or ``<!--`` can form. ``JSON.parse`` reads the escapes back unchanged.
    """
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _scrub(text: str, findings: Iterable[_Finding]) -> str:
    """Replace any of the report's keys that turns up in free text (a path named after a key).

    The finding dicts never hold a key, but a path, ref or author name is whatever the author
    of the content chose; a key hiding there must not reach the page either.
    """
    redacted = {f.secret: f.redacted for f in findings}
    if not redacted:
        return text

    def one(match: re.Match[str]) -> str:
        run = match.group(0)
        for secret, shown in redacted.items():
            if secret in run:
                run = run.replace(secret, _json_ascii(shown))
        return run

    return _KEYISH.sub(one, text)


def _json_ascii(text: str) -> str:
    """``text`` as it reads inside a JSON string written with ``ensure_ascii``."""
    return json.dumps(text, ensure_ascii=True)[1:-1]


def page(data: dict[str, Any], title: str = "poelis-scan report") -> str:
    """The whole HTML document for an already-built report document (``data``)."""
    head_cells = "".join(
        f'<th data-sort="{key}" aria-sort="none" scope="col"><button type="button">'
        f"{label}</button></th>" for key, label in _COLUMNS)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n"
        f"<style>{_CSS}</style>\n"
        f"<script>{_JS}</script>\n"
        "</head>\n"
        '<body data-errors="">\n'
        '<header><h1>poelis-scan report</h1><span class="meta" id="meta"></span></header>\n'
        "<main>\n"
        '<noscript><p class="banner warn">This report draws its summary and table with '
        "JavaScript; the data is in the <code>report-data</code> block of this file.</p>"
        "</noscript>\n"
        '<div id="banners"></div>\n'
        '<div class="cards" id="cards"></div>\n'
        '<section id="findings" hidden>\n'
        '<div class="toolbar">'
        '<fieldset id="verdicts"><legend>Verdict</legend></fieldset>'
        '<input type="search" id="q" placeholder="Filter by path, commit, author, encoding…" '
        'aria-label="Filter findings" autocomplete="off">'
        '<span class="count" id="count"></span></div>\n'
        '<div class="tablewrap"><table>'
        f"<thead><tr>{head_cells}</tr></thead>"
        '<tbody id="rows"></tbody></table>'
        '<p class="empty" id="nomatch" hidden>No finding matches this filter.</p></div>\n'
        "</section>\n"
        "</main>\n"
        "<footer>Keys are shown redacted; this file never holds a full key. "
        "The SHA-256 identifies a key without revealing it.</footer>\n"
        '<script type="application/json" id="report-data">'
        + embed_json(data)
        + "</script>\n</body>\n</html>\n"
    )


def render(fmt: str, findings: list[Any], stats: _Stats, *, reveal: bool = False,
           color: bool = False, context: ReportContext) -> Report:
    """The HTML page. ``reveal`` is ignored: a report file travels, a key must not."""
    chosen: list[_Finding] = findings
    entries = [f.to_dict(reveal=False) for f in chosen]
    for entry in entries:
        entry.pop("secret", None)  # whatever to_dict does after a refactor
    document: dict[str, Any] = {
        "version": REPORT_SCHEMA_VERSION,
        "tool": {"name": "poelis-scan", "version": __version__},
        "generated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "root": context.root,
        "findings": entries,
        "stats": stats.to_dict(),
    }
    live = sum(1 for e in entries if (e.get("verification") or {}).get("status") == "live")
    title = f"poelis-scan: {len(chosen)} finding{'s' if len(chosen) != 1 else ''}"
    if live:
        title += f", {live} live"
    return Report(_scrub(page(document, title), chosen))
