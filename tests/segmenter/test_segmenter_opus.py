"""Opus -> AAC (OpusToAac) and the WebRTC demuxer (RtpDemuxer) without any WebRTC: Opus packets
and H.264 access units are made with PyAV at test time, cut into segments and decoded back."""

from __future__ import annotations

import array
import fractions
import io
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import av
import pytest

from segmenter import (
    CLOCK,
    AnnexBVideo,
    AudioConfig,
    MediaPacket,
    MuxError,
    OpusToAac,
    RtpDemuxer,
    Segment,
    Segmenter,
    VideoConfig,
)
from segmenter.opus import FRAME_TICKS, MAX_FILL, TOLERANCE

RATE = 48_000
OPUS_TICKS = 1800  # 20 ms in 90 kHz ticks
P0 = 123_456  # an arbitrary first pts (90 kHz)


def opus_tone(seconds: float, *, freq: float = 440.0, amp: float = 0.25) -> list[bytes]:
    """20 ms stereo Opus packets of a sine tone (libopus, as browsers send it)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = RATE, "stereo", "s16"
    codec.time_base = fractions.Fraction(1, RATE)
    n, out = 960, []
    for i in range(round(seconds * 50)):
        pcm = array.array("h")
        for k in range(n):
            v = int(32767 * amp * math.sin(2 * math.pi * freq * (i * n + k) / RATE))
            pcm.extend((v, v))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate, frame.pts = RATE, i * n
        frame.time_base = fractions.Fraction(1, RATE)
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


def h264_units(seconds: float, *, gop: int = 30) -> list[bytes]:
    """Baseline H.264 access units (Annex B, no B-frames) of a moving bar, 320x240 at 30 fps."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 320, 240, "yuv420p"
    codec.time_base = fractions.Fraction(1, 30)
    codec.framerate = fractions.Fraction(30, 1)
    codec.gop_size, codec.max_b_frames, codec.profile = gop, 0, "Baseline"
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "sc_threshold": "0"}
    out: list[bytes] = []
    for i in range(round(seconds * 30)):
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        x0 = (i * 4) % 312
        frame.planes[0].update((b"\x30" * x0 + b"\xd0" * 8 + b"\x30" * (312 - x0)) * 240)
        frame.planes[1].update(b"\x80" * frame.planes[1].buffer_size)
        frame.planes[2].update(b"\x80" * frame.planes[2].buffer_size)
        frame.pts = i
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


@pytest.fixture(scope="module")
def tone() -> list[bytes]:
    return opus_tone(6.0)


@pytest.fixture(scope="module")
def video() -> list[bytes]:
    return h264_units(6.0)


def transcode(
    packets: Iterable[tuple[bytes, int]], coder: OpusToAac | None = None
) -> tuple[OpusToAac, AudioConfig, list[MediaPacket]]:
    coder = coder or OpusToAac()
    items = [item for data, pts in packets for item in coder.feed(data, pts)]
    items += coder.flush()
    configs = [i for i in items if isinstance(i, AudioConfig)]
    assert len(configs) == 1 and items[0] is configs[0]
    return coder, configs[0], [i for i in items if isinstance(i, MediaPacket)]


def decode_aac(config: AudioConfig, frames: Sequence[MediaPacket]) -> array.array[float]:
    """Channel 0 of the decoded AAC frames."""
    codec = av.CodecContext.create("aac", "r")
    codec.extradata = config.asc
    pcm = array.array("f")
    for f in frames:
        for out in codec.decode(av.Packet(f.data)):
            pcm.frombytes(bytes(out.planes[0])[: out.samples * 4])
    return pcm


def rms(pcm: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in pcm) / max(1, len(pcm)))


def frequency(pcm: Sequence[float]) -> float:
    crossings = sum(1 for a, b in itertools.pairwise(pcm) if a < 0 <= b)
    return crossings * RATE / len(pcm)


def steps(frames: Sequence[MediaPacket]) -> set[int]:
    return {b.pts - a.pts for a, b in itertools.pairwise(frames)}


# -- OpusToAac ---------------------------------------------------------------------------------


def test_tone_comes_out_as_continuous_aac(tone: list[bytes]) -> None:
    coder, config, frames = transcode((p, P0 + i * OPUS_TICKS) for i, p in enumerate(tone[:150]))
    assert (config.codec, config.sample_rate, config.channels, config.object_type) == (
        "aac",
        48_000,
        2,
        2,
    )
    assert config.asc == bytes.fromhex("1190") and config.codecs_tag == "mp4a.40.2"
    # the encoder's priming frame starts one AAC frame before the first Opus sample
    assert frames[0].pts == P0 - FRAME_TICKS
    assert steps(frames) == {FRAME_TICKS} and all(f.pts == f.dts and f.keyframe for f in frames)
    assert frames[-1].pts + FRAME_TICKS >= P0 + 3 * CLOCK  # all 3 s of input are out
    assert coder.stats.aac_frames == len(frames) and coder.stats.packets == 150
    assert coder.stats.bad_packets == coder.stats.filled_samples == coder.stats.jumps == 0
    pcm = decode_aac(config, frames)[4096:-4096]  # past the priming, before the padding
    assert 0.15 < rms(pcm) < 0.2  # 0.25 full scale sine: RMS 0.177
    assert 430 < frequency(pcm) < 450


def test_mono_and_bit_rate() -> None:
    coder = OpusToAac(channels=1, bit_rate=48_000)
    assert coder.config.channels == 1 and coder.config.asc == bytes.fromhex("1188")
    with pytest.raises(ValueError):
        OpusToAac(channels=6)


def test_lost_packets_are_filled_with_silence(tone: list[bytes]) -> None:
    kept = [(p, P0 + i * OPUS_TICKS) for i, p in enumerate(tone[:150]) if not 50 <= i < 55]
    coder, _, frames = transcode(kept)
    assert coder.stats.filled_samples == 5 * 960 and coder.stats.jumps == 0
    assert steps(frames) == {FRAME_TICKS}  # no hole in the AAC timeline
    assert frames[-1].pts + FRAME_TICKS >= P0 + 3 * CLOCK


def test_broken_packets_are_skipped_and_counted(tone: list[bytes]) -> None:
    packets = [(p, P0 + i * OPUS_TICKS) for i, p in enumerate(tone[:100])]
    packets[30] = (b"\xff\xff\xff\xff", packets[30][1])  # undecodable
    packets[31] = (b"", packets[31][1])
    packets[32] = (b"\x00" * (70 * 1024), packets[32][1])  # larger than any Opus packet
    coder, _, frames = transcode(packets)
    assert coder.stats.bad_packets == 3 and coder.stats.packets == 100
    assert steps(frames) == {FRAME_TICKS}  # their time is filled, the stream goes on
    assert coder.stats.filled_samples == 3 * 960


def test_first_packets_broken_announce_nothing(tone: list[bytes]) -> None:
    coder = OpusToAac()
    assert coder.feed(b"\xff\xff\xff\xff", P0) == [] and coder.stats.bad_packets == 1
    out = coder.feed(tone[0], P0 + OPUS_TICKS)
    assert out[0] == coder.config


def test_long_hole_jumps_at_a_frame_boundary(tone: list[bytes]) -> None:
    resume = P0 + 50 * OPUS_TICKS + 3 * CLOCK  # 3 s without audio after 1 s
    packets = [(p, P0 + i * OPUS_TICKS) for i, p in enumerate(tone[:50])]
    packets += [(p, resume + i * OPUS_TICKS) for i, p in enumerate(tone[50:100])]
    coder, _, frames = transcode(packets)
    assert coder.stats.jumps == 1 and coder.stats.filled_samples < 1024
    gaps = [b.pts - a.pts for a, b in itertools.pairwise(frames) if b.pts - a.pts != FRAME_TICKS]
    assert len(gaps) == 1 and gaps[0] > MAX_FILL * CLOCK // RATE
    # the audio after the hole is where its input says, to the sample
    assert any(f.pts == resume for f in frames)


def test_overlap_is_trimmed(tone: list[bytes]) -> None:
    early = 2 * TOLERANCE * CLOCK // RATE  # 10 ms
    packets = [
        (p, P0 + i * OPUS_TICKS - (early if i >= 40 else 0)) for i, p in enumerate(tone[:80])
    ]
    coder, _, frames = transcode(packets)
    assert coder.stats.trimmed_samples == 2 * TOLERANCE and coder.stats.filled_samples == 0
    assert steps(frames) == {FRAME_TICKS}


def test_small_jitter_is_ignored(tone: list[bytes]) -> None:
    wobble = (TOLERANCE // 2) * CLOCK // RATE
    packets = [(p, P0 + i * OPUS_TICKS + (wobble if i % 2 else 0)) for i, p in enumerate(tone[:80])]
    coder, _, frames = transcode(packets)
    assert coder.stats.trimmed_samples == coder.stats.filled_samples == 0
    assert steps(frames) == {FRAME_TICKS}


def test_clock_step_back_keeps_the_output_continuous(tone: list[bytes]) -> None:
    packets = [(p, P0 + 20 * CLOCK + i * OPUS_TICKS) for i, p in enumerate(tone[:50])]
    packets += [(p, P0 + i * OPUS_TICKS) for i, p in enumerate(tone[50:100])]  # back 20 s
    coder, _, frames = transcode(packets)
    assert coder.stats.jumps == 1 and steps(frames) == {FRAME_TICKS}


def test_feed_after_flush_is_refused(tone: list[bytes]) -> None:
    coder = OpusToAac()
    coder.feed(tone[0], P0)
    coder.flush()
    assert coder.flush() == []
    with pytest.raises(Exception, match="flushed"):
        coder.feed(tone[1], P0 + OPUS_TICKS)


# -- RtpDemuxer --------------------------------------------------------------------------------


@dataclass
class Probe:
    video: list[int] = field(default_factory=list)  # pts
    audio: list[int] = field(default_factory=list)
    audio_codec: str | None = None


def probe(segment: Segment) -> Probe:
    out = Probe()
    with av.open(io.BytesIO(segment.data), format="mpegts") as c:
        if c.streams.audio:
            out.audio_codec = c.streams.audio[0].codec_context.name
        for pkt in c.demux():
            if pkt.pts is not None:
                (out.video if pkt.stream.type == "video" else out.audio).append(int(pkt.pts))
    return out


def arrivals(
    video: list[bytes], tone: list[bytes], *, audio_at: int = 0, audio_lag: int = 0
) -> list[tuple[str, bytes, int]]:
    """Units in arrival order: video at 30 fps from pts 0, Opus from ``audio_at``; each audio
    packet arrives ``audio_lag`` ticks after its pts."""
    units = [(i * 3000, "video", d, i * 3000) for i, d in enumerate(video)]
    units += [
        (audio_at + i * OPUS_TICKS + audio_lag, "audio", d, audio_at + i * OPUS_TICKS)
        for i, d in enumerate(tone)
    ]
    units.sort(key=lambda u: u[0])
    return [(kind, data, pts) for _, kind, data, pts in units]


def run(
    demux: RtpDemuxer, units: Iterable[tuple[str, bytes, int]]
) -> tuple[list[VideoConfig | AudioConfig | MediaPacket], list[Segment]]:
    seg = Segmenter(2.0)
    items: list[VideoConfig | AudioConfig | MediaPacket] = []
    for kind, data, pts in units:
        items += demux.feed(kind, data, pts)
    items += demux.flush()
    segments = [s for item in items for s in seg.push(item)] + seg.flush()
    return items, segments


@pytest.mark.parametrize("lag", [0, 400 * 90])  # audio arrives with its video, or 400 ms late
def test_segments_carry_their_own_audio(video: list[bytes], tone: list[bytes], lag: int) -> None:
    demux = RtpDemuxer()
    items, segments = run(demux, arrivals(video, tone, audio_lag=lag))
    assert demux.releases == 0 and demux.audio_stats.bad_packets == 0
    assert len(segments) == 3 and not any(s.discontinuity for s in segments)
    probes = [probe(s) for s in segments]
    for s, p in zip(segments, probes, strict=True):
        assert p.audio_codec == "aac" and s.audio is not None and s.audio_frames == len(p.audio)
        end = s.start_pts + s.duration_ticks
        # every AAC frame starting before the cut is in the segment before it
        assert s.start_pts - FRAME_TICKS <= p.audio[0] <= s.start_pts + FRAME_TICKS
        assert end - FRAME_TICKS <= p.audio[-1] < end or s.last
        if not s.last:  # the first one also has the encoder's priming frame
            audio_span = p.audio[-1] + FRAME_TICKS - p.audio[0]
            assert abs(audio_span - s.duration_ticks) < FRAME_TICKS * (2 if s.seq == 0 else 1)
    for a, b in itertools.pairwise(probes):  # continuous across segments
        assert b.audio[0] - a.audio[-1] == FRAME_TICKS
    # in the demuxer's output, a keyframe comes after every audio frame that precedes it
    for i, item in enumerate(items):
        if isinstance(item, MediaPacket) and item.kind == "video" and item.keyframe:
            later = [x for x in items[i + 1 :] if isinstance(x, MediaPacket) and x.kind == "audio"]
            assert all(x.pts >= item.pts for x in later)


def test_no_audio_offered_is_exactly_annexb(video: list[bytes]) -> None:
    demux, plain = RtpDemuxer(audio=False), AnnexBVideo()
    for i, data in enumerate(video):
        assert demux.feed("video", data, i * 3000) == plain.feed(data, i * 3000)
    assert demux.flush() == [] and demux.audio is None


def test_audio_offered_but_absent_holds_video_for_one_second(video: list[bytes]) -> None:
    demux = RtpDemuxer()
    out: list[VideoConfig | AudioConfig | MediaPacket] = []
    for i, data in enumerate(video[:30]):
        assert demux.feed("video", data, i * 3000) == []  # waiting for audio
    released = demux.feed("video", video[30], 30 * 3000)
    assert len([x for x in released if isinstance(x, MediaPacket)]) == 31 and demux.releases == 1
    out += released
    for i, data in enumerate(video[31:], 31):  # then video passes straight through
        got = demux.feed("video", data, i * 3000)
        assert [x.pts for x in got if isinstance(x, MediaPacket)] == [i * 3000]
        out += got
    out += demux.flush()
    assert len([x for x in out if isinstance(x, MediaPacket)]) == len(video)


def test_audio_starting_late_joins_at_a_keyframe(video: list[bytes], tone: list[bytes]) -> None:
    demux = RtpDemuxer()
    items, segments = run(demux, arrivals(video, tone[:150], audio_at=int(2.5 * CLOCK)))
    assert demux.releases == 1
    assert segments[0].audio is None and segments[-1].audio is not None
    assert probe(segments[-1]).audio_codec == "aac"
    video_packets = [x for x in items if isinstance(x, MediaPacket) and x.kind == "video"]
    assert len(video_packets) == len(video)


def test_a_failing_transcoder_gives_up_audio_not_video(
    video: list[bytes], tone: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: OpusToAac, data: bytes, pts: int) -> list[AudioConfig | MediaPacket]:
        raise MuxError("AAC encoding failed: test")

    monkeypatch.setattr(OpusToAac, "feed", broken)
    demux = RtpDemuxer()
    items, segments = run(demux, arrivals(video, tone))
    assert demux.audio_error is not None and "test" in demux.audio_error
    assert demux.audio_dropped == len(tone)
    assert not any(isinstance(x, AudioConfig) for x in items)
    assert len([x for x in items if isinstance(x, MediaPacket)]) == len(video)
    assert len(segments) == 3 and all(s.audio is None for s in segments)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        RtpDemuxer().feed("data", b"", 0)
