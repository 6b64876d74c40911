"""TsDemuxer against PyAV's own demuxer, in any chunking, and on broken input."""

from __future__ import annotations

import io
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mediatools import need_tool

from segmenter import (
    AudioConfig,
    FlvDemuxer,
    MalformedMedia,
    MediaPacket,
    Segment,
    Segmenter,
    SegmenterError,
    SegmentProgress,
    VideoConfig,
    read_flv_file,
    tsmux,
)
from segmenter.tsdemux import TsDemuxer
from segmenter.tsmux import TsWriter


def pyav_units(ts: bytes) -> list[tuple[str, int, int, bool, bytes]]:
    """(kind, pts, dts, keyframe, bytes) by PyAV; AAC without its 7-byte ADTS header."""
    out = []
    c: Any = av.open(io.BytesIO(ts), format="mpegts")
    with c:
        for p in c.demux():
            if not p.size or p.pts is None:
                continue
            data = bytes(p)
            if p.stream.type == "audio":
                out.append(("audio", int(p.pts), int(p.dts), True, data[7:]))
            else:
                out.append(("video", int(p.pts), int(p.dts), bool(p.is_keyframe), data))
    return out


def ours(packets: list[MediaPacket]) -> list[tuple[str, int, int, bool, bytes]]:
    return [(p.kind, p.pts, p.dts, p.keyframe, p.data) for p in packets]


def same_as_pyav(got: list[MediaPacket], ts: bytes) -> None:
    """Each stream's units in order as PyAV gives them (FFmpeg's parser releases a video PES of
    length 0 a little later than we do, so only the interleaving differs). Audio pts within
    1 tick: FFmpeg adds a rounded frame duration per frame of a PES, we round each frame's
    exact time."""
    theirs = pyav_units(ts)
    mine = ours(got)
    assert [u for u in mine if u[0] == "video"] == [u for u in theirs if u[0] == "video"]
    a = [u for u in mine if u[0] == "audio"]
    b = [u for u in theirs if u[0] == "audio"]
    assert [u[3:] for u in a] == [u[3:] for u in b]
    assert all(abs(x[1] - y[1]) <= 1 and x[1] == x[2] for x, y in zip(a, b, strict=True))


def _run(path: Path) -> list[Segment]:
    seg, demux, out = Segmenter(1.0), FlvDemuxer(), []
    for tag_type, ts, payload in read_flv_file(path):
        for item in demux.feed(tag_type, ts, payload):
            out += seg.push(item)
    return out + seg.flush()


def demux_in(ts: bytes, sizes: list[int]) -> tuple[list[MediaPacket], TsDemuxer]:
    demux = TsDemuxer()
    out: list[MediaPacket] = []
    pos = 0
    for size in sizes:
        out += demux.feed(ts[pos : pos + size])
        pos += size
    out += demux.feed(ts[pos:])
    out += demux.flush()
    return out, demux


@pytest.fixture(scope="module")
def segments(
    make_flv: Callable[..., Path],
) -> list[bytes]:
    path = make_flv(size="320x240", seconds=3.0, gop=30, bframes=2)
    segs = _run(path)
    return [s.data for s in segs]


@pytest.fixture(scope="module")
def ffmpeg_ts(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What ffmpeg's CLI writes (go-livepeer / ai-runner output): video PES length 0."""
    ffmpeg = need_tool("ffmpeg")
    out = Path(tmp_path_factory.mktemp("ts")) / "out.ts"
    cmd = [ffmpeg, "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25",
           "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "2", "-c:v", "libx264",
           "-preset", "ultrafast", "-bf", "0", "-g", "25", "-c:a", "aac",
           "-f", "mpegts", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return out.read_bytes()


def test_same_units_as_pyav(segments: list[bytes]) -> None:
    for ts in segments:
        got, demux = demux_in(ts, [])
        same_as_pyav(got, ts)
        assert demux.stats.damaged == 0 and demux.stats.resyncs == 0
        assert got[0].kind == "video" and got[0].keyframe  # segments start at a keyframe
        assert demux.video is not None and (demux.video.width, demux.video.height) == (320, 240)
        assert demux.audio is not None and demux.audio.sample_rate == 44100
        assert demux.audio.channels == 1 and demux.audio.codecs_tag == "mp4a.40.2"
    assert any(p.pts != p.dts for p in demux_in(segments[0], [])[0])  # B-frames: dts checked


def test_ffmpeg_cli_output(ffmpeg_ts: bytes) -> None:
    got, demux = demux_in(ffmpeg_ts, [])
    same_as_pyav(got, ffmpeg_ts)
    assert demux.video is not None and demux.video.codecs_tag.startswith("avc1.")
    assert sum(p.keyframe for p in got if p.kind == "video") == 2


def test_units_complete_before_the_end(ffmpeg_ts: bytes) -> None:
    """A video unit of length 0 is out as soon as the next PES on its PID starts; audio (PES
    length set) as soon as its last byte arrived."""
    demux = TsDemuxer()
    seen: list[tuple[int, str]] = []
    for pos in range(0, len(ffmpeg_ts), 188):
        seen += [(pos, p.kind) for p in demux.feed(ffmpeg_ts[pos : pos + 188])]
    tail = demux.flush()
    assert [p.kind for p in tail] == ["video"]  # only the last video unit waited for the end
    first_video = next(pos for pos, kind in seen if kind == "video")
    assert first_video < len(ffmpeg_ts) // 10


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=0, max_value=700), max_size=60))
def test_any_chunking_same_output(segments: list[bytes], sizes: list[int]) -> None:
    ts = segments[0]
    whole, _ = demux_in(ts, [])
    split, _ = demux_in(ts, sizes)
    assert split == whole


def test_continuity_gap_drops_the_damaged_unit(segments: list[bytes]) -> None:
    ts = bytearray(segments[0])
    whole, _ = demux_in(bytes(ts), [])
    # remove one TS packet in the middle of the first video unit (a payload-only packet)
    demux = TsDemuxer()
    demux.feed(bytes(ts[: 188 * 3]))
    video_pid = demux._video_pid
    index = next(
        i for i in range(10, len(ts) // 188)
        if ((ts[i * 188 + 1] & 0x1F) << 8 | ts[i * 188 + 2]) == video_pid
        and not ts[i * 188 + 1] & 0x40
    )  # fmt: skip
    cut = bytes(ts[: index * 188] + ts[(index + 1) * 188 :])
    got, demux = demux_in(cut, [])
    assert demux.stats.damaged == 1
    assert (
        len([p for p in got if p.kind == "video"])
        == len([p for p in whole if p.kind == "video"]) - 1
    )
    assert set(ours(got)) <= set(ours(whole))  # nothing corrupt comes out


def test_resync_after_garbage(segments: list[bytes]) -> None:
    ts = segments[0]
    whole, _ = demux_in(ts, [])
    got, demux = demux_in(ts[:5000] + b"\x47garbage" * 13 + ts[5000:], [777] * 50)
    assert demux.stats.resyncs >= 1
    assert set(ours(got)) <= set(ours(whole))
    assert len(got) >= len(whole) - 3


def test_truncated_segment_flushes_only_whole_units(segments: list[bytes]) -> None:
    ts = segments[0]
    whole, _ = demux_in(ts, [])
    got, _ = demux_in(ts[: len(ts) // 2 + 100], [])
    assert got and set(ours(got[:-1])) <= set(ours(whole))


def test_limits(segments: list[bytes]) -> None:
    demux = TsDemuxer(max_pes=4000)
    with pytest.raises(MalformedMedia, match="max_pes"):
        demux.feed(segments[0])
    assert demux._buffered == 0
    demux = TsDemuxer(max_buffered=3000)
    with pytest.raises(MalformedMedia, match="buffered"):
        demux.feed(segments[0])
    assert demux._buffered == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=400))
def test_garbage_raises_only_package_errors(data: bytes, chunk: int) -> None:
    demux = TsDemuxer(max_pes=1 << 16, max_buffered=1 << 17)
    for pos in range(0, len(data), chunk):
        try:
            demux.feed(data[pos : pos + chunk])
        except SegmenterError:
            pass
        assert len(demux._rest) < 188 and demux._buffered <= 1 << 17
    try:
        demux.flush()
    except SegmenterError:
        pass


def test_mutated_ts_raises_only_package_errors(segments: list[bytes]) -> None:
    rng = random.Random(7)
    base = segments[0][:30_000]
    for _ in range(150):
        ts = bytearray(base)
        for _ in range(rng.randint(1, 40)):
            ts[rng.randrange(len(ts))] = rng.randrange(256)
        try:
            demux_in(bytes(ts), [rng.randint(1, 3000) for _ in range(20)])
        except SegmenterError:
            pass


def test_speed_vs_pyav(tmp_path: Path) -> None:
    """Reports µs per 720p frame (ours and PyAV's demux of the same bytes); no timed assert."""
    ffmpeg = need_tool("ffmpeg")
    out = tmp_path / "hd.ts"
    cmd = [ffmpeg, "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-t", "2",
           "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-bf", "0",
           "-f", "mpegts", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    ts = out.read_bytes()
    t0 = time.perf_counter()
    got, _ = demux_in(ts, [1316] * (len(ts) // 1316))
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = pyav_units(ts)
    pyav_s = time.perf_counter() - t0
    frames = len(got)
    assert frames == len(theirs) == 60
    print(f"tsdemux: {ours_s / frames * 1e6:.0f} µs/frame at 720p ({len(ts) / frames / 1000:.0f} "
          f"kB/frame); PyAV demux {pyav_s / frames * 1e6:.0f} µs/frame")  # fmt: skip


def _audio_pes_starts(ts: bytes) -> int:
    """PES packets that start on the audio PID (found from the PMT: stream type 0x0f)."""
    pid = None
    for pos in range(0, len(ts) - 187, 188):
        pkt = ts[pos : pos + 188]
        if pid is None and pkt[1] & 0x40 and (((pkt[1] & 0x1F) << 8) | pkt[2]) == 0x1000:
            body = pkt[5 + pkt[4] :]  # the PMT section (after the pointer field)
            info = ((body[10] & 0x0F) << 8) | body[11]
            i, end = 12 + info, 3 + (((body[1] & 0x0F) << 8) | body[2]) - 4
            while i < end:
                if body[i] == 0x0F:
                    pid = ((body[i + 1] & 0x1F) << 8) | body[i + 2]
                i += 5 + (((body[i + 3] & 0x0F) << 8) | body[i + 4])
    assert pid is not None
    return sum(
        1
        for pos in range(0, len(ts) - 187, 188)
        if ts[pos + 1] & 0x40 and (((ts[pos + 1] & 0x1F) << 8) | ts[pos + 2]) == pid
    )


def test_audio_frames_go_in_groups_and_each_keeps_its_time(
    make_flv: Callable[..., Path],
) -> None:
    """Every AAC frame the segmenter muxed is in the segments, once, in order, at its time,
    while the muxer got them a group at a time: one PES per group. (A PES carries its first
    frame's PTS and the next ones follow at 1024 samples each, so a frame's time is exact to
    within the FLV timestamps' 1 ms: the muxer's own batching of audio PES did the same.)"""
    path = make_flv(size="320x240", seconds=3.0, gop=30, bframes=0)
    seg, demux = Segmenter(1.0), FlvDemuxer()
    seg.enable_progress()  # the packets as muxed, with the times the segmenter gave them
    segs: list[Segment] = []
    muxed: list[MediaPacket] = []

    def take_audio() -> None:
        for e in seg.take_progress():
            if isinstance(e, SegmentProgress):
                muxed.extend(p for p in e.packets if p.kind == "audio")

    for tag in read_flv_file(path):
        for item in demux.feed(*tag):
            segs += seg.push(item)
            take_audio()
    segs += seg.flush()
    take_audio()
    got: list[MediaPacket] = []
    pes = 0
    for s in segs:
        units = demux_in(s.data, [])[0]
        same_as_pyav(units, s.data)
        got += [p for p in units if p.kind == "audio"]
        pes += _audio_pes_starts(s.data)
    assert len(muxed) > 100 and [p.data for p in got] == [p.data for p in muxed]
    assert all(abs(a.pts - b.pts) <= 90 for a, b in zip(got, muxed, strict=True))
    assert pes * 4 <= len(muxed), (pes, len(muxed))  # groups of several frames


class _CountingContainer:
    """Stands in front of a TsWriter's PyAV container: counts ``mux_one`` calls per kind."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {"audio": 0, "video": 0}

    def mux_one(self, pkt: Any) -> None:
        self.calls[pkt.stream.type] += 1
        self.inner.mux_one(pkt)

    def close(self) -> None:
        self.inner.close()


def _two_seconds(
    make_flv: Callable[..., Path],
) -> tuple[VideoConfig, AudioConfig, list[MediaPacket]]:
    """A 2 s 320x240 clip's configs and packets, as the FLV demuxer gives them."""
    path = make_flv(size="320x240", seconds=2.0, gop=30, bframes=0)
    demux = FlvDemuxer()
    items = [i for t in read_flv_file(path) for i in demux.feed(*t)]
    video = next(i for i in items if isinstance(i, VideoConfig))
    audio = next(i for i in items if isinstance(i, AudioConfig))
    return video, audio, [i for i in items if isinstance(i, MediaPacket)]


def _write_all(writer: TsWriter, packets: list[MediaPacket]) -> bytes:
    """Every packet into ``writer`` with the times the segmenter would give them (from 0.4 s,
    the PCR lead); the finished TS."""
    shift = tsmux.PCR_LEAD - min(p.dts for p in packets)
    for p in packets:
        if p.kind == "video":
            writer.write_video(p.pts + shift, p.dts + shift, p.keyframe, p.data)
        else:
            writer.write_audio(p.pts + shift, p.data)
    return writer.close()


def test_the_muxer_gets_audio_a_group_at_a_time(make_flv: Callable[..., Path]) -> None:
    video, audio, packets = _two_seconds(make_flv)
    writer = TsWriter(video, audio)
    counting = _CountingContainer(writer._container)
    writer._container = counting  # type: ignore[assignment]
    data = _write_all(writer, packets)
    frames = [p for p in packets if p.kind == "audio"]
    assert counting.calls["video"] == len(packets) - len(frames)
    assert counting.calls["audio"] * 4 <= len(frames), counting.calls  # groups, not frames
    out = [p for p in demux_in(data, [])[0] if p.kind == "audio"]
    assert [p.data for p in out] == [p.data for p in frames]  # the last group too


def test_a_segment_reaches_python_in_a_few_writes(
    make_flv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The muxer fills its I/O buffer before each write (each one a call back into Python)
    instead of writing after every packet (libavformat's default): the same bytes."""
    video, audio, packets = _two_seconds(make_flv)

    def mux() -> tuple[bytes, int]:
        writer = TsWriter(video, audio)
        return _write_all(writer, packets), len(writer._buf.chunks)

    data, writes = mux()
    monkeypatch.setattr(tsmux, "TS_OPTIONS", {**tsmux.TS_OPTIONS, "flush_packets": "1"})
    flushed, flushes = mux()
    assert data == flushed
    assert writes <= len(data) // tsmux.IO_BUFFER + 2, (writes, len(data))
    assert flushes >= sum(p.kind == "video" for p in packets), flushes  # one per mux call
