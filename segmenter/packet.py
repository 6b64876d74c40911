"""Immutable values that flow through the segmenter: codec configs, packets and segments.

All timestamps are integers in a 90 kHz clock (MPEG-TS's own), so durations are exact and
RTMP milliseconds (x90) and RTP video ticks map without rounding.

``MediaPacket`` (and, in the RTMP server, ``Message`` and ``MediaMessage``) are made once per
media packet, so they are plain slots dataclasses, read-only by convention rather than
``frozen``: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``
(0.62 against 0.16 us for five fields on this machine), and the RTMP receive path went from
5.0 to 4.1 us per read without it. Nothing changes them after they are made; being unhashable,
none is used as a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CLOCK = 90_000  # ticks per second for every pts/dts in this package

Kind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class VideoConfig:
    """H.264 decoder configuration, from an AVCDecoderConfigurationRecord or in-band SPS/PPS."""

    codec: str  # "h264"
    width: int
    height: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    profile: int = 0
    level: int = 0

    @property
    def codecs_tag(self) -> str:
        """RFC 6381 codecs string for HLS CODECS=, e.g. ``avc1.64001f``."""
        if self.sps and len(self.sps[0]) >= 4:
            return "avc1." + self.sps[0][1:4].hex()
        return f"avc1.{self.profile:02x}00{self.level:02x}"


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """AAC configuration from an AudioSpecificConfig."""

    codec: str  # "aac"
    sample_rate: int
    channels: int
    object_type: int  # 2 = AAC-LC
    asc: bytes

    @property
    def codecs_tag(self) -> str:
        return f"mp4a.40.{self.object_type}"


@dataclass(slots=True)  # read-only by convention (the module docstring says why not frozen)
class MediaPacket:
    """One access unit. Video data is Annex B (start codes); audio is a raw AAC frame (no ADTS)."""

    kind: Kind
    pts: int
    dts: int
    keyframe: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class Segment:
    """A keyframe-aligned MPEG-TS segment, ready to publish or send to an orchestrator."""

    seq: int
    data: bytes  # a complete MPEG-TS file (188-byte packets)
    start_pts: int  # 90 kHz, first video pts (or first audio pts when audio-only)
    duration_ticks: int  # exact, in 90 kHz ticks
    discontinuity: bool  # first segment after a publisher (re)start or a codec change
    video: VideoConfig | None
    audio: AudioConfig | None
    video_frames: int
    audio_frames: int
    last: bool = False  # the final segment of a publish session
    meta: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        return self.duration_ticks / CLOCK


@dataclass(frozen=True, slots=True)
class SegmentStart:
    """A segment was opened at its first keyframe (or first audio frame when audio-only).

    The segment's progress stream (``Segmenter.take_progress``) is ``SegmentStart``, then any
    number of ``SegmentProgress`` for the same ``seq``, then its complete ``Segment``: consumers
    that want media before the cut (live AI trickle, LL-HLS parts) read this stream, and the
    ``Segment`` that ends it is the very one the hub lists, with the same bytes."""

    seq: int
    start_pts: int  # 90 kHz, as the segment's first PTS in the TS
    discontinuity: bool
    video: VideoConfig | None
    audio: AudioConfig | None
    # "pdt": unix seconds; "arrival": when the ingest unit that opened it reached the gateway's
    # Publisher (monotonic seconds; absent when it was opened by the end-of-session flush)
    meta: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class SegmentProgress:
    """Media of the open segment ``seq`` muxed since the previous progress item.

    ``data``: the MPEG-TS bytes the muxer wrote for them (a prefix of the segment's final
    ``Segment.data`` when joined in order; empty unless progressive TS is on). ``packets``: the
    same media as access units, timestamps as written in the TS (90 kHz, continuous timeline);
    video is Annex B, audio raw AAC (no ADTS)."""

    seq: int
    data: bytes
    packets: tuple[MediaPacket, ...]


Progress = SegmentStart | SegmentProgress | Segment
