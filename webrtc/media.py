"""Encoded media units exchanged with the application, and the few H.264 Annex B rules we need.

Both WHIP ingest (out) and WHEP egress (in) speak these types: H.264 access units in Annex B with
90 kHz timestamps, and audio packets (Opus) in their codec clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

VIDEO_CLOCK_RATE = 90_000
OPUS_CLOCK_RATE = 48_000


@dataclass(frozen=True, slots=True)
class VideoAccessUnit:
    """One H.264 access unit: Annex B bytes (start codes), pts/dts in 90 kHz ticks."""

    data: bytes
    pts: int
    dts: int
    keyframe: bool

    clock_rate: ClassVar[int] = VIDEO_CLOCK_RATE


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One encoded audio frame (e.g. one Opus packet); pts in ``clock_rate`` ticks."""

    data: bytes
    pts: int
    clock_rate: int = OPUS_CLOCK_RATE
    codec: str = "opus"
    channels: int = 2


MediaUnit = VideoAccessUnit | AudioPacket


def split_nals(data: bytes) -> list[bytes]:
    """NAL units of an Annex B buffer, start codes removed (3- and 4-byte start codes)."""
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = data.find(b"\x00\x00\x01", begin)
        end = len(data) if nxt == -1 else nxt
        # A 4-byte start code (and trailing_zero_8bits) leaves zeros before the next one.
        nal = data[begin:end].rstrip(b"\x00") if nxt != -1 else data[begin:end]
        if nal:
            nals.append(nal)
        start = nxt
    return nals


def join_nals(nals: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in nals)


def nal_types(data: bytes) -> list[int]:
    return [nal[0] & 0x1F for nal in split_nals(data)]


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def is_keyframe(data: bytes) -> bool:
    """True if the access unit holds an IDR slice."""
    return NAL_IDR in nal_types(data)


class ParameterSetCache:
    """Remembers the latest SPS/PPS and puts them in front of keyframes that lack them.

    A decoder joining at a keyframe needs SPS and PPS; browsers send them with every IDR, but
    access units demuxed from MP4/FLV carry them out of band.
    """

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def set_from(self, data: bytes) -> None:
        """Learn SPS/PPS from Annex B bytes (an access unit, or codec extradata)."""
        for nal in split_nals(data):
            kind = nal[0] & 0x1F
            if kind == NAL_SPS:
                self.sps = nal
            elif kind == NAL_PPS:
                self.pps = nal

    def complete(self, data: bytes, keyframe: bool) -> bytes:
        nals = split_nals(data)
        kinds = {nal[0] & 0x1F for nal in nals}
        for nal in nals:
            kind = nal[0] & 0x1F
            if kind == NAL_SPS:
                self.sps = nal
            elif kind == NAL_PPS:
                self.pps = nal
        if not keyframe or (NAL_SPS in kinds and NAL_PPS in kinds):
            return data
        if self.sps is None or self.pps is None:
            return data
        body = [nal for nal in nals if (nal[0] & 0x1F) not in (NAL_SPS, NAL_PPS, NAL_AUD)]
        return join_nals([self.sps, self.pps, *body])
