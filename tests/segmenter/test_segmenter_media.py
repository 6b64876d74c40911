"""End-to-end checks on real H.264/AAC made by ffmpeg: FLV in, independently decodable TS out."""

from __future__ import annotations

import io
import itertools
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import av
import pytest
from mediatools import need_tool

from segmenter import CLOCK, FlvDemuxer, ProbeResult, Segment, Segmenter, probe_ts, read_flv_file
from segmenter.bench import segment_file
from segmenter.segmenter import CUT_TOLERANCE

pytestmark = pytest.mark.ffmpeg

MakeFlv = Callable[..., Path]
Run = Callable[..., tuple[list[Segment], Segmenter]]


class Truth(NamedTuple):
    video: int
    audio: int
    keys: list[int]
    span: int  # largest video pts + one frame - first keyframe pts


def flv_truth(path: Path) -> Truth:
    """Independent view of the FLV via FFmpeg's demuxer: counts, keyframe pts, media span."""
    v_pts: list[int] = []
    v_dts: list[int] = []
    keys: list[int] = []
    audio = 0
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size == 0:
                continue
            if p.stream.type == "video":
                assert p.pts is not None and p.dts is not None
                v_pts.append(p.pts * 90)
                v_dts.append(p.dts * 90)
                if p.is_keyframe:
                    keys.append(p.pts * 90)
            else:
                audio += 1
    step = round((v_dts[-1] - v_dts[0]) / (len(v_dts) - 1)) if len(v_dts) > 1 else 0
    span = max(v_pts) + step - keys[0] if keys else 0
    return Truth(len(v_pts), audio, keys, span)


def check_segments(segs: list[Segment], *, target: float = 2.0) -> list[ProbeResult]:
    probes: list[ProbeResult] = []
    for s in segs:
        r = probe_ts(s.data)
        probes.append(r)
        if s.video is not None:
            assert r.first_is_keyframe, f"segment {s.seq} does not start with a keyframe"
            assert r.video_frames == r.video_packets == s.video_frames  # decodes on its own
            assert r.first_pts == s.start_pts
            assert (r.width, r.height) == (s.video.width, s.video.height)
        assert r.audio_frames == s.audio_frames
    for a, b in itertools.pairwise(segs):
        assert b.start_pts == a.start_pts + a.duration_ticks
        assert b.seq == a.seq + 1
        if not b.discontinuity and a.video is not None:
            assert a.duration_ticks >= target * CLOCK - CUT_TOLERANCE
    return probes


def test_b_frames_exact_durations_and_no_frame_lost(make_flv: MakeFlv, segment_file: Run) -> None:
    path = make_flv(seconds=10.0, gop=30, bframes=2)
    truth = flv_truth(path)
    segs, seg = segment_file(path)
    probes = check_segments(segs)
    assert len(segs) == 5 and segs[-1].last
    assert sum(s.video_frames for s in segs) == truth.video == 300
    assert sum(p.video_frames for p in probes) == truth.video
    assert sum(s.audio_frames for s in segs) == truth.audio
    assert sum(p.audio_frames for p in probes) == truth.audio
    assert sum(s.duration_ticks for s in segs) == truth.span
    assert abs(sum(s.duration_ticks for s in segs) - 10 * CLOCK) <= 90  # RTMP ms rounding
    assert seg.stats.dropped_video == seg.stats.dropped_audio == 0
    # audio continues across cuts: each segment's audio begins within a frame of the last one
    for a, b in itertools.pairwise(probes):
        assert b.audio_first_pts is not None and a.audio_last_pts is not None
        gap = b.audio_first_pts - a.audio_last_pts
        assert 0 < gap <= 2100
    # the concatenation plays as one stream
    with av.open(io.BytesIO(b"".join(s.data for s in segs)), "r", format="mpegts") as c:
        assert len(list(c.decode(video=0))) == 300


def test_irregular_gop(make_flv: MakeFlv, segment_file: Run) -> None:
    extra = ("-keyint_min", "15", "-sc_threshold", "0",
             "-force_key_frames", "0,1.3,2.1,2.6,5.5,7.9,8.4")  # fmt: skip
    path = make_flv(seconds=10.0, gop=45, bframes=2, extra=extra)
    truth = flv_truth(path)
    keys = truth.keys
    expected = [keys[0]]
    for k in keys[1:]:
        if k - expected[-1] >= 2 * CLOCK - CUT_TOLERANCE:
            expected.append(k)
    segs, _ = segment_file(path)
    check_segments(segs)
    offset = segs[0].start_pts - keys[0]
    assert [s.start_pts - offset for s in segs] == expected
    assert len(set(keys)) > len(segs)  # some keyframes were (rightly) not used as cuts
    assert sum(s.duration_ticks for s in segs) == truth.span
    assert sum(s.video_frames for s in segs) == truth.video


def test_video_only_and_audio_only(make_flv: MakeFlv, segment_file: Run) -> None:
    vpath = make_flv(seconds=5.0, audio=False)
    segs, _ = segment_file(vpath)
    check_segments(segs)
    assert all(s.audio is None for s in segs)
    assert sum(s.video_frames for s in segs) == flv_truth(vpath).video

    apath = make_flv(seconds=7.0, video=False, sample_rate=48000)
    segs, _ = segment_file(apath)
    probes = check_segments(segs)
    truth = flv_truth(apath)
    assert all(s.video is None for s in segs) and len(segs) == 4
    assert sum(s.audio_frames for s in segs) == truth.audio
    assert sum(p.audio_frames for p in probes) == truth.audio
    total = sum(s.duration_ticks for s in segs)
    assert abs(total - truth.audio * 1920) <= 90 * len(segs)


def test_codec_change_mid_stream(make_flv: MakeFlv) -> None:
    first = make_flv(seconds=3.0)
    second = make_flv(seconds=3.0, size="640x360", sample_rate=48000)
    seg = Segmenter(2.0)
    demux = FlvDemuxer()
    segs: list[Segment] = []
    shift = 0
    for path in (first, second):
        last = 0
        for t, ts, payload in read_flv_file(path):
            last = max(last, ts)
            for item in demux.feed(t, ts + shift, payload):
                segs += seg.push(item)
        shift += last + 34
    segs += seg.flush()
    check_segments(segs)
    sizes = [(s.video.width, s.discontinuity) for s in segs if s.video is not None]
    assert sizes == [(320, False), (320, False), (640, True), (640, False)]
    assert segs[2].audio is not None and segs[2].audio.sample_rate == 48000
    assert sum(s.video_frames for s in segs) == 180


def test_restart_gives_discontinuity_and_monotonic_timestamps(
    make_flv: MakeFlv, segment_file: Run
) -> None:
    path = make_flv(seconds=5.0)
    seg = Segmenter(2.0, start_seq=100)
    a, _ = segment_file(path, seg)
    seg.restart()
    b, _ = segment_file(path, seg)
    segs = a + b
    probes = check_segments(segs)
    assert [s.seq for s in segs] == list(range(100, 100 + len(segs)))
    assert b[0].discontinuity and not any(s.discontinuity for s in a + b[1:])
    assert b[0].start_pts == a[-1].start_pts + a[-1].duration_ticks
    for p, q in itertools.pairwise(probes):
        assert q.first_pts is not None and p.last_pts is not None
        assert q.first_dts is not None and p.first_dts is not None
        assert q.first_pts > p.last_pts
        assert q.first_dts > p.first_dts


@pytest.mark.slow
def test_throughput_vs_ffmpeg_segment_muxer(make_flv: MakeFlv, tmp_path: Path) -> None:
    path = make_flv(size="1280x720", seconds=20.0, gop=60)
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    ours = min(segment_file(str(path), 2.0)[1] for _ in range(3))
    theirs = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", str(path), "-c", "copy", "-f",
                        "segment", "-segment_time", "2", str(tmp_path / "o%03d.ts")],
                       check=True)  # fmt: skip
        theirs.append(time.perf_counter() - t0)
    assert min(theirs) / ours >= 0.8, (ours, min(theirs))


def test_h264_codecs_tag_from_ts(tmp_path: Path) -> None:
    from segmenter.probe import h264_codecs_tag

    ffmpeg = need_tool("ffmpeg")
    out = tmp_path / "main.ts"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=30", "-t", "1", "-c:v", "libx264", "-profile:v", "main",
         "-level", "3.1", "-f", "mpegts", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    assert h264_codecs_tag(out.read_bytes()) == "avc1.4d401f"
    assert h264_codecs_tag(b"\x47" * 188) is None
