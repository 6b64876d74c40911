"""FlvDemuxer on golden tag payloads, unsupported codecs, hard limits, and a fuzzer."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmenter import (
    AudioConfig,
    FlvDemuxer,
    MalformedMedia,
    MediaPacket,
    Segmenter,
    SegmenterError,
    UnsupportedCodec,
    VideoConfig,
    read_flv_file,
)

RECORD = bytes.fromhex(
    "0142c00dffe100186742c00dd90141fb0110000003001000000303c0f142a48001000568cb83cb20"
)
SPS = bytes.fromhex("6742c00dd90141fb0110000003001000000303c0f142a480")
PPS = bytes.fromhex("68cb83cb20")
SC = b"\x00\x00\x00\x01"
AUD = SC + b"\x09\xf0"
VIDEO_SEQ = b"\x17\x00\x00\x00\x00" + RECORD
AUDIO_SEQ = b"\xaf\x00" + bytes.fromhex("1210")


def avcc(*nals: bytes) -> bytes:
    return b"".join(len(n).to_bytes(4, "big") + n for n in nals)


def frame(key: bool, cts_ms: int, *nals: bytes) -> bytes:
    return bytes([0x17 if key else 0x27, 1]) + cts_ms.to_bytes(3, "big", signed=True) + avcc(*nals)


def one(items: list[VideoConfig | AudioConfig | MediaPacket]) -> MediaPacket:
    [p] = items
    assert isinstance(p, MediaPacket)
    return p


def configured() -> FlvDemuxer:
    d = FlvDemuxer()
    d.feed(9, 0, VIDEO_SEQ)
    d.feed(8, 0, AUDIO_SEQ)
    return d


def test_sequence_headers() -> None:
    d = FlvDemuxer()
    [v] = d.feed(9, 0, VIDEO_SEQ)
    assert v == VideoConfig("h264", 320, 240, (SPS,), (PPS,), 66, 13)
    assert v.codecs_tag == "avc1.42c00d"
    [a] = d.feed(8, 0, AUDIO_SEQ)
    assert a == AudioConfig("aac", 44100, 2, 2, bytes.fromhex("1210"))
    assert d.feed(18, 0, b"\x02\x00\x0aonMetaData") == []


def test_keyframe_gets_aud_and_parameter_sets() -> None:
    d = configured()
    idr = b"\x65\x88\x84\x00"
    p = one(d.feed(9, 1000, frame(True, 67, idr)))
    assert p == MediaPacket("video", (1000 + 67) * 90, 1000 * 90, True, p.data)
    assert p.data == AUD + SC + SPS + SC + PPS + SC + idr


def test_frame_with_inband_sps_and_aud_is_not_duplicated() -> None:
    d = configured()
    nals = (b"\x09\xf0", SPS, PPS, b"\x65\x88")
    p = one(d.feed(9, 0, frame(True, 0, *nals)))
    assert p.data == b"".join(SC + n for n in nals)


def test_non_keyframe_negative_cts_and_idr_detection() -> None:
    d = configured()
    p = one(d.feed(9, 2000, frame(False, -33, b"\x41\x9a")))
    assert (p.pts, p.dts, p.keyframe) == ((2000 - 33) * 90, 2000 * 90, False)
    assert p.data == AUD + SC + b"\x41\x9a"
    k = one(d.feed(9, 2033, frame(False, 0, b"\x65\x88")))  # IDR NAL although FrameType says inter
    assert k.keyframe
    assert d.feed(9, 0, b"\x17\x02\x00\x00\x00") == []  # end of sequence
    assert d.feed(9, 0, b"\x57\x00") == []  # video info/command frame
    assert d.feed(9, 0, frame(False, 0)) == []  # no NAL units


def test_in_band_config_without_sequence_header() -> None:
    d = FlvDemuxer()
    items = d.feed(9, 0, frame(True, 0, SPS, PPS, b"\x65\x88"))
    assert isinstance(items[0], VideoConfig) and items[0].width == 320
    assert isinstance(items[1], MediaPacket) and items[1].keyframe


def test_audio_frames() -> None:
    d = configured()
    [p] = d.feed(8, 23, b"\xaf\x01\x21\x10\x05")
    assert p == MediaPacket("audio", 23 * 90, 23 * 90, True, b"\x21\x10\x05")
    assert d.feed(8, 23, b"\xaf\x01") == []


@pytest.mark.parametrize(
    ("msg_type", "payload", "needle"),
    [
        (9, b"\x22\x00", "Sorenson H.263"),
        (9, b"\x14\x00", "VP6"),
        (9, b"\x1c\x00\x00\x00\x00", "HEVC"),
        (9, b"\x90hvc1\x00", "'hvc1'"),
        (9, b"\x91av01", "'av01'"),
        (8, b"\x2f\xff", "MP3"),
        (8, b"\x72\x00", "G.711 A-law"),
        (8, b"\xb6\x00", "Speex"),
        (8, b"\x90Opus", "'Opus'"),
    ],
)
def test_unsupported_codecs(msg_type: int, payload: bytes, needle: str) -> None:
    with pytest.raises(UnsupportedCodec, match=needle) as exc:
        FlvDemuxer().feed(msg_type, 0, payload)
    assert "supported: H.264" in str(exc.value)


@pytest.mark.parametrize(
    ("msg_type", "payload"),
    [
        (9, b"\x17\x01\x00"),  # truncated AVC header
        (9, b"\x17\x05\x00\x00\x00"),  # reserved AVCPacketType
        (9, b"\x17\x00\x00\x00\x00\x01\x42"),  # truncated config record
        (9, b"\x17\x01\x00\x00\x00\x00\x00\x10\x00\x65"),  # NAL length beyond the tag
        (9, b"\x17\x01\x00\x00\x00" + b"\x00\x00\x00\x01\x41" * 5000),  # absurd NAL count
        (8, b"\xaf"),
        (8, b"\xaf\x00\x12"),  # truncated ASC
        (8, b"\xaf\x07\x00"),
        (8, b"\xaf\x01" + b"\x00" * 9000),  # larger than an ADTS frame
    ],
)
def test_malformed(msg_type: int, payload: bytes) -> None:
    with pytest.raises(MalformedMedia):
        configured().feed(msg_type, 0, payload)


def flv_bytes(tags: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00")
    for t, ts, payload in tags:
        out += bytes([t]) + len(payload).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
        out += (
            bytes([ts >> 24]) + b"\x00\x00\x00" + payload + (11 + len(payload)).to_bytes(4, "big")
        )
    return bytes(out)


def test_read_flv_file_bytes_and_path(tmp_path: Path) -> None:
    tags = [(9, 0, VIDEO_SEQ), (8, 0, AUDIO_SEQ), (9, 0x1234567, frame(True, 0, b"\x65"))]
    data = flv_bytes(tags)
    assert list(read_flv_file(data)) == tags
    path = tmp_path / "x.flv"
    path.write_bytes(data + b"\x09\x00")  # truncated trailing tag header is ignored
    assert list(read_flv_file(path)) == tags
    with pytest.raises(MalformedMedia):
        list(read_flv_file(b"RIFF\x00\x00\x00\x00\x00"))


@pytest.mark.ffmpeg
def test_real_flv1_file_is_rejected(make_flv: Callable[..., Path]) -> None:
    path = make_flv(vcodec="flv", audio=False)
    d = FlvDemuxer()
    with pytest.raises(UnsupportedCodec, match="Sorenson"):
        for t, ts, payload in read_flv_file(path):
            d.feed(t, ts, payload)


def _fuzz_feed(d: FlvDemuxer, msgs: list[tuple[int, int, bytes]]) -> None:
    seg = Segmenter(0.1)
    for msg_type, ts, payload in msgs:
        try:
            for item in d.feed(msg_type, ts, payload):
                seg.push(item)
        except SegmenterError:
            pass
    try:
        seg.flush()
    except SegmenterError:
        pass


seeds = st.sampled_from([VIDEO_SEQ, AUDIO_SEQ, frame(True, 0, b"\x65\x88"), b"\xaf\x01\x21",
                         frame(False, -5, b"\x41"), b"\x17\x01\x00\x00\x00\x00\x00"])  # fmt: skip
mutated = st.tuples(seeds, st.integers(0, 40), st.binary(max_size=40)).map(
    lambda t: t[0][: t[1]] + t[2]
)
payloads = st.one_of(st.binary(max_size=200), mutated)
messages = st.lists(
    st.tuples(st.sampled_from([8, 9, 18, 20, 0, 255]), st.integers(0, 2**32 - 1), payloads),
    max_size=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_fuzz_feed_only_raises_segmenter_error(msgs: list[tuple[int, int, bytes]]) -> None:
    _fuzz_feed(FlvDemuxer(), msgs)
    _fuzz_feed(configured(), msgs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_read_flv_file(data: bytes) -> None:
    try:
        list(read_flv_file(b"FLV\x01\x05\x00\x00\x00\x09" + data))
    except SegmenterError:
        pass


@pytest.mark.ffmpeg
def test_flv_file_from_ffmpeg_matches_ffprobe(make_flv: Callable[..., Path]) -> None:
    path = make_flv(seconds=2.0)
    d = FlvDemuxer()
    video = audio = 0
    for t, ts, payload in read_flv_file(path):
        for item in d.feed(t, ts, payload):
            if isinstance(item, MediaPacket):
                video += item.kind == "video"
                audio += item.kind == "audio"
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=nb_read_packets",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert sorted([video, audio]) == sorted(int(x) for x in out)


def test_in_band_sps_change_emits_new_config() -> None:
    d = configured()
    assert len(d.feed(9, 0, frame(True, 0, SPS, PPS, b"\x65\x88"))) == 1  # same SPS: no config
    sps2 = bytes.fromhex("674d401feca02802dd8088000003000800000301e078c18cb0")  # 1280x720
    items = d.feed(9, 40, frame(True, 0, sps2, b"\x65\x88"))  # no PPS in band: keep the old one
    assert isinstance(items[0], VideoConfig) and (items[0].width, items[0].height) == (1280, 720)
    assert items[0].pps == (PPS,)
    p = one(d.feed(9, 80, frame(True, 0, b"\x65\x88")))
    assert p.data.startswith(AUD + SC + sps2 + SC + PPS)


def test_an_empty_aac_header_holds_video_until_the_real_config() -> None:
    """FFmpeg's FLV muxer, copying AAC out of MPEG-TS, sends an empty AAC sequence header and
    the real one with the first audio frame: video waits for it (bounded), nothing is lost."""
    from segmenter import AudioConfig, MediaPacket, VideoConfig
    from segmenter.flv import MSG_AUDIO, MSG_VIDEO

    sps = bytes.fromhex("6742c00dd90141fb0110000003001000000303c0f142a480")
    pps = bytes.fromhex("68cb83cb20")
    avcc = bytes([1, 0x42, 0xC0, 0x0D, 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps
    avcc += bytes([1]) + len(pps).to_bytes(2, "big") + pps

    def frame(key: bool) -> bytes:
        nal = b"\x65\x88" if key else b"\x41\x9a"
        return bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + len(nal).to_bytes(4, "big") + nal

    demux = FlvDemuxer()
    assert demux.feed(MSG_VIDEO, 0, bytes([0x17, 0, 0, 0, 0]) + avcc)  # the video config
    assert demux.feed(MSG_AUDIO, 0, b"\xaf\x00") == []  # empty AudioSpecificConfig
    assert demux.feed(MSG_VIDEO, 0, frame(True)) == []  # held
    assert demux.feed(MSG_VIDEO, 33, frame(False)) == []
    out = demux.feed(MSG_AUDIO, 40, b"\xaf\x00\x11\x90")  # the real one (48 kHz stereo)
    assert isinstance(out[0], AudioConfig)
    assert [p.dts for p in out[1:] if isinstance(p, MediaPacket)] == [0, 33 * 90]
    assert len(demux.feed(MSG_VIDEO, 66, frame(False))) == 1  # no longer held
    # an announced config that never comes holds at most MAX_AUDIO_WAIT, then everything flows
    demux = FlvDemuxer()
    demux.feed(MSG_VIDEO, 0, bytes([0x17, 0, 0, 0, 0]) + avcc)
    demux.feed(MSG_AUDIO, 0, b"\xaf\x00")
    released: list[object] = []
    for i in range(40):
        released += demux.feed(MSG_VIDEO, i * 33, frame(i == 0))
    assert 29 <= len(released) <= 40 and isinstance(released[0], MediaPacket)
    demux = FlvDemuxer()
    demux.feed(MSG_AUDIO, 0, b"\xaf\x00")
    demux.feed(MSG_VIDEO, 0, bytes([0x17, 0, 0, 0, 0]) + avcc)
    assert isinstance(demux.flush()[0], VideoConfig)  # the end of the session releases it
