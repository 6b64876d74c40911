"""SegData as the orchestrator reads it (transcode spec §5.2-5.5; go-livepeer coreSegMetadata).

- ``decode_b64``: standard base64 with Go's error wording;
- ``parse_segdata``: header -> ``SegCreds`` (profiles from fullProfiles3, else 2, else 1;
  duration range), raising ``RequestRejected(403, text)``;
- ``flatten``: the signed bytes, rebuilt from what was received: an unnamed profile is called
  ``net_<w>x<h>_<bitrate>``.
"""

from __future__ import annotations

import base64
import binascii
import string
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from mediagw.eth.crypto import keccak256
from mediagw.livepeer.proto import net
from mediagw.payments.tickets import pad32

from .errors import RequestRejected

__all__ = [
    "MAX_DURATION_MS",
    "PROTO_DECODE_ERROR",
    "Rendition",
    "SegCreds",
    "decode_b64",
    "flatten",
    "parse_segdata",
]

MAX_DURATION_MS = 5 * 60 * 1000
PROTO_DECODE_ERROR = "proto: cannot parse invalid wire-format data"
_B64 = set(string.ascii_letters + string.digits + "+/")


def decode_b64(text: str) -> bytes:
    """Standard padded base64; on failure raise ValueError worded as Go's decoder."""
    clean = text.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(clean, validate=True)
    except (binascii.Error, ValueError):
        pass
    for i, ch in enumerate(clean):
        if ch not in _B64 and ch != "=":
            raise ValueError(f"illegal base64 data at input byte {i}")
    first_pad = clean.find("=")
    at = first_pad if first_pad >= 0 else len(clean) - len(clean) % 4
    raise ValueError(f"illegal base64 data at input byte {at}")


@dataclass(frozen=True, slots=True)
class Rendition:
    """One requested output, as O understands it."""

    name: str
    width: int
    height: int
    bitrate: int
    fps: int  # 0 = pass-through
    fps_den: int  # 0 = 1
    mp4: bool
    profile: int  # net.VideoProfile.Profile value
    gop_ms: int  # -1 = intra only, 0 = encoder default
    quality: int
    encoder: int = 0  # net.VideoProfile.VideoCodec value; only H264 (0) is produced here

    @property
    def extension(self) -> str:
        return ".mp4" if self.mp4 else ".ts"


@dataclass(frozen=True, slots=True)
class SegCreds:
    segdata: net.SegData
    renditions: tuple[Rendition, ...]
    duration_ms: int  # 0 on the wire is read as 2000

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.renditions]


def _rendition(p: net.VideoProfile) -> Rendition:
    if p.format not in (net.VideoProfile.MPEGTS, net.VideoProfile.MP4):
        raise RequestRejected(403, "unrecognized profile output format")
    if p.profile not in range(5):
        raise RequestRejected(403, "unrecognized encoder profile")
    if p.encoder not in range(4):  # H264, H265, VP8, VP9
        raise RequestRejected(403, "unrecognized video codec")
    return Rendition(
        name=p.name or f"net_{p.width}x{p.height}_{p.bitrate}",
        width=p.width,
        height=p.height,
        bitrate=p.bitrate,
        fps=p.fps,
        fps_den=p.fpsDen,
        mp4=p.format == net.VideoProfile.MP4,
        profile=p.profile,
        gop_ms=p.gop,
        quality=p.quality,
        encoder=p.encoder,
    )


def parse_segdata(header: str) -> SegCreds:
    try:
        raw = decode_b64(header)
    except ValueError:
        raise RequestRejected(403, "ErrorSegEncoding") from None
    segdata = net.SegData()
    try:
        segdata.ParseFromString(raw)
    except DecodeError:
        raise RequestRejected(403, PROTO_DECODE_ERROR) from None
    # the legacy ``profiles`` bytes (gateways send "invalid") are ignored, as go-livepeer does
    profiles = segdata.fullProfiles3 or segdata.fullProfiles2 or segdata.fullProfiles
    renditions = tuple(_rendition(p) for p in profiles)
    if not 0 <= segdata.duration <= MAX_DURATION_MS:
        raise RequestRejected(403, "invalid duration")
    return SegCreds(segdata, renditions, segdata.duration or 2000)


def flatten(manifest_id: bytes, seq: int, segment_hash: bytes, names: list[str]) -> bytes:
    """manifestID || pad32(seq) || hash(32) || hex(keccak256(name)[:4]) per profile."""
    ids = "".join(keccak256(name.encode()).hex()[:8] for name in names)
    return manifest_id + pad32(abs(seq)) + segment_hash[-32:].rjust(32, b"\x00") + ids.encode()
