"""The ServerConnection state machine driven by a scripted client, all in memory."""

from __future__ import annotations

from typing import Any

import pytest
from rtmp.rtmp_testkit import ClientScript, Reply, fixed_rand, parse_replies, video_payload

from mediagw.errors import RTMPProtocolError
from mediagw.ingest.rtmp import amf0
from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.control import Acknowledgement, WindowAckSize
from mediagw.ingest.rtmp.events import (
    Closing,
    Connected,
    Event,
    HandshakeCompleted,
    MediaMessage,
    Metadata,
    PublishEnded,
    PublishRequested,
)
from mediagw.ingest.rtmp.messages import Message
from mediagw.ingest.rtmp.statemachine import ConnectionConfig, ServerConnection, State


def new_conn(**config: Any) -> ServerConnection:
    return ServerConnection(rand=fixed_rand, config=ConnectionConfig(**config))


def status_code(reply: Reply) -> str:
    return str(reply.values[3]["code"])


def publish(conn: ServerConnection, client: ClientScript, name: str = "test1") -> list[Event]:
    events = conn.receive_data(client.setup(name), now_ms=1000)
    conn.accept_publish()
    return events


def test_full_conversation() -> None:
    conn = new_conn()
    client = ClientScript(chunk_size=4096)
    events = conn.receive_data(client.setup("test1?key=s3cret"), now_ms=1000)
    assert events == [
        HandshakeCompleted(),
        Connected("live", "rtmp://127.0.0.1:1935/live", "FMLE/3.0 (compatible; FMSc/1.0)"),
        PublishRequested("live", "test1", {"key": "s3cret"}, "rtmp://127.0.0.1:1935/live", 1),
    ]
    assert conn.state.name == "PENDING"
    before = conn.data_to_send()
    conn.accept_publish()
    assert conn.state.name == "PUBLISHING"
    replies = parse_replies(before + conn.data_to_send())
    assert [(r.msg.type_id, r.name) for r in replies] == [
        (mt.WINDOW_ACK_SIZE, ""),
        (mt.SET_PEER_BANDWIDTH, ""),
        (mt.COMMAND_AMF0, "_result"),  # connect
        (mt.COMMAND_AMF0, "_result"),  # releaseStream
        (mt.COMMAND_AMF0, "onFCPublish"),
        (mt.COMMAND_AMF0, "_result"),  # createStream
        (mt.COMMAND_AMF0, "onStatus"),  # publish
    ]
    # Set Chunk Size 4096 (consumed by the reply parser, which then reads 4096-byte chunks)
    assert bytes.fromhex("02 000000 000004 01 00000000 00001000") in before
    connect = replies[2].values
    assert connect[1] == 1.0
    assert connect[2]["fmsVer"].startswith("FMS/")
    assert connect[3]["code"] == "NetConnection.Connect.Success"
    assert replies[3].values[1] == 2.0
    assert "s3cret" not in repr(replies[4].values)  # the key is never echoed
    assert replies[5].values[1:] == [4.0, None, 1.0]  # stream id 1
    start = replies[6]
    assert start.msg.stream_id == 1
    assert status_code(start) == "NetStream.Publish.Start"
    assert start.values[3]["level"] == "status"

    # media and metadata
    data = client.metadata({"width": 320.0, "height": 240.0})
    data += client.media(mt.VIDEO, 0, video_payload(0, keyframe=True))
    data += client.media(mt.AUDIO, 10, b"\xaf\x01audio")
    data += client.media(mt.VIDEO, 33, video_payload(1, size=9000))
    events = conn.receive_data(data)
    assert events == [
        Metadata({"width": 320.0, "height": 240.0}),
        MediaMessage(mt.VIDEO, 0, video_payload(0, keyframe=True)),
        MediaMessage(mt.AUDIO, 10, b"\xaf\x01audio"),
        MediaMessage(mt.VIDEO, 33, video_payload(1, size=9000)),
    ]
    # unpublish: events, and not one byte in reply
    data = client.command("FCUnpublish", "test1") + client.command("deleteStream", 1.0)
    assert conn.receive_data(data) == [PublishEnded(1)]
    assert conn.data_to_send() == b""
    assert conn.state is State.CONNECTED
    assert conn.receive_eof() == []
    assert conn.closing


def test_nothing_is_sent_while_publishing() -> None:
    conn = new_conn(window_ack_size=1000)
    client = ClientScript()
    publish(conn, client)
    conn.data_to_send()
    data = WindowAckSize(500).to_message()
    stream = client.writer.write(data)
    stream += client.writer.write(Acknowledgement(1).to_message())
    stream += client.writer.write(Message(mt.USER_CONTROL, 0, 0, b"\x00\x06\x00\x00\x00\x01", 2))
    stream += client.writer.write(Message(mt.SET_PEER_BANDWIDTH, 0, 0, b"\x00\x00\x10\x00\x02", 2))
    for i in range(200):
        stream += client.media(mt.VIDEO, i * 33, video_payload(i, size=1000))
    events = conn.receive_data(stream)
    assert sum(isinstance(e, MediaMessage) for e in events) == 200
    assert conn.data_to_send() == b""  # no acks, no ping replies, no bandwidth replies
    assert conn.peer_window == 500


def test_acknowledgements_when_enabled() -> None:
    conn = new_conn(send_acks=True, window_ack_size=5000)
    client = ClientScript()
    publish(conn, client)
    conn.data_to_send()
    total_before = conn.bytes_received
    data = b"".join(client.media(mt.VIDEO, i, video_payload(i, size=1000)) for i in range(10))
    conn.receive_data(data)
    (ack,) = parse_replies(conn.data_to_send(), skip_handshake=False)
    assert ack.msg.type_id == mt.ACKNOWLEDGEMENT
    assert Acknowledgement.parse(ack.msg.payload).sequence == total_before + len(data)


def test_reject_publish() -> None:
    conn = new_conn()
    client = ClientScript()
    conn.receive_data(client.setup("busy"), now_ms=0)
    conn.reject_publish("NetStream.Publish.BadName", "stream 'busy' is already being published")
    assert conn.closing
    last = parse_replies(conn.data_to_send())[-1]
    assert last.name == "onStatus"
    assert last.values[3]["level"] == "error"
    assert status_code(last) == "NetStream.Publish.BadName"
    assert conn.receive_data(client.media(mt.VIDEO, 0, b"\x17\x01")) == []  # ignored now
    conn.accept_publish()  # no-op after a rejection
    assert conn.data_to_send() == b""


def test_media_in_the_same_read_as_publish_waits_for_the_decision() -> None:
    conn = new_conn()
    client = ClientScript()
    data = client.setup() + client.media(mt.VIDEO, 0, b"\x17\x00seq")
    events = conn.receive_data(data, now_ms=0)
    assert isinstance(events[-2], PublishRequested)
    assert events[-1] == MediaMessage(mt.VIDEO, 0, b"\x17\x00seq")


def test_unpublish_before_the_decision_makes_accept_a_no_op() -> None:
    conn = new_conn()
    client = ClientScript()
    data = client.setup() + client.command("FCUnpublish", "test1")
    events = conn.receive_data(data, now_ms=0)
    assert events[-1] == PublishEnded(1)
    conn.data_to_send()
    conn.accept_publish()
    assert conn.data_to_send() == b""
    assert conn.state is State.CONNECTED


def test_play_is_refused() -> None:
    conn = new_conn()
    client = ClientScript()
    data = client.handshake() + client.connect() + client.command("createStream")
    data += client.command("play", "test1", stream_id=1)
    events = conn.receive_data(data, now_ms=0)
    assert isinstance(events[-1], Closing)
    assert conn.closing
    last = parse_replies(conn.data_to_send())[-1]
    assert status_code(last) == "NetStream.Play.Failed"
    assert last.values[3]["level"] == "error"


def test_unknown_and_out_of_order_commands() -> None:
    conn = new_conn()
    client = ClientScript()
    data = client.handshake()
    data += client.command("publish", "early", "live")  # before connect
    data += client.connect()
    data += client.command("getStreamLength", "x")  # unknown, with a transaction id
    data += client.writer.write(
        Message(mt.COMMAND_AMF0, 0, 0, amf0.encode("noTxn", 0.0, None), 3)
    )  # unknown, transaction id 0: no reply
    data += client.command("_result", None)  # a response from the client: ignored
    data += client.command("connect", obj={"app": "again"})  # second connect
    events = conn.receive_data(data, now_ms=0)
    assert [type(e) for e in events] == [HandshakeCompleted, Connected]
    replies = [r for r in parse_replies(conn.data_to_send()) if r.msg.type_id == mt.COMMAND_AMF0]
    assert [(r.name, r.values[1]) for r in replies] == [
        ("_error", 1.0),
        ("_result", 2.0),
        ("_error", 3.0),
        ("_error", 5.0),
    ]
    assert all(r.values[3]["level"] == "error" for r in replies if r.name == "_error")
    assert conn.state is State.CONNECTED


def test_create_stream_limit() -> None:
    conn = new_conn(max_streams=2)
    client = ClientScript()
    data = client.handshake() + client.connect()
    data += b"".join(client.command("createStream") for _ in range(3))
    conn.receive_data(data, now_ms=0)
    names = [r.name for r in parse_replies(conn.data_to_send()) if r.name]
    assert names == ["_result", "_result", "_result", "_error"]


def test_app_with_query_and_bad_names() -> None:
    conn = new_conn()
    client = ClientScript()
    data = client.handshake() + client.connect("live?key=abc") + client.command("createStream")
    data += client.command("publish", "cam1", "live", stream_id=1)
    events = conn.receive_data(data, now_ms=0)
    assert events[-1] == PublishRequested(
        "live", "cam1", {"key": "abc"}, "rtmp://127.0.0.1:1935/live", 1
    )

    conn = new_conn()
    client = ClientScript()
    data = client.handshake() + client.connect() + client.command("createStream")
    data += client.command("publish", "", "live", stream_id=1)
    events = conn.receive_data(data, now_ms=0)
    assert isinstance(events[-1], Closing)
    assert status_code(parse_replies(conn.data_to_send())[-1]) == "NetStream.Publish.BadName"


def test_timestamps_are_unwrapped_across_the_wrap() -> None:
    conn = new_conn()
    client = ClientScript()
    publish(conn, client)
    stamps = [0xFFFFFF00, 0xFFFFFFF0, 0x10, 0x40]
    data = b"".join(client.media(mt.VIDEO, ts, b"\x27\x01") for ts in stamps)
    events = conn.receive_data(data)
    assert [e.timestamp for e in events if isinstance(e, MediaMessage)] == [
        0xFFFFFF00,
        0xFFFFFFF0,
        0x100000010,
        0x100000040,
    ]


def test_eof_mid_message_ends_the_publish_with_an_error() -> None:
    conn = new_conn()
    client = ClientScript()
    publish(conn, client)
    data = client.media(mt.VIDEO, 0, video_payload(0, size=5000))
    assert conn.receive_data(data[:3000]) == []
    assert conn.receive_eof() == [PublishEnded(1, "connection closed mid-message")]

    conn = new_conn()
    client = ClientScript()
    publish(conn, client)
    conn.receive_data(data)
    assert conn.receive_eof() == [PublishEnded(1, None)]


def test_media_outside_a_publish_is_dropped() -> None:
    conn = new_conn()
    client = ClientScript()
    data = client.handshake() + client.connect() + client.media(mt.VIDEO, 0, b"\x17\x01")
    events = conn.receive_data(data, now_ms=0)
    assert not any(isinstance(e, MediaMessage) for e in events)
    assert conn.media_dropped == 1


def test_aggregate_and_odd_metadata() -> None:
    conn = new_conn()
    client = ClientScript()
    publish(conn, client)

    def tag(t: int, ts: int, body: bytes) -> bytes:
        head = bytes((t,)) + len(body).to_bytes(3, "big") + ts.to_bytes(3, "big") + bytes(4)
        return head + body + (11 + len(body)).to_bytes(4, "big")

    agg = tag(9, 0, b"\x17\x01v") + tag(8, 20, b"\xaf\x01a")
    data = client.writer.write(Message(mt.AGGREGATE, 1, 100, agg, 6))
    data += client.writer.write(Message(mt.DATA_AMF0, 1, 0, b"\x02\x00\x0aonMetaData\x11", 8))
    data += client.writer.write(Message(mt.DATA_AMF0, 1, 0, amf0.encode("onMetaData", {"a": 1}), 8))
    data += client.writer.write(Message(mt.DATA_AMF0, 1, 0, amf0.encode("onCuePoint", {}), 8))
    events = conn.receive_data(data)
    assert events == [
        MediaMessage(9, 100, b"\x17\x01v"),
        MediaMessage(8, 120, b"\xaf\x01a"),
        Metadata({"a": 1.0}),
    ]


@pytest.mark.parametrize(
    ("config", "tail"),
    [
        ({}, b"\x02\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00\x01\x00\x00\x00"),  # 16 MiB chunks
        ({"max_command_size": 150}, None),
    ],
    ids=["set-chunk-size-16MiB", "oversized-command"],
)
def test_protocol_errors_are_sticky(config: dict[str, Any], tail: bytes | None) -> None:
    conn = new_conn(**config)
    client = ClientScript()
    data = client.handshake() + client.connect()
    if tail is None:
        tail = client.command("x" * 200)
    conn.receive_data(data, now_ms=0)
    with pytest.raises(RTMPProtocolError):
        conn.receive_data(tail)
    assert conn.closing
    with pytest.raises(RTMPProtocolError):
        conn.receive_data(b"")


def test_garbage_instead_of_handshake() -> None:
    with pytest.raises(RTMPProtocolError):
        new_conn().receive_data(b"GET / HTTP/1.1\r\n\r\n", now_ms=0)
