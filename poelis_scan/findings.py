"""The one finding type every source produces and every reporter reads, with its typed parts:
where the key sits (``Location``), where the content came from (``FileOrigin``,
``GitOrigin`` or ``ImageOrigin``), why it is not a leak (``Suppression``) and what the API
said (``Verdict``).

A finding keeps the full key in memory (verification needs it) but only ever shows it through
``to_dict(reveal=True)``: its ``repr`` and every default rendering carry the redacted form and
the SHA-256, so a stray log line or a failing test cannot leak it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .detect.grammar import API_RULE_ID, LEGACY_RULE_ID, Confidence, redact, secret_sha256
from .detect.redaction import clean_external, redact_name, redact_text
from .stats import Stats

if TYPE_CHECKING:
    from .scan.stream import LocatedMatch

RULE_ID = API_RULE_ID
# Every rule a finding can carry, in the order reports list them (SARIF rule indexes).
RULE_IDS = (API_RULE_ID, LEGACY_RULE_ID)
# What verification can say about a key (verify.py decides; --results filters on these).
VERIFICATION_STATUSES = ("live", "revoked", "unknown", "unverified")
# The all-zeros id git and CI use for "no commit"; GitLab's schema wants it outside git.
ZERO_SHA = "0" * 40


def fingerprint(rule_id: str, path: str, secret_hash: str) -> str:
    """Stable identity of "this key at this path": the same on every machine and every run.

    Built only from the rule, the repository-relative path and the secret's hash, so moving a
    line, rewriting history or scanning from another checkout does not change it.
    """
    return hashlib.sha256(f"{rule_id}\0{path}\0{secret_hash}".encode()).hexdigest()


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


@dataclass(frozen=True, slots=True)
class FileOrigin:
    """Content read from a file or standard input: the location says it all."""


@dataclass(frozen=True, slots=True)
class GitOrigin:
    """Content read from a git object, and the commit that put it where it was found.

    ``kind``: ``blob`` (a file in a commit), ``staged`` (the index), ``commit-message``,
    ``tag-message``, ``note`` (``commit`` is then the annotated object, ``notes_commit`` the
    notes commit) or ``unreachable`` (in the object store, reached by no ref or reflog);
    ``identity`` (an author, committer or tagger line of a commit or tag), ``commit-header``
    or ``tag-header`` (another header line: a signature, a merged tag), ``ref-name`` (the
    name of a ref). For a tag, ``author``/``email``/``date`` are the tagger's and ``refs``
    the refs pointing at it. ``author``, ``email`` and ``refs`` come from the repository and
    are redacted (``detect.redaction.redact_text``) before they get here.
    """

    kind: str
    blob: str  # the object that holds the key (a blob, commit or tag id)
    object_type: str
    repository: str
    commit: str | None = None
    author: str | None = None
    email: str | None = None
    date: str | None = None
    refs: tuple[str, ...] = ()
    notes_commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``git`` object of the JSON finding (DESIGN §6), its keys in their usual order."""
        out: dict[str, Any] = {"commit": self.commit, "kind": self.kind, "author": self.author,
                               "email": self.email, "date": self.date, "refs": list(self.refs)}
        if self.notes_commit is not None:
            out["notes_commit"] = self.notes_commit
        out.update(blob=self.blob, object_type=self.object_type, repository=self.repository)
        return out


@dataclass(frozen=True, slots=True)
class ImageOrigin:
    """Content read from a container image: which image, which layer (``None`` for the image
    config and manifest annotations), and whether a later layer deletes the path.

    ``created_by`` is image text, and a build argument in it may be a key: it is redacted when
    the origin is made (the key itself is reported by its own ``<config:history[i]>``
    finding), so no report or ``repr`` can carry it. ``digest_verified`` is false when the
    layer's bytes did not match its digest: scanned, but not what the image says it holds.
    """

    reference: str
    manifest_digest: str | None
    platform: str | None
    layer_digest: str | None
    layer_index: int | None
    created_by: str | None
    deleted: bool = False
    digest_verified: bool = True

    def __post_init__(self) -> None:
        if self.created_by is not None:
            object.__setattr__(self, "created_by", redact_text(self.created_by))

    def to_dict(self) -> dict[str, Any]:
        """The ``image`` object of the JSON finding (DESIGN §12); ``digest_verified`` only
        when it is false."""
        out: dict[str, Any] = {
            "reference": self.reference,
            "manifest_digest": self.manifest_digest,
            "platform": self.platform,
            "layer_digest": self.layer_digest,
            "layer_index": self.layer_index,
            "created_by": self.created_by,
            "deleted": self.deleted,
        }
        if not self.digest_verified:
            out["digest_verified"] = False
        return out

    def artifact_path(self, path: str) -> str:
        """Where SARIF and GitLab put a finding at ``path`` of this image:
        ``image/<reference>/layer-<i>/<path>``, or ``image/<reference>/config/<name>`` for
        config text, so that a code-scanning alert names the image (the path is no file of
        the repository). Relative always: a local reference's leading ``/`` is dropped."""
        if self.layer_index is None:
            inner = "config/" + path.strip("<>").split(":", 1)[-1]
        else:
            inner = f"layer-{self.layer_index}/{path}"
        return f"image/{self.reference.lstrip('/')}/{inner}"


Origin = FileOrigin | GitOrigin | ImageOrigin


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a finding does not fail the run: ``kind`` is inline, config or baseline."""

    kind: str
    justification: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "justification": self.justification}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the API said about one key (never the key itself).

    ``detail`` and ``request_id`` may quote the server; they are cleaned (no control
    characters, no key-shaped text, bounded length) when the verdict is made, so that no
    report, ``repr`` or log line can carry what a hostile server echoed.
    """

    status: str  # live | revoked | unknown | unverified
    http_status: int | None = None
    detail: str | None = None
    request_id: str | None = None
    access: dict[str, Any] | None = None  # what a live key opens (see Verifier._access)

    def __post_init__(self) -> None:
        if self.detail is not None:
            object.__setattr__(self, "detail", clean_external(self.detail, 300))
        if self.request_id is not None:
            object.__setattr__(self, "request_id", clean_external(self.request_id, 128))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "http_status": self.http_status,
                               "detail": self.detail, "request_id": self.request_id}
        if self.access is not None:
            out["access"] = self.access
        return out


UNVERIFIED = Verdict("unverified")
_FILE = FileOrigin()


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
    origin: Origin = _FILE
    verification: Verdict = UNVERIFIED
    inline_allow: bool = False  # an allow comment sits next to the key (not reported as such)
    suppression: Suppression | None = None  # set by triage
    # Other plausible keys in the same bytes (see ``Match.alternatives``): verification tries
    # them when ``secret`` is not live. Never shown, never in a report.
    alternatives: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        # A file or member name may itself hold a key (``leak-poelis_api_….env``): names are
        # redacted as the finding is made, so no report, state row or log line carries one.
        location = self.location
        location.path = redact_name(location.path)
        if location.member is not None:
            location.member = redact_name(location.member)
        self.display_path = redact_name(self.display_path)

    @property
    def git(self) -> GitOrigin | None:
        return self.origin if isinstance(self.origin, GitOrigin) else None

    @property
    def image(self) -> ImageOrigin | None:
        return self.origin if isinstance(self.origin, ImageOrigin) else None

    @property
    def artifact_path(self) -> str:
        """The path a report that points into a checkout (SARIF, GitLab) shows."""
        image = self.image
        path = self.location.path
        return image.artifact_path(path) if image is not None else path

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
           origin: Origin = _FILE) -> Finding:
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
            rule_id=match.rule_id,
            origin=origin,
            inline_allow=located.inline_allow,
            alternatives=match.alternatives,
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
        git, image = self.git, self.image
        out.update(
            {
                "confidence": self.confidence.value,
                "confidence_reason": self.reason,
                "encoding": self.encoding,
                "location": self.location.to_dict(),
                "git": git.to_dict() if git is not None else None,
                **({"image": image.to_dict()} if image is not None else {}),
                "verification": self.verification.to_dict(),
                "fingerprint": self.fingerprint,
            }
        )
        if self.suppression is not None:
            out["suppression"] = self.suppression.to_dict()
        return out


def report_order(finding: Finding) -> tuple[str, int, int, str]:
    """The one order of findings in every report: path, line, column, then commit (or, in
    images, the reference and manifest holding the layer)."""
    loc = finding.location
    origin = finding.origin
    if isinstance(origin, GitOrigin):
        last = origin.commit or ""
    elif isinstance(origin, ImageOrigin):
        last = f"{origin.reference}\0{origin.manifest_digest or ''}"
    else:
        last = ""
    return (loc.path, loc.line, loc.column, last)


@dataclass(slots=True)
class ScanResult:
    """The findings at or above the confidence floor, in ``report_order``, and what the scan
    covered."""

    findings: list[Finding]
    stats: Stats
