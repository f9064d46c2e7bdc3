"""The image source's part of a scan: the work plan (each distinct layer once), the worker body
that reads one layer through the content pipeline, and the findings with their provenance.

``pipeline.scan_image`` runs it like every other source: ``plan`` resolves the references and
says which layers to read, ``run_batches`` hands layer numbers to ``scan_layer`` (forked
workers inherit the plan, so only a number crosses the pipe), and ``findings`` attributes
each layer's hits to every image that holds it, marking the files a later layer deletes.

A layer whose blob does not match its digest is still scanned (the bytes were seen, and a key
in them is a key someone can download): its findings carry ``digest_verified: false``, the run
warns and exits 2, and the layer is not counted as scanned. Hiding such findings would turn a
tampered or corrupt transfer into a silent false negative.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from io import BufferedIOBase

from ...detect.grammar import redact
from ...detect.matches import find_matches
from ...findings import Finding
from ...paths import printable_path
from ...scan.readers import scan_buffer, scan_pipe
from ...scan.stream import CHUNK_SIZE, LocatedMatch, StreamResult
from ...settings import ScanSettings
from ...stats import Batch, Skip
from .layers import LayerReader, LayerUse, Removals, deleted, iter_unique_layers
from .model import BlobError, Image, ImageError, Layer, Platform
from .reference import classify, forget, open_reference

# Warning kinds after which something was not read (or not verified): the run exits 2.
UNREAD = frozenset({"image_error", "layer_error", "missing_blob", "digest_mismatch",
                    "unknown_media_type", "unsupported_compression", "layer_too_large"})

SMALL_FILE = CHUNK_SIZE  # a layer file up to one window is read whole: one search, no windows


@dataclass(slots=True)
class LayerScan:
    """What one distinct layer held, whichever images hold it (sent back by a worker)."""

    number: int  # position in the plan
    hits: list[tuple[str, LocatedMatch]] = field(default_factory=list)
    removals: Removals | None = None  # None: the layer was not read to its end
    verified: bool = True


@dataclass(slots=True)
class Plan:
    """The images the references resolved to and each distinct layer once."""

    images: list[Image]
    uses: list[LayerUse]

    def known_size(self) -> int | None:
        """Bytes of the layers as stored, when every size is known (a docker archive says
        none): decides whether a scan is small."""
        sizes = [use.layer.size for use in self.uses]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)


def plan(refs: Iterable[str], platform: Platform | None,
         warn: Callable[[Skip], None]) -> Plan:
    """Classify every reference first (one that names no image is an ``ImageError``, before
    any work), then resolve each into images; what cannot be read goes to ``warn``."""
    try:
        classified = [classify(text) for text in refs]
        images: list[Image] = []
        for ref in classified:
            def blob_warning(error: BlobError, where: str = ref.text) -> None:
                warn(_note([where], error.kind, str(error)))

            try:
                images.extend(open_reference(ref, platform, blob_warning))
            except BlobError as error:
                warn(_note([ref.text], error.kind, str(error)))
            except ImageError as error:
                warn(_note([ref.text], "image_error", str(error)))
    finally:
        forget()
    return Plan(images, list(iter_unique_layers(images)))


def _scan_file(stream: BufferedIOBase, size: int, name: str,
               settings: ScanSettings) -> StreamResult:
    """One file of a layer. Most are small: read whole and scanned as one buffer; larger ones
    are streamed in bounded memory (an archive among them spooled, within the limits)."""
    if size <= SMALL_FILE:
        return scan_buffer(stream.read(size), name, settings)
    return scan_pipe(stream.readinto, name, settings)


def _note(names: Iterable[str], kind: str, message: str) -> Skip:
    """A warning about ``names`` (the images concerned); the reading code already starts some
    messages with the image's name, which is not repeated."""
    shown = sorted(set(names))
    for name in shown:
        message = message.removeprefix(f"{name}: ")
    return Skip(", ".join(shown), kind, message)


def _holders(use: LayerUse) -> list[str]:
    return [image.name for image, _ in use.holders]


def _read_layer(use: LayerUse, out: Batch[LayerScan], scan: LayerScan,
                settings: ScanSettings) -> None:
    layer = use.layer
    image = use.holders[0][0]
    raw = image.open_layer(layer)
    try:
        reader = LayerReader(layer, raw)
        for entry in reader:
            result = _scan_file(entry.stream, entry.size, posixpath.basename(entry.path),
                                settings)
            out.scanned["file"] += 1
            out.size += result.size
            out.members += result.members
            out.expanded += result.expanded
            scan.hits.extend((entry.path, lm) for lm in result.matches)
            if result.notes:
                where = f"{image.name}@{layer.digest[:19]}:{printable_path(entry.path)}"
                out.notes.extend(Skip(where, kind, msg) for kind, msg in result.notes)
        blob_ok, diff_ok = reader.finish()
        scan.removals = reader.removals
        if blob_ok and diff_ok:
            out.scanned["layer"] += 1
            return
        scan.verified = False
        what = "blob" if not blob_ok else "uncompressed content (diff_id)"
        raise BlobError(f"layer {layer.digest}: {what} does not match its digest; scanned, "
                        "findings marked digest_verified=false", layer.digest, "digest_mismatch")
    finally:
        close = getattr(raw, "close", None)
        if close is not None:
            close()


def scan_layer(number: int, uses: list[LayerUse], settings: ScanSettings) -> Batch[LayerScan]:
    """Worker body: read layer ``number`` of the plan, every regular file of it through the
    same readers as files on disk (encodings, a jar inside the layer, limits). A layer that
    cannot be read, or not to its end, is a warning naming its images and digest; what was
    read before the damage stands."""
    use = uses[number]
    out: Batch[LayerScan] = Batch()
    scan = LayerScan(number)
    try:
        _read_layer(use, out, scan, settings)
    except BlobError as error:
        out.notes.append(_note(_holders(use), error.kind, str(error)))
    except (OSError, ImageError) as error:
        out.notes.append(_note(_holders(use), "layer_error",
                               f"layer {use.layer.digest} cannot be read ({error})"))
    except Exception as error:  # a bug must cost one layer, not the whole scan
        out.notes.append(_note(_holders(use), "layer_error",
                               f"layer {use.layer.digest}: internal error "
                               f"({type(error).__name__}), please report it"))
    out.found.append(scan)
    return out


def _hide_keys(text: str | None, settings: ScanSettings) -> str | None:
    """Provenance text from the image (``created_by``) with every key in it redacted, in any
    encoding the scan knows (a base64 build argument too); ``ImageOrigin`` then redacts any
    plain key-shaped fragment left."""
    if text is None or not text:
        return text
    data = text.encode("utf-8", "surrogateescape")
    matches = find_matches(data, settings=settings)
    if not matches:
        return text
    pieces, last = [], 0
    for match in sorted(matches, key=lambda m: m.start):
        if match.start < last:
            continue
        pieces += [data[last:match.start], redact(match.secret).encode()]
        last = match.end
    pieces.append(data[last:])
    return b"".join(pieces).decode("utf-8", "replace")


def _config_findings(image: Image, settings: ScanSettings) -> list[Finding]:
    """Keys in the config text (``Env``, ``Labels``, history, annotations): small, read here."""
    out: list[Finding] = []
    origin = image.origin(None)
    for entry in image.config:
        result = scan_buffer(entry.text.encode("utf-8", "surrogateescape"), "", settings,
                             archives=False)
        out.extend(Finding.at(lm, entry.location, f"{image.name}@{entry.location}", origin)
                   for lm in result.matches)
    return out


def _layer_with_safe_history(layer: Layer, settings: ScanSettings) -> Layer:
    hidden = _hide_keys(layer.created_by, settings)
    return layer if hidden == layer.created_by else replace(layer, created_by=hidden)


def findings(found: Plan, scans: list[LayerScan], settings: ScanSettings) -> list[Finding]:
    """Every finding of every image: its config's, and each of its layers' hits, with the
    image's provenance (a layer's hits once per image that holds it)."""
    by_identity = {found.uses[s.number].layer.identity: s for s in scans}
    out: list[Finding] = []
    for image in found.images:
        out += _config_findings(image, settings)
        stack = [getattr(by_identity.get(layer.identity), "removals", None)
                 for layer in image.layers]
        for layer in image.layers:
            scan = by_identity.get(layer.identity)
            if scan is None or not scan.hits:
                continue
            shown = _layer_with_safe_history(layer, settings)
            for path, lm in scan.hits:
                origin = image.origin(shown, deleted(stack, layer.index, path), scan.verified)
                name = printable_path(path)
                out.append(Finding.at(lm, name, f"{image.name}@layer[{layer.index}]:{name}",
                                      origin))
    return out
