"""Fuzzing the server core: whatever the bytes, the only exception is RTMPProtocolError.

The structured cases start from the scripted conversation (the golden case table) and mutate it.
Hypothesis' per-example deadline catches anything slow enough to look like a hang.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtmp.rtmp_testkit import ClientScript, fixed_rand, video_payload

from mediagw.errors import RTMPProtocolError
from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.chunk import ReaderLimits
from mediagw.ingest.rtmp.events import MediaMessage, PublishRequested
from mediagw.ingest.rtmp.statemachine import ConnectionConfig, ServerConnection, State

CONFIG = ConnectionConfig(reader=ReaderLimits(max_message_size=64 << 10))


def _conversation() -> bytes:
    client = ClientScript(chunk_size=300)
    data = client.setup("fuzz?key=1")
    data += client.metadata({"width": 320.0, "duration": 0.0})
    for i in range(4):
        data += client.media(mt.VIDEO, i * 33, video_payload(i, size=500, keyframe=i == 0))
        data += client.media(mt.AUDIO, i * 23, b"\xaf\x01" + bytes(40))
    data += client.command("FCUnpublish", "fuzz") + client.command("deleteStream", 1.0)
    return data


CONVERSATION = _conversation()
HANDSHAKE_END = 1 + 1536 * 2


def drive(chunks: list[bytes], accept: bool = True) -> ServerConnection:
    """Feed chunks like a socket would; only RTMPProtocolError may escape."""
    conn = ServerConnection(rand=fixed_rand, config=CONFIG)
    try:
        for chunk in chunks:
            for ev in conn.receive_data(chunk, now_ms=0):
                if isinstance(ev, PublishRequested):
                    if accept:
                        conn.accept_publish()
                    else:
                        conn.reject_publish("NetStream.Publish.BadName", "no")
                elif isinstance(ev, MediaMessage):
                    assert ev.msg_type in (mt.AUDIO, mt.VIDEO)
            conn.data_to_send()
    except RTMPProtocolError:
        assert conn.closing
        try:
            conn.receive_data(b"x")
        except RTMPProtocolError:
            pass
        else:
            raise AssertionError("a dead connection accepted more input") from None
        return conn
    conn.receive_eof()
    conn.data_to_send()
    return conn


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    out, pos = [], 0
    for cut in cuts:
        out.append(data[pos : pos + cut])
        pos += cut
    out.append(data[pos:])
    return out


def test_conversation_itself_is_clean() -> None:
    conn = drive([CONVERSATION])
    assert conn.state is State.CLOSING and conn.close_reason == "peer closed the connection"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000), st.lists(st.integers(1, 700), max_size=10))
def test_fuzz_raw_bytes(data: bytes, cuts: list[int]) -> None:
    drive(split(data, cuts))


@settings(max_examples=300)
@given(st.binary(max_size=4000), st.lists(st.integers(1, 700), max_size=10))
def test_fuzz_after_valid_handshake(data: bytes, cuts: list[int]) -> None:
    drive([CONVERSATION[:HANDSHAKE_END], *split(data, cuts)])


@settings(max_examples=300)
@given(st.integers(HANDSHAKE_END, len(CONVERSATION)), st.binary(max_size=2000), st.booleans())
def test_fuzz_garbage_after_a_prefix(cut: int, garbage: bytes, accept: bool) -> None:
    drive([CONVERSATION[:cut], garbage], accept=accept)


@settings(max_examples=400)
@given(
    st.lists(
        st.tuples(st.integers(HANDSHAKE_END, len(CONVERSATION) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(1, 2000), max_size=8),
    st.booleans(),
)
def test_fuzz_mutated_conversation(
    flips: list[tuple[int, int]], cuts: list[int], accept: bool
) -> None:
    data = bytearray(CONVERSATION)
    for pos, byte in flips:
        data[pos] = byte
    drive(split(bytes(data), cuts), accept=accept)


@settings(max_examples=100)
@given(st.lists(st.integers(1, 3000), max_size=20))
def test_any_split_of_the_conversation_gives_the_same_events(cuts: list[int]) -> None:
    def events(chunks: list[bytes]) -> list[object]:
        conn = ServerConnection(rand=fixed_rand, config=CONFIG)
        out: list[object] = []
        for chunk in chunks:
            for ev in conn.receive_data(chunk, now_ms=0):
                out.append(ev)
                if isinstance(ev, PublishRequested):
                    conn.accept_publish()
        return out

    assert events(split(CONVERSATION, cuts)) == events([CONVERSATION])
