"""Publisher -> TrickleServer (hypercorn ASGI, plain and TLS) -> subscribers over real sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from trickle.conftest import Env, EnvFactory
from trickle.trickle_testkit import payload, readers, until

from mediagw.livepeer.trickle import (
    TrickleChannelClosed,
    TrickleChannelGone,
    TricklePublisher,
    TrickleSubscriber,
    TrickleUnavailable,
)


async def collect(sub: TrickleSubscriber, count: int | None = None) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    async for seg in sub:
        out.append((seg.seq, await seg.read()))
        if count is not None and len(out) == count:
            break
    return out


def subscriber(env: Env, channel: str, start: int = -1, **kw: object) -> TrickleSubscriber:
    return TrickleSubscriber(
        env.url(channel),
        session=env.session,
        start_seq=start,
        ssl=env.ssl,
        **kw,  # type: ignore[arg-type]
    )


def publisher(env: Env, channel: str, **kw: object) -> TricklePublisher:
    return TricklePublisher(env.url(channel), session=env.session, ssl=env.ssl, **kw)  # type: ignore[arg-type]


async def test_fanout_byte_exact(env: Env) -> None:
    """One publisher, three subscribers: every segment arrives whole and in order."""
    env.server.create_channel("mid", "video/MP2T")
    segments = [payload(200_000 + 37_000 * i, seed=i) for i in range(6)]
    subs = [subscriber(env, "mid", start=0) for _ in range(3)]
    readers = [asyncio.create_task(collect(s, len(segments))) for s in subs]
    pub = publisher(env, "mid")
    for i, data in enumerate(segments):
        assert await pub.write_segment(data) == i
    results = await asyncio.wait_for(asyncio.gather(*readers), 20)
    for got in results:
        assert got == list(enumerate(segments))
    assert pub.stats.segments == 6 and pub.stats.preconnects_used >= 5
    stats = env.server.stats
    assert stats.bytes_in == sum(map(len, segments))
    assert stats.bytes_out == 3 * stats.bytes_in
    for s in subs:
        await s.close()
    await pub.close()
    assert env.server.get_channel("mid") is None  # DELETE /{ch} at close


async def test_async_iterator_body_and_content_type(env: Env) -> None:
    env.server.create_channel("mid-control", "application/json")
    sub = subscriber(env, "mid-control")
    first = asyncio.create_task(sub.__anext__())
    pub = publisher(env, "mid-control", mime="application/json")

    async def body() -> AsyncIterator[bytes]:
        yield b'{"prompt":'
        await asyncio.sleep(0.05)
        yield b'"a cat"}'

    assert await pub.write_segment(body()) == 0
    seg = await asyncio.wait_for(first, 5)
    assert seg.content_type == "application/json"
    assert await seg.read() == b'{"prompt":"a cat"}'
    await sub.close()
    await pub.close()


async def test_mid_segment_join(env: Env) -> None:
    """A subscriber arriving mid-segment gets what was written so far, then the rest."""
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    head, tail = payload(300_000, 1), payload(300_000, 2)
    async with pub.segment() as up:
        await up.write(head)
        channel = env.server.get_channel("mid")
        assert channel is not None
        for _ in range(200):  # the first bytes reached the server
            if channel.info().segments and channel.info().segments[0].size > 0:
                break
            await asyncio.sleep(0.01)
        sub = subscriber(env, "mid", start=-2)  # the current segment
        seg = await asyncio.wait_for(sub.__anext__(), 5)
        assert seg.seq == 0
        chunks = seg.__aiter__()
        early = await asyncio.wait_for(chunks.__anext__(), 5)  # before the segment ends
        assert head.startswith(early)
        await up.write(tail)
    rest = b"".join([c async for c in chunks])
    assert early + rest == head + tail
    await sub.close()
    await pub.close()


async def test_start_next_and_current(env: Env) -> None:
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    for i in range(3):
        await pub.write_segment(payload(1000, i))
    current = subscriber(env, "mid", start=-2)
    nxt = subscriber(env, "mid", start=-1)
    got_current = await asyncio.wait_for(current.__anext__(), 5)
    assert (got_current.seq, await got_current.read()) == (2, payload(1000, 2))
    waiting = asyncio.create_task(nxt.__anext__())
    channel = env.server.get_channel("mid")
    assert channel is not None
    for _ in range(300):  # both GETs of 3 (current's preconnect, next's -1) wait at the server
        readers = {s.seq: s.readers for s in channel.info().segments}
        if readers.get(3) == 2:
            break
        await asyncio.sleep(0.01)
    assert readers.get(3) == 2 and not waiting.done()
    await pub.write_segment(payload(1000, 3))
    got_next = await asyncio.wait_for(waiting, 5)
    assert (got_next.seq, await got_next.read()) == (3, payload(1000, 3))
    await current.close()
    await nxt.close()
    await pub.close()


async def test_far_behind_subscriber_jumps_without_spinning(env: Env) -> None:
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    for i in range(12):
        await pub.write_segment(payload(500, i))
    sub = subscriber(env, "mid", start=0)
    waiting = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    assert sub.stats.jumps == 1  # one 470, then a waiting GET at the live edge
    assert sub.stats.requests <= 3
    await pub.write_segment(payload(500, 12))
    seg = await asyncio.wait_for(waiting, 5)
    assert (seg.seq, await seg.read()) == (12, payload(500, 12))
    await sub.close()
    await pub.close()


async def test_ahead_subscriber_waits_for_the_writer(env: Env) -> None:
    """470 with Latest behind the asked seq: the same seq is asked again every 250 ms."""
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    await pub.write_segment(b"0")
    sub = subscriber(env, "mid", start=4)  # writer is at 1
    waiting = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0.6)
    assert 2 <= sub.stats.jumps <= 4  # about one 470 per 250 ms, no spin
    for i in range(1, 5):
        await pub.write_segment(str(i).encode())
    seg = await asyncio.wait_for(waiting, 5)
    assert seg.seq == 4 and await seg.read() == b"4"
    await sub.close()
    await pub.close()


async def test_missing_channel_404(env: Env) -> None:
    sub = subscriber(env, "nope", start=0)
    assert await asyncio.wait_for(collect(sub), 5) == []  # clean end, no error
    pub = publisher(env, "nope")
    with pytest.raises(TrickleChannelGone):
        await pub.write_segment(b"data")
    with pytest.raises(TrickleChannelGone):  # terminal: stays failed
        await pub.write_segment(b"more")
    await pub.close()


async def test_channel_close_ends_waiting_subscriber_and_publisher(env: Env) -> None:
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    await pub.write_segment(b"x")
    sub = subscriber(env, "mid", start=-1)
    task = asyncio.create_task(collect(sub))
    await asyncio.sleep(0.1)
    env.server.close_channel("mid")
    assert await asyncio.wait_for(task, 5) == []
    with pytest.raises(TrickleChannelGone) as info:  # the preconnected POST was woken
        await pub.write_segment(b"y")
    assert isinstance(info.value, TrickleChannelClosed) or "not found" in str(info.value)
    await pub.close()


async def test_a_lingering_closed_channel_still_serves_what_it_holds(env: Env) -> None:
    """An orchestrator that closes a channel right after its last write, with a linger: a
    reader a moment late gets the held segments, then Lp-Trickle-Closed; then the channel is
    gone (404)."""
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    for i in range(2):
        await pub.write_segment(bytes([i]) * 100)
    env.server.close_channel("mid", linger=0.5)
    late = subscriber(env, "mid", start=0)
    assert await asyncio.wait_for(collect(late), 5) == [(0, b"\x00" * 100), (1, b"\x01" * 100)]
    assert late.ended_by.startswith("Lp-Trickle-Closed"), late.ended_by
    await until(lambda: env.server.get_channel("mid") is None, 5)
    gone = subscriber(env, "mid", start=0)
    assert await asyncio.wait_for(collect(gone), 5) == []
    assert gone.ended_by.startswith("HTTP 404"), gone.ended_by
    await pub.close()


async def test_publisher_restart_with_reset_unblocks_readers(env: Env) -> None:
    env.server.create_channel("mid")
    old = publisher(env, "mid")
    for i in range(3):
        await old.write_segment(payload(1000, i))
    sub = subscriber(env, "mid", start=3)  # waits for 3 (next_write)
    reader = asyncio.create_task(collect(sub, 2))
    # the old publisher starts segment 3, then hangs (a crashed encoder, say)
    stuck = old.segment()
    up = await stuck.__aenter__()
    await up.write(b"partial-3")
    await asyncio.sleep(0.2)
    assert not reader.done()
    # a new publisher asks /next and restarts with Lp-Trickle-Reset
    new = publisher(env, "mid", start_seq=None)
    assert await new.write_segment(payload(1000, 4)) == 4
    got = await asyncio.wait_for(reader, 5)
    assert got == [(3, b"partial-3"), (4, payload(1000, 4))]  # 3 was closed, not left hanging
    await sub.close()
    await new.close()
    old._active = None  # abandon the stuck one
    await old.close()


async def test_preconnects_are_used(env: Env) -> None:
    """The POST of n+1 is open while n is written; the GET of n+1 waits at the server before
    n+1 exists."""
    env.server.create_channel("mid")
    channel = env.server.get_channel("mid")
    assert channel is not None
    pub = publisher(env, "mid")
    sub = subscriber(env, "mid", start=0)
    reader = asyncio.create_task(sub.__anext__())
    async with pub.segment() as up:
        await up.write(b"segment-0")
        for _ in range(200):
            infos = {s.seq: s for s in channel.info().segments}
            if 1 in infos and infos[1].writers == 1 and 0 in infos and infos[0].size:
                break
            await asyncio.sleep(0.01)
        assert infos[1].writers == 1 and not infos[1].started  # POST 1 preconnected
        seg = await asyncio.wait_for(reader, 5)
        for _ in range(200):
            infos = {s.seq: s for s in channel.info().segments}
            if infos[1].readers == 1:
                break
            await asyncio.sleep(0.01)
        assert infos[1].readers == 1  # GET 1 waiting at the server before segment 1 exists
    assert await seg.read() == b"segment-0"
    connections = env.host.connections
    await pub.write_segment(b"segment-1")
    seg1 = await asyncio.wait_for(sub.__anext__(), 5)
    assert await seg1.read() == b"segment-1"
    assert pub.stats.preconnects_used >= 1 and sub.stats.preconnects_used >= 1
    assert env.host.connections - connections <= 2
    await sub.close()
    await pub.close()


async def test_subscriber_reissues_pending_get(make_env: EnvFactory) -> None:
    env = await make_env()
    env.server.create_channel("mid")
    sub = subscriber(env, "mid", start=0, refresh_interval=0.15)
    waiting = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0.5)
    assert sub.stats.refreshes >= 2
    channel = env.server.get_channel("mid")
    assert channel is not None
    for _ in range(100):  # abandoned GETs are noticed and leave the segment
        if channel.info().segments[0].readers == 1:
            break
        await asyncio.sleep(0.02)
    assert channel.info().segments[0].readers == 1
    await channel.write_segment(b"late")
    seg = await asyncio.wait_for(waiting, 5)
    assert await seg.read() == b"late"
    await sub.close()


async def test_tls_verification_choices(make_env: EnvFactory) -> None:
    env = await make_env(tls=True)
    await env.server.create_channel("mid").write_segment(b"secret")
    insecure = TrickleSubscriber(env.url("mid"), session=env.session, start_seq=0, ssl=False)
    seg = await asyncio.wait_for(insecure.__anext__(), 5)
    assert await seg.read() == b"secret"
    await insecure.close()
    strict = TrickleSubscriber(
        env.url("mid"), session=env.session, start_seq=0, ssl=True, retry_delay=0.01
    )
    with pytest.raises(TrickleUnavailable):  # self-signed: refused by default verification
        await asyncio.wait_for(strict.__anext__(), 5)


async def test_wire_answers(make_env: EnvFactory) -> None:
    env = await make_env()
    channel = env.server.create_channel("mid", "video/MP2T")
    for i in range(7):
        await channel.write_segment(payload(10, i))
    s = env.session
    async with s.get(env.url("mid") + "/5") as r:
        assert r.status == 200 and await r.read() == payload(10, 5)
        assert (r.headers["Lp-Trickle-Seq"], r.headers["Lp-Trickle-Latest"]) == ("5", "7")
        assert r.headers["Content-Type"] == "video/MP2T"
    async with s.get(env.url("mid") + "/0") as r:
        assert r.status == 470 and await r.read() == b"Entry not found"
        assert (r.headers["Lp-Trickle-Seq"], r.headers["Lp-Trickle-Latest"]) == ("0", "7")
    async with s.get(env.url("mid") + "/next") as r:
        assert (r.status, await r.read(), r.headers["Lp-Trickle-Latest"]) == (200, b"7", "7")
    async with s.get(env.url("mid") + "/abc") as r:
        assert r.status == 400
    async with s.get(env.url("mid") + "/-3") as r:
        assert r.status == 400
    async with s.delete(env.url("mid") + "/3") as r:
        assert r.status == 200
    async with s.get(env.url("mid") + "/3") as r:  # closed before: still served, whole
        assert r.status == 200 and await r.read() == payload(10, 3)
    async with s.delete(env.url("mid") + "/1") as r:
        assert r.status == 400
    async with s.post(env.url("new")) as r:  # no auto-create on an O
        assert r.status == 404
    async with s.post(env.url("new") + "/0", data=b"x") as r:
        assert r.status == 404 and r.headers.get("Connection") == "close"
    async with s.delete(env.url("new")) as r:
        assert r.status == 400
    async with s.put(env.url("mid") + "/1") as r:
        assert r.status == 405
    async with s.get(env.host.url + "/elsewhere") as r:
        assert r.status == 404
    env.server.close_channel("mid")
    async with s.get(env.url("mid") + "/next") as r:
        assert r.status == 404


async def test_closed_channel_answers(make_env: EnvFactory) -> None:
    """A GET waiting when the channel closes gets 200 + Lp-Trickle-Closed, no body."""
    env = await make_env()
    env.server.create_channel("mid")
    request = asyncio.create_task(env.session.get(env.url("mid") + "/0"))
    await until(lambda: readers(env.server, "mid", 0) == 1)
    env.server.close_channel("mid")
    r = await asyncio.wait_for(request, 5)
    assert r.status == 200 and r.headers["Lp-Trickle-Closed"] == "terminated"
    assert await r.read() == b""
    r.release()


async def test_autocreate(make_env: EnvFactory) -> None:
    from mediagw.orchestrator.trickle import TrickleServerConfig

    env = await make_env(TrickleServerConfig(autocreate=True))
    async with env.session.post(env.url("auto"), headers={"Expect-Content": "text/x"}) as r:
        assert r.status == 200
    channel = env.server.get_channel("auto")
    assert channel is not None and channel.mime == "text/x"
    pub = publisher(env, "auto2", mime="application/json")
    await pub.write_segment(b"{}")
    channel2 = env.server.get_channel("auto2")
    assert channel2 is not None and channel2.mime == "application/json"
    await pub.close()


async def test_publish_is_not_slowed_by_segments_size(env: Env) -> None:
    """A few MB per segment go through at loopback speed (no per-byte Python work)."""
    env.server.create_channel("mid")
    pub = publisher(env, "mid")
    sub = subscriber(env, "mid", start=0)
    data = payload(4 << 20, 9)
    reader = asyncio.create_task(collect(sub, 4))
    started = time.monotonic()
    for _ in range(4):
        await pub.write_segment(data)
    got = await asyncio.wait_for(reader, 20)
    elapsed = time.monotonic() - started
    assert all(d == data for _, d in got)
    assert elapsed < 10, elapsed
    await sub.close()
    await pub.close()


async def test_session_close_is_clean(env: Env) -> None:
    env.server.create_channel("mid")
    async with publisher(env, "mid") as pub, subscriber(env, "mid", start=0) as sub:
        await pub.write_segment(b"a")
        seg = await asyncio.wait_for(sub.__anext__(), 5)
        assert await seg.read() == b"a"
