"""The fMP4 writer: init + fragments cut anywhere decode with FFmpeg (PyAV), frame for frame, at
the input's timestamps."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from segmenter import (
    FlvDemuxer,
    MediaPacket,
    Segmenter,
    SegmentProgress,
    SegmentStart,
    read_flv_file,
)
from segmenter.errors import MalformedMedia
from segmenter.fmp4 import Fmp4Writer, init_segment
from segmenter.h264 import split_annexb

MakeFlv = Callable[..., Path]


def _packets(path: Path) -> tuple[SegmentStart, list[MediaPacket]]:
    """The first segment's start and every packet of the stream, as the segmenter muxed them
    (one segment: a long target)."""
    seg = Segmenter(60.0)
    seg.enable_progress()
    demux = FlvDemuxer()
    events = []
    for tag_type, ts, payload in read_flv_file(path):
        for item in demux.feed(tag_type, ts, payload):
            seg.push(item)
            events += seg.take_progress()
    seg.flush()
    events += seg.take_progress()
    start = next(e for e in events if isinstance(e, SegmentStart))
    packets = [p for e in events if isinstance(e, SegmentProgress) for p in e.packets]
    return start, packets


def _fragmented(start: SegmentStart, packets: list[MediaPacket], every: int) -> bytes:
    """Init + fragments of ``every`` packets; each fragment's last video sample ends at the
    next fragment's first video dts (as the packager cuts parts)."""
    writer = Fmp4Writer(start.video, start.audio)
    out = [writer.init]
    chunks = [packets[i : i + every] for i in range(0, len(packets), every)]
    for i, chunk in enumerate(chunks):
        later = [p.dts for c in chunks[i + 1 :] for p in c if p.kind == "video"][:1]
        out.append(writer.fragment(chunk, video_end=later[0] if later else None))
    return b"".join(out)


def _decoded(data: bytes, kind: str) -> list[tuple[int, int, int]]:
    """(pts, dts, decoded frames) of every packet of the stream ``kind``, on a 90 kHz clock."""
    rows = []
    with av.open(io.BytesIO(data), format="mp4") as container:
        stream = next(s for s in container.streams if s.type == kind)
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            frames = len(packet.decode())
            tb = packet.time_base
            assert packet.pts is not None and packet.dts is not None and tb is not None
            rows.append((round(packet.pts * tb * 90000), round(packet.dts * tb * 90000), frames))
    return rows


@pytest.mark.parametrize("bframes", [0, 2])
def test_fragments_decode_at_the_input_timestamps(make_flv: MakeFlv, bframes: int) -> None:
    start, packets = _packets(make_flv(seconds=3.0, gop=30, bframes=bframes))
    assert start.video is not None and start.audio is not None
    data = _fragmented(start, packets, every=7)  # fragments across keyframes and frames
    video = [p for p in packets if p.kind == "video"]
    rows = _decoded(data, "video")
    assert [(r[0], r[1]) for r in rows] == [(p.pts, p.dts) for p in video]
    with av.open(io.BytesIO(data), format="mp4") as container:  # every frame decodes
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == len(video) == 90
    audio = [p for p in packets if p.kind == "audio"]
    rate = start.audio.sample_rate
    arows = _decoded(data, "audio")
    assert len(arows) == len(audio)
    for (pts, _, frames), p in zip(arows, audio, strict=True):
        assert abs(pts - p.pts) <= 90000 // rate + 1  # the audio clock is the sample rate
        assert frames == 1


def test_video_only_and_audio_only(make_flv: MakeFlv) -> None:
    start, packets = _packets(make_flv(seconds=1.0, audio=False, bframes=0))
    assert start.audio is None
    data = _fragmented(start, packets, every=5)
    assert [r[:2] for r in _decoded(data, "video")] == [(p.pts, p.dts) for p in packets]
    start, packets = _packets(make_flv(seconds=1.0, video=False))
    assert start.video is None
    data = _fragmented(start, packets, every=5)
    assert len(_decoded(data, "audio")) == len(packets)


def test_samples_are_length_prefixed_without_the_parameter_sets_of_avcc(
    make_flv: MakeFlv,
) -> None:
    start, packets = _packets(make_flv(seconds=1.0, audio=False, bframes=0))
    assert start.video is not None
    key = packets[0]
    assert key.keyframe
    nals = split_annexb(key.data)
    assert {n[0] & 0x1F for n in nals} >= {7, 8, 5}  # SPS, PPS in band on the keyframe
    frag = Fmp4Writer(start.video, None).fragment([key])
    mdat = frag[frag.index(b"mdat") + 4 :]
    kept = []
    while mdat:
        size = int.from_bytes(mdat[:4], "big")
        kept.append(mdat[4 : 4 + size])
        mdat = mdat[4 + size :]
    assert [n for n in nals if n[0] & 0x1F not in (7, 8, 9)] == kept


def test_refuses_what_it_cannot_write(make_flv: MakeFlv) -> None:
    with pytest.raises(MalformedMedia, match="video or an audio track"):
        init_segment(None, None)
    start, _ = _packets(make_flv(seconds=1.0, audio=False, bframes=0))
    writer = Fmp4Writer(start.video, None)
    with pytest.raises(MalformedMedia, match="at least one sample"):
        writer.fragment([])
    with pytest.raises(MalformedMedia, match="no picture data"):
        writer.fragment([MediaPacket("video", 0, 0, True, b"\0\0\0\1\x09\xf0")])
