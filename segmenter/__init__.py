"""segmenter: FLV/H.264/AAC in, keyframe-aligned MPEG-TS segments out (PyAV, no video re-encoding).

WebRTC media goes through ``RtpDemuxer``: H.264 as is, Opus audio transcoded to AAC (``OpusToAac``).

Knows nothing about Livepeer or HTTP; never imports ``mediagw`` or ``webrtc``.
"""

from .annexb import AnnexBVideo
from .errors import MalformedMedia, MuxError, SegmenterError, UnsupportedCodec
from .flv import FlvDemuxer, read_flv_file
from .opus import OpusStats, OpusToAac
from .packet import (
    CLOCK,
    AudioConfig,
    MediaPacket,
    Progress,
    Segment,
    SegmentProgress,
    SegmentStart,
    VideoConfig,
)
from .probe import ProbeResult, count_frames_flv, probe_ts
from .rtpmedia import RtpDemuxer
from .segmenter import Segmenter, SegmenterStats

__all__ = [
    "CLOCK",
    "AnnexBVideo",
    "AudioConfig",
    "FlvDemuxer",
    "MalformedMedia",
    "MediaPacket",
    "MuxError",
    "OpusStats",
    "OpusToAac",
    "ProbeResult",
    "Progress",
    "RtpDemuxer",
    "Segment",
    "SegmentProgress",
    "SegmentStart",
    "Segmenter",
    "SegmenterError",
    "SegmenterStats",
    "UnsupportedCodec",
    "VideoConfig",
    "count_frames_flv",
    "probe_ts",
    "read_flv_file",
]
