"""Machine-readable reports: ``json`` (one envelope) and ``jsonl`` (one finding a line).

Both are written finding by finding (``Report.parts``): a flood of 200,000 findings rendered
as one string, through the standard library's pure-Python indenting encoder, took a gigabyte
and most of the run. The envelope is written by ``_indented``, which gives exactly the bytes
``json.dumps(envelope, indent=2)`` gives (the tests compare the two) at several times its speed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii
from typing import Any

from ..findings import Finding
from ..stats import Stats
from ..version import __version__
from . import REPORT_SCHEMA_VERSION, Report, ReportContext

_PER_PART = 512  # findings joined into one piece of output: few writes, little memory


def render(
    fmt: str, findings: list[Finding], stats: Stats, *, reveal: bool = False, color: bool = False,
    context: ReportContext,
) -> Report:
    if fmt == "jsonl":
        return Report(parts=lambda: _jsonl(findings, reveal))
    return Report(parts=lambda: _envelope(findings, stats, reveal))


def _jsonl(findings: list[Finding], reveal: bool) -> Iterator[str]:
    for at in range(0, len(findings), _PER_PART):
        yield "".join(json.dumps(f.to_dict(reveal)) + "\n"
                      for f in findings[at : at + _PER_PART])


def _envelope(findings: list[Finding], stats: Stats, reveal: bool) -> Iterator[str]:
    """``json.dumps(envelope, indent=2) + "\\n"``, a few hundred findings at a time."""
    head: list[str] = []
    _indented({"version": REPORT_SCHEMA_VERSION,
               "tool": {"name": "poelis-scan", "version": __version__}}, "", head)
    head.pop()  # the closing brace: the envelope goes on
    if not findings:
        yield "".join(head) + ',\n  "findings": [],\n  "stats": '
    else:
        yield "".join(head) + ',\n  "findings": ['
        separator = "\n    "
        for at in range(0, len(findings), _PER_PART):
            out: list[str] = []
            for finding in findings[at : at + _PER_PART]:
                out.append(separator)
                _indented(finding.to_dict(reveal), "    ", out)
                separator = ",\n    "
            yield "".join(out)
        yield '\n  ],\n  "stats": '
    tail: list[str] = []
    _indented(stats.to_dict(), "  ", tail)
    yield "".join(tail) + "\n}\n"


def _indented(value: Any, indent: str, out: list[str]) -> None:
    """Append ``value`` as ``json.dumps(value, indent=2)`` writes it when nested at ``indent``."""
    if isinstance(value, str):
        out.append(encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        separator = "{\n" + inner
        for key, item in value.items():
            out.append(separator)
            out.append(encode_basestring_ascii(key))
            out.append(": ")
            _indented(item, inner, out)
            separator = ",\n" + inner
        out.append("\n" + indent + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        separator = "[\n" + inner
        for item in value:
            out.append(separator)
            _indented(item, inner, out)
            separator = ",\n" + inner
        out.append("\n" + indent + "]")
    else:  # floats, keys that are not strings, anything rarer: the standard library decides
        out.append(json.dumps(value, indent=2).replace("\n", "\n" + indent))
