"""Per-stream clock: publisher timestamps -> one continuous, strictly increasing output timeline.

Rules (applied to each stream separately, in arrival order):
  * ``out = raw + offset``; the segmenter sets ``offset`` when a publish session starts so the
    session continues where the previous one ended.
  * DTS must strictly increase (the MPEG-TS muxer rejects anything else). A small step back or a
    repeated DTS (< ``JUMP_BACK``) is nudged to ``last + 1`` for that one packet.
  * A big jump back (>= ``JUMP_BACK``) or forward (> ``JUMP_FORWARD``) is a publisher timestamp
    reset: the offset is changed so the packet lands one frame after the previous one, and the
    jump is counted. The output timeline therefore never goes back and never has huge holes.
"""

from __future__ import annotations

from .packet import CLOCK

JUMP_BACK = CLOCK  # 1 s
JUMP_FORWARD = 30 * CLOCK


class StreamClock:
    __slots__ = ("_count", "_first_dts", "default_duration", "jumps", "last_dts", "offset")

    def __init__(self, default_duration: int, offset: int = 0) -> None:
        self.default_duration = default_duration
        self.offset = offset
        self.last_dts: int | None = None
        self._first_dts = 0
        self._count = 0
        self.jumps = 0

    def map(self, pts: int, dts: int) -> tuple[int, int]:
        """Return the output (pts, dts) of a packet and advance the clock."""
        off = self.offset
        pts += off
        dts += off
        last = self.last_dts
        if last is None:
            self._first_dts = dts
            self._count = 1
        else:
            delta = dts - last
            if delta <= 0 or delta > JUMP_FORWARD:
                if -JUMP_BACK < delta <= 0:
                    fix = last + 1 - dts
                else:
                    fix = last + self.frame_duration() - dts
                    self.offset += fix
                    self.jumps += 1
                    self._first_dts = dts + fix
                    self._count = 0
                pts += fix
                dts += fix
            self._count += 1
        self.last_dts = dts
        return pts, dts

    def peek(self, pts: int) -> int:
        """The output timestamp ``pts`` would get, without advancing the clock."""
        return pts + self.offset

    def frame_duration(self) -> int:
        """Mean DTS step so far (rounded), or the default before two packets were seen."""
        if self._count >= 2 and self.last_dts is not None:
            return max(1, round((self.last_dts - self._first_dts) / (self._count - 1)))
        return self.default_duration
