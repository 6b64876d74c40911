"""TrickleServer without HTTP: in-process readers/writers (the orchestrator's own side),
channel lifetime, the idle sweep on an injected clock, and the hard limits."""

from __future__ import annotations

import asyncio

import pytest

from mediagw.clock import ManualClock
from mediagw.livepeer.trickle import (
    TrickleChannelGone,
    TrickleLimitError,
    TrickleSegmentBroken,
    TrickleSegmentTooLarge,
    TrickleUsageError,
)
from mediagw.orchestrator.trickle import TrickleLimits, TrickleServer, TrickleServerConfig
from mediagw.orchestrator.trickle.channel import Channel


async def read_all(channel: Channel, start: int, count: int) -> list[tuple[int, bytes]]:
    out = []
    async for seg in channel.subscribe(start):
        out.append((seg.seq, await seg.read()))
        if len(out) == count:
            break
    return out


async def test_local_write_and_read_in_order() -> None:
    server = TrickleServer()
    ch = server.create_channel("m1", "video/MP2T")
    reader = asyncio.create_task(read_all(ch, 0, 3))
    await asyncio.sleep(0)
    for i in range(3):
        assert await ch.write_segment(bytes([i]) * 1000) == i
    assert await asyncio.wait_for(reader, 2) == [(i, bytes([i]) * 1000) for i in range(3)]


async def test_local_reader_streams_while_written() -> None:
    server = TrickleServer()
    ch = server.create_channel("m1")
    got: list[bytes] = []
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for seg in ch.subscribe(-1):
            async for chunk in seg:
                got.append(chunk)
                first_chunk.set()
            return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    async with ch.segment_writer() as w:
        w.write(b"a" * 10)
        await asyncio.wait_for(first_chunk.wait(), 1)  # received before the segment ended
        w.write(b"b" * 10)
    await asyncio.wait_for(task, 1)
    assert b"".join(got) == b"a" * 10 + b"b" * 10


async def test_local_subscription_ends_on_close() -> None:
    server = TrickleServer()
    ch = server.create_channel("m1")
    await ch.write_segment(b"x")
    sub = server.subscribe("m1", -1)  # waits for segment 1

    async def drain() -> list[int]:
        return [seg.seq async for seg in sub]

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.01)
    assert server.close_channel("m1")
    assert await asyncio.wait_for(task, 1) == []
    with pytest.raises(TrickleChannelGone):
        server.subscribe("m1")
    assert not server.close_channel("m1")


async def test_local_reader_far_behind_jumps() -> None:
    server = TrickleServer()
    ch = server.create_channel("m1")
    for i in range(12):
        await ch.write_segment(bytes([i]))
    sub = ch.subscribe(0)  # 0 left the window long ago
    waiting = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0.01)
    await ch.write_segment(b"\x0c")
    seg = await asyncio.wait_for(waiting, 1)
    assert seg.seq == 12 and await seg.read() == b"\x0c"
    assert sub.position.unavailable == 0


async def test_reader_inside_evicted_segment_is_cut() -> None:
    server = TrickleServer()
    ch = server.create_channel("m1")
    sub = ch.subscribe(0)
    async with ch.segment_writer() as w:
        w.write(b"part")
        seg = await sub.__anext__()
        chunks = seg.__aiter__()
        assert await chunks.__anext__() == b"part"
        for i in range(1, 6):  # 5 more segments: seq 5 takes slot 0
            await ch.write_segment(bytes([i]))
        with pytest.raises(TrickleSegmentBroken):
            await chunks.__anext__()
    assert server.stats.subscribers_cut == 1


async def test_reset_unblocks_waiting_local_reader() -> None:
    server = TrickleServer()
    ch = server.create_channel("m1")
    await ch.write_segment(b"0")
    sub = ch.subscribe(-1)  # waits for 1
    task = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0.01)
    async with ch.segment_writer(4, reset=True) as w:  # a restarted publisher, further on
        held = {s.seq: s.closed for s in ch.info().segments}
        assert held[1] is True  # the reader's segment is closed at once: it moves on
        w.write(b"4")
    seq = 5
    while not task.done() and seq < 100:  # the publisher goes on, one segment per 20 ms
        await ch.write_segment(str(seq).encode(), seq)
        seq += 1
        await asyncio.sleep(0.02)
    seg = await asyncio.wait_for(task, 1)
    # the reader skipped the dropped 1, was told 470 + Latest, and joined at the live edge
    assert 4 <= seg.seq < seq
    assert await seg.read() == str(seg.seq).encode()


async def test_idle_sweep_with_injected_clock() -> None:
    clock = ManualClock()
    server = TrickleServer(TrickleServerConfig(idle_timeout=300, sweep_interval=0.01), clock=clock)
    await server.start()
    try:
        busy = server.create_channel("busy")
        server.create_channel("idle")
        server.create_channel("_changes")
        clock.now += 200
        await busy.write_segment(b"x")
        clock.now += 150  # idle: 350 s without a write; busy: 150 s
        await asyncio.sleep(0.05)  # a few sweeps run
        assert sorted(server.channel_names()) == ["_changes", "busy"]
        assert server.stats.channels_swept == 1
        clock.now += 400
        assert server.sweep() == ["busy"]
        assert server.channel_names() == ["_changes"]
    finally:
        await server.close()
    assert server.channel_names() == []


async def test_limits() -> None:
    limits = TrickleLimits(max_segment_bytes=100, max_channels=2, max_subscribers_per_segment=1)
    server = TrickleServer(TrickleServerConfig(limits=limits))
    ch = server.create_channel("a")
    assert server.create_channel("a") is ch  # idempotent
    server.create_channel("b")
    with pytest.raises(TrickleLimitError, match="channel limit"):
        server.create_channel("c")
    with pytest.raises(TrickleUsageError):
        server.create_channel("x/y")
    sub = ch.subscribe(-1)
    task = asyncio.create_task(sub.__anext__())
    with pytest.raises(TrickleSegmentTooLarge) as info:
        async with ch.segment_writer() as w:
            w.write(b"x" * 60)
            w.write(b"x" * 60)
    assert info.value.limit == 100
    assert server.stats.rejected_oversize == 1
    task.cancel()
