"""AudioSpecificConfig parsing and ADTS header golden bytes."""

from __future__ import annotations

import io

import av
import pytest

from segmenter import MalformedMedia, UnsupportedCodec, aac


def test_parse_asc_lc() -> None:
    info = aac.parse_asc(bytes.fromhex("1210"))  # LC, 44100 Hz, stereo
    assert (info.object_type, info.freq_index, info.sample_rate, info.channels) == (2, 4, 44100, 2)
    assert info.signaled_type == 2 and info.ext_sample_rate == 0
    mono = aac.parse_asc(bytes.fromhex("120856e500"))  # ffmpeg's LC mono + sync extension
    assert (mono.sample_rate, mono.channels) == (44100, 1)


def test_parse_asc_he_aac_explicit() -> None:
    # aot 5 | idx 6 (24 kHz) | 2 ch | ext idx 3 (48 kHz) | core aot 2
    info = aac.parse_asc(bytes([0x2B, 0x11, 0x88]))
    assert (info.signaled_type, info.object_type) == (5, 2)
    assert (info.sample_rate, info.ext_sample_rate, info.channels) == (24000, 48000, 2)
    assert aac.AdtsWriter.from_asc(info).header(0)[2] >> 6 == 1  # ADTS profile = LC


def test_parse_asc_explicit_frequency() -> None:
    # aot 2 | idx 15 | 24-bit 44100 | 1 ch
    bits = (2 << 35) | (15 << 31) | (44100 << 7) | (1 << 3)
    info = aac.parse_asc(bits.to_bytes(5, "big"))
    assert (info.sample_rate, info.freq_index) == (44100, 4)
    odd = (2 << 35) | (15 << 31) | (12345 << 7) | (1 << 3)
    info = aac.parse_asc(odd.to_bytes(5, "big"))
    assert (info.sample_rate, info.freq_index) == (12345, 15)
    with pytest.raises(UnsupportedCodec):
        aac.AdtsWriter.from_asc(info)


def test_parse_asc_errors() -> None:
    for bad in (b"", b"\x12", b"\x00\x00", bytes([0x17, 0x80]), b"\x12" * 2000):
        with pytest.raises(MalformedMedia):
            aac.parse_asc(bad)
    with pytest.raises(UnsupportedCodec, match="channel"):
        aac.AdtsWriter.from_asc(aac.parse_asc(bytes.fromhex("1200")))  # PCE layout
    with pytest.raises(UnsupportedCodec, match="object type"):
        aac.AdtsWriter(42, 4, 2)


def test_adts_header_golden() -> None:
    assert aac.adts_header(2, 4, 2, 100) == bytes.fromhex("fff150800d7ffc")
    assert aac.adts_header(2, 3, 1, 0) == bytes.fromhex("fff14c4000fffc")
    with pytest.raises(MalformedMedia):
        aac.adts_header(2, 4, 2, 8190)


def test_adts_frames_decode_with_ffmpeg() -> None:
    """Raw AAC frames from PyAV's encoder + our ADTS header decode as an ADTS stream."""
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate = 48000
    enc.layout = "stereo"
    enc.format = "fltp"
    enc.open()
    raw: list[bytes] = []
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
    for p in frame.planes:
        p.update(bytes(p.buffer_size))
    frame.sample_rate = 48000
    for i in range(10):
        frame.pts = i * 1024
        raw += [bytes(p) for p in enc.encode(frame)]
    raw += [bytes(p) for p in enc.encode(None)]
    info = aac.parse_asc(bytes(enc.extradata or b""))
    writer = aac.AdtsWriter.from_asc(info)
    stream = b"".join(writer.frame(r) for r in raw)
    with av.open(io.BytesIO(stream), "r", format="aac") as c:
        frames = list(c.decode(audio=0))
    assert len(frames) == len(raw)
    assert frames[0].sample_rate == 48000
