"""Read moderation: between keyframes, a publishing connection reads every ``period`` at most.

A publisher writes each frame as it is encoded (30 video and about 47 AAC frames a second for
720p30), so a connection whose reads are all handled at once makes the event loop wake up,
call ``recv`` and enter Python for every frame or two. What a read costs is mostly that, not
the bytes it holds. Between keyframes nothing is in a hurry: the frames only wait for the
segment they belong to, which the next keyframe closes.

So after a read that left nothing to do but media the sink took, the connection stops reading
(``transport.pause_reading()``) for ``period``; its next read then holds the frames of that
time (the kernel keeps them meanwhile: a 6 Mbit/s stream sends 75 KB in 100 ms, within a
socket's default receive buffer; a faster one may fill its TCP window, and its publisher then
waits for that read, as it would for a slow network). The connections resume on shared
ticks, ``SLOTS`` per period, one timer per tick: a turn of the event loop reads several
sockets, and the held connections are spread over the period rather than all read in one
burst.

The sink decides when a read may wait (``hold_reads()``, see ``PublishSink``): a
:class:`~mediagw.stream.publisher.Publisher` says no from shortly before the next keyframe is
expected until it arrives (it cuts a segment: its latency is the product), while a consumer
wants packets as they come (live AI, LL-HLS parts), and before it knows the GOP.
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["SLOTS", "ReadModerator"]

SLOTS = 8  # resume ticks per period


class ReadModerator:
    """The connections of one server whose reading waits for a tick."""

    def __init__(self, period: float) -> None:
        self.period = period  # seconds a held connection waits; 0: never hold
        self.holds = 0  # reads that were followed by a hold (for tests and the bench)
        self._ticks: dict[int, list[asyncio.Transport]] = {}  # tick number -> held there

    @property
    def held(self) -> int:
        """Connections waiting for their tick."""
        return sum(len(held) for held in self._ticks.values())

    def hold(self, transport: asyncio.Transport) -> None:
        """Stop reading ``transport`` until the first tick ``period`` from now."""
        if self.period <= 0 or transport.is_closing():
            return
        transport.pause_reading()
        self.holds += 1
        loop = asyncio.get_running_loop()
        step = self.period / SLOTS
        tick = math.ceil((loop.time() + self.period) / step)
        held = self._ticks.get(tick)
        if held is None:
            held = self._ticks[tick] = []
            loop.call_at(tick * step, self._resume, tick)
        held.append(transport)

    def _resume(self, tick: int) -> None:
        for transport in self._ticks.pop(tick, ()):
            if not transport.is_closing():
                transport.resume_reading()

    def release(self) -> None:
        """Resume every held connection now (the server is closing)."""
        for tick in list(self._ticks):
            self._resume(tick)
