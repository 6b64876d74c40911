"""Cut policy, timeline and session rules of Segmenter on synthetic packets (no ffmpeg needed).

The mpegts muxer only checks for Annex B start codes, so tiny fake NAL units are enough; the
segments are probed without decoding.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmenter import (
    CLOCK,
    AudioConfig,
    MalformedMedia,
    MediaPacket,
    Segment,
    Segmenter,
    SegmenterError,
    VideoConfig,
    probe_ts,
)
from segmenter.segmenter import TIMELINE_START
from segmenter.tsmux import PCR_LEAD

SPS = bytes.fromhex("6742c00dd90141fb0110000003001000000303c0f142a480")
PPS = bytes.fromhex("68cb83cb20")
SC = b"\x00\x00\x00\x01"
V = VideoConfig("h264", 320, 240, (SPS,), (PPS,), 66, 13)
V2 = VideoConfig("h264", 640, 360, (SPS + b"\x01",), (PPS,), 66, 13)
A = AudioConfig("aac", 48000, 2, 2, bytes.fromhex("1190"))
A2 = AudioConfig("aac", 44100, 1, 2, bytes.fromhex("1208"))
F = 3000  # 30 fps
AF = 1920  # 1024 samples at 48 kHz


def vpkt(i: int, key: bool, *, cts: int = 0, base: int = 0) -> MediaPacket:
    dts = base + i * F
    body = SC + SPS + SC + PPS + SC + b"\x65\x88" if key else SC + b"\x41\x9a"
    return MediaPacket("video", dts + cts, dts, key, SC + b"\x09\xf0" + body)


def apkt(i: int, *, base: int = 0) -> MediaPacket:
    t = base + i * AF
    return MediaPacket("audio", t, t, True, b"\x21\x10\x05\x00")


def run(seg: Segmenter, items: list[object], flush: bool = True) -> list[Segment]:
    out: list[Segment] = []
    for it in items:
        out += seg.push(it)  # type: ignore[arg-type]
    if flush:
        out += seg.flush()
    return out


def av_stream(frames: int, keys: set[int], *, audio: bool = True, base: int = 0) -> list[object]:
    """Video frames (and 48 kHz audio) interleaved in dts order."""
    items: list[object] = []
    a = 0
    for i in range(frames):
        while audio and a * AF <= i * F:
            items.append(apkt(a, base=base))
            a += 1
        items.append(vpkt(i, i in keys, base=base))
    return items


def check_timeline(segs: list[Segment]) -> None:
    for a, b in itertools.pairwise(segs):
        assert b.start_pts == a.start_pts + a.duration_ticks
        assert b.seq == a.seq + 1
    for s in segs:
        assert s.duration_ticks > 0
        r = probe_ts(s.data, decode=False)
        if s.video is not None:
            assert r.first_pts == s.start_pts  # TS timestamps are ours, unshifted
            assert r.first_is_keyframe
            assert r.first_dts is not None and r.first_dts >= PCR_LEAD
            assert r.video_packets == s.video_frames
        assert r.audio_frames == s.audio_frames


def test_regular_gop_cuts_every_two_seconds() -> None:
    segs = run(Segmenter(2.0), [V, A, *av_stream(300, set(range(0, 300, 30)))])
    assert [s.duration_ticks for s in segs] == [2 * CLOCK] * 5
    assert segs[0].start_pts == TIMELINE_START and segs[-1].last
    assert not any(s.discontinuity for s in segs)
    assert sum(s.video_frames for s in segs) == 300
    check_timeline(segs)


def test_irregular_gop_cuts_at_first_keyframe_past_target() -> None:
    keys = {0, 45, 60, 105, 150, 165, 240, 300, 310}
    segs = run(Segmenter(2.0), [V, *av_stream(330, keys, audio=False)])
    starts = [(s.start_pts - TIMELINE_START) // F for s in segs]
    assert starts == [0, 60, 150, 240, 300]
    assert segs[-1].duration_ticks == 30 * F  # frames 300..329, last one + one frame
    check_timeline(segs)


def test_cut_tolerance_for_millisecond_rounding() -> None:
    items: list[object] = [V]
    for i in range(100):  # keyframe at 1.995 s counts as 2 s
        dts = i * F - (450 if i == 60 else 0)
        items.append(MediaPacket("video", dts, dts, i in (0, 60), vpkt(i, i in (0, 60)).data))
    segs = run(Segmenter(2.0), items)
    assert segs[0].duration_ticks == 60 * F - 450


def test_b_frames_last_segment_ends_after_largest_pts() -> None:
    # closed GOPs of 30 with 2 B-frames; decode order of display indices: 0, 3 1 2, 6 4 5, ...
    order = [0, *[x for k in range(1, 10) for x in (3 * k, 3 * k - 2, 3 * k - 1)], 28, 29]
    items: list[object] = [V]
    for i in range(90):
        gop, d = divmod(i, 30)
        pkt = vpkt(i, d == 0)
        pts = (gop * 30 + order[d] + 1) * F
        items.append(MediaPacket("video", pts, pkt.dts, pkt.keyframe, pkt.data))
    segs = run(Segmenter(1.0), items)
    assert [s.duration_ticks for s in segs] == [30 * F] * 3
    assert segs[-1].start_pts + segs[-1].duration_ticks == TIMELINE_START + 90 * F
    check_timeline(segs)


def test_video_before_first_keyframe_dropped_and_early_audio_trimmed() -> None:
    seg = Segmenter(2.0)
    items: list[object] = [V, A]
    items += [apkt(i) for i in range(60)]  # 2.3 s of audio before any video
    items += [vpkt(i, False) for i in range(10)]
    items += [vpkt(40, True), apkt(60), vpkt(41, False)]
    segs = run(seg, items)
    assert seg.stats.dropped_video == 10
    [s] = segs
    # audio kept: pts >= keyframe pts - one AAC frame (120000 - 1920 .. 115200 = frame 60 excluded)
    assert s.audio_frames == 1 + sum(1 for i in range(60) if i * AF >= 40 * F - AF)
    assert seg.stats.dropped_audio == 60 + 1 - s.audio_frames
    assert s.start_pts == TIMELINE_START and s.video_frames == 2


def test_audio_only_stream() -> None:
    seg = Segmenter(2.0)
    segs = run(seg, [A, *[apkt(i) for i in range(250)]])  # 10 s
    assert all(s.video is None and s.audio == A for s in segs)
    total = sum(s.duration_ticks for s in segs)
    assert total == 249 * AF + AF  # exact: last pts + one AAC frame - first pts
    assert all(s.duration_ticks >= 2 * CLOCK - 900 for s in segs[:-1])
    assert sum(s.audio_frames for s in segs) == 250
    check_timeline(segs)


def test_video_only_stream() -> None:
    segs = run(Segmenter(2.0), [V, *av_stream(150, {0, 60, 120}, audio=False)])
    assert [s.video_frames for s in segs] == [60, 60, 30]
    assert all(s.audio is None and s.audio_frames == 0 for s in segs)


def test_video_config_change_forces_cut_and_discontinuity() -> None:
    seg = Segmenter(2.0)
    items = [V, A, *av_stream(40, {0})]
    items += [V]  # same config again: nothing happens
    items += [V2, vpkt(40, False), vpkt(41, False), vpkt(42, True), vpkt(43, False)]
    segs = run(seg, items)
    assert [s.discontinuity for s in segs] == [False, True]
    assert segs[0].video == V and segs[1].video == V2
    assert segs[1].start_pts - segs[0].start_pts == 42 * F
    assert seg.stats.dropped_video == 2
    pps_only = VideoConfig("h264", 320, 240, (SPS,), (PPS + b"\x01",), 66, 13)
    segs = run(Segmenter(2.0), [V, *av_stream(40, {0}), pps_only, *av_stream(45, {0, 41})[-4:]])
    assert len(segs) == 1


def test_audio_config_change_forces_cut() -> None:
    items = [V, A, *av_stream(30, {0}), A2, apkt(40), vpkt(30, True), apkt(41)]
    segs = run(Segmenter(2.0), items)
    assert [s.discontinuity for s in segs] == [False, True]
    assert segs[1].audio == A2 and segs[1].audio_frames == 1


def test_audio_appears_in_video_only_stream() -> None:
    items = [V, *av_stream(30, {0}, audio=False), A, apkt(47), vpkt(30, True), apkt(48)]
    segs = run(Segmenter(2.0), items)
    assert segs[0].audio is None and segs[1].audio == A and segs[1].discontinuity


def test_restart_continues_timeline_with_discontinuity() -> None:
    seg = Segmenter(2.0, start_seq=7)
    first = run(seg, [V, A, *av_stream(100, {0, 60})])
    seg.restart()
    second = run(seg, [V, A, *av_stream(100, {0, 60})])  # timestamps restart at 0
    assert [s.seq for s in first + second] == [7, 8, 9, 10]
    assert [s.discontinuity for s in first + second] == [False, False, True, False]
    assert [s.last for s in first + second] == [False, True, False, True]
    check_timeline(first + second)
    assert seg.stats.restarts == 1


def test_restart_without_flush_and_push_after_flush() -> None:
    seg = Segmenter(2.0)
    run(seg, [V, *av_stream(20, {0}, audio=False)], flush=False)
    seg.restart()
    out = seg.push(V) + seg.push(vpkt(0, True))
    assert len(out) == 1 and out[0].last and out[0].video_frames == 20
    tail = seg.flush()
    assert tail[0].discontinuity and tail[0].start_pts == out[0].start_pts + 20 * F
    more = run(seg, [V, vpkt(0, True)])  # push after flush starts a new session
    assert more[0].discontinuity and more[0].start_pts == tail[0].start_pts + F


def test_double_restart_keeps_the_closed_segment() -> None:
    seg = Segmenter(2.0)
    run(seg, [A, apkt(0)], flush=False)
    seg.restart()
    seg.restart()
    [s] = seg.push(A)
    assert s.last and s.audio_frames == 1


def test_timestamp_jump_back_keeps_timeline_monotonic() -> None:
    seg = Segmenter(2.0)
    items = [V, A, *av_stream(45, {0}), *av_stream(100, {0, 60})]  # second run restarts at 0
    segs = run(seg, items)
    assert seg.stats.timestamp_jumps == 2  # video and audio
    check_timeline(segs)
    pts = [probe_ts(s.data, decode=False) for s in segs]
    assert all(b.first_pts > a.last_pts for a, b in itertools.pairwise(pts))  # type: ignore[operator]


def test_duplicate_dts_is_nudged() -> None:
    items: list[object] = [V, A, vpkt(0, True), apkt(0), apkt(0), vpkt(1, False), vpkt(1, False)]
    [s] = run(Segmenter(2.0), items)
    assert s.video_frames == 3 and s.audio_frames == 2


def test_long_gop_is_flagged_and_byte_cap_enforced() -> None:
    seg = Segmenter(2.0, max_segment_duration=3.0)
    segs = run(seg, [V, *av_stream(200, {0, 150}, audio=False)])
    assert segs[0].meta.get("overlong") == 1.0 and segs[0].duration_ticks == 150 * F
    assert seg.stats.overlong_segments == 1
    seg = Segmenter(2.0, max_segment_bytes=500)
    with pytest.raises(MalformedMedia, match="keyframe"):
        run(seg, [V, *av_stream(100, {0}, audio=False)])


def test_packets_without_config_are_dropped() -> None:
    seg = Segmenter(2.0)
    assert run(seg, [vpkt(0, True), apkt(0)]) == []
    assert (seg.stats.dropped_video, seg.stats.dropped_audio) == (1, 1)
    with pytest.raises(TypeError):
        seg.push(b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Segmenter(0)


def test_segment_open_is_fast() -> None:
    segs = run(Segmenter(0.5), [V, A, *av_stream(600, set(range(0, 600, 15)))])
    opens = sorted(s.meta["open_ms"] for s in segs)
    assert opens[len(opens) // 2] < 10.0


def test_pts_below_dts_is_clamped() -> None:
    bad = MediaPacket("video", 3 * F - 10, 3 * F, False, vpkt(3, False).data)
    [s] = run(Segmenter(2.0), [V, vpkt(0, True), vpkt(1, False), vpkt(2, False), bad])
    assert s.video_frames == 4


ops = st.lists(
    st.tuples(
        st.sampled_from(["V", "V2", "A", "A2", "restart", "flush", "v", "a", "v", "a"]),
        st.integers(-2 * CLOCK, 3 * CLOCK),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_fuzz_segmenter_invariants(script: list[tuple[str, int, bool]]) -> None:
    seg = Segmenter(0.5)
    segs: list[Segment] = []
    clock = {"v": 0, "a": 0}
    cfgs: dict[str, VideoConfig | AudioConfig] = {"V": V, "V2": V2, "A": A, "A2": A2}
    for op, step, key in script:
        try:
            if op == "restart":
                seg.restart()
            elif op == "flush":
                segs += seg.flush()
            elif op in cfgs:
                segs += seg.push(cfgs[op])
            elif op == "v":
                clock["v"] += step
                p = vpkt(0, key)
                segs += seg.push(MediaPacket("video", clock["v"], clock["v"], key, p.data))
            else:
                clock["a"] += step
                segs += seg.push(apkt(0, base=clock["a"]))
        except SegmenterError:
            pass
    segs += seg.flush()
    for a, b in itertools.pairwise(segs):
        assert b.seq == a.seq + 1
        assert b.start_pts >= a.start_pts
        if not b.discontinuity:
            assert b.start_pts == a.start_pts + a.duration_ticks
    for s in segs:
        assert s.duration_ticks > 0
        if s.video_frames:
            assert probe_ts(s.data, decode=False).first_is_keyframe


def test_set_target_shortens_segments_from_the_next_cut() -> None:
    seg = Segmenter(2.0)
    keys = set(range(0, 300, 15))  # a keyframe every 0.5 s
    items = [V, A, *av_stream(300, keys)]
    out = run(seg, items[: len(items) // 2], flush=False)  # 5 s at the 2 s target
    seg.set_target(0.5)
    out += run(seg, items[len(items) // 2 :])
    check_timeline(out)
    durations = [s.duration for s in out]
    assert durations[:2] == [2.0, 2.0], durations
    assert all(abs(d - 0.5) < 1e-9 for d in durations[3:-1]), durations
    assert seg.target_ticks == CLOCK // 2
    with pytest.raises(ValueError):
        seg.set_target(0)
