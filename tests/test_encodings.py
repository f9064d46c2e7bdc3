"""Keys written in UTF-16, base64 and hex: found through their own needles, with positions."""

from __future__ import annotations

import base64
import binascii
import codecs
from pathlib import Path

import pytest
from conftest import make_key, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from poelis_scan import Confidence, scan_bytes
from poelis_scan.detect.encodings import ALL_NEEDLES as NEEDLES
from poelis_scan.detect.engines import find_searcher, searcher
from poelis_scan.detect.matches import Match, _drop_overlapping_duplicates


def found(data: bytes) -> list[tuple[str, str]]:
    return [(m.secret, m.encoding) for m in scan_bytes(data, min_confidence="high")]


@pytest.mark.parametrize("codec, bom, label", [
    ("utf-16-le", b"", "utf-16le"),
    ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16le"),
    ("utf-16-be", b"", "utf-16be"),
    ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16be"),
])
def test_utf16_with_and_without_bom(tmp_path: Path, codec: str, bom: bytes, label: str) -> None:
    k = make_key()
    text = f"# PowerShell profile\r\n$env:POELIS_API_KEY = '{k}'\r\nWrite-Host 'ok'\r\n"
    (tmp_path / "profile.ps1").write_bytes(bom + text.encode(codec))
    (f,) = run_cli("scan", str(tmp_path), "--format", "json").findings()
    assert f["encoding"] == label
    assert f["secret_redacted"] == f"{k[:15]}…{k[-3:]}"
    # The decoded text's line and column: line 2, after "$env:POELIS_API_KEY = '".
    assert (f["location"]["line"], f["location"]["column"]) == (2, 24)
    assert f["location"]["end_column"] == 24 + len(k)


def test_utf16_key_at_the_very_start() -> None:
    k = make_key()
    assert found(k.encode("utf-16-le")) == [(k, "utf-16le")]
    assert found(k.encode("utf-16-be")) == [(k, "utf-16be")]


@pytest.mark.parametrize("lead", range(6))
@pytest.mark.parametrize("urlsafe", [False, True])
def test_base64_at_every_alignment(lead: int, urlsafe: bool) -> None:
    k = make_key()
    payload = b"#" * lead + b"KEY=" + k.encode() + b"\nOTHER=1\n"
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(payload)
    hits = found(b"value: " + encoded + b"\n")
    assert [h[0] for h in hits] == [k]
    if b"-" in encoded or b"_" in encoded:
        assert hits[0][1] == "base64url"
    elif b"+" in encoded or b"/" in encoded:
        assert hits[0][1] == "base64"


@settings(max_examples=150, deadline=None)
@given(before=st.binary(max_size=60), after=st.binary(max_size=60), urlsafe=st.booleans())
def test_base64_inside_arbitrary_encoded_bytes(before: bytes, after: bytes, urlsafe: bool) -> None:
    k = make_key()
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    data = encode(before + b" " + k.encode() + b" " + after)
    assert k in [m.secret for m in scan_bytes(b"x " + data + b" y")]


def test_whole_base64_encoded_env_file(tmp_path: Path) -> None:
    k = make_key()
    env = f"DATABASE_URL=postgres://db/app\nPOELIS_API_KEY={k}\nDEBUG=0\n".encode()
    (tmp_path / "env.b64").write_bytes(base64.b64encode(env))
    (f,) = run_cli("scan", str(tmp_path), "--format", "json").findings()
    assert f["encoding"] == "base64"  # b64encode never writes "-" or "_"
    assert f["location"]["line"] == 1


@pytest.mark.parametrize("width, newline", [(76, b"\n"), (64, b"\n"), (76, b"\r\n"),
                                            (64, b"\r\n")])
def test_wrapped_base64_wherever_the_breaks_fall(width: int, newline: bytes) -> None:
    """`base64 FILE` wraps at 76, PEM and OpenSSL at 64: keys are found wherever a break cuts
    the encoded prefix or body (the 14 stable characters are searched as two halves)."""
    for lead in range(0, 2 * width, 3):
        k = make_key()
        encoded = base64.b64encode(b"x" * lead + b"\n" + k.encode() + b"\nDEBUG=0\n" * 9)
        wrapped = newline.join(encoded[i : i + width] for i in range(0, len(encoded), width))
        assert [m.secret for m in scan_bytes(b"-----BEGIN-----\n" + wrapped)] == [k], lead


def test_base64_values_one_per_line_are_not_joined() -> None:
    """A list of encoded values, one per line, is not a wrapped encoding: no key grows."""
    keys = [make_key() for _ in range(4)]
    text = b"\n".join(base64.b64encode(k.encode()) for k in keys) + b"\n"
    assert [m.secret for m in scan_bytes(text)] == keys
    env = b"".join(b"K%d=" % i + base64.b64encode(k.encode()) + b"\n" for i, k in enumerate(keys))
    assert [m.secret for m in scan_bytes(env)] == keys


def test_kubernetes_secret_manifest(tmp_path: Path) -> None:
    k = make_key()
    value = base64.b64encode(k.encode()).decode()
    manifest = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: poelis\ntype: Opaque\n"
        f"data:\n  POELIS_API_KEY: {value}\n  OTHER: {base64.b64encode(b'hello').decode()}\n"
    )
    (tmp_path / "secret.yaml").write_text(manifest)
    (f,) = run_cli("scan", str(tmp_path), "--format", "json").findings()
    assert f["encoding"] == "base64"
    assert (f["location"]["line"], f["location"]["column"]) == (7, 19)


@pytest.mark.parametrize("upper", [False, True])
def test_hex_encoded_key(upper: bool) -> None:
    k = make_key()
    digits = binascii.hexlify(k.encode())
    digits = digits.upper() if upper else digits
    assert found(b"blob = 0x" + digits + b";\n") == [(k, "hex")]
    assert found(b"blob = " + b"00" + digits + b"0a\n") == [(k, "hex")]


def test_glued_encoded_prefix_is_not_a_key() -> None:
    k = make_key()
    assert found(base64.b64encode(b"x" + k.encode())) == []
    assert found(binascii.hexlify(b"A" + k.encode())) == []
    assert found(("A" + k).encode("utf-16-le")) == []


def test_encoded_decoys_stay_low() -> None:
    decoy = "poelis_api_base_url_for_production_environment"
    matches = scan_bytes(base64.b64encode(decoy.encode()))
    assert [(m.confidence, m.encoding) for m in matches] == [(Confidence.LOW, "base64")]


def test_a_key_found_twice_in_the_same_bytes_is_reported_once() -> None:
    k = make_key()
    plain = Match(10, 10 + len(k), k, Confidence.HIGH, "random-looking body", "plain")
    same_bytes = Match(8, 90, k, Confidence.HIGH, "random-looking body", "base64")
    elsewhere = Match(200, 280, k, Confidence.HIGH, "random-looking body", "base64")
    kept = _drop_overlapping_duplicates([same_bytes, elsewhere, plain])
    assert [(m.start, m.encoding) for m in kept] == [(10, "plain"), (200, "base64")]


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(st.binary(max_size=120), st.sampled_from(["plain", "b64", "hex", "u16"])),
        max_size=10,
    )
)
def test_engines_agree(pieces: list[bytes | str]) -> None:
    """Hyperscan (when installed) and bytes.find return exactly the same needle hits."""
    encoders = {
        "plain": lambda k: k,
        "b64": base64.b64encode,
        "hex": binascii.hexlify,
        "u16": lambda k: k.decode().encode("utf-16-le"),
    }
    data = b"".join(
        b" " + encoders[p](make_key().encode()) + b" " if isinstance(p, str) else p for p in pieces
    )
    def hits(search) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
        return sorted((pos, NEEDLES.index(n)) for pos, n in search(data, 0, len(data), len(data)))

    assert hits(searcher()) == hits(find_searcher(NEEDLES))


def test_no_decode_finds_plain_keys_only(tmp_path: Path) -> None:
    plain_key, encoded_key = make_key(), make_key()
    encoded = base64.b64encode(encoded_key.encode()).decode()
    (tmp_path / "a.env").write_text(f"A={plain_key}\nB={encoded}\n")
    both = run_cli("scan", str(tmp_path), "--format", "json").findings()
    assert sorted(f["encoding"] for f in both) == ["base64", "plain"]
    (only,) = run_cli("scan", str(tmp_path), "--format", "json", "--no-decode").findings()
    assert only["encoding"] == "plain"


def test_pure_python_engine_reports_the_same_findings(tmp_path: Path) -> None:
    from test_cli_scan import plant_tree

    plant_tree(tmp_path)
    k = make_key()
    (tmp_path / "more.txt").write_bytes(
        base64.b64encode(k.encode()) + b"\n" + binascii.hexlify(k.encode()) + b"\n"
        + k.encode("utf-16-le")
    )

    def summary(env: dict[str, str]) -> list[tuple[str, int, int, str, str]]:
        run = run_cli("scan", str(tmp_path), "--format", "json", "--min-confidence", "low",
                      env=env)
        return [(f["location"]["path"], f["location"]["line"], f["location"]["column"],
                 f["encoding"], f["fingerprint"]) for f in run.findings()]

    default = summary({"POELIS_SCAN_ENGINE": "hyperscan"})
    assert len(default) > 30
    assert summary({"POELIS_SCAN_ENGINE": "find"}) == default


def test_hex_wrapped_like_xxd() -> None:
    """`xxd -p` writes 60 hex digits a line; a key's 108 digits span two or three lines."""
    found_cut = 0
    for lead in range(0, 60, 2):
        k = make_key()
        digits = binascii.hexlify(b"x" * (lead // 2) + b" " + k.encode() + b"\n")
        dump = b"\n".join(digits[i : i + 60] for i in range(0, len(digits), 60))
        if not any(b"6170695" in line for line in dump.split(b"\n")):
            continue  # the 7-digit needle itself is cut: a known limit (README)
        assert [m.secret for m in scan_bytes(dump)] == [k], lead
        found_cut += 1
    assert found_cut > 20
