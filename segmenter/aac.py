"""AAC helpers: AudioSpecificConfig parsing (ISO/IEC 14496-3 1.6.2.1) and ADTS headers (1.A.2).

MPEG-TS carries AAC as ADTS frames; RTMP/FLV carries raw frames plus one AudioSpecificConfig.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MalformedMedia, UnsupportedCodec
from .h264 import BitReader

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
                7350)  # fmt: skip
SAMPLES_PER_FRAME = 1024
ADTS_HEADER_SIZE = 7
MAX_ADTS_FRAME = (1 << 13) - 1
_CHANNELS = (0, 1, 2, 3, 4, 5, 6, 8)


@dataclass(frozen=True, slots=True)
class AscInfo:
    """Decoded AudioSpecificConfig. ``object_type``/``sample_rate`` describe the AAC core
    (what ADTS signals); ``signaled_type`` is the first audioObjectType (5/29 for HE-AAC)."""

    object_type: int
    signaled_type: int
    freq_index: int  # 0..12, or 15 when the rate was given explicitly and is not in the table
    sample_rate: int
    channel_config: int
    channels: int
    ext_sample_rate: int  # SBR output rate, 0 when not signaled


def _object_type(r: BitReader) -> int:
    aot = r.u(5)
    return 32 + r.u(6) if aot == 31 else aot


def _frequency(r: BitReader) -> tuple[int, int]:
    index = r.u(4)
    if index == 15:
        rate = r.u(24)
        if rate == 0:
            raise MalformedMedia("AudioSpecificConfig explicit sample rate is 0")
        return (SAMPLE_RATES.index(rate) if rate in SAMPLE_RATES else 15), rate
    if index >= len(SAMPLE_RATES):
        raise MalformedMedia(f"AudioSpecificConfig sampling frequency index {index} is reserved")
    return index, SAMPLE_RATES[index]


def parse_asc(data: bytes) -> AscInfo:
    """Parse the leading fields of an AudioSpecificConfig."""
    if not 2 <= len(data) <= 1024:
        raise MalformedMedia(f"AudioSpecificConfig of {len(data)} bytes")
    r = BitReader(data)
    signaled = _object_type(r)
    if signaled == 0:
        raise MalformedMedia("AudioSpecificConfig audioObjectType 0 (null)")
    index, rate = _frequency(r)
    channel_config = r.u(4)
    core = signaled
    ext_rate = 0
    if signaled in (5, 29):  # explicit SBR / PS signaling: the core type follows
        _, ext_rate = _frequency(r)
        core = _object_type(r)
    return AscInfo(
        object_type=core,
        signaled_type=signaled,
        freq_index=index,
        sample_rate=rate,
        channel_config=channel_config,
        channels=_CHANNELS[channel_config] if channel_config < len(_CHANNELS) else 0,
        ext_sample_rate=ext_rate,
    )


def adts_header(object_type: int, freq_index: int, channel_config: int, payload_len: int) -> bytes:
    """A 7-byte ADTS header (MPEG-4, no CRC) for a raw AAC frame of ``payload_len`` bytes."""
    return AdtsWriter(object_type, freq_index, channel_config).header(payload_len)


class AdtsWriter:
    """Precomputed ADTS header: the only per-frame field is the 13-bit frame length."""

    __slots__ = ("_base",)

    def __init__(self, object_type: int, freq_index: int, channel_config: int) -> None:
        if not 1 <= object_type <= 4:
            raise UnsupportedCodec(
                f"AAC object type {object_type} cannot be carried in ADTS "
                "(supported: 1 Main, 2 LC, 3 SSR, 4 LTP, and HE-AAC over an LC core)"
            )
        if not 0 <= freq_index <= 12:
            raise UnsupportedCodec("AAC sample rate outside the ADTS frequency table")
        if not 1 <= channel_config <= 7:
            raise UnsupportedCodec(
                f"AAC channel configuration {channel_config} is not supported (need 1..7)"
            )
        # 56 bits: syncword 12 | id 1 | layer 2 | protection_absent 1 | profile 2 | sf_index 4 |
        # private 1 | channel_config 3 | orig 1 | home 1 | cib 1 | cis 1 | frame_length 13 |
        # buffer_fullness 11 (0x7FF = VBR) | raw_data_blocks 2
        self._base = (
            (0xFFF << 44)
            | (1 << 40)
            | ((object_type - 1) << 38)
            | (freq_index << 34)
            | (channel_config << 30)
            | (0x7FF << 2)
        )

    @classmethod
    def from_asc(cls, asc: AscInfo) -> AdtsWriter:
        return cls(asc.object_type, asc.freq_index, asc.channel_config)

    def header(self, payload_len: int) -> bytes:
        total = payload_len + ADTS_HEADER_SIZE
        if total > MAX_ADTS_FRAME:
            raise MalformedMedia(f"AAC frame of {payload_len} bytes is too large for ADTS")
        return (self._base | (total << 13)).to_bytes(7, "big")

    def frame(self, payload: bytes) -> bytes:
        return self.header(len(payload)) + payload
