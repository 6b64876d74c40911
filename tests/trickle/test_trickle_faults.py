"""Trickle under faults over real sockets: publisher retry/drop, keepalive 1xx, idle sweep,
size limits, slow subscribers (bounded buffering), and the aiohttp front end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from trickle.conftest import Env, EnvFactory
from trickle.trickle_testkit import HypercornHost, payload, readers, until

from mediagw.livepeer.trickle import (
    TrickleChannelGone,
    TricklePublisher,
    TrickleSegmentBroken,
    TrickleSegmentDropped,
    TrickleSegmentTooLarge,
    TrickleSubscriber,
)
from mediagw.orchestrator.trickle import TrickleLimits, TrickleServerConfig


def subscriber(env: Env, channel: str, start: int = -1) -> TrickleSubscriber:
    return TrickleSubscriber(env.url(channel), session=env.session, start_seq=start, ssl=env.ssl)


def publisher(env: Env, channel: str, **kw: Any) -> TricklePublisher:
    return TricklePublisher(env.url(channel), session=env.session, ssl=env.ssl, **kw)


def kill_posts(path_end: str, times: int, *, after_first_chunk: bool = False) -> Any:
    """An ASGI wrapper that kills the connection of the first ``times`` POSTs to a path."""

    def wrap(app: Any, host: HypercornHost) -> Any:
        state = {"left": times}

        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            hit = scope["type"] == "http" and scope["method"] == "POST"
            if hit and scope["path"].endswith(path_end) and state["left"] > 0:
                state["left"] -= 1
                if after_first_chunk:
                    while not (await receive()).get("body"):
                        pass
                host.abort(scope)
                return
            await app(scope, receive, send)

        return wrapped

    return wrap


async def collect(
    sub: TrickleSubscriber, count: int, out: list[tuple[int, bytes]] | None = None
) -> list[tuple[int, bytes]]:
    out = [] if out is None else out
    async for seg in sub:
        out.append((seg.seq, await seg.read()))
        if len(out) == count:
            break
    return out


async def test_retry_once_when_no_byte_was_sent(make_env: EnvFactory) -> None:
    env = await make_env(wrap=kill_posts("/mid/2", 1))
    env.server.create_channel("mid")
    sub = subscriber(env, "mid", start=0)
    reader = asyncio.create_task(collect(sub, 4))
    pub = publisher(env, "mid", preconnect=False)
    await pub.write_segment(b"zero")
    await pub.write_segment(b"one")
    async with pub.segment() as up:
        await asyncio.sleep(0.2)  # the POST is dead before anything was written
        started = time.monotonic()
        await up.write(b"two")
        assert time.monotonic() - started >= 0.25  # retried after 250 ms
    await pub.write_segment(b"three")
    assert pub.stats.retries == 1 and pub.stats.dropped == 0
    got = await asyncio.wait_for(reader, 5)
    assert got == [(0, b"zero"), (1, b"one"), (2, b"two"), (3, b"three")]
    await sub.close()
    await pub.close()


async def test_dead_preconnect_is_replaced(make_env: EnvFactory) -> None:
    env = await make_env(wrap=kill_posts("/mid/1", 1))
    env.server.create_channel("mid")
    sub = subscriber(env, "mid", start=0)
    reader = asyncio.create_task(collect(sub, 2))
    pub = publisher(env, "mid")
    await pub.write_segment(b"zero")  # POST 1 preconnects and is killed
    await asyncio.sleep(0.2)
    await pub.write_segment(b"one")  # a fresh POST, not a retry
    assert pub.stats.retries == 0 and pub.stats.dropped == 0
    assert await asyncio.wait_for(reader, 5) == [(0, b"zero"), (1, b"one")]
    await sub.close()
    await pub.close()


async def test_drop_after_bytes_were_sent(make_env: EnvFactory) -> None:
    env = await make_env(wrap=kill_posts("/mid/2", 1, after_first_chunk=True))
    env.server.create_channel("mid")
    sub = subscriber(env, "mid", start=0)
    reader = asyncio.create_task(collect(sub, 3))
    pub = publisher(env, "mid", preconnect=False)
    await pub.write_segment(b"zero")
    await pub.write_segment(b"one")
    with pytest.raises(TrickleSegmentDropped) as info:
        await pub.write_segment(payload(200_000))
    assert info.value.seq == 2
    assert await pub.write_segment(b"three") == 3  # the publisher goes on
    assert pub.stats.dropped == 1 and pub.stats.retries == 0
    # the reader waiting for 2 was released by DELETE /mid/2 and skipped it
    got = await asyncio.wait_for(reader, 5)
    assert got == [(0, b"zero"), (1, b"one"), (3, b"three")]
    assert sub.stats.skipped == 1
    await sub.close()
    await pub.close()


def hang_after_body(path_end: str) -> Any:
    """An ASGI wrapper that reads the whole body of a POST to a path and never answers."""

    def wrap(app: Any, host: HypercornHost) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            hit = scope["type"] == "http" and scope["method"] == "POST"
            if hit and scope["path"].endswith(path_end):
                while (await receive()).get("more_body"):
                    pass
                await asyncio.sleep(3600)
            await app(scope, receive, send)

        return wrapped

    return wrap


async def test_server_that_never_answers(make_env: EnvFactory) -> None:
    env = await make_env(wrap=hang_after_body("/mid/1"))
    env.server.create_channel("mid")
    pub = publisher(env, "mid", answer_timeout=0.2)
    await pub.write_segment(b"zero")
    started = time.monotonic()
    with pytest.raises(TrickleSegmentDropped, match="no answer"):
        await pub.write_segment(b"one")
    assert time.monotonic() - started < 2
    assert await pub.write_segment(b"two") == 2
    await pub.close()


async def test_keepalive_1xx_tolerated(make_env: EnvFactory) -> None:
    """aiohttp front end: a real ``100 Continue`` every 50 ms to a preconnected POST."""
    env = await make_env(TrickleServerConfig(keepalive_interval=0.05), front="aiohttp")
    env.server.create_channel("mid")
    sub = subscriber(env, "mid", start=0)
    reader = asyncio.create_task(collect(sub, 2))
    pub = publisher(env, "mid")
    await pub.start()  # POST 0 is open, no byte yet
    await asyncio.sleep(0.4)
    assert env.server.stats.keepalives_sent >= 3
    await pub.write_segment(payload(100_000, 1))
    await asyncio.sleep(0.3)  # POST 1 (preconnected) gets keepalives too
    await pub.write_segment(payload(100_000, 2))
    got = await asyncio.wait_for(reader, 5)
    assert got == [(0, payload(100_000, 1)), (1, payload(100_000, 2))]
    assert env.server.stats.keepalives_sent >= 6
    await sub.close()
    await pub.close()


async def test_aiohttp_front_fanout(make_env: EnvFactory) -> None:
    env = await make_env(front="aiohttp")
    env.server.create_channel("mid")
    segments = [payload(150_000 + i, i) for i in range(5)]
    subs = [subscriber(env, "mid", start=0) for _ in range(2)]
    readers = [asyncio.create_task(collect(s, 5)) for s in subs]
    pub = publisher(env, "mid")
    for data in segments:
        await pub.write_segment(data)
    for got in await asyncio.wait_for(asyncio.gather(*readers), 10):
        assert got == list(enumerate(segments))
    for s in subs:
        await s.close()
    await pub.close()
    assert env.server.get_channel("mid") is None


async def test_idle_sweep_over_http(make_env: EnvFactory) -> None:
    now = [1000.0]
    env = await make_env(
        TrickleServerConfig(idle_timeout=300, sweep_interval=0.02), clock=lambda: now[0]
    )
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    await pub.write_segment(b"a")
    sub = subscriber(env, "mid", start=-1)
    waiting = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0.1)
    assert env.server.channel_names() == ["mid"]
    now[0] += 301
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)  # closed by the sweep: a clean end
    assert env.server.stats.channels_swept == 1
    with pytest.raises(TrickleChannelGone):
        await pub.write_segment(b"b")
    await pub.close()


async def test_segment_size_limits(make_env: EnvFactory) -> None:
    limits = TrickleLimits(max_segment_bytes=1 << 20)
    env = await make_env(TrickleServerConfig(limits=limits))
    env.server.create_channel("mid")
    sub = subscriber(env, "mid", start=0)
    first = asyncio.create_task(sub.__anext__())
    # a publisher that does not know the server limit: the server answers 413
    pub = publisher(env, "mid")
    with pytest.raises(TrickleSegmentDropped, match=r"413.*1048576 byte limit"):
        await pub.write_segment(payload(3 << 20))
    assert env.server.stats.rejected_oversize == 1
    seg = await asyncio.wait_for(first, 5)  # the reader of the broken segment is cut
    with pytest.raises(TrickleSegmentBroken):
        await seg.read()
    # a publisher with its own limit stops before sending too much
    local = publisher(env, "mid", max_segment_bytes=1 << 20, start_seq=None)
    with pytest.raises(TrickleSegmentTooLarge) as info:
        await local.write_segment(payload(2 << 20))
    assert info.value.limit == 1 << 20
    assert await local.write_segment(b"small") >= 1  # both go on
    await sub.close()
    await pub.close()
    await local.close()


async def test_subscribers_per_segment_limit(make_env: EnvFactory) -> None:
    limits = TrickleLimits(max_subscribers_per_segment=2)
    env = await make_env(TrickleServerConfig(limits=limits))
    env.server.create_channel("mid")
    pending = [asyncio.create_task(env.session.get(env.url("mid") + "/0")) for _ in range(2)]
    await until(lambda: readers(env.server, "mid", 0) == 2)
    async with env.session.get(env.url("mid") + "/0") as r:
        assert r.status == 503 and b"Too many subscribers" in await r.read()
    assert env.server.stats.rejected_subscribers == 1
    channel = env.server.get_channel("mid")
    assert channel is not None
    await channel.write_segment(b"ok")
    for task in pending:
        r = await task
        assert await r.read() == b"ok"
        r.release()


async def test_slow_subscriber_never_blocks(make_env: EnvFactory) -> None:
    """A stalled reader holds nothing up: the publisher and a fast reader go at full speed;
    once its segment leaves the window the stalled reader is cut (bounded memory)."""
    env = await make_env()
    env.server.create_channel("mid")
    big = payload(24 << 20, 0)  # more than the socket buffers can absorb
    rest = [payload(200_000, i) for i in range(1, 7)]
    fast = subscriber(env, "mid", start=0)
    slow = subscriber(env, "mid", start=0)
    fast_got: list[tuple[int, bytes]] = []
    fast_reader = asyncio.create_task(collect(fast, 7, fast_got))
    slow_first = asyncio.create_task(slow.__anext__())
    pub = publisher(env, "mid")
    started = time.monotonic()
    await pub.write_segment(big)
    seg = await asyncio.wait_for(slow_first, 5)
    chunks = seg.__aiter__()
    await chunks.__anext__()  # the slow reader takes one chunk, then stalls
    for _ in range(500):  # live pacing: the fast reader is done with segment 0
        if fast_got:
            break
        await asyncio.sleep(0.01)
    for data in rest:
        await pub.write_segment(data)
    publish_time = time.monotonic() - started
    got = await asyncio.wait_for(fast_reader, 20)
    assert got == [(0, big), *((i + 1, d) for i, d in enumerate(rest))]
    assert publish_time < 10
    channel = env.server.get_channel("mid")
    assert channel is not None
    assert all(s.seq != 0 for s in channel.info().segments)  # 0 left the window, freed
    with pytest.raises(TrickleSegmentBroken):  # the stalled reader is cut when it resumes
        async for _ in chunks:
            pass
    assert env.server.stats.subscribers_cut >= 1
    await fast.close()
    await slow.close()
    await pub.close()
