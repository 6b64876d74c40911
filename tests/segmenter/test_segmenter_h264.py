"""Golden-byte tests for the H.264 helpers (SPS bytes recorded from ffmpeg/libx264 output)."""

from __future__ import annotations

import pytest

from segmenter import MalformedMedia, h264

# (SPS hex, width, height, profile, level, chroma_format_idc, crop l/r/t/b, frame_mbs_only)
GOLDEN_SPS = [
    # libx264 -profile:v main 1280x720: no cropping
    (
        "674d401feca02802dd8088000003000800000301e078c18cb0",
        1280,
        720,
        77,
        31,
        1,
        (0, 0, 0, 0),
        True,
    ),
    # libx264 -profile:v high 1920x1080: coded 1088 lines, bottom crop 4 x CropUnitY 2
    (
        "67640028acd940780227e5c044000003000400000300f03c60c658",
        1920,
        1080,
        100,
        40,
        1,
        (0, 0, 0, 8),
        True,
    ),
    # libx264 high444 yuv444p 1918x1078: CropUnitX = CropUnitY = 1
    (
        "67f40028919b280f0044f7178088000003000800000301e078c18cb0",
        1918,
        1078,
        244,
        40,
        3,
        (0, 2, 0, 10),
        True,
    ),
    # libx264 interlaced=1 1920x1080: field coding, CropUnitY = 2 * 2
    (
        "67640028acd94078044fde0220000003002000000783e2c5b2c0",
        1920,
        1080,
        100,
        40,
        1,
        (0, 0, 0, 8),
        False,
    ),
    # libx264 -profile:v baseline 320x240
    ("6742c00dd90141fb0110000003001000000303c0f142a480", 320, 240, 66, 13, 1, (0, 0, 0, 0), True),
]

BASELINE_RECORD = bytes.fromhex(
    "0142c00dffe100186742c00dd90141fb0110000003001000000303c0f142a48001000568cb83cb20"
)
HIGH_RECORD_WITH_EXT = bytes.fromhex(
    "01640028ffe1001a67640028acd94078044fde0220000003002000000783e2c5b2c001000668fba3cb22c0fdf8f800"
)


@pytest.mark.parametrize(("hexsps", "w", "h", "profile", "level", "chroma", "crop", "progressive"),
                         GOLDEN_SPS)  # fmt: skip
def test_parse_sps_golden(
    hexsps: str,
    w: int,
    h: int,
    profile: int,
    level: int,
    chroma: int,
    crop: tuple[int, int, int, int],
    progressive: bool,
) -> None:
    info = h264.parse_sps(bytes.fromhex(hexsps))
    assert (info.width, info.height) == (w, h)
    assert (info.profile_idc, info.level_idc) == (profile, level)
    assert info.chroma_format_idc == chroma
    assert info.crop == crop
    assert info.frame_mbs_only is progressive
    assert info.bit_depth_luma == 8


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, v: int) -> None:
        self.bits += [(v >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, v: int) -> None:
        code = v + 1
        n = code.bit_length()
        self.u(n - 1, 0)
        self.u(n, code)

    def se(self, v: int) -> None:
        self.ue(2 * v - 1 if v > 0 else -2 * v)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def escape(rbsp: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def synth_sps(*, scaling: bool, chroma: int, poc_type: int, w_mbs: int, h_mbs: int,
              crop: tuple[int, int, int, int] | None) -> bytes:  # fmt: skip
    w = BitWriter()
    w.u(8, 100)  # profile_idc high
    w.u(8, 0)
    w.u(8, 41)
    w.ue(0)  # sps id
    w.ue(chroma)
    if chroma == 3:
        w.u(1, 0)
    w.ue(2)  # bit_depth_luma_minus8 -> 10 bit
    w.ue(2)
    w.u(1, 0)
    w.u(1, int(scaling))
    if scaling:
        for i in range(8 if chroma != 3 else 12):
            present = i in (0, 3, 6, 7)
            w.u(1, int(present))
            if present:
                size = 16 if i < 6 else 64
                if i == 7:
                    w.se(-8)  # nextScale 0 at once: use default list
                else:
                    for j in range(size):
                        w.se(1 if j % 2 else -1)
    w.ue(0)  # log2_max_frame_num_minus4
    w.ue(poc_type)
    if poc_type == 0:
        w.ue(2)
    elif poc_type == 1:
        w.u(1, 0)
        w.se(-3)
        w.se(2)
        w.ue(3)
        for v in (1, -1, 5):
            w.se(v)
    w.ue(4)  # max_num_ref_frames
    w.u(1, 0)
    w.ue(w_mbs - 1)
    w.ue(h_mbs - 1)
    w.u(1, 1)  # frame_mbs_only
    w.u(1, 1)  # direct_8x8
    w.u(1, int(crop is not None))
    if crop is not None:
        for c in crop:
            w.ue(c)
    w.u(1, 0)  # vui absent
    return b"\x67" + escape(w.rbsp())


@pytest.mark.parametrize("poc_type", [0, 1, 2])
@pytest.mark.parametrize("chroma", [1, 2, 3])
def test_parse_sps_scaling_lists_and_chroma(poc_type: int, chroma: int) -> None:
    sps = synth_sps(scaling=True, chroma=chroma, poc_type=poc_type, w_mbs=80, h_mbs=45,
                    crop=(1, 2, 3, 4))  # fmt: skip
    info = h264.parse_sps(sps)
    sub_w = 1 if chroma == 3 else 2
    sub_h = 2 if chroma == 1 else 1
    assert info.width == 1280 - sub_w * 3
    assert info.height == 720 - sub_h * 7
    assert info.chroma_format_idc == chroma
    assert info.bit_depth_luma == 10


def test_parse_sps_errors() -> None:
    good = bytes.fromhex(GOLDEN_SPS[0][0])
    for n in range(1, 9):  # the fields up to frame_cropping end in byte 9
        with pytest.raises(MalformedMedia):
            h264.parse_sps(good[:n])
    with pytest.raises(MalformedMedia):
        h264.parse_sps(b"\x68" + good[1:])  # a PPS header
    with pytest.raises(MalformedMedia):
        h264.parse_sps(b"\x67\x64\x00\x28" + b"\x00" * 8)  # Exp-Golomb longer than 32 bits


def test_bitreader_exp_golomb() -> None:
    # ue: 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3; se: 010 -> +1, 011 -> -1
    r = h264.BitReader(bytes([0b10100110, 0b01000100, 0b11000000]))
    assert [r.ue(), r.ue(), r.ue(), r.ue()] == [0, 1, 2, 3]
    assert [r.se(), r.se()] == [1, -1]
    with pytest.raises(MalformedMedia):
        r.u(8)


def test_unescape_rbsp() -> None:
    assert h264.unescape_rbsp(bytes.fromhex("0000030000030100000302")) == bytes.fromhex(
        "00000000010000 02".replace(" ", "")
    )


def test_parse_avc_config_golden() -> None:
    rec = h264.parse_avc_config(BASELINE_RECORD)
    assert rec.length_size == 4
    assert (rec.profile, rec.compatibility, rec.level) == (66, 0xC0, 13)
    assert rec.sps == (bytes.fromhex(GOLDEN_SPS[4][0]),)
    assert rec.pps == (bytes.fromhex("68cb83cb20"),)
    high = h264.parse_avc_config(HIGH_RECORD_WITH_EXT)  # trailing chroma/bit-depth extension
    assert high.pps == (bytes.fromhex("68fba3cb22c0"),)
    assert h264.parse_avc_config(h264.build_avc_config(rec.sps[0], rec.pps[0])) == rec


def test_parse_avc_config_errors() -> None:
    for n in range(len(BASELINE_RECORD)):
        with pytest.raises(MalformedMedia):
            h264.parse_avc_config(BASELINE_RECORD[:n])
    bad = bytearray(BASELINE_RECORD)
    bad[4] = 0xFE  # lengthSizeMinusOne = 2
    with pytest.raises(MalformedMedia, match="3-byte"):
        h264.parse_avc_config(bytes(bad))
    bad = bytearray(BASELINE_RECORD)
    bad[0] = 2
    with pytest.raises(MalformedMedia, match="version"):
        h264.parse_avc_config(bytes(bad))
    no_pps = BASELINE_RECORD[: 8 + 0x18] + b"\x00"
    with pytest.raises(MalformedMedia, match="without"):
        h264.parse_avc_config(no_pps)
    with pytest.raises(MalformedMedia):
        h264.parse_avc_config(b"\x01" + b"\x00" * 70000)


NALS = [bytes.fromhex("09f0"), bytes.fromhex("6742c00d"), bytes.fromhex("68cb"),
        bytes.fromhex("65888400000301"), bytes.fromhex("41")]  # fmt: skip


@pytest.mark.parametrize("length_size", [1, 2, 4])
def test_avcc_annexb_round_trip(length_size: int) -> None:
    avcc = b"".join(len(n).to_bytes(length_size, "big") + n for n in NALS)
    annexb = h264.avcc_to_annexb(avcc, length_size)
    assert annexb == b"".join(b"\x00\x00\x00\x01" + n for n in NALS)
    assert h264.split_annexb(annexb) == NALS
    assert h264.annexb_to_avcc(annexb, length_size) == avcc
    assert h264.split_avcc(avcc, length_size) == NALS


def test_split_annexb_mixed_start_codes_and_trailing_zeros() -> None:
    data = b"\xff\x00\x00\x01\x09\xf0\x00\x00\x00\x01\x67\x42\x00\x00\x01\x65\x88\x00\x00"
    assert h264.split_annexb(data) == [b"\x09\xf0", b"\x67\x42", b"\x65\x88"]
    assert h264.split_annexb(b"") == []
    with pytest.raises(MalformedMedia):
        h264.split_annexb(b"\x65\x88")
    assert [h264.nal_type(n) for n in NALS] == [9, 7, 8, 5, 1]


def test_avcc_errors() -> None:
    with pytest.raises(MalformedMedia, match="exceeds"):
        h264.avcc_to_annexb(b"\x00\x00\x00\x09\x65", 4)
    with pytest.raises(MalformedMedia, match="prefix"):
        h264.avcc_to_annexb(b"\x00\x00\x01", 4)
    with pytest.raises(MalformedMedia):
        h264.avcc_to_annexb(b"", 3)
    with pytest.raises(MalformedMedia, match="NAL units"):
        h264.avcc_to_annexb(b"\x01\x41" * (h264.MAX_NALS_PER_FRAME + 1), 1)
    with pytest.raises(MalformedMedia, match="does not fit"):
        h264.annexb_to_avcc(b"\x00\x00\x01" + b"\x41" * 300, 1)
    assert h264.split_avcc(b"\x00\x00\x00\x00\x00\x00\x00\x01\x41", 4) == [b"\x41"]
