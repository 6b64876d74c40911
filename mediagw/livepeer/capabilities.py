"""Capabilities: the bit numbers, job capabilities and the compatibility test (spec §3.3, §3.4).

Bit *n* is bit ``n % 64`` (LSB first) of word ``n // 64`` of ``Capabilities.bitstring``.
``job_capabilities`` builds the wire form a transcoding gateway sends; ``compatible`` is the test
go-livepeer runs (gateway at discovery, orchestrator on every segment).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Literal

from .profiles import Profile
from .proto import net

__all__ = [
    "LEGACY_CAPABILITIES",
    "Capability",
    "bits_of",
    "bitstring",
    "compatible",
    "job_capabilities",
    "parse_version",
]


class Capability(IntEnum):
    """go-livepeer ``core/capabilities.go`` numbers."""

    H264 = 0
    MPEGTS = 1
    MP4 = 2
    FRACTIONAL_FRAMERATES = 3
    STORAGE_DIRECT = 4
    STORAGE_S3 = 5
    STORAGE_GCS = 6
    PROFILE_H264_BASELINE = 7
    PROFILE_H264_MAIN = 8
    PROFILE_H264_HIGH = 9
    PROFILE_H264_CONSTRAINED_HIGH = 10
    GOP = 11
    AUTH_TOKEN = 12
    SCENE_CLASSIFICATION = 13  # deprecated
    MPEG7_VIDEO_SIGNATURE = 14
    HEVC_DECODE = 15
    HEVC_ENCODE = 16
    VP8_DECODE = 17
    VP9_DECODE = 18
    VP8_ENCODE = 19
    VP9_ENCODE = 20
    H264_DECODE_444_8BIT = 21
    H264_DECODE_422_8BIT = 22
    H264_DECODE_444_10BIT = 23
    H264_DECODE_422_10BIT = 24
    H264_DECODE_420_10BIT = 25
    SEGMENT_SLICING = 26
    TEXT_TO_IMAGE = 27
    IMAGE_TO_IMAGE = 28
    IMAGE_TO_VIDEO = 29
    UPSCALE = 30
    AUDIO_TO_TEXT = 31
    SEGMENT_ANYTHING_2 = 32
    LLM = 33
    IMAGE_TO_TEXT = 34
    LIVE_VIDEO_TO_VIDEO = 35
    TEXT_TO_SPEECH = 36
    BYOC = 37


LEGACY_CAPABILITIES = frozenset(range(12))  # bits 0-11: accepted by Os that report no caps
MAX_CAPABILITY_BIT = 64 * 16  # hard limit on bit numbers we encode or decode

_INPUT_CODECS = {
    "H.264": Capability.H264,
    "HEVC": Capability.HEVC_DECODE,
    "VP8": Capability.VP8_DECODE,
    "VP9": Capability.VP9_DECODE,
}
# H.264 input with a known pixel format other than 4:2:0 8-bit (ffmpeg pix_fmt names)
_H264_PIXEL_FORMATS = {
    "yuv444p": Capability.H264_DECODE_444_8BIT,
    "yuvj444p": Capability.H264_DECODE_444_8BIT,
    "yuv422p": Capability.H264_DECODE_422_8BIT,
    "yuvj422p": Capability.H264_DECODE_422_8BIT,
    "yuv444p10le": Capability.H264_DECODE_444_10BIT,
    "yuv422p10le": Capability.H264_DECODE_422_10BIT,
    "yuv420p10le": Capability.H264_DECODE_420_10BIT,
}
_OUTPUT_ENCODERS = {
    "H.264": Capability.H264,
    "HEVC": Capability.HEVC_ENCODE,
    "VP8": Capability.VP8_ENCODE,
    "VP9": Capability.VP9_ENCODE,
}
_ENCODER_PROFILES = {
    "h264baseline": Capability.PROFILE_H264_BASELINE,
    "h264main": Capability.PROFILE_H264_MAIN,
    "h264high": Capability.PROFILE_H264_HIGH,
    "h264constrainedhigh": Capability.PROFILE_H264_CONSTRAINED_HIGH,
}
_STORAGE = {
    "": None,
    "direct": Capability.STORAGE_DIRECT,
    "s3": Capability.STORAGE_S3,
    "gcs": Capability.STORAGE_GCS,
}


def bitstring(bits: Iterable[int]) -> list[int]:
    """Capability numbers -> ``Capabilities.bitstring`` words (uint64, LSB first)."""
    words: list[int] = []
    for bit in bits:
        if not 0 <= bit < MAX_CAPABILITY_BIT:
            raise ValueError(f"capability {bit} outside [0, {MAX_CAPABILITY_BIT})")
        index = bit // 64
        if index >= len(words):
            words.extend([0] * (index + 1 - len(words)))
        words[index] |= 1 << (bit % 64)
    return words


def bits_of(words: Sequence[int]) -> set[int]:
    """``Capabilities.bitstring`` words -> the set of capability numbers (inverse of bitstring)."""
    return {
        i * 64 + b
        for i, word in enumerate(words[: MAX_CAPABILITY_BIT // 64])
        for b in range(64)
        if word >> b & 1
    }


def job_capabilities(
    profiles: Sequence[Profile],
    *,
    segment_slicing: bool,
    min_version: str = "",
    verification: bool = False,
    input_codec: Literal["H.264", "HEVC", "VP8", "VP9"] = "H.264",
    input_pixel_format: str = "",
    storage: Literal["", "direct", "s3", "gcs"] = "",
) -> net.Capabilities:
    """The job capabilities a transcoding gateway sends (§3.4).

    ``segment_slicing`` is True for HTTP push ingest, False for RTMP. ``input_pixel_format`` is an
    ffmpeg pix_fmt name; a known non-4:2:0-8-bit H.264 format selects one of bits 21-25 in place of
    bit 0. ``storage`` is G's external store (none for the in-memory default).
    """
    bits: set[int] = {Capability.AUTH_TOKEN}
    if verification:
        bits.add(Capability.MPEG7_VIDEO_SIGNATURE)
    if segment_slicing:
        bits.add(Capability.SEGMENT_SLICING)
    decode = _INPUT_CODECS[input_codec]
    if input_codec == "H.264":
        decode = _H264_PIXEL_FORMATS.get(input_pixel_format.lower(), decode)
    bits.add(decode)
    for p in profiles:
        bits.add(Capability.MP4 if p.format == "mp4" else Capability.MPEGTS)
        bits.add(_OUTPUT_ENCODERS[p.encoder])
        if p.fps_den > 0:
            bits.add(Capability.FRACTIONAL_FRAMERATES)
        if p.profile:
            bits.add(_ENCODER_PROFILES[p.profile])
        if p.gop_ms != 0:
            bits.add(Capability.GOP)
    store = _STORAGE[storage]
    if store is not None:
        bits.add(store)
    caps = net.Capabilities(bitstring=bitstring(sorted(bits)))
    caps.constraints.SetInParent()  # present on the wire, even when empty
    caps.constraints.minVersion = min_version
    return caps


_VERSION = re.compile(
    r"v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+(?P<build>[0-9A-Za-z.-]+))?"
)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """Lenient semver (``v`` prefix, missing minor/patch = 0); pre-release and build ignored.

    None when unparsable (go-livepeer's "" and "undefined" included)."""
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        return None
    return (int(m["major"]), int(m["minor"] or 0), int(m["patch"] or 0))


def _words_cover(have: Sequence[int], need: Sequence[int]) -> bool:
    """(need AND have) == need, word by word; missing words of ``have`` count as zero."""
    return all((word & (have[i] if i < len(have) else 0)) == word for i, word in enumerate(need))


def _constraints_ok(job: net.Capabilities, orch: net.Capabilities) -> bool:
    orch_per = orch.constraints.PerCapability
    for cap, job_constraints in job.constraints.PerCapability.items():
        if cap not in orch_per:
            continue  # O sets no constraints on this capability: go-livepeer assumes compatible
        orch_models = orch_per[cap].models
        for model_id, want in job_constraints.models.items():
            if model_id not in orch_models:
                return False
            have = orch_models[model_id]
            if want.warm and not have.warm:
                return False
            if not version_compatible(want.runnerVersion, have.runnerVersion):
                return False
    return True


def version_compatible(minimum: str, version: str) -> bool:
    """go-livepeer's version rule: no minimum passes; an O version "" or "undefined" fails; an
    unparsable minimum passes, an unparsable version fails; pre-release suffixes are ignored."""
    if not minimum:
        return True
    if version in ("", "undefined"):
        return False
    need = parse_version(minimum)
    if need is None:
        return True
    have = parse_version(version)
    return have is not None and have >= need


def compatible(job: net.Capabilities, orch: net.Capabilities | None) -> bool:
    """go-livepeer's ``CompatibleWith``: may an O with ``orch`` capabilities take this job?

    1. minVersion empty, or O's version (pre-release ignored) >= minVersion;
    2. every O mandatory bit is in the job;
    3. every model the job constrains exists on O, warm when asked, runnerVersion high enough;
    4. every job bit is in O's bitstring, and the job's array is not longer than O's.
    An O that reports no capabilities (``orch`` None or an empty message, so
    ``info.capabilities`` can be passed as is) accepts a job that needs only bits 0-11.
    """
    min_version = job.constraints.minVersion
    if orch is None or orch.ByteSize() == 0:
        return not min_version and bits_of(job.bitstring) <= LEGACY_CAPABILITIES
    if not version_compatible(min_version, orch.version):
        return False
    if not _words_cover(job.bitstring, orch.mandatories):
        return False
    if not _constraints_ok(job, orch):
        return False
    return len(job.bitstring) <= len(orch.bitstring) and _words_cover(orch.bitstring, job.bitstring)
