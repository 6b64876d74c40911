"""Tap the encoded frames of an aiortc ``RTCRtpReceiver`` before its decoder (aiortc 1.16).

aiortc's receiver does the network work we want to keep (SRTP, RTX unwrap, NACK, RTCP receiver
reports, REMB, payload parsing into Annex B via ``codecs.depayload``), then assembles frames in a
``JitterBuffer`` and queues them to a decoder thread. We replace that jitter buffer with a
subclass that hands each complete encoded frame to us and returns no frame to the receiver, so
nothing is ever decoded. The receiver's track then yields nothing; nobody reads it.

aiortc internals relied on (checked in :func:`attach`, pin ``aiortc>=1.16,<1.17``):
- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer``: the name-mangled jitter buffer attribute,
  whose ``add(packet) -> (pli_flag, frame | None)`` the receiver calls for every RTP packet
  (after depayloading into ``packet._data``).
- ``aiortc.jitterbuffer.JitterBuffer`` / ``JitterFrame`` (public module, no leading underscore).
- ``RTCRtpReceiver._send_rtcp_pli(media_ssrc)``: sends an RTCP PLI (we ask for keyframes).
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from .errors import IncompatibleAiortcError

_JB_ATTR = "_RTCRtpReceiver__jitter_buffer"

# Video: same size as aiortc (a large keyframe can span hundreds of packets). Audio: one Opus
# packet per RTP packet; no prefetch, so a packet is handed over when the next one arrives.
VIDEO_CAPACITY = 512
AUDIO_CAPACITY = 16

FrameSink = Callable[[JitterFrame | None, bool], None]
"""Called with (frame or None, loss) after each packet; loss means packets were discarded."""
PacketSink = Callable[[RtpPacket], None]


class _TapJitterBuffer(JitterBuffer):
    def __init__(self, *, is_video: bool, on_packet: PacketSink, on_frame: FrameSink) -> None:
        super().__init__(
            capacity=VIDEO_CAPACITY if is_video else AUDIO_CAPACITY, prefetch=0, is_video=is_video
        )
        self._on_packet = on_packet
        self._on_frame = on_frame

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self._on_packet(packet)
        pli_flag, frame = super().add(packet)
        if frame is not None or pli_flag:
            self._on_frame(frame, pli_flag)
        # Keep the PLI (the receiver sends it on loss) and never let a frame reach the decoder.
        return pli_flag, None


def attach(
    receiver: RTCRtpReceiver, *, is_video: bool, on_packet: PacketSink, on_frame: FrameSink
) -> None:
    """Route the receiver's encoded frames to ``on_frame``; call before any RTP arrives."""
    current = getattr(receiver, _JB_ATTR, None)
    if not isinstance(current, JitterBuffer) or not hasattr(receiver, "_send_rtcp_pli"):
        raise IncompatibleAiortcError(
            "this aiortc version has no RTCRtpReceiver jitter buffer / _send_rtcp_pli to tap; "
            "webrtc is tested with aiortc 1.16"
        )
    setattr(
        receiver,
        _JB_ATTR,
        _TapJitterBuffer(is_video=is_video, on_packet=on_packet, on_frame=on_frame),
    )


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the sender of ``media_ssrc`` for a keyframe (RTCP PLI, RFC 4585 6.3.1)."""
    try:
        await receiver._send_rtcp_pli(media_ssrc)
    except ConnectionError:  # transport closing; the session ends anyway
        pass
