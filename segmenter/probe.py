"""Inspect finished MPEG-TS segments (and FLV inputs) with PyAV: used by tests and health checks.

``probe_ts`` decodes the segment on its own, so a result with ``first_is_keyframe`` and
``video_frames == video_packets`` proves the segment is independently decodable.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import av

from .errors import MuxError

_AV_ERRORS = (av.FFmpegError, ValueError, OSError)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    video_packets: int
    video_frames: int  # decoded pictures (equals video_packets when every frame decodes)
    first_is_keyframe: bool  # the first video packet is a keyframe and decodes as one
    first_pts: int | None  # smallest video pts, 90 kHz (as stored in the TS)
    last_pts: int | None  # largest video pts
    first_dts: int | None
    width: int
    height: int
    audio_packets: int
    audio_frames: int  # decoded AAC frames (ADTS frames counted when decode=False)
    audio_first_pts: int | None
    audio_last_pts: int | None
    sample_rate: int
    channels: int


def probe_ts(data: bytes, *, decode: bool = True) -> ProbeResult:
    """Demux (and by default decode) one MPEG-TS segment."""
    try:
        with av.open(io.BytesIO(data), "r", format="mpegts") as c:
            return _probe(c, decode)
    except _AV_ERRORS as e:
        raise MuxError(f"probing MPEG-TS segment failed: {e}") from e


def _probe(c: av.container.InputContainer, decode: bool) -> ProbeResult:
    vs = c.streams.video[0] if c.streams.video else None
    aus = c.streams.audio[0] if c.streams.audio else None
    v_pts: list[int] = []
    a_pts: list[int] = []
    adts_frames = 0
    first_dts: int | None = None
    first_key = False
    v_frames = a_frames = 0
    first_frame_key: bool | None = None
    for pkt in c.demux():
        if pkt.size == 0:
            continue  # end-of-stream marker; decoders are drained below
        if vs is not None and pkt.stream.index == vs.index:
            if not v_pts:
                first_key = pkt.is_keyframe
                first_dts = pkt.dts
            if pkt.pts is not None:
                v_pts.append(pkt.pts)
            if decode:
                for vf in vs.decode(pkt):
                    if first_frame_key is None:
                        first_frame_key = bool(vf.key_frame)
                    v_frames += 1
        elif aus is not None and pkt.stream.index == aus.index:
            if pkt.pts is not None:
                a_pts.append(pkt.pts)
            adts_frames += _count_adts(bytes(pkt))
            if decode:
                a_frames += len(aus.decode(pkt))
    if decode:
        if vs is not None:
            for vf in vs.decode(None):
                if first_frame_key is None:
                    first_frame_key = bool(vf.key_frame)
                v_frames += 1
        if aus is not None:
            a_frames += len(aus.decode(None))
    if not decode:
        v_frames, a_frames = len(v_pts), adts_frames
        first_frame_key = first_key
    return ProbeResult(
        video_packets=len(v_pts),
        video_frames=v_frames,
        first_is_keyframe=bool(first_key and first_frame_key),
        first_pts=min(v_pts) if v_pts else None,
        last_pts=max(v_pts) if v_pts else None,
        first_dts=first_dts,
        width=vs.codec_context.width if vs is not None else 0,
        height=vs.codec_context.height if vs is not None else 0,
        audio_packets=len(a_pts),
        audio_frames=a_frames,
        audio_first_pts=min(a_pts) if a_pts else None,
        audio_last_pts=max(a_pts) if a_pts else None,
        sample_rate=aus.codec_context.sample_rate if aus is not None else 0,
        channels=aus.codec_context.channels if aus is not None else 0,
    )


def _count_adts(data: bytes) -> int:
    """Number of ADTS frames in one PES payload (the muxer packs several per PES)."""
    count = pos = 0
    end = len(data)
    while pos + 7 <= end and data[pos] == 0xFF and data[pos + 1] & 0xF0 == 0xF0:
        length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        if length < 7:
            break
        pos += length
        count += 1
    return count


def count_frames_flv(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(video packets, audio packets) in an FLV file, counted by FFmpeg's demuxer."""
    try:
        with av.open(os.fspath(path), "r") as c:
            video = audio = 0
            for pkt in c.demux():
                if pkt.size == 0:
                    continue
                if pkt.stream.type == "video":
                    video += 1
                elif pkt.stream.type == "audio":
                    audio += 1
            return video, audio
    except _AV_ERRORS as e:
        raise MuxError(f"reading {path} failed: {e}") from e


def h264_codecs_tag(ts: bytes) -> str | None:
    """RFC 6381 ``avc1.PPCCLL`` from the first SPS found in an MPEG-TS (or Annex B) buffer.

    A cheap byte search, no demuxing: encoders put SPS/PPS at the start of the first video PES,
    so the 3 bytes after the SPS NAL header sit in the same 188-byte packet in practice.
    """
    pos = 0
    while True:
        pos = ts.find(b"\x00\x00\x01", pos)
        if pos < 0 or pos + 7 > len(ts):
            return None
        if ts[pos + 3] & 0x1F == 7:
            return "avc1." + ts[pos + 4 : pos + 7].hex()
        pos += 3
