"""Frame numbers drawn into the picture, read back after H.264 encoding and decoding.

A frame carries a 16-bit number and a check byte (CRC-8 XOR 0xA5) as 24 blocks (2 rows of 12,
each ``width // 12`` pixels square) across the top of the luma plane: dark = 0, light = 1, most
significant bit first. The blocks are many H.264 macroblocks wide and flat, so even a low bitrate
keeps the middle of each block far on its side of mid-grey; the check byte rejects a picture that
reads as garbage (a broken decode, a frame of another source, a black or white screen). Below the
blocks a bar moves one step per frame, so the encoder has motion to code. Numbers wrap at 65536
(36 minutes at 30 fps).
"""

from __future__ import annotations

from typing import Any

import av

__all__ = ["BITS", "crc8", "draw_luma", "make_frame", "read_frame", "read_luma", "word"]

COLS, ROWS = 12, 2
BITS = COLS * ROWS  # 16 number bits + 8 check bits
DARK, LIGHT, THRESHOLD = 32, 224, 128
BACKGROUND, BAR, BAR_WIDTH = 96, 200, 16
_MASK = 0xFFFF


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07, initial 0)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _check(n: int) -> int:
    # XOR-ed so that neither an all-dark nor an all-light picture reads as a number
    return crc8(n.to_bytes(2, "big")) ^ 0xA5


def word(number: int) -> int:
    """The 24 bits drawn for ``number``: the number (mod 65536), then its check byte."""
    n = number & _MASK
    return (n << 8) | _check(n)


def _block(width: int, height: int) -> int:
    size = width // COLS
    if size < 16 or ROWS * size > height:
        raise ValueError(f"{width}x{height} is too small for frame numbers")
    return size


def draw_luma(number: int, width: int, height: int, stride: int | None = None) -> bytes:
    """The luma plane (``stride`` bytes a row, default ``width``) of frame ``number``."""
    stride = stride or width
    size = _block(width, height)
    bits = word(number)
    pad = bytes([BACKGROUND]) * (stride - COLS * size)
    rows: list[bytes] = []
    for r in range(ROWS):
        line = b"".join(
            bytes([LIGHT if bits >> (BITS - 1 - (r * COLS + c)) & 1 else DARK]) * size
            for c in range(COLS)
        )
        rows.append((line + pad) * size)
    x = (number * 4) % max(1, width - BAR_WIDTH)
    bar_line = (
        bytes([BACKGROUND]) * x
        + bytes([BAR]) * BAR_WIDTH
        + bytes([BACKGROUND]) * (stride - x - BAR_WIDTH)
    )
    rows.append(bar_line * (height - ROWS * size))
    return b"".join(rows)


def read_luma(plane: Any, width: int, height: int, stride: int | None = None) -> int | None:
    """The number drawn in a luma plane (any buffer), or None if it does not read back."""
    stride = stride or width
    try:
        size = _block(width, height)
    except ValueError:
        return None
    view = memoryview(plane).cast("B")
    lo, hi = size // 4, size - size // 4
    bits = 0
    for r in range(ROWS):
        for c in range(COLS):
            x0, x1 = c * size + lo, c * size + hi
            total = count = 0
            for y in range(r * size + lo, r * size + hi, 4):
                row = view[y * stride + x0 : y * stride + x1]
                total += sum(row)
                count += len(row)
            bits = (bits << 1) | (total > THRESHOLD * count)
    number = bits >> 8
    return number if _check(number) == bits & 0xFF else None


_CHROMA: dict[int, bytes] = {}


def make_frame(number: int, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame showing ``number`` (grey, with the moving bar)."""
    frame = av.VideoFrame(width=width, height=height, format="yuv420p")
    luma = frame.planes[0]
    luma.update(draw_luma(number, width, height, luma.line_size))
    for plane in frame.planes[1:]:
        size = plane.buffer_size
        if size not in _CHROMA:
            _CHROMA[size] = b"\x80" * size
        plane.update(_CHROMA[size])
    return frame


def read_frame(frame: av.VideoFrame) -> int | None:
    """The number shown by a decoded frame (any 8-bit YUV format), or None."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "nv12", "yuv422p", "yuv444p"):
        frame = frame.reformat(format="yuv420p")
    luma = frame.planes[0]
    return read_luma(luma, frame.width, frame.height, luma.line_size)
