"""AMF0 on golden bytes, round trips, limits and a fuzzer seeded by the same table."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediagw.errors import RTMPProtocolError
from mediagw.ingest.rtmp import amf0
from mediagw.ingest.rtmp.amf0 import UNDEFINED, Date, ECMAArray

# (value, golden hex): encode(value) == hex and decode(hex) == [value]
GOLDEN: list[tuple[Any, str]] = [
    (0.0, "00 0000000000000000"),
    (1.0, "00 3ff0000000000000"),
    (-2.5, "00 c004000000000000"),
    (True, "01 01"),
    (False, "01 00"),
    ("", "02 0000"),
    ("connect", "02 0007 636f6e6e656374"),
    ("é", "02 0002 c3a9"),
    ({}, "03 000009"),
    ({"a": 1.0}, "03 0001 61 00 3ff0000000000000 000009"),
    ({"o": {"n": None}}, "03 0001 6f 03 0001 6e 05 000009 000009"),
    (None, "05"),
    (UNDEFINED, "06"),
    (ECMAArray({"x": True}), "08 00000001 0001 78 0101 000009"),
    (ECMAArray(), "08 00000000 000009"),
    ([1.0, "a"], "0a 00000002 00 3ff0000000000000 02 0001 61"),
    ([], "0a 00000000"),
    (Date(1000.0, 0), "0b 408f400000000000 0000"),
]

# decode-only forms
DECODE_ONLY: list[tuple[str, Any]] = [
    ("01 ff", True),
    ("0c 00000003 616263", "abc"),  # long string holding a short one
    ("0f 00000003 616263", "abc"),  # XML document
    ("10 0003 466f6f 0001 61 05 000009", {"a": None}),  # typed object
    ("08 00000063 0001 78 0101 000009", {"x": True}),  # ECMA count is a hint only
]

BAD: list[tuple[str, str]] = [
    ("00 0000", "truncated number"),
    ("01", "truncated boolean"),
    ("02 00", "truncated string length"),
    ("02 0005 616263", "truncated string"),
    ("02 0001 ff", "not UTF-8"),
    ("03 0001 61", "truncated object"),
    ("03 0001 61 05", "unterminated object"),
    ("03 0000 05", "empty name without object end"),
    ("09", "object end outside an object"),
    ("04", "movie clip"),
    ("07 0000", "reference"),
    ("0d", "unsupported"),
    ("0e", "record set"),
    ("11 01", "AMF3 switch"),
    ("12", "unknown marker"),
    ("0a ffffffff 05", "strict array count larger than data"),
    ("0a 00000002 05", "strict array short"),
    ("08 000000", "truncated ECMA count"),
    ("0b 0000", "truncated date"),
    ("0c 00000010 61", "truncated long string"),
    ("10 0005 61", "truncated class name"),
]


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def tagged(value: Any) -> Any:
    """A comparable form that keeps the AMF type (ECMA array vs object, int vs float...)."""
    if isinstance(value, ECMAArray):
        return ("ecma", {k: tagged(v) for k, v in value.items()})
    if isinstance(value, dict):
        return ("obj", {k: tagged(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("list", [tagged(v) for v in value])
    return (type(value).__name__, value)


@pytest.mark.parametrize(("value", "hexdata"), GOLDEN, ids=[g[1][:20] for g in GOLDEN])
def test_golden_encode(value: Any, hexdata: str) -> None:
    assert amf0.encode_value(value) == h(hexdata)


@pytest.mark.parametrize(("value", "hexdata"), GOLDEN, ids=[g[1][:20] for g in GOLDEN])
def test_golden_decode(value: Any, hexdata: str) -> None:
    assert [tagged(v) for v in amf0.decode(h(hexdata))] == [tagged(value)]


@pytest.mark.parametrize(("hexdata", "value"), DECODE_ONLY)
def test_decode_only_forms(hexdata: str, value: Any) -> None:
    assert amf0.decode(h(hexdata)) == [value]


@pytest.mark.parametrize(("hexdata", "why"), BAD, ids=[b[1] for b in BAD])
def test_bad_input_raises_protocol_error(hexdata: str, why: str) -> None:
    with pytest.raises(RTMPProtocolError):
        amf0.decode(h(hexdata))


def test_command_payload_golden() -> None:
    # what ffmpeg sends as createStream: name, transaction id 4, null
    data = h("02 000c 63726561746553747265616d 00 4010000000000000 05")
    assert amf0.decode(data) == ["createStream", 4.0, None]
    assert amf0.encode("createStream", 4, None) == data


def test_long_string_switch() -> None:
    short = "a" * 0xFFFF
    long = "a" * 0x10000
    assert amf0.encode_value(short)[:3] == b"\x02\xff\xff"
    assert amf0.encode_value(long)[:5] == b"\x0c\x00\x01\x00\x00"
    assert amf0.decode(amf0.encode_value(long)) == [long]


def test_int_encodes_as_number_and_nan_survives() -> None:
    assert amf0.encode_value(3) == amf0.encode_value(3.0)
    (nan,) = amf0.decode(amf0.encode_value(math.nan))
    assert math.isnan(nan)


def test_depth_limit() -> None:
    ok = h("0a00000001" * 32 + "05")
    value = amf0.decode(ok)[0]
    for _ in range(32):
        value = value[0]
    assert value is None
    with pytest.raises(RTMPProtocolError, match="nesting"):
        amf0.decode(h("0a00000001" * 33 + "05"))
    with pytest.raises(RTMPProtocolError, match="nesting"):
        amf0.decode(h("030001 61" * 33 + "05" + "000009" * 33))
    deep: Any = None
    for _ in range(33):
        deep = [deep]
    with pytest.raises(ValueError):
        amf0.encode_value(deep)


def test_item_limit() -> None:
    data = b"\x0a" + (70_000).to_bytes(4, "big") + b"\x05" * 70_000
    with pytest.raises(RTMPProtocolError, match="too many"):
        amf0.decode(data)


def test_decode_value_offsets() -> None:
    data = amf0.encode("a", 2.0)
    value, pos = amf0.decode_value(data, 0)
    assert (value, pos) == ("a", 4)
    assert amf0.decode_value(data, pos) == (2.0, len(data))
    with pytest.raises(RTMPProtocolError):
        amf0.decode_value(b"")


def test_encode_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        amf0.encode_value(object())
    with pytest.raises(TypeError):
        amf0.encode_value({1: 2})
    with pytest.raises(ValueError):
        amf0.encode_value({"": 2})


# -- property tests ---------------------------------------------------------------------------

keys = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=40),
    st.none(),
    st.just(UNDEFINED),
    st.builds(Date, st.floats(allow_nan=False), st.integers(-32768, 32767)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(keys, inner, max_size=5),
        st.dictionaries(keys, inner, max_size=5).map(ECMAArray),
    ),
    max_leaves=25,
)


@given(st.lists(values, max_size=4))
def test_round_trip(items: list[Any]) -> None:
    data = amf0.encode(*items)
    assert [tagged(v) for v in amf0.decode(data)] == [tagged(v) for v in items]
    assert amf0.encode(*amf0.decode(data)) == data


@given(st.binary(max_size=512))
def test_fuzz_decode_only_raises_protocol_error(data: bytes) -> None:
    try:
        amf0.decode(data)
    except RTMPProtocolError:
        pass


@given(
    st.sampled_from([g[1] for g in GOLDEN] + [b[0] for b in BAD]),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    st.integers(0, 200),
)
def test_fuzz_mutated_golden(hexdata: str, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(h(hexdata))
    for pos, byte in flips:
        if data:
            data[pos % len(data)] = byte
    try:
        amf0.decode(bytes(data[: len(data) - cut % (len(data) + 1)]))
    except RTMPProtocolError:
        pass
