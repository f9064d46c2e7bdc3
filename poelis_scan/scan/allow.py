"""Inline allow comments: ``poelis-scan: allow`` (or detect-secrets' ``pragma: allowlist
secret``) in a comment on a key's line or the line before silences that finding.

The marker counts only where a person deliberately wrote a comment: inside a comment of the
line's language family (``#``, ``//``, ``/* */``, ``<!-- -->``, ``--``, ``;``, ``REM``), as whole
words. Text in a string literal (``s = "poelis-scan: allow"``) or a longer word
(``poelis-scan: allowed?``) is data, and data must never silence the scanner: a generated file
or a test fixture that merely mentions the marker would otherwise hide a real key.

Strings are recognised by their quotes (``"``, ``'``, `````), with backslash escapes, and only
when they close on the same line, so an apostrophe in prose (``it's``) does not swallow the
rest of the line.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"(?<![\w-])(?:poelis-scan:[ \t]*allow|pragma:[ \t]*allowlist[ -]secret)"
                     r"(?![\w-])", re.IGNORECASE)
# Openers whose comment runs to the end of the line, or to a closer on the same line.
_LINE_OPENERS = ("//", "#")
# SQL and Lua ``--``, but not a command line's ``--option``: followed by a blank or the end.
_DASHES = re.compile(r"--(?:[ \t]|$)")
_BLOCK_OPENERS = {"/*": "*/", "<!--": "-->"}
# Whole-line comments: a batch file's REM and ::, and the body lines of a /* */ block.
_LINE_START = re.compile(r"[ \t]*(?:(?:REM|rem|Rem)(?:[ \t]|$)|::|\*(?!/))")
_QUOTES = "\"'`"


def _string_end(line: str, start: int) -> int:
    """Index just past the string literal opened at ``start``, or -1 if it does not close."""
    quote = line[start]
    index = start + 1
    while index < len(line):
        char = line[index]
        if char == "\\":
            index += 2
            continue
        if char == quote:
            return index + 1
        index += 1
    return -1


def _comment_spans(line: str) -> list[tuple[int, int]]:
    """The parts of ``line`` that are comment text (start, end), strings excluded."""
    if _LINE_START.match(line):
        return [(0, len(line))]
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char in _QUOTES:
            end = _string_end(line, index)
            if end != -1:
                index = end
                continue
        for opener, closer in _BLOCK_OPENERS.items():
            if line.startswith(opener, index):
                close = line.find(closer, index + len(opener))
                end = len(line) if close == -1 else close
                spans.append((index + len(opener), end))
                index = end + (len(closer) if close != -1 else 0)
                break
        else:
            if any(line.startswith(opener, index) for opener in _LINE_OPENERS) or (
                    char == "-" and (_DASHES.match(line, index) or (
                        index == 0 and line.startswith("--")))):
                spans.append((index, len(line)))
                return spans
            if char == ";":
                # ``;`` ends statements in many languages and starts comments in others
                # (INI, assembly, Lisp): what follows still has its strings recognised.
                spans.extend(_semicolon_spans(line, index + 1))
                return spans
            index += 1
            continue
        continue
    return spans


def _semicolon_spans(line: str, start: int) -> list[tuple[int, int]]:
    """Comment text after a ``;``: the rest of the line minus its closed string literals."""
    spans: list[tuple[int, int]] = []
    index = segment = start
    while index < len(line):
        if line[index] in _QUOTES and (end := _string_end(line, index)) != -1:
            spans.append((segment, index))
            index = segment = end
            continue
        index += 1
    spans.append((segment, len(line)))
    return spans


def allowed_in_comment(text: bytes) -> bool:
    """Whether one line of text carries the allow marker inside a comment."""
    line = text.decode("utf-8", "replace").rstrip("\r")
    markers = [m.span() for m in _MARKER.finditer(line)]
    if not markers:
        return False
    spans = _comment_spans(line)
    return any(a <= start and end <= b for start, end in markers for a, b in spans)
