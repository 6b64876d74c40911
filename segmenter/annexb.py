"""H.264 access units in Annex B form (from RTP / WebRTC depacketizers) -> configs and packets.

The RTP side has no sequence header: parameter sets arrive in band, usually right before each
IDR. ``AnnexBVideo.feed`` turns each access unit into a ``MediaPacket`` (AUD first; SPS/PPS put in
front of keyframes that lack them so every segment decodes on its own) and emits a new
``VideoConfig`` whenever the SPS changes. Frames before the first keyframe whose SPS/PPS are known
are dropped and counted: nothing could decode them.
"""

from __future__ import annotations

from . import h264
from .errors import MalformedMedia
from .packet import MediaPacket, VideoConfig

__all__ = ["AnnexBVideo"]

_START = h264.START_CODE
_AUD = h264.START_CODE + h264.AUD_NAL
MAX_ACCESS_UNIT = 16 * 1024 * 1024


class AnnexBVideo:
    def __init__(self) -> None:
        self.video: VideoConfig | None = None
        self._param_sets = b""
        self._last_dts: int | None = None
        self.dropped = 0

    def feed(
        self, data: bytes, pts: int, dts: int | None = None
    ) -> list[VideoConfig | MediaPacket]:
        """One access unit; ``pts``/``dts`` in 90 kHz ticks (WebRTC H.264 has no B-frames, so
        ``dts`` defaults to ``pts``). Timestamps must not go back."""
        if len(data) > MAX_ACCESS_UNIT:
            raise MalformedMedia(f"access unit of {len(data)} bytes exceeds {MAX_ACCESS_UNIT}")
        dts = pts if dts is None else dts
        if self._last_dts is not None and dts < self._last_dts:
            raise MalformedMedia(f"access unit dts {dts} goes back (last {self._last_dts})")
        nals = h264.split_annexb(data)
        if not nals:
            self.dropped += 1
            return []
        types = [n[0] & 0x1F for n in nals]
        keyframe = h264.NAL_IDR in types
        out: list[VideoConfig | MediaPacket] = []
        if h264.NAL_SPS in types:
            sps = tuple(n for n, t in zip(nals, types, strict=True) if t == h264.NAL_SPS)
            pps = tuple(n for n, t in zip(nals, types, strict=True) if t == h264.NAL_PPS)
            if not pps and self.video is not None:
                pps = self.video.pps
            if pps and (self.video is None or sps[0] != self.video.sps[0]):
                info = h264.parse_sps(sps[0])
                self.video = VideoConfig(
                    "h264", info.width, info.height, sps, pps, info.profile_idc, info.level_idc
                )
                self._param_sets = b"".join(_START + n for n in sps + pps)
                out.append(self.video)
        if self.video is None:  # nothing decodable yet
            self.dropped += 1
            return out
        parts: list[bytes] = []
        if types[0] != h264.NAL_AUD:
            parts.append(_AUD)
        if keyframe and h264.NAL_SPS not in types:
            parts.append(self._param_sets)
        for nal in nals:
            parts.append(_START)
            parts.append(nal)
        self._last_dts = dts
        out.append(MediaPacket("video", pts, dts, keyframe, b"".join(parts)))
        return out
