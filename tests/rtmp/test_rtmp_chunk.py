"""Chunk stream reader/writer on hand-built golden bytes, limits, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediagw.errors import RTMPProtocolError
from mediagw.ingest.rtmp.chunk import ChunkReader, ChunkWriter, ReaderLimits, basic_header
from mediagw.ingest.rtmp.control import (
    Abort,
    Acknowledgement,
    SetChunkSize,
    SetPeerBandwidth,
    UserControl,
    WindowAckSize,
)
from mediagw.ingest.rtmp.messages import Message


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


P5 = b"hello"


def read_all(data: bytes, reader: ChunkReader | None = None) -> list[Message]:
    return (reader or ChunkReader()).feed(data)


def read_bytewise(data: bytes) -> list[Message]:
    reader = ChunkReader()
    out = []
    for i in range(len(data)):
        out += reader.feed(data[i : i + 1])
    assert reader.buffered == 0
    return out


# -- header formats ----------------------------------------------------------------------------


def test_fmt0_fmt1_fmt2_fmt3_golden() -> None:
    data = (
        h("03 0003e8 000005 14 00000000") + P5  # fmt 0: ts 1000, len 5, type 20, msid 0
        + h("43 000028 000003 09") + b"abc"  # fmt 1: +40, len 3, type 9 (msid kept)
        + h("83 000021") + b"def"  # fmt 2: +33 (len, type kept)
        + h("c3") + b"ghi"  # fmt 3 new message: +33 again
    )  # fmt: skip
    want = [
        Message(20, 0, 1000, P5, 3),
        Message(9, 0, 1040, b"abc", 3),
        Message(9, 0, 1073, b"def", 3),
        Message(9, 0, 1106, b"ghi", 3),
    ]
    assert read_all(data) == want
    assert read_bytewise(data) == want


def test_message_stream_id_is_little_endian() -> None:
    data = h("04 000000 000001 08 01000000 aa")
    assert read_all(data) == [Message(8, 1, 0, b"\xaa", 4)]


def test_fmt3_after_fmt0_repeats_the_absolute_timestamp_as_delta() -> None:
    # ffmpeg's reading (and writing) of this corner: the fmt 0 timestamp field is the "delta".
    data = h("06 000064 000001 09 01000000 01") + h("c6 02")
    msgs = read_all(data)
    assert [m.timestamp for m in msgs] == [100, 200]


def test_continuation_chunks_at_default_chunk_size() -> None:
    payload = bytes(range(256)) + b"x" * 44  # 300 bytes: 128 + 128 + 44
    data = h("06 000000 00012c 09 01000000") + payload[:128]
    data += h("c6") + payload[128:256] + h("c6") + payload[256:]
    assert read_all(data) == [Message(9, 1, 0, payload, 6)]
    assert read_bytewise(data) == [Message(9, 1, 0, payload, 6)]


@pytest.mark.parametrize(
    ("csid", "header"),
    [
        (2, "02"),
        (3, "03"),
        (63, "3f"),
        (64, "00 00"),
        (319, "00 ff"),
        (320, "01 00 01"),
        (65599, "01 ff ff"),
    ],
)
def test_basic_header_encodings(csid: int, header: str) -> None:
    assert basic_header(0, csid) == h(header)
    assert basic_header(3, csid)[0] >> 6 == 3
    data = h(header) + h("000000 000001 08 00000000 7f")
    assert read_all(data) == [Message(8, 0, 0, b"\x7f", csid)]
    assert read_bytewise(data) == [Message(8, 0, 0, b"\x7f", csid)]


def test_three_byte_form_of_a_small_csid_is_accepted() -> None:
    data = h("01 00 00") + h("000000 000001 08 00000000 7f")  # csid 64 in the 3-byte form
    assert read_all(data)[0].csid == 64


def test_basic_header_refuses_out_of_range() -> None:
    for csid in (0, 1, 65600):
        with pytest.raises(ValueError):
            basic_header(0, csid)


# -- extended timestamps -----------------------------------------------------------------------


def test_extended_timestamp_fmt0_and_repeat_in_fmt3_continuation() -> None:
    payload = b"v" * 200
    data = (
        h("06 ffffff 0000c8 09 01000000 01000000") + payload[:128]
        + h("c6 01000000") + payload[128:]  # ffmpeg repeats the extended timestamp here
    )  # fmt: skip
    want = [Message(9, 1, 0x01000000, payload, 6)]
    assert read_all(data) == want
    assert read_bytewise(data) == want


def test_extended_timestamp_not_repeated_in_continuation_is_tolerated() -> None:
    payload = b"v" * 200
    data = h("06 ffffff 0000c8 09 01000000 01000000") + payload[:128] + h("c6") + payload[128:]
    assert read_all(data) == [Message(9, 1, 0x01000000, payload, 6)]
    assert read_bytewise(data) == [Message(9, 1, 0x01000000, payload, 6)]


def test_extended_delta_fmt1_then_fmt3_new_message_reads_it_again() -> None:
    data = (
        h("06 000010 000001 09 01000000 00")  # ts 16
        + h("46 ffffff 000001 09 01000000 01")  # + 0x01000000 (extended delta)
        + h("c6 01000000 02")  # fmt 3 new message: extended field again, + 0x01000000
        + h("86 000001 03")  # fmt 2: + 1, no extended field any more
        + h("c6 04")  # fmt 3: + 1
    )  # fmt: skip
    assert [m.timestamp for m in read_all(data)] == [
        16,
        16 + 0x01000000,
        16 + 0x02000000,
        17 + 0x02000000,
        18 + 0x02000000,
    ]


def test_timestamps_wrap_mod_2_32() -> None:
    data = h("06 ffffff 000001 09 01000000 fffffff0 00") + h("86 000020 01")
    assert [m.timestamp for m in read_all(data)] == [0xFFFFFFF0, 0x10]


def test_writer_repeats_extended_timestamp_in_continuations() -> None:
    writer = ChunkWriter(128)
    out = writer.write(Message(9, 1, 0x01000000, b"v" * 200, 6))
    assert (
        out
        == h("06 ffffff 0000c8 09 01000000 01000000") + b"v" * 128 + h("c6 01000000") + b"v" * 72
    )


# -- control messages inside the chunk layer ----------------------------------------------------


def test_set_chunk_size_applies_to_the_next_chunk_in_the_same_feed() -> None:
    payload = b"p" * 300
    data = h("02 000000 000004 01 00000000 0000012c")  # Set Chunk Size 300
    data += h("06 000000 00012c 09 01000000") + payload  # one chunk now
    reader = ChunkReader()
    assert reader.feed(data) == [Message(9, 1, 0, payload, 6)]
    assert reader.chunk_size == 300
    assert read_bytewise(data) == [Message(9, 1, 0, payload, 6)]


def test_set_chunk_size_limits() -> None:
    for size in (0, 16 << 20, 0x80000000):
        data = h("02 000000 000004 01 00000000") + size.to_bytes(4, "big")
        reader = ChunkReader()
        with pytest.raises(RTMPProtocolError, match="Set Chunk Size"):
            reader.feed(data)
        with pytest.raises(RTMPProtocolError):  # dead after an error
            reader.feed(b"")
    ok = h("02 000000 000004 01 00000000 00010000")  # 65536: the default maximum
    reader = ChunkReader()
    reader.feed(ok)
    assert reader.chunk_size == 65536


def test_abort_drops_the_partial_message() -> None:
    data = h("04 000000 0000c8 08 01000000") + b"a" * 128  # 200-byte message, first chunk
    data += h("02 000000 000004 02 00000000 00000004")  # Abort csid 4
    data += h("04 000005 000002 08 01000000 bbbb")  # a new message on csid 4
    reader = ChunkReader()
    assert reader.feed(data) == [Message(8, 1, 5, b"\xbb\xbb", 4)]
    assert not reader.mid_message


def test_interleaved_messages_on_two_chunk_streams() -> None:
    a, b = b"A" * 200, b"B" * 150
    data = (
        h("04 000001 0000c8 08 01000000") + a[:128]
        + h("06 000002 000096 09 01000000") + b[:128]
        + h("c4") + a[128:]
        + h("c6") + b[128:]
    )  # fmt: skip
    assert read_all(data) == [Message(8, 1, 1, a, 4), Message(9, 1, 2, b, 6)]


def test_other_control_messages_are_passed_up() -> None:
    data = b"".join(
        ChunkWriter().write(c.to_message())
        for c in (Acknowledgement(7), WindowAckSize(5000), SetPeerBandwidth(5000, 2))
    )
    msgs = read_all(data)
    assert [(m.type_id, m.csid, m.stream_id) for m in msgs] == [(3, 2, 0), (5, 2, 0), (6, 2, 0)]
    assert Acknowledgement.parse(msgs[0].payload) == Acknowledgement(7)
    assert WindowAckSize.parse(msgs[1].payload) == WindowAckSize(5000)
    assert SetPeerBandwidth.parse(msgs[2].payload) == SetPeerBandwidth(5000, 2)


@pytest.mark.parametrize(
    ("control", "payload"),
    [
        (SetChunkSize(4096), "00001000"),
        (Abort(4), "00000004"),
        (Acknowledgement(2_500_000), "002625a0"),
        (WindowAckSize(2_500_000), "002625a0"),
        (SetPeerBandwidth(2_500_000, 2), "002625a0 02"),
        (UserControl(0, h("00000001")), "0000 00000001"),
        (UserControl(6, h("0000ffff")), "0006 0000ffff"),
    ],
)
def test_control_golden(control: object, payload: str) -> None:
    assert bytes(control) == h(payload)  # type: ignore[call-overload]
    assert type(control).parse(h(payload)) == control  # type: ignore[attr-defined]


def test_control_parse_refuses_short_payloads() -> None:
    for cls in (SetChunkSize, Abort, Acknowledgement, WindowAckSize, SetPeerBandwidth, UserControl):
        with pytest.raises(RTMPProtocolError):
            cls.parse(b"\x00")


# -- limits and malformed chunk streams -------------------------------------------------------


def test_message_size_limit() -> None:
    reader = ChunkReader(ReaderLimits(max_message_size=1000))
    with pytest.raises(RTMPProtocolError, match="limit"):
        reader.feed(h("04 000000 0003e9 08 01000000"))  # 1001 bytes announced
    ChunkReader(ReaderLimits(max_message_size=1000)).feed(h("04 000000 0003e8 08 01000000"))


def test_chunk_stream_and_in_flight_limits() -> None:
    reader = ChunkReader(ReaderLimits(max_chunk_streams=3))
    data = b"".join(bytes((c,)) + h("000000 000001 08 00000000 00") for c in (4, 5, 6))
    assert len(reader.feed(data)) == 3
    with pytest.raises(RTMPProtocolError, match="chunk streams"):
        reader.feed(h("07 000000 000001 08 00000000 00"))

    reader = ChunkReader(ReaderLimits(max_in_flight=2))
    starts = [bytes((c,)) + h("000000 0000c8 08 00000000") + b"x" * 128 for c in (4, 5, 6)]
    reader.feed(starts[0] + starts[1])
    with pytest.raises(RTMPProtocolError, match="in flight"):
        reader.feed(starts[2])


def test_pending_bytes_limit_and_accounting() -> None:
    limits = ReaderLimits(max_message_size=1000, max_pending_bytes=300)
    reader = ChunkReader(limits)
    one = h("04 000000 0000c8 08 00000000") + b"a" * 128 + h("c4") + b"a" * 72
    for _ in range(5):  # complete messages release what they held
        assert len(reader.feed(one)) == 1
    reader.feed(h("04 000000 0000c8 08 00000000") + b"a" * 128)  # 128 pending
    reader.feed(h("02 000000 000004 02 00000000 00000004"))  # Abort releases them
    reader.feed(h("05 000000 0000c8 08 00000000") + b"b" * 128)
    reader.feed(h("06 000000 0000c8 08 00000000") + b"c" * 128)  # 256 pending
    with pytest.raises(RTMPProtocolError, match="partial messages"):
        reader.feed(h("07 000000 0000c8 08 00000000") + b"d" * 128)  # 384 > 300


@pytest.mark.parametrize(
    "data",
    [
        "84 000000 00",  # fmt 2 on a chunk stream never seen
        "c4 00",  # fmt 3 on a chunk stream never seen
        "04 000000 0000c8 08 00000000" + "00" * 128 + "04 000000 000001 08 00000000 00",
    ],
    ids=["fmt2-first", "fmt3-first", "fmt0-mid-message"],
)
def test_malformed_chunk_streams(data: str) -> None:
    with pytest.raises(RTMPProtocolError):
        ChunkReader().feed(h(data))


def test_fmt1_first_on_a_new_chunk_stream_is_tolerated() -> None:
    # librtmp may start a chunk stream with a type 1 header (message stream 0 implied)
    assert read_all(h("44 000005 000001 09 aa")) == [Message(9, 0, 5, b"\xaa", 4)]


def test_partial_chunk_is_kept_until_complete() -> None:
    data = h("06 000000 000005 09 01000000") + P5
    reader = ChunkReader()
    assert reader.feed(data[:-1]) == []
    assert reader.buffered == len(data) - 1
    assert reader.feed(data[-1:]) == [Message(9, 1, 0, P5, 6)]
    assert reader.buffered == 0


def test_zero_length_messages() -> None:
    data = h("06 000000 000000 09 01000000") + h("c6") + h("c6")
    assert [m.payload for m in read_all(data)] == [b"", b"", b""]


# -- round trips -------------------------------------------------------------------------------

messages_st = st.lists(
    st.builds(
        Message,
        st.sampled_from([8, 9, 18, 20]),
        st.sampled_from([0, 1, 2]),
        st.one_of(st.integers(0, 5000), st.integers(0, 0xFFFFFFFF)),
        st.binary(max_size=700),
        st.sampled_from([3, 4, 6, 63, 64, 319, 320, 65599]),
    ),
    max_size=12,
)


@settings(max_examples=150)
@given(messages_st, st.integers(1, 1000), st.lists(st.integers(1, 400), max_size=30))
def test_round_trip_any_split(msgs: list[Message], chunk_size: int, cuts: list[int]) -> None:
    writer = ChunkWriter(128, compress=True)
    data = writer.write(SetChunkSize(chunk_size).to_message())
    data += b"".join(writer.write(m) for m in msgs)
    reader = ChunkReader()
    got: list[Message] = []
    pos = 0
    for cut in cuts:
        got += reader.feed(data[pos : pos + cut])
        pos += cut
    got += reader.feed(data[pos:])
    assert got == msgs
    assert reader.chunk_size == chunk_size
    assert not reader.mid_message


@given(st.binary(max_size=600))
def test_fuzz_reader_only_raises_protocol_error(data: bytes) -> None:
    try:
        ChunkReader(ReaderLimits(max_message_size=4096)).feed(data)
    except RTMPProtocolError:
        pass
