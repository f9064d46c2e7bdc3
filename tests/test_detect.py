"""The detection engine on bytes: the grammar, confidence, and exact offsets."""

from __future__ import annotations

import random

import pytest
from conftest import ALPHABET, make_key
from hypothesis import given, settings
from hypothesis import strategies as st

from poelis_scan import Confidence, scan_bytes
from poelis_scan.detect.grammar import DOCUMENTED_EXAMPLE_BODY, classify_body


def high(data: bytes) -> list[str]:
    return [m.secret for m in scan_bytes(data, min_confidence="high")]


# --- what must be found -----------------------------------------------------------------

CONTEXTS = {
    "env": "POELIS_API_KEY={k}\n",
    "env_export_quoted": 'export POELIS_API_KEY="{k}"\n',
    "json": '{{"poelis": {{"api_key": "{k}", "n": 1}}}}',
    "yaml": "poelis:\n  api_key: {k}\n  url: https://api.poelis.com\n",
    "toml": '[poelis]\napi_key = "{k}"\n',
    "python": 'client = Client(api_key="{k}")\n',
    "python_single": "KEY = '{k}'\n",
    "js": "const key = `{k}`;\nfetch(url, {{headers: {{Authorization: 'Bearer {k}'}}}})\n",
    "shell_bearer": 'curl -H "Authorization: Bearer {k}" https://api.poelis.com/v1/public/workspaces\n',
    "url_query": "https://example.invalid/cb?api_key={k}&x=1\n",
    "parentheses": "connect({k})\n",
    "colon": "key:{k}\n",
    "equals_no_space": "k={k}",
    "first_bytes": "{k} is the key\n",
    "last_bytes_no_newline": "the key is {k}",
    "crlf": "A=1\r\nB={k}\r\nC=2\r\n",
    "xml": "<key>{k}</key>",
    "underscore_before": "MY_{k}",
}


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_found_in_context(name: str) -> None:
    k = make_key()
    template = CONTEXTS[name]
    found = high(template.format(k=k).encode())
    assert found == [k] * template.count("{k}")


@pytest.mark.parametrize("length", [29, 32, 43, 49])
def test_found_at_every_plausible_body_length(length: int) -> None:
    k = make_key(length)
    assert high(f"x = {k}\n".encode()) == [k]


def test_two_keys_on_one_line() -> None:
    a, b = make_key(), make_key()
    matches = scan_bytes(f"a={a} b={b}\n".encode())
    assert [m.secret for m in matches] == [a, b]
    assert [m.confidence for m in matches] == [Confidence.HIGH, Confidence.HIGH]


def test_found_in_binary_bytes() -> None:
    k = make_key()
    data = bytes(range(256)) * 10 + b"\x00" + k.encode() + b"\x00\xff" + bytes(range(256))
    assert high(data) == [k]


def test_offsets_are_byte_offsets() -> None:
    k = make_key()
    data = "é€ key=".encode() + k.encode()
    (m,) = scan_bytes(data)
    assert data[m.start : m.end] == k.encode()


def test_key_body_starting_or_ending_with_dash_or_underscore() -> None:
    body = "-" + make_key(41)[len("poelis_api_") :] + "_"
    assert high(f'"poelis_api_{body}"'.encode()) == ["poelis_api_" + body]


# --- what must not be reported by default -------------------------------------------------

# Random-looking, but split so that no key-shaped literal sits in the source.
RANDOM_BODY = "".join(["aB3dE6gH9jK2mN5p", "Q8sT1vW4yZ7cF0hJ", "3lM6oR9uX2"])

DECOYS = {
    "identifier": "poelis_api_key = os.environ['POELIS_API_KEY']",
    "upper_env_name": "POELIS_API_KEY=${POELIS_API_KEY}",
    "upper_env_name_long": "POELIS_API_KEY_FOR_THE_PRODUCTION_ENVIRONMENT_XYZ=1",
    "your_key_here": "api_key = 'poelis_api_YOUR_KEY_HERE'",
    "your_key_here_long": "api_key = 'poelis_api_YOUR_KEY_HERE_REPLACE_WITH_REAL_ONE'",
    "angle_ellipsis": "Authorization: Bearer <poelis_api_...>",
    "x_run": "poelis_api_" + "x" * 43,
    "upper_x_run": "poelis_api_" + "X" * 43,
    "zero_run": "poelis_api_" + "0" * 43,
    "shell_template": "poelis_api_${VAR}",
    "printf_template": 'key = "poelis_api_%s" % suffix',
    "jinja_template": "poelis_api_{{ secret }}",
    "regex_text": r"pattern = r'poelis_api_[A-Za-z0-9_-]{40}'",
    "snake_identifier": "poelis_api_base_url_for_production_environment = 'x'",
    "snake_identifier_upper": "POELIS_API_BASE_URL poelis_api_BASE_URL_FOR_PRODUCTION_ENVIRONMENT",
    "camel_identifier": "poelis_api_baseUrlForProductionEnvironmentConfig()",
    "short_body": "poelis_api_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7",  # 28 characters
    "dashes_not_underscores": "poelis-api-" + RANDOM_BODY,
    "documented_example": "poelis_api_" + DOCUMENTED_EXAMPLE_BODY,
    "glued_to_word": "mypoelis_api_" + RANDOM_BODY,
    "too_long": "poelis_api_" + RANDOM_BODY + "aB3dE6gH9",
    "sequential": "poelis_api_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
    "placeholder_word": "poelis_api_EXAMPLEaB3dE6gH9jK2mN5pQ8sT1vW4yZ7cF",
}


@pytest.mark.parametrize("name", sorted(DECOYS))
def test_decoy_not_reported_by_default(name: str) -> None:
    assert high(DECOYS[name].encode()) == []


@pytest.mark.parametrize(
    "name", ["snake_identifier", "x_run", "documented_example", "camel_identifier", "sequential"]
)
def test_low_confidence_decoys_are_still_visible_on_request(name: str) -> None:
    matches = scan_bytes(DECOYS[name].encode(), min_confidence="low")
    assert [m.confidence for m in matches] == [Confidence.LOW]


def test_documented_example_is_low_with_its_reason() -> None:
    assert classify_body(DOCUMENTED_EXAMPLE_BODY) == (Confidence.LOW, "documented example key")


def test_match_repr_never_holds_the_key() -> None:
    k = make_key()
    (m,) = scan_bytes(k.encode())
    assert k not in repr(m) and k[11:] not in repr(m)


def test_random_bodies_are_high() -> None:
    """Seeded, so deterministic: 5,000 random 43-character bodies, all judged high.

    (The measured false-low rate is in benchmarks/confidence_false_low.py.)"""
    rng = random.Random(7)
    lows = [
        body
        for body in ("".join(rng.choice(ALPHABET) for _ in range(43)) for _ in range(5000))
        if classify_body(body)[0] is Confidence.LOW
    ]
    assert lows == []


# --- properties ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(
    before=st.binary(max_size=300),
    after=st.binary(max_size=300),
    left=st.sampled_from([b" ", b"\n", b"=", b'"', b"\x00", b"\xff", b"(", b":", b""]),
    right=st.sampled_from([b" ", b"\n", b'"', b"\x00", b"\xff", b")", b"&", b""]),
    length=st.integers(29, 49),
)
def test_inserted_key_found_exactly_once_at_its_offset(
    before: bytes, after: bytes, left: bytes, right: bytes, length: int
) -> None:
    k = make_key(length).encode()
    if not left and before:  # the key's neighbour is then before's last byte: a non-key byte
        left = b" "
    if not right and after:
        right = b" "
    prefix = before + left
    data = prefix + k + right + after
    hits = [m for m in scan_bytes(data) if m.secret == k.decode()]
    assert [(m.start, m.end) for m in hits] == [(len(prefix), len(prefix) + len(k))]
