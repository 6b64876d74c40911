"""Offer checks with clear errors, before aiortc sees the SDP, and codec preferences.

aiortc's SDP parser is lenient (garbage parses to an empty description), so we check the shape
ourselves: ``v=0`` first, media sections, ICE credentials, DTLS fingerprints, rtcp-mux, then the
codecs: H.264 with packetization-mode=1 in a profile aiortc negotiates (constrained baseline or
baseline; browsers always offer it), optional Opus audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiortc import RTCRtpCodecCapability, RTCRtpReceiver, RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from .errors import OfferError, UnsupportedMediaError

MAX_SDP_BYTES = 64 * 1024
Role = Literal["publish", "play"]

# Directions the remote side may offer for each role (its view of the stream).
_DIRECTIONS: dict[Role, tuple[str, ...]] = {
    "publish": ("sendonly", "sendrecv"),
    "play": ("recvonly", "sendrecv"),
}
_H264_PROFILES = (
    aiortc_sdp.H264Profile.PROFILE_CONSTRAINED_BASELINE,
    aiortc_sdp.H264Profile.PROFILE_BASELINE,
)


@dataclass(frozen=True)
class OfferSummary:
    """What the offer carries, after validation."""

    description: aiortc_sdp.SessionDescription
    sdp: str
    video_mid: str | None
    audio_mid: str | None
    video_codecs: tuple[str, ...]
    audio_codecs: tuple[str, ...]

    @property
    def has_audio(self) -> bool:
        return self.audio_mid is not None


def normalize(text: str) -> str:
    """CRLF line ends (some clients send bare LF), ending with one CRLF."""
    lines = text.replace("\r\n", "\n").strip("\n").split("\n")
    return "\r\n".join(line.rstrip("\r") for line in lines) + "\r\n"


def parse_offer(text: str) -> aiortc_sdp.SessionDescription:
    """Parse an offer, raising :class:`OfferError` with a readable reason."""
    if len(text.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise OfferError(f"SDP offer larger than {MAX_SDP_BYTES} bytes")
    if not text.strip():
        raise OfferError("empty SDP offer")
    if not text.lstrip().startswith("v=0"):
        raise OfferError("not an SDP offer: the first line must be 'v=0'")
    try:
        desc = aiortc_sdp.SessionDescription.parse(normalize(text))
    except Exception as exc:  # aiortc raises assorted errors (assert, ValueError, KeyError)
        raise OfferError(f"malformed SDP offer: {type(exc).__name__}: {exc}") from exc
    if not desc.media:
        raise OfferError("SDP offer has no media section (m=)")
    for index, media in enumerate(desc.media):
        where = f"media section {index} ({media.kind})"
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError(f"{where}: missing a=ice-ufrag / a=ice-pwd")
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError(f"{where}: missing a=fingerprint (DTLS-SRTP is required)")
        if media.kind in ("audio", "video") and not media.rtcp_mux:
            raise OfferError(f"{where}: a=rtcp-mux is required")
    return desc


def h264_supported(codec: RTCRtpCodecParameters) -> bool:
    if codec.mimeType.lower() != "video/h264" or codec.clockRate != 90_000:
        return False
    if str(codec.parameters.get("packetization-mode", "0")) != "1":
        return False
    try:
        profile, _ = aiortc_sdp.parse_h264_profile_level_id(
            str(codec.parameters.get("profile-level-id", "42e01f"))
        )
    except ValueError:
        return False
    return profile in _H264_PROFILES


def _codec_names(media: aiortc_sdp.MediaDescription) -> tuple[str, ...]:
    names: list[str] = []
    for codec in media.rtp.codecs:
        name = codec.mimeType.split("/", 1)[-1]
        if name.lower() in ("rtx", "red", "ulpfec", "flexfec-03"):
            continue
        if codec.mimeType.lower() == "video/h264":
            name += f"(packetization-mode={codec.parameters.get('packetization-mode', '0')}"
            name += f",profile-level-id={codec.parameters.get('profile-level-id', '?')})"
        if name not in names:
            names.append(name)
    return tuple(names)


def check_offer(text: str, role: Role) -> OfferSummary:
    """Validate an offer for a publisher (WHIP) or a player (WHEP)."""
    desc = parse_offer(text)
    videos = [m for m in desc.media if m.kind == "video"]
    audios = [m for m in desc.media if m.kind == "audio"]
    if not videos:
        raise UnsupportedMediaError("the offer has no video section; H.264 video is required")
    if len(videos) > 1 or len(audios) > 1:
        raise UnsupportedMediaError("at most one video and one audio section are supported")
    video = videos[0]
    allowed = _DIRECTIONS[role]
    if video.direction not in allowed:
        raise UnsupportedMediaError(
            f"video direction {video.direction!r} does not fit a "
            f"{'WHIP publisher' if role == 'publish' else 'WHEP player'}; want {'/'.join(allowed)}"
        )
    video_names = _codec_names(video)
    if not any(h264_supported(c) for c in video.rtp.codecs):
        raise UnsupportedMediaError(
            "unsupported video codec: H.264 (packetization-mode=1, constrained baseline or "
            f"baseline profile) is required; offered: {', '.join(video_names) or 'none'}"
        )
    audio_mid = None
    audio_names: tuple[str, ...] = ()
    if audios and audios[0].direction in allowed and audios[0].port != 0:
        audio = audios[0]
        audio_names = _codec_names(audio)
        if not any(c.mimeType.lower() == "audio/opus" for c in audio.rtp.codecs):
            raise UnsupportedMediaError(
                f"unsupported audio codec: Opus is required; offered: {', '.join(audio_names)}"
            )
        audio_mid = audio.rtp.muxId
    return OfferSummary(
        description=desc,
        sdp=normalize(text),
        video_mid=video.rtp.muxId,
        audio_mid=audio_mid,
        video_codecs=video_names,
        audio_codecs=audio_names,
    )


def preferred_codecs(kind: str, role: Role) -> list[RTCRtpCodecCapability]:
    """H.264 (+ RTX) for video, Opus for audio, in aiortc's capability objects."""
    caps = (
        RTCRtpReceiver.getCapabilities(kind)
        if role == "publish"
        else RTCRtpSender.getCapabilities(kind)
    )
    assert caps is not None
    wanted = ("video/h264", "video/rtx") if kind == "video" else ("audio/opus",)
    # Constrained baseline first: it is what browsers encode by default.
    chosen = [c for c in caps.codecs if c.mimeType.lower() in wanted]
    chosen.sort(
        key=lambda c: 0 if str(c.parameters.get("profile-level-id", "")).startswith("42e0") else 1
    )
    return chosen
