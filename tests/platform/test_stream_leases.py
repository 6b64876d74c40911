"""Stream ownership across real gateway nodes sharing one store and one Redis (``-redisUrl``):
a stream live on one node is refused on another (RTMP, with the node named) until its publisher
stops; a node that stops renewing loses its lease within the TTL, the next node resumes the
stream from its cursor, and the old node, renewing again, stops its ingest; with Redis down a
publish goes through (counted); a node's start ends no other live node's session, and a
takeover ends the dead node's session once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import wait_until
from redis_testkit import fresh_redis, redis_url, refused_url
from rtmp.rtmp_testkit import ClientScript, ServerReplies, ffmpeg_path, ffmpeg_push

from mediagw.clock import ManualClock
from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.platform.shared.leases import CACHE, StreamLeases
from mediagw.platform.shared.redis import SharedRedis
from mediagw.platform.store import Session, SqlStore, Stream
from mediagw.request import Resume, StreamRequest

TTL = 1.0  # seconds (the default is 3): the tests wait for leases to end
START = "NetStream.Publish.Start"
BUSY = "NetStream.Publish.BadName"

Factory = Callable[..., Awaitable[Gateway]]


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    async def emit(
        self, event: str, *, stream_id: str, stream_doc: dict[str, Any], payload: dict[str, Any],
        stream_row: Stream | None = None,
    ) -> None:  # fmt: skip
        assert stream_row is None or stream_row.id == stream_id
        self.seen.append((event, payload))


async def _nodes(store: str) -> AsyncIterator[Factory]:
    prefix = f"mediagw-test:{uuid.uuid4().hex[:12]}:"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(fresh_redis(prefix))  # deletes the keys at the end

        async def start(node: str, **overrides: Any) -> Gateway:
            values: dict[str, Any] = {
                "rtmp_addr": "127.0.0.1:0",
                "http_addr": "127.0.0.1:0",
                "segment_duration": 1.0,
                "redis_url": redis_url(),
                "node_id": node,
            }
            values["store_url" if "://" in store else "data_dir"] = store
            values.update(overrides)
            gw = Gateway(Settings(**values))
            assert gw.redis is not None and gw.leases is not None
            gw.redis.prefix = prefix
            gw.leases.ttl = TTL
            gw.events = Events()
            await gw.start()
            stack.push_async_callback(gw.stop)
            return gw

        yield start


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Factory]:
    async for start in _nodes(str(tmp_path / "data")):
        yield start


@pytest.fixture
async def stored_nodes(store_url: str) -> AsyncIterator[Factory]:
    async for start in _nodes(store_url):
        yield start


async def _publish(gw: Gateway, name: str) -> tuple[str, str, asyncio.StreamWriter]:
    """A scripted RTMP publish of ``name``: the onStatus code and description it got."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.rtmp_port)
    writer.write(ClientScript().setup(name))
    replies = ServerReplies()
    async with asyncio.timeout(10):
        while True:
            data = await reader.read(65536)
            assert data, "closed before an answer to publish"
            for r in replies.feed(data):
                if r.name == "onStatus" and len(r.values) > 3:
                    status = r.values[3]
                    if str(status.get("code", "")).startswith("NetStream.Publish."):
                        return status["code"], status.get("description", ""), writer


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def _unheld(gw: Gateway, stream_id: str) -> bool:
    assert gw.leases is not None
    return await gw.leases.holder(stream_id) is None


def _live(gw: Gateway, stream_id: str) -> bool:
    stream = gw.hub.get(stream_id)
    return stream is not None and stream.live


async def test_a_stream_live_on_one_node_is_refused_on_another_until_it_stops(
    nodes: Factory,
) -> None:
    a, b = await nodes("node-a"), await nodes("node-b")
    name = f"cam-{uuid.uuid4().hex[:8]}"
    code, _, first = await _publish(a, name)
    assert code == START
    code, text, second = await _publish(b, name)
    assert code == BUSY and "already being published on node node-a" in text
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{b.public_url()}/whip/{name}",
            data="v=0\r\n",
            headers={"Content-Type": "application/sdp"},
        ) as resp,
    ):  # WHIP: refused before any SDP work
        assert resp.status == 409 and "on node node-a" in await resp.text()
    assert b.hub.get(name) is None
    second.close()
    first.close()  # A's publisher stops: its lease is released
    await wait_until(lambda: not _live(a, name))
    await _until(lambda: _unheld(b, name))
    code, _, third = await _publish(b, name)
    assert code == START and _live(b, name)
    stream = b.hub.get(name)
    assert stream is not None and stream.request.resume is None  # A listed nothing
    third.close()


async def test_a_node_that_stops_renewing_loses_its_stream_to_the_next(nodes: Factory) -> None:
    a, b = await nodes("node-a"), await nodes("node-b")
    assert a.leases is not None and a.leases._renewer is not None
    name = f"cam-{uuid.uuid4().hex[:8]}"
    url = f"rtmp://127.0.0.1:{a.rtmp_port}/live/{name}"
    proc = await ffmpeg_push(ffmpeg_path(), url, seconds=60, realtime=True)
    try:
        await wait_until(lambda: (s := a.hub.get(name)) is not None and s.stats.segments >= 2, 30)
        a.leases._renewer.cancel()  # A stops renewing: as Redis sees it, A died
        await _until(lambda: _unheld(b, name), timeout=TTL + 2)  # ends within the TTL
        rendition = a.hls.rendition(name, "source")
        assert rendition is not None
        listed = max(e.seq for e in rendition.playlist.entries)
        code, _, writer = await _publish(b, name)
        assert code == START
        stream = b.hub.get(name)
        assert stream is not None and stream.request.resume is not None
        resume = stream.request.resume
        assert resume.next_seq > listed and resume.session == 1
        assert b.leases is not None and await b.leases.holder(name) == "node-b"
        # A renews again (the partition heals): B holds the stream, so A stops its ingest
        await a.leases.renew()
        await wait_until(lambda: not _live(a, name), 15)
        old = a.hub.get(name)
        assert old is not None and "published on node node-b" in (old.last_error or "")
        assert a.leases.lost == 1 and _live(b, name)
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_with_redis_down_a_publish_goes_through_and_is_counted(nodes: Factory) -> None:
    gw = await nodes("node-a", redis_url=refused_url())
    assert gw.redis is not None
    before = gw.redis.failures
    name = f"cam-{uuid.uuid4().hex[:8]}"
    code, _, writer = await _publish(gw, name)
    assert code == START and _live(gw, name)
    assert gw.redis.failures == before + 1  # the claim, served without Redis
    writer.close()


async def test_a_node_start_ends_the_sessions_it_left_and_those_nobody_holds(
    stored_nodes: Factory, store_url: str
) -> None:
    store = await SqlStore.open(store_url)  # what two kill -9s leave: open sessions
    try:
        for n, node in enumerate(("node-a", "node-dead")):
            row = Stream(
                id=f"s{n}", name="n", stream_key=f"k{n}", playback_id=f"p{n}", created_at=1
            )
            await store.create_stream(row)
            await store.start_session(
                Session(id=f"x{n}", stream_id=row.id, created_at=10, last_seen=20, node=node)
            )
    finally:
        await store.close()
    a = await stored_nodes("node-a")
    assert a.store is not None and a.lifecycle is not None and isinstance(a.events, Events)
    assert await a.store.open_sessions() == ()
    idle = sorted((p["sessionId"], p["reason"]) for e, p in a.events.seen if e == "stream.idle")
    assert idle == [("x0", "unclean stop"), ("x1", "node lost")]
    assert not (await a.store.list_streams(is_active=True)).items


async def test_a_node_start_keeps_live_sessions_and_a_takeover_ends_the_dead_ones_once(
    stored_nodes: Factory,
) -> None:
    a = await stored_nodes("node-a")
    assert a.store is not None and a.leases is not None and a.leases._renewer is not None
    row = Stream(
        id=uuid.uuid4().hex, name="show", stream_key=f"key-{uuid.uuid4().hex}",
        playback_id=f"pb-{uuid.uuid4().hex[:8]}", created_at=1,
    )  # fmt: skip
    await a.store.create_stream(row)
    proc = await ffmpeg_push(
        ffmpeg_path(), f"rtmp://127.0.0.1:{a.rtmp_port}/live/{row.stream_key}", seconds=60,
        realtime=True,
    )  # fmt: skip
    try:
        store = a.store
        opened: list[Session] = []

        async def session_open() -> bool:
            opened[:] = await store.open_sessions(row.id)
            return len(opened) == 1

        await _until(session_open)
        first = opened[0]
        assert first.node == "node-a"
        c = await stored_nodes("node-c")  # its start (recovery) leaves A's live session alone
        assert [s.id for s in await store.open_sessions(row.id)] == [first.id]
        assert isinstance(c.events, Events) and isinstance(a.events, Events)
        assert not [e for e, _ in c.events.seen if e == "stream.idle"]
        a.leases._renewer.cancel()  # A dies, as Redis sees it
        await _until(lambda: _unheld(c, row.playback_id), timeout=TTL + 2)
        code, _, writer = await _publish(c, row.stream_key)
        assert code == START

        async def taken_over() -> bool:
            sessions = await store.open_sessions(row.id)
            return [s.node for s in sessions] == ["node-c"]

        await _until(taken_over)
        # A learns it lost the stream: its ingest stops, and its own end of the session is not
        # told again
        await a.leases.renew()
        await wait_until(lambda: not _live(a, row.playback_id), 15)
        assert a.lifecycle is not None and c.lifecycle is not None
        await a.lifecycle.drain()
        await c.lifecycle.drain()
        idle = [p for e, p in a.events.seen + c.events.seen if e == "stream.idle"]
        assert idle == [{"sessionId": first.id, "reason": "node lost"}]
        stored = await store.get_stream(row.id)
        assert stored is not None and stored.is_active  # C's session is live
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_a_publish_refused_after_its_claim_gives_the_lease_back(nodes: Factory) -> None:
    gw = await nodes("node-a", max_sessions=1)
    live, other = f"cam-{uuid.uuid4().hex[:8]}", f"cam-{uuid.uuid4().hex[:8]}"
    code, _, first = await _publish(gw, live)
    assert code == START
    code, _, second = await _publish(gw, other)  # claimed, then refused by the session limit
    assert code == "NetStream.Publish.Rejected"
    await _until(lambda: _unheld(gw, other), timeout=5)  # else renewed as a pending claim
    code, _, third = await _publish(gw, live)  # the hub's StreamBusy: the live lease stays
    assert code == BUSY
    assert gw.leases is not None
    if gw.leases._tasks:  # a give-back in flight would be done by now
        await asyncio.wait(list(gw.leases._tasks), timeout=5)
    assert await gw.leases.holder(live) == "node-a" and _live(gw, live)
    for writer in (first, second, third):
        writer.close()


class _Stats:
    sessions = 3


class _Live:  # the part of the hub's Stream the leases read
    def __init__(self, stream_id: str) -> None:
        self.id = stream_id
        self.stats = _Stats()
        self.stop_ingest = None


class _Seg:
    def __init__(self, seq: int) -> None:
        self.seq = seq


async def test_the_cursor_is_written_coalesced_and_resumes_on_another_node() -> None:
    async with fresh_redis() as redis:
        a = StreamLeases(redis, "node-a", "http://a:1", discontinuity=lambda _id: 4)
        b = StreamLeases(redis, "node-b", "http://b:2")
        assert (await a.claim(StreamRequest("s"))).resume is None  # no cursor yet
        a.on_stream_start(_Live("s"))
        for seq in range(50):  # segments listed faster than Redis answers
            a.on_segment(_Live("s"), _Seg(seq))
        assert len(a._tasks) == 1  # one write in flight for the stream
        a.on_stream_end(_Live("s"))  # at once: the last cursor is written, then the lease freed
        while a._tasks:
            await asyncio.wait(list(a._tasks))
        cursor = json.loads(await redis.client.get(redis.key("cursor", "stream", "s")))
        assert (cursor["next_seq"], cursor["discontinuity"], cursor["session"]) == (51, 4, 3)
        assert await a.holder("s") is None
        assert (await a.claim(StreamRequest("s"))).resume is None  # its own: the hub goes on
        a.abandon(StreamRequest("s"))
        await asyncio.wait(list(a._tasks))
        assert (await b.claim(StreamRequest("s"))).resume == Resume(51, 4, 3)


async def test_the_cursors_of_many_streams_go_in_one_round_trip() -> None:
    async with fresh_redis() as redis:
        a = StreamLeases(redis, "node-a", "http://a:1")
        names = [f"s{n}" for n in range(20)]
        for name in names:
            await a.claim(StreamRequest(name))
            a.on_stream_start(_Live(name))
        before = redis.commands
        for seq in range(3):  # three segments of each stream within COALESCE
            for name in names:
                a.on_segment(_Live(name), _Seg(seq))
        while a._tasks:
            await asyncio.wait(list(a._tasks))
        assert redis.commands - before == 1  # one pipelined round trip for 20 cursors
        for name in names:
            cursor = json.loads(await redis.client.get(redis.key("cursor", "stream", name)))
            assert cursor["next_seq"] == 2 + 2 and cursor["node"] == "node-a"
        a.on_segment(_Live("s0"), _Seg(3))  # news for one: written with its end, then freed
        for name in names:
            a.on_stream_end(_Live(name))
        while a._tasks:
            await asyncio.wait(list(a._tasks))
        cursor = json.loads(await redis.client.get(redis.key("cursor", "stream", "s0")))
        assert cursor["next_seq"] == 3 + 2
        assert [await a.holder(name) for name in names] == [None] * len(names)


async def test_owner_url_names_the_other_node_once_per_burst() -> None:
    clock = ManualClock()
    async with fresh_redis() as redis:
        a = StreamLeases(redis, "node-a", "http://a:1", clock=clock)
        b = StreamLeases(redis, "node-b", "http://b:2", clock=clock)
        await a.claim(StreamRequest("s"))
        assert await b.owner_url("s") == "http://a:1"
        assert await a.owner_url("s") is None  # its own stream
        await redis.client.delete(redis.key("lease", "stream", "s"))
        assert await b.owner_url("s") == "http://a:1"  # remembered: no Redis call
        clock.advance(CACHE)
        assert await b.owner_url("s") is None
    down = SharedRedis(refused_url())
    try:
        assert await StreamLeases(down, "node-a", "http://a:1").owner_url("s") is None
        assert down.failures == 1
    finally:
        await down.close()


async def test_a_refused_whip_offer_gives_its_claim_back_at_once(nodes: Factory) -> None:
    """WHIP offers let in (the stream claimed) but then refused, with a malformed offer (400),
    one over the size limit (413) and one whose client goes away mid-body: each gives its claim
    back, so another node takes the stream at once (not after the pending claim's 15 s)."""
    a, b = await nodes("node-a"), await nodes("node-b")
    assert a.leases is not None
    sdp = {"Content-Type": "application/sdp"}
    async with aiohttp.ClientSession() as http:
        for body, status in (("v=0\r\n", 400), ("v=0\r\n" + "a" * 70_000, 413)):
            name = f"cam-{uuid.uuid4().hex[:8]}"
            async with http.post(f"{a.public_url()}/whip/{name}", data=body, headers=sdp) as resp:
                assert resp.status == status
            # given back: well before the pending claim's 15 s (5 s: a loaded CI machine's
            # Redis connect once took the whole of 2 s)
            await _until(lambda: _unheld(a, name), timeout=5)  # noqa: B023
            code, _, writer = await _publish(b, name)
            assert code == START and _live(b, name)
            writer.close()
    name = f"cam-{uuid.uuid4().hex[:8]}"
    _reader, writer = await asyncio.open_connection("127.0.0.1", a.http_port)
    head = f"POST /whip/{name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n"
    writer.write(f"{head}Content-Length: 5000\r\n\r\nv=0\r\n".encode())
    await _until(lambda: _held(a, name), timeout=5)  # admitted: claimed, reading the body
    writer.transport.abort()
    await _until(lambda: _unheld(a, name), timeout=5)
    code, _, second = await _publish(b, name)
    assert code == START
    second.close()


async def _held(gw: Gateway, stream_id: str) -> bool:
    assert gw.leases is not None
    return await gw.leases.holder(stream_id) is not None
