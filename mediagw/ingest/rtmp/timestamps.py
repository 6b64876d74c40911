"""Unwrap 32-bit RTMP timestamps into a monotonic millisecond count.

RTMP timestamps are u32 milliseconds: they wrap after 49.7 days, and a publisher may start
anywhere. Each new timestamp is placed at the nearest point to the previous one modulo 2**32
(a signed 32-bit difference), so a forward wrap keeps counting up while the small backward
steps of interleaved audio and video stay small steps back.
"""

from __future__ import annotations

__all__ = ["TimestampUnwrapper"]

_WRAP = 1 << 32
_HALF = 1 << 31


class TimestampUnwrapper:
    """``unwrap(raw_u32) -> int``; the first value is returned as is."""

    __slots__ = ("_last_abs", "_last_raw")

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._last_abs = 0

    def unwrap(self, raw: int) -> int:
        raw &= 0xFFFFFFFF
        last = self._last_raw
        value = raw if last is None else self._last_abs + (raw - last + _HALF) % _WRAP - _HALF
        self._last_raw = raw
        self._last_abs = value
        return value
