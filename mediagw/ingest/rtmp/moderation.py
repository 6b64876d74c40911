"""Read moderation: publishing connections read on a shared tick between keyframes.

A publisher writes each frame as it is encoded (30 video and about 47 AAC frames a second for
720p30), so a connection whose reads are all handled at once makes the event loop wake up,
call ``recv`` and enter Python for every frame or two. What a read costs is mostly that, not
the bytes it holds. Between keyframes nothing is in a hurry: the frames only wait for the
segment they belong to, which the next keyframe closes.

So after a read that left nothing to do but media the sink took, the connection may stop
reading (``transport.pause_reading()``) until the next tick of one clock the server's
connections share (every ``period`` seconds, on a grid of the loop's time). All of them resume
on the same tick: one turn of the event loop then reads many sockets, each holding the frames
of the last ``period``. The kernel keeps them meanwhile (a 6 Mbit/s stream sends 30 KB in
40 ms); TCP flow control is not involved.

The sink decides when a read may wait (``hold_reads()``, see ``PublishSink``): a
:class:`~mediagw.stream.publisher.Publisher` says no from shortly before the next keyframe is
expected until it arrives (it cuts a segment: its latency is the product), while a consumer
wants packets as they come (live AI, LL-HLS parts), and before it knows the GOP.
"""

from __future__ import annotations

import asyncio
import math

__all__ = ["ReadModerator"]


class ReadModerator:
    """The connections of one server whose reading waits for the next tick."""

    def __init__(self, period: float) -> None:
        self.period = period  # seconds between ticks; 0: never hold
        self.holds = 0  # reads that were followed by a hold (for tests and the bench)
        self._held: list[asyncio.Transport] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def held(self) -> int:
        """Connections waiting for the next tick."""
        return len(self._held)

    def hold(self, transport: asyncio.Transport) -> None:
        """Stop reading ``transport`` until the next tick."""
        if self.period <= 0 or transport.is_closing():
            return
        transport.pause_reading()
        self._held.append(transport)
        self.holds += 1
        if self._timer is None:
            loop = asyncio.get_running_loop()
            tick = (math.floor(loop.time() / self.period) + 1) * self.period
            self._timer = loop.call_at(tick, self.release)

    def release(self) -> None:
        """Resume every held connection (the tick; and when the server closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        for transport in held:
            if not transport.is_closing():
                transport.resume_reading()
