"""WHEP play of the progressive AI output (``unit_play``): units that arrive in real time go out
at once, bursts are paced, a backlog jumps to the newest keyframe, a full feed never blocks."""

from __future__ import annotations

import asyncio

from mediagw.pipelines.unit_play import UnitFeed, UnitStats, play_units
from webrtc import Pacer, VideoAccessUnit

TICK = 3000  # 30 fps in 90 kHz


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Sink:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pushed: list[tuple[int, float]] = []  # (frame number, clock)

    def push_video(self, unit: VideoAccessUnit) -> None:
        self.pushed.append((unit.pts // TICK, self.clock.now))


def unit(n: int, *, key: bool = False) -> VideoAccessUnit:
    return VideoAccessUnit(b"\x00\x00\x00\x01\x65" if key else b"\x00\x00\x00\x01\x41", n * TICK,
                           n * TICK, key)  # fmt: skip


def start(maxsize: int = 240) -> tuple[UnitFeed, Clock, Sink, asyncio.Task[None]]:
    clock = Clock()
    feed = UnitFeed(UnitStats(), maxsize)
    sink = Sink(clock)
    pacer = Pacer(clock=lambda: clock.now, sleep=clock.sleep)
    return feed, clock, sink, asyncio.create_task(play_units(sink, feed, pacer))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_units_arriving_in_real_time_get_no_added_delay() -> None:
    feed, clock, sink, task = start()
    for n in range(60):
        # arrival jitter: some units a little early, some late; each one waited for
        clock.now += 1 / 30 + (0.012 if n % 7 == 3 else -0.008 if n % 5 == 1 else 0)
        arrived = clock.now
        feed.offer(unit(n, key=n % 30 == 0))
        await settle()
        assert sink.pushed[-1] == (n, arrived)
    feed.end()
    await asyncio.wait_for(task, 5)
    assert clock.slept == [] and feed.stats.units == 60


async def test_a_burst_is_released_at_real_time_pace() -> None:
    feed, _clock, sink, task = start()
    for n in range(15):  # a whole short segment read at once (after a swap)
        feed.offer(unit(n, key=n == 0))
    feed.end()
    await asyncio.wait_for(task, 5)
    times = [t - sink.pushed[0][1] for _, t in sink.pushed]
    assert [n for n, _ in sink.pushed] == list(range(15))
    assert all(abs(t - n / 30) < 1e-9 for n, t in enumerate(times))


async def test_a_backlog_over_max_lag_jumps_to_the_newest_keyframe() -> None:
    feed, _clock, sink, task = start()
    for n in range(60):  # 2 s queued: keyframes at 0 and 40
        feed.offer(unit(n, key=n in (0, 40)))
    feed.end()
    await asyncio.wait_for(task, 5)
    played = [n for n, _ in sink.pushed]
    assert played[0] == 40 and played == list(range(40, 60))
    assert feed.stats.skips == 1 and feed.stats.dropped == 40


async def test_a_full_feed_drops_everything_and_restarts_at_a_keyframe() -> None:
    stats = UnitStats()
    feed = UnitFeed(stats, maxsize=4)
    for n in range(4):
        feed.offer(unit(n, key=n == 0))
    feed.offer(unit(4))  # full: all 4 + this one dropped, nothing until a keyframe
    feed.offer(unit(5))
    feed.offer(unit(6, key=True))
    feed.offer(unit(7))
    assert stats.dropped == 6 and len(feed) == 2
    got = [(await feed.get())[0] for _ in range(2)]
    assert [u.pts // TICK for u in got if u is not None] == [6, 7]


async def test_a_burst_at_the_start_does_not_cost_latency_for_good() -> None:
    """The run starts with a burst (input held while the orchestrator session started), then
    units arrive in real time: the pacer paces the burst, then lets its delay go within about a
    second instead of keeping every later unit that far behind its arrival."""
    now = [100.0]

    async def sleep(seconds: float) -> None:  # sleeps until the simulation reaches that time
        until = now[0] + seconds
        while now[0] < until - 1e-9:
            await asyncio.sleep(0)

    feed = UnitFeed(UnitStats(), clock=lambda: now[0])
    pushed: list[tuple[int, float]] = []

    class Timed:
        def push_video(self, unit: VideoAccessUnit) -> None:
            pushed.append((unit.pts // TICK, now[0]))

    pacer = Pacer(clock=lambda: now[0], sleep=sleep)
    task = asyncio.create_task(play_units(Timed(), feed, pacer))
    arrivals = {n: 100.0 for n in range(8)}  # 8 frames at once, then one per frame time
    arrivals.update({n: 100.0 + (n - 7) / 30 for n in range(8, 150)})
    step = 0.001
    while now[0] < 100.0 + 6.0:
        for n in [n for n, at in arrivals.items() if at <= now[0] + 1e-9]:
            feed.offer(unit(n, key=n % 30 == 0))
            del arrivals[n]
        for _ in range(10):
            await asyncio.sleep(0)
        now[0] += step
    feed.end()
    await asyncio.wait_for(task, 5)
    assert [n for n, _ in pushed] == list(range(150))  # none dropped
    arrived = {n: 100.0 + max(0, n - 7) / 30 for n in range(150)}
    delays = [t - arrived[n] for n, t in pushed]
    assert max(delays[:40]) > 0.2  # the burst was paced: 7 frame times behind at first
    assert max(delays[-60:]) < 0.01, delays[-60:]  # and then back at the arrival time
    assert feed.stats.catch_ups >= 1
