"""H.264 bitstream helpers: NAL framing (AVCC <-> Annex B), AVCDecoderConfigurationRecord, SPS.

References: ISO/IEC 14496-10 (7.3.2.1.1 SPS syntax, Annex B byte stream) and ISO/IEC 14496-15
(5.3.3.1 AVCDecoderConfigurationRecord). Hot paths use ``bytes.find`` and ``int.from_bytes`` on
memoryview slices; the only per-bit code is the SPS reader, which runs once per config.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MalformedMedia

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

START_CODE = b"\x00\x00\x00\x01"
AUD_NAL = b"\x09\xf0"  # access unit delimiter, primary_pic_type = 7 (any slice type)

MAX_NALS_PER_FRAME = 4096
MAX_PARAM_SET_SIZE = 4096  # bytes in one SPS/PPS
MAX_CONFIG_RECORD_SIZE = 65536

_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def nal_type(nal: bytes | memoryview) -> int:
    """The 5-bit nal_unit_type of a NAL unit (without start code or length prefix)."""
    return nal[0] & 0x1F if len(nal) else 0


def avcc_views(data: bytes | memoryview, length_size: int = 4) -> list[memoryview]:
    """Split length-prefixed (AVCC) NAL units into zero-copy views; empty NALs are skipped."""
    if length_size not in (1, 2, 4):
        raise MalformedMedia(f"NAL length size {length_size} is not 1, 2 or 4")
    mv = memoryview(data)
    end = len(mv)
    pos = 0
    out: list[memoryview] = []
    from_bytes = int.from_bytes
    while pos < end:
        hdr_end = pos + length_size
        if hdr_end > end:
            raise MalformedMedia("AVCC frame ends inside a NAL length prefix")
        size = from_bytes(mv[pos:hdr_end], "big")
        pos = hdr_end + size
        if pos > end:
            raise MalformedMedia(f"AVCC NAL length {size} exceeds the {end - hdr_end} bytes left")
        if size:
            out.append(mv[hdr_end:pos])
            if len(out) > MAX_NALS_PER_FRAME:
                raise MalformedMedia(f"more than {MAX_NALS_PER_FRAME} NAL units in one frame")
    return out


def split_avcc(data: bytes, length_size: int = 4) -> list[bytes]:
    """Split length-prefixed (AVCC) NAL units into a list of NAL payloads."""
    return [bytes(v) for v in avcc_views(data, length_size)]


def avcc_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """Replace each NAL length prefix with a 4-byte start code."""
    views = avcc_views(data, length_size)
    parts: list[bytes | memoryview] = []
    for v in views:
        parts.append(START_CODE)
        parts.append(v)
    return b"".join(parts)


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream into NAL payloads (start codes and trailing zeros removed).

    Bytes before the first start code are ignored; data without any start code is malformed.
    """
    find = data.find
    i = find(b"\x00\x00\x01")
    if i < 0:
        if not data:
            return []
        raise MalformedMedia("Annex B data has no start code")
    nals: list[bytes] = []
    start = i + 3
    while True:
        j = find(b"\x00\x00\x01", start)
        end = len(data) if j < 0 else j
        while end > start and data[end - 1] == 0:  # zero_byte of a 4-byte start code
            end -= 1
        if end > start:
            nals.append(data[start:end])
            if len(nals) > MAX_NALS_PER_FRAME:
                raise MalformedMedia(f"more than {MAX_NALS_PER_FRAME} NAL units in one frame")
        if j < 0:
            return nals
        start = j + 3


def annexb_to_avcc(data: bytes, length_size: int = 4) -> bytes:
    """Convert an Annex B byte stream into length-prefixed NAL units."""
    if length_size not in (1, 2, 4):
        raise MalformedMedia(f"NAL length size {length_size} is not 1, 2 or 4")
    limit = 1 << (8 * length_size)
    parts: list[bytes] = []
    for nal in split_annexb(data):
        if len(nal) >= limit:
            raise MalformedMedia(
                f"NAL of {len(nal)} bytes does not fit a {length_size}-byte length"
            )
        parts.append(len(nal).to_bytes(length_size, "big"))
        parts.append(nal)
    return b"".join(parts)


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 -> 00 00)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


class BitReader:
    """MSB-first bit reader with Exp-Golomb codes; reading past the end raises MalformedMedia."""

    __slots__ = ("_nbits", "_pos", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._nbits = len(data) * 8
        self._pos = 0

    @property
    def bits_left(self) -> int:
        return self._nbits - self._pos

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        end = self._pos + n
        if end > self._nbits:
            raise MalformedMedia("bitstream truncated")
        self._pos = end
        return (self._value >> (self._nbits - end)) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise MalformedMedia("Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(frozen=True, slots=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    frame_mbs_only: bool
    width: int
    height: int
    crop: tuple[int, int, int, int]  # left, right, top, bottom in luma samples


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = 8
    nxt = 8
    for _ in range(size):
        if nxt:
            delta = r.se()
            if not -128 <= delta <= 127:
                raise MalformedMedia("scaling list delta out of range")
            nxt = (last + delta + 256) % 256
        last = nxt or last


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse the fields of a sequence parameter set (NAL header included) up to the cropping."""
    if len(nal) > MAX_PARAM_SET_SIZE:
        raise MalformedMedia(f"SPS of {len(nal)} bytes exceeds {MAX_PARAM_SET_SIZE}")
    if len(nal) < 4 or nal[0] & 0x1F != NAL_SPS:
        raise MalformedMedia("not an SPS NAL unit")
    r = BitReader(unescape_rbsp(nal[1:]))
    profile = r.u(8)
    constraints = r.u(8)
    level = r.u(8)
    sps_id = r.ue()
    if sps_id > 31:
        raise MalformedMedia(f"seq_parameter_set_id {sps_id} > 31")
    chroma_format_idc = 1
    separate_colour_plane = 0
    depth_luma = depth_chroma = 8
    if profile in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise MalformedMedia(f"chroma_format_idc {chroma_format_idc} > 3")
        if chroma_format_idc == 3:
            separate_colour_plane = r.u(1)
        depth_luma = r.ue() + 8
        depth_chroma = r.ue() + 8
        if depth_luma > 14 or depth_chroma > 14:
            raise MalformedMedia("bit depth above 14")
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.u(1):
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    if r.ue() > 12:  # log2_max_frame_num_minus4
        raise MalformedMedia("log2_max_frame_num_minus4 > 12")
    poc_type = r.ue()
    if poc_type == 0:
        if r.ue() > 12:
            raise MalformedMedia("log2_max_pic_order_cnt_lsb_minus4 > 12")
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        cycle = r.ue()
        if cycle > 255:
            raise MalformedMedia("num_ref_frames_in_pic_order_cnt_cycle > 255")
        for _ in range(cycle):
            r.se()
    elif poc_type != 2:
        raise MalformedMedia(f"pic_order_cnt_type {poc_type} > 2")
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if r.u(1):
        crop = (r.ue(), r.ue(), r.ue(), r.ue())
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    if chroma_array_type == 0:
        unit_x, unit_y = 1, 2 - frame_mbs_only
    else:
        sub_w = 1 if chroma_format_idc == 3 else 2
        sub_h = 2 if chroma_format_idc == 1 else 1
        unit_x, unit_y = sub_w, sub_h * (2 - frame_mbs_only)
    full_w = width_mbs * 16
    full_h = (2 - frame_mbs_only) * height_map_units * 16
    left, right, top, bottom = (
        crop[0] * unit_x,
        crop[1] * unit_x,
        crop[2] * unit_y,
        crop[3] * unit_y,
    )
    width = full_w - left - right
    height = full_h - top - bottom
    if width <= 0 or height <= 0 or full_w > 16384 or full_h > 16384:
        raise MalformedMedia(f"SPS picture size {width}x{height} is out of range")
    return SpsInfo(
        profile_idc=profile,
        constraint_flags=constraints,
        level_idc=level,
        sps_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=depth_luma,
        bit_depth_chroma=depth_chroma,
        frame_mbs_only=bool(frame_mbs_only),
        width=width,
        height=height,
        crop=(left, right, top, bottom),
    )


@dataclass(frozen=True, slots=True)
class AvcConfigRecord:
    profile: int
    compatibility: int
    level: int
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]


def parse_avc_config(record: bytes) -> AvcConfigRecord:
    """Parse an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1)."""
    if len(record) > MAX_CONFIG_RECORD_SIZE:
        raise MalformedMedia(f"AVC config record of {len(record)} bytes is too large")
    if len(record) < 7:
        raise MalformedMedia(f"AVC config record of {len(record)} bytes is truncated")
    if record[0] != 1:
        raise MalformedMedia(f"AVC config record version {record[0]} != 1")
    length_size = (record[4] & 0x03) + 1
    if length_size == 3:
        raise MalformedMedia("AVC config record declares a 3-byte NAL length")
    pos = 5
    sets: list[tuple[bytes, ...]] = []
    for want, count_mask in ((NAL_SPS, 0x1F), (NAL_PPS, 0xFF)):
        if pos >= len(record):
            raise MalformedMedia("AVC config record truncated before parameter set count")
        count = record[pos] & count_mask
        pos += 1
        items: list[bytes] = []
        for _ in range(count):
            if pos + 2 > len(record):
                raise MalformedMedia("AVC config record truncated in a parameter set length")
            size = int.from_bytes(record[pos : pos + 2], "big")
            pos += 2
            if size == 0 or size > MAX_PARAM_SET_SIZE or pos + size > len(record):
                raise MalformedMedia(f"AVC config record parameter set length {size} is invalid")
            nal = record[pos : pos + size]
            pos += size
            if nal[0] & 0x1F != want:
                raise MalformedMedia(f"AVC config record holds NAL type {nal[0] & 0x1F}")
            items.append(nal)
        sets.append(tuple(items))
    if not sets[0] or not sets[1]:
        raise MalformedMedia("AVC config record without SPS or PPS")
    return AvcConfigRecord(
        profile=record[1],
        compatibility=record[2],
        level=record[3],
        length_size=length_size,
        sps=sets[0],
        pps=sets[1],
    )


def build_avc_config(sps: bytes, pps: bytes, length_size: int = 4) -> bytes:
    """Build a minimal AVCDecoderConfigurationRecord (one SPS, one PPS)."""
    if len(sps) < 4:
        raise MalformedMedia("SPS too short for a config record")
    return b"".join(
        (
            bytes((1, sps[1], sps[2], sps[3], 0xFC | (length_size - 1), 0xE1)),
            len(sps).to_bytes(2, "big"),
            sps,
            b"\x01",
            len(pps).to_bytes(2, "big"),
            pps,
        )
    )
