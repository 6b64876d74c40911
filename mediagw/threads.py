"""Thread pools with every thread started at once; the interpreter's settings for a gateway
process (the GIL's switch interval, the startup heap kept out of the collector's full passes).

A ``ThreadPoolExecutor`` starts a thread only when a job finds none idle, so the gateway's
thread count climbs to its pools' sizes over minutes or hours of a run (the first busy moment
of the media pool, the first six concurrent file writes of the default executor), which reads
as growth in a soak. ``start_all`` starts a pool's threads together when the process starts:
from then on the count is fixed, whatever comes (a flood included).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = [
    "GIL_SWITCH_INTERVAL", "freeze_startup_heap", "io_workers", "media_workers", "start_all",
    "tune_gil",
]  # fmt: skip

START_TIMEOUT = 10.0  # seconds for a pool's threads to start together
# PyAV lets go of the GIL in each call into FFmpeg (a packet muxed: tens a second per stream),
# and a thread that wants it back waits until the event loop's thread lets go: at the latest
# after the switch interval, 5 ms by default. A segment cut muxes a batch of frames, so under
# load its latency was tens of such waits. 1 ms: measured at 200 and 300 streams (README).
GIL_SWITCH_INTERVAL = 0.001


def tune_gil() -> float:
    """For a gateway process (``mediagw run``, its benches): see ``GIL_SWITCH_INTERVAL``. Not
    done by ``Gateway`` itself: a library leaves the interpreter's settings to its host.
    Returns the interval it replaced (a bench run in a test process puts it back)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    return previous


def freeze_startup_heap() -> None:
    """Once a gateway has started: the objects alive then (modules, classes, the engine, about
    150,000 of them) move out of the cyclic collector's generations for good. A full collection
    walks every tracked object, so it took 110-300 ms of a worker's event loop (measured at 300
    streams), mostly in that startup heap, and came when publishes ended together; frozen,
    10-40 ms. Reference counting still frees them; only a cycle among them would stay."""
    gc.collect()
    gc.freeze()


def io_workers() -> int:
    """The default executor's size (``asyncio.to_thread``: file I/O), asyncio's own rule."""
    return min(32, (os.cpu_count() or 1) + 4)


def media_workers() -> int:
    """The media pool's size (PyAV: demuxing, muxing, decoding for WebRTC)."""
    return min(32, (os.cpu_count() or 2) * 2)


async def start_all(executor: ThreadPoolExecutor, workers: int) -> None:
    """Start all ``workers`` threads of a fresh ``executor`` (one job each, held at a barrier
    until every thread runs one: a job finding no idle thread is what starts a new one)."""
    barrier = threading.Barrier(workers)
    loop = asyncio.get_running_loop()

    def wait() -> None:
        try:
            barrier.wait(START_TIMEOUT)
        except threading.BrokenBarrierError:
            pass  # the pool was busy: its threads start as jobs need them instead

    await asyncio.gather(*(loop.run_in_executor(executor, wait) for _ in range(workers)))
