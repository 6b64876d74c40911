"""Handshake, commands, aggregate messages, URL parsing and timestamp unwrapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rtmp.rtmp_testkit import C0C1, C1, C2, fixed_rand

from mediagw.errors import RTMPProtocolError
from mediagw.ingest.rtmp import amf0
from mediagw.ingest.rtmp.aggregate import split_aggregate
from mediagw.ingest.rtmp.commands import Command, parse_data
from mediagw.ingest.rtmp.handshake import HandshakeState, ServerHandshake
from mediagw.ingest.rtmp.messages import Message
from mediagw.ingest.rtmp.timestamps import TimestampUnwrapper
from mediagw.ingest.rtmp.url import BadTarget, parse_target, split_query

# -- handshake ---------------------------------------------------------------------------------


def test_handshake_golden() -> None:
    hs = ServerHandshake(fixed_rand)
    out = hs.receive_data(C0C1, now_ms=0x01020304)
    assert out == b"\x03" + bytes.fromhex("01020304 00000000") + b"\x5a" * 1528 + C1
    assert hs.state is HandshakeState.AWAIT_C2
    assert hs.receive_data(C2 + b"rest", now_ms=0) == b""
    assert hs.done
    assert hs.take_leftover() == b"rest"


def test_handshake_byte_by_byte() -> None:
    hs = ServerHandshake(fixed_rand)
    data = C0C1 + C2
    sent = b""
    for i in range(len(data)):
        sent += hs.receive_data(data[i : i + 1], now_ms=5)
        if i < len(C0C1) - 1:
            assert sent == b""
    assert hs.done and len(sent) == 1 + 2 * 1536
    assert sent[1 + 1536 :] == C1  # S2 echoes C1


def test_complex_handshake_client_is_echoed() -> None:
    # A digest-style C1 carries a non-zero version in bytes 4..8; the server echoes it anyway.
    c1 = b"\x00\x00\x00\x00\x80\x00\x07\x02" + bytes(range(200)) * 7 + b"\x01" * 128
    hs = ServerHandshake(fixed_rand)
    out = hs.receive_data(b"\x03" + c1, now_ms=0)
    assert hs.client_version == b"\x80\x00\x07\x02"
    assert out[1 + 1536 :] == c1
    assert out[5:9] == b"\x00\x00\x00\x00"  # S1 says: no digest (simple handshake)


@pytest.mark.parametrize("first", [b"\x06", b"G", b"\x00", b"\x16"])
def test_handshake_refuses_other_versions(first: bytes) -> None:
    with pytest.raises(RTMPProtocolError, match="version"):
        ServerHandshake(fixed_rand).receive_data(first + b"ET / HTTP/1.1\r\n", now_ms=0)


def test_handshake_checks_rand_length() -> None:
    with pytest.raises(ValueError):
        ServerHandshake(lambda n: b"x").receive_data(C0C1, now_ms=0)


# -- commands ------------------------------------------------------------------------------------


def test_command_golden_and_round_trip() -> None:
    cmd = Command("createStream", 4.0, None)
    data = bytes.fromhex("02000c63726561746553747265616d 00 4010000000000000 05".replace(" ", ""))
    assert bytes(cmd) == data
    assert Command.parse(Message(20, 0, 0, data)) == cmd
    publish = Command("publish", 5.0, None, ("test1?key=x", "live"))
    assert Command.parse(publish.to_message(1)) == publish
    assert publish.to_message(1).stream_id == 1


def test_amf3_command_with_format_byte() -> None:
    data = b"\x00" + amf0.encode("connect", 1.0, {"app": "live"})
    assert Command.parse(Message(17, 0, 0, data)) == Command("connect", 1.0, {"app": "live"})
    assert parse_data(Message(15, 0, 0, b"\x00" + amf0.encode("onMetaData", {}))) == [
        "onMetaData",
        {},
    ]


@pytest.mark.parametrize(
    "values",
    [(), ("connect",), (1.0, 1.0), ("connect", "1")],
    ids=["empty", "no-txn", "no-name", "str-txn"],
)
def test_command_parse_refuses_malformed(values: tuple[object, ...]) -> None:
    with pytest.raises(RTMPProtocolError):
        Command.parse(Message(20, 0, 0, amf0.encode(*values)))


# -- aggregate -----------------------------------------------------------------------------------


def _tag(type_id: int, ts: int, payload: bytes) -> bytes:
    head = bytes((type_id,)) + len(payload).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
    head += bytes((ts >> 24,)) + b"\x00\x00\x00"
    return head + payload + (11 + len(payload)).to_bytes(4, "big")


def test_aggregate_split() -> None:
    data = _tag(9, 500, b"v1") + _tag(8, 520, b"a1") + _tag(9, 0x01000010, b"v2")
    subs = split_aggregate(Message(22, 1, 1000, data, 6))
    assert [(m.type_id, m.timestamp, m.payload) for m in subs] == [
        (9, 1000, b"v1"),
        (8, 1020, b"a1"),
        (9, 1000 + 0x01000010 - 500, b"v2"),
    ]
    assert all(m.stream_id == 1 for m in subs)


@pytest.mark.parametrize("cut", [5, 12])
def test_aggregate_truncated(cut: int) -> None:
    with pytest.raises(RTMPProtocolError):
        split_aggregate(Message(22, 1, 0, _tag(9, 0, b"abcd")[:cut]))


# -- URL ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "name", "tc_url", "want"),
    [
        ("live", "test1", "rtmp://h:1935/live", ("live", "test1", {}, "rtmp://h:1935/live")),
        (
            "live",
            "test1?key=s3cret&x=1",
            "rtmp://h/live",
            ("live", "test1", {"key": "s3cret", "x": "1"}, "rtmp://h/live"),
        ),
        (
            "live?key=x",
            "test1",
            "rtmp://h/live?key=x",
            ("live", "test1", {"key": "x"}, "rtmp://h/live"),
        ),
        ("live?a=1&b=2", "n?b=3", "", ("live", "n", {"a": "1", "b": "3"}, "")),
        ("live/", "/n/", "", ("live", "n", {}, "")),
        ("live", "n?flag", "", ("live", "n", {"flag": ""}, "")),
        ("app/inst", "a/b", "", ("app/inst", "a/b", {}, "")),
    ],
)
def test_parse_target(app: str, name: str, tc_url: str, want: tuple[object, ...]) -> None:
    t = parse_target(app, name, tc_url)
    assert (t.app, t.name, t.query, t.tc_url) == want


@pytest.mark.parametrize(
    ("app", "name"),
    [
        ("live", ""),
        ("live", "?key=x"),
        ("live", "a\x00b"),
        ("live", "n" * 1025),
        ("live", "n?" + "&".join(f"k{i}=1" for i in range(65))),
    ],
    ids=["empty", "only-query", "control-char", "too-long", "too-many-fields"],
)
def test_parse_target_refuses(app: str, name: str) -> None:
    with pytest.raises(BadTarget):
        parse_target(app, name, "")


def test_split_query() -> None:
    assert split_query("n?a=%20b&c") == ("n", {"a": " b", "c": ""})
    assert split_query("n") == ("n", {})


# -- timestamps -----------------------------------------------------------------------------------


def test_unwrap_across_the_32_bit_wrap() -> None:
    u = TimestampUnwrapper()
    raw = [0xFFFFFF00, 0xFFFFFFF0, 0x10, 0x5, 0x100, 0x80000000, 0xFFFFFFFF, 0x20]
    assert [u.unwrap(r) for r in raw] == [
        0xFFFFFF00,
        0xFFFFFFF0,
        0x100000010,
        0x100000005,
        0x100000100,
        0x180000000,
        0x1FFFFFFFF,
        0x200000020,
    ]


@given(st.integers(0, 0xFFFFFFFF), st.lists(st.integers(-1000, 100_000), max_size=50))
def test_unwrap_follows_small_steps(start: int, steps: list[int]) -> None:
    u = TimestampUnwrapper()
    value = start
    assert u.unwrap(start) == start
    for step in steps:
        value += step
        assert u.unwrap(value & 0xFFFFFFFF) == value
