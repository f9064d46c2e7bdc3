"""Key-shaped text in strings that came from outside, redacted before any report sees them.

A finding's own key is redacted where it is rendered. Other strings reach reports too: an API
server's ``X-Request-ID`` and error text, workspace names, git metadata. A hostile or careless
server can echo the ``Authorization`` header into any of them, so every such string passes
through :func:`redact_text` (or :func:`clean_external`, which also strips control characters
and bounds the length) on its way in.

Redaction here is deliberately wider than detection: any ``poelis_api_``/``poelis_live_``
token with 8 or more body characters is hidden, even one too short or too regular to be
reported as a finding, because a truncated echo of a key is still most of the key.
"""

from __future__ import annotations

import re
import unicodedata

from .grammar import MIN_BODY, PREFIX, redact

_API = PREFIX.decode("ascii")
_LEGACY = "poelis_live_"
# 8 body characters: "poelis_api_key" or "poelis_api_base" (identifiers) stay readable, a
# fragment long enough to narrow a key down does not.
_TOKEN = re.compile(r"poelis_(?:api|live)_[A-Za-z0-9_-]{8,}")


def _hide(match: re.Match[str]) -> str:
    token = match.group(0)
    if token.startswith(_API) and len(token) - len(_API) >= MIN_BODY:
        return redact(token)  # the form findings show: one key reads the same everywhere
    # A legacy credential or a fragment: show nothing of the body (``redact`` would show 7
    # characters, most of a short fragment).
    return (_API if token.startswith(_API) else _LEGACY) + "…"


def redact_text(text: str) -> str:
    """``text`` with every key-shaped token replaced by its redacted form."""
    if "poelis_" not in text:  # the common case costs one substring search
        return text
    return _TOKEN.sub(_hide, text)


# In names (files, archive members), only a token as long as a key's shortest plausible body:
# "poelis_api_settings.py" stays readable, "leak-poelis_api_<43 characters>.env" does not.
_NAME_TOKEN = re.compile(rf"poelis_(?:api|live)_[A-Za-z0-9_-]{{{MIN_BODY},}}")


def redact_name(name: str) -> str:
    """A file or member name with every key-long token in it redacted: a name is scanned
    content too, and reports, the state and logs must never carry a key through it."""
    if "poelis_" not in name:
        return name
    return _NAME_TOKEN.sub(_hide, name)


def _visible(char: str) -> bool:
    # Cc: C0/C1 controls (terminal escapes, CR/LF); Cf: format characters such as the
    # bidirectional overrides that make text read differently from what it holds.
    return unicodedata.category(char) not in ("Cc", "Cf")


def clean_external(text: str, limit: int = 200) -> str:
    """A string from outside made safe to report: no control characters, no key, bounded.

    Control characters go first, so that ``poelis_api_ab\\x00cd…`` cannot hide a key from the
    redaction by splitting it; the length bound comes last, so that a cut never leaves part of
    a key unredacted. Callers bound the input (answers are read up to 64 KiB).
    """
    visible = "".join(c for c in text if _visible(c))
    redacted = redact_text(visible)
    return redacted if len(redacted) <= limit else redacted[: limit - 1] + "…"
