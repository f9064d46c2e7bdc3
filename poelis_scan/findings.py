"""The one finding type every source produces and every reporter reads.

A finding keeps the full key in memory (verification needs it) but only ever shows it through
``to_dict(reveal=True)``: its ``repr`` and every default rendering carry the redacted form and
the SHA-256, so a stray log line or a failing test cannot leak it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .grammar import PREFIX, Confidence

if TYPE_CHECKING:
    from .content import LocatedMatch

RULE_ID = "poelis-api-key"
# What verification can say about a key (verify.py decides; --results filters on these).
VERIFICATION_STATUSES = ("live", "revoked", "unknown", "unverified")
_PREFIX_TEXT = PREFIX.decode("ascii")


def redact(secret: str) -> str:
    """``poelis_api_yyRC…CIE``: enough to recognise a key you hold, not enough to use it."""
    if not secret.startswith(_PREFIX_TEXT):
        return "…"
    body = secret[len(_PREFIX_TEXT) :]
    return f"{_PREFIX_TEXT}{body[:4]}…{body[-3:]}"


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def fingerprint(rule_id: str, path: str, secret_hash: str) -> str:
    """Stable identity of "this key at this path": the same on every machine and every run.

    Built only from the rule, the repository-relative path and the secret's hash, so moving a
    line, rewriting history or scanning from another checkout does not change it.
    """
    return hashlib.sha256(f"{rule_id}\0{path}\0{secret_hash}".encode()).hexdigest()


def printable_path(path: str) -> str:
    """A path that is valid UTF-8 text: undecodable bytes become ``\\xNN`` escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(slots=True)
class Location:
    """Where a key sits. ``path`` is repository- or scan-root-relative, with ``/`` separators."""

    path: str
    line: int
    column: int
    end_column: int
    member: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_column": self.end_column,
            "member": self.member,
        }


@dataclass(slots=True)
class Finding:
    """One key at one location. ``display_path`` is the path as the user would open it."""

    secret: str = field(repr=False)
    confidence: Confidence
    reason: str
    location: Location
    display_path: str
    encoding: str = "plain"
    rule_id: str = RULE_ID
    git: dict[str, Any] | None = None
    verification: dict[str, Any] = field(
        default_factory=lambda: {"status": "unverified", "http_status": None,
                                 "detail": None, "request_id": None}
    )
    inline_allow: bool = False  # an allow comment sits next to the key (not reported as such)
    suppression: dict[str, str] | None = None  # {"kind", "justification"} once suppressed

    @property
    def secret_sha256(self) -> str:
        return secret_sha256(self.secret)

    @property
    def redacted(self) -> str:
        return redact(self.secret)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule_id, self.location.path, self.secret_sha256)

    @classmethod
    def at(cls, located: LocatedMatch, path: str, display_path: str,
           git: dict[str, Any] | None = None) -> Finding:
        """The finding for a located match in the content reported as ``path``."""
        match = located.match
        return cls(
            secret=match.secret,
            confidence=match.confidence,
            reason=match.reason,
            location=Location(path, located.line, located.column, located.end_column,
                              located.member),
            display_path=display_path,
            encoding=match.encoding,
            git=git,
            inline_allow=located.inline_allow,
        )

    def __repr__(self) -> str:
        return (
            f"Finding({self.redacted!r}, {self.location.path!r}:{self.location.line}:"
            f"{self.location.column}, {self.confidence.value})"
        )

    def to_dict(self, reveal: bool = False) -> dict[str, Any]:
        """The finding of DESIGN §6; ``secret`` is present only when ``reveal`` is true."""
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "secret_sha256": self.secret_sha256,
            "secret_redacted": self.redacted,
        }
        if reveal:
            out["secret"] = self.secret
        out.update(
            {
                "confidence": self.confidence.value,
                "confidence_reason": self.reason,
                "encoding": self.encoding,
                "location": self.location.to_dict(),
                "git": self.git,
                "verification": self.verification,
                "fingerprint": self.fingerprint,
            }
        )
        if self.suppression is not None:
            out["suppression"] = self.suppression
        return out
