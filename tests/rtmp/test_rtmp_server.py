"""The asyncio server over real loopback sockets, with a scripted client (no ffmpeg needed)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import pytest
from rtmp.rtmp_testkit import (
    ClientScript,
    RecordingHandler,
    RecordingSink,
    ServerReplies,
    read_until,
    video_payload,
)

from mediagw.errors import LimitExceeded, PublishRejected
from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.moderation import SLOTS
from mediagw.ingest.rtmp.server import PublishRequest, RTMPLimits, RTMPServer

FAST = RTMPLimits(handshake_timeout=2.0, idle_timeout=3.0, publish_timeout=1.0, close_grace=1.0)


@pytest.fixture
def limits() -> RTMPLimits:
    return FAST


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.script = ClientScript(chunk_size=4096)
        self.replies = ServerReplies()

    @classmethod
    async def open(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def publish(self, name: str = "test1", expect: str = "NetStream.Publish.Start") -> Any:
        await self.send(self.script.setup(name))
        got = await read_until(self.reader, self.replies, expect)
        return got[-1]

    async def push_frames(self, n: int, size: int = 2000) -> None:
        for i in range(n):
            await self.send(self.script.media(mt.VIDEO, i * 33, video_payload(i, size, i == 0)))

    async def unpublish(self) -> None:
        s = self.script
        await self.send(s.command("FCUnpublish", "x") + s.command("deleteStream", 1.0))
        self.writer.close()
        await self.writer.wait_closed()

    async def closed_by_server(self, timeout: float = 3.0) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except ConnectionResetError:
            pass
        return True


async def test_publish_over_a_socket(server: RTMPServer, handler: RecordingHandler) -> None:
    c = await Client.open(server.port)
    await c.publish("cam?key=s3cret&region=eu")
    await c.push_frames(50)
    await c.unpublish()
    sink = await handler.wait_closed("cam")
    assert sink.req.query == {"key": "s3cret", "region": "eu"}
    assert sink.req.peer[0] == "127.0.0.1"
    assert sink.req.tc_url == "rtmp://127.0.0.1:1935/live"
    assert sink.video_frames() == 50
    assert [ts for _, ts, _ in sink.messages] == [i * 33 for i in range(50)]
    assert sink.closes == [None]


async def test_rejected_publish_gets_an_error_status_then_eof(
    server: RTMPServer, handler: RecordingHandler
) -> None:
    handler.reject_with = PublishRejected("bad key", "NetStream.Publish.Unauthorized")
    c = await Client.open(server.port)
    status = await c.publish("cam", expect="NetStream.Publish.Unauthorized")
    assert status.values[3]["level"] == "error"
    assert status.values[3]["description"] == "bad key"
    assert await c.closed_by_server()
    assert handler.sinks == []


async def test_connection_limits() -> None:
    handler = RecordingHandler()
    limits = RTMPLimits(max_connections=10, max_connections_per_ip=2)
    async with RTMPServer(handler, limits=limits, host="127.0.0.1", port=0) as srv:
        a, b = await Client.open(srv.port), await Client.open(srv.port)
        await a.publish("a")
        await b.publish("b")
        third = await Client.open(srv.port)
        assert await third.closed_by_server(2.0)
        assert srv.refused == 1
        assert srv.connections == 2
        await a.push_frames(3)
        await a.unpublish()
        await handler.wait_closed("a")
        for _ in range(50):
            if srv.connections == 1:
                break
            await asyncio.sleep(0.02)
        again = await Client.open(srv.port)  # a slot is free again
        await again.publish("c")
        await again.unpublish()
        await b.unpublish()
        await handler.wait_closed("c")


async def test_handshake_and_idle_timeouts() -> None:
    handler = RecordingHandler()
    limits = RTMPLimits(handshake_timeout=0.3, idle_timeout=0.5)
    async with RTMPServer(handler, limits=limits, host="127.0.0.1", port=0) as srv:
        silent = await Client.open(srv.port)
        await silent.send(b"\x03" + bytes(100))  # a truncated handshake, then nothing
        idle = await Client.open(srv.port)
        await idle.publish("idle")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await silent.closed_by_server(2.0)
        assert loop.time() - t0 < 1.0
        sink = await handler.wait_closed("idle", timeout=3.0)
        assert sink.closes == ["timeout"]


async def test_a_failing_sink_ends_only_its_own_connection(server: RTMPServer) -> None:
    class Exploding(RecordingSink):
        async def media(self, msg_type: int, timestamp: int, payload: bytes) -> None:
            if len(self.messages) == 5:
                raise RuntimeError("boom")
            await super().media(msg_type, timestamp, payload)

        def offer(self, msg_type: int, timestamp: int, payload: bytes) -> bool:
            if len(self.messages) == 5:  # as the socket's data came in
                raise RuntimeError("boom")
            return super().offer(msg_type, timestamp, payload)

    handler = RecordingHandler(
        sink=lambda req: Exploding(req) if req.name == "bad" else RecordingSink(req)
    )
    server.handler = handler
    good, bad = await Client.open(server.port), await Client.open(server.port)
    await good.publish("good")
    await bad.publish("bad")
    await bad.push_frames(10)
    await good.push_frames(10)
    bad_sink = await handler.wait_closed("bad")
    assert bad_sink.closes == ["sink failed: RuntimeError: boom"]
    await good.push_frames(10)
    await good.unpublish()
    good_sink = await handler.wait_closed("good")
    assert good_sink.video_frames() == 20 and good_sink.closes == [None]


async def test_server_close_ends_every_publish(handler: RecordingHandler) -> None:
    srv = RTMPServer(handler, limits=FAST, host="127.0.0.1", port=0)
    await srv.start()
    c = await Client.open(srv.port)
    await c.publish("live1")
    await c.push_frames(3)
    await asyncio.sleep(0.1)
    await srv.close()
    sink = handler.sink("live1")
    assert sink.closes == ["server shutting down"]
    assert await c.closed_by_server(1.0)


async def test_publish_handler_failures(server: RTMPServer, handler: RecordingHandler) -> None:
    class Slow(RecordingHandler):
        async def on_publish(self, req: PublishRequest) -> RecordingSink:
            if req.name == "slow":
                await asyncio.sleep(5)
            if req.name == "crash":
                raise RuntimeError("handler bug")
            if req.name == "full":
                raise LimitExceeded("too many sessions")
            return await super().on_publish(req)

    server.handler = Slow()
    for name, code in [
        ("slow", "NetStream.Publish.Rejected"),
        ("crash", "NetStream.Publish.Rejected"),
        ("full", "NetStream.Publish.Rejected"),
    ]:
        c = await Client.open(server.port)
        status = await c.publish(name, expect=code)
        assert status.values[3]["level"] == "error", name
        assert await c.closed_by_server()
    ok = await Client.open(server.port)
    await ok.publish("ok")
    await ok.unpublish()


async def test_backpressure_blocks_the_publisher_and_loses_nothing() -> None:
    gate = asyncio.Event()

    class Gated(RecordingSink):
        async def media(self, msg_type: int, timestamp: int, payload: bytes) -> None:
            await gate.wait()
            await super().media(msg_type, timestamp, payload)

        def offer(self, msg_type: int, timestamp: int, payload: bytes) -> bool:
            return gate.is_set() and super().offer(msg_type, timestamp, payload)

    handler = RecordingHandler(sink=Gated)
    async with RTMPServer(handler, limits=FAST, host="127.0.0.1", port=0) as srv:
        c = await Client.open(srv.port)
        await c.publish("bp")
        frames = 400  # 400 x 50 KB = 20 MB: far more than socket buffers hold
        pusher = asyncio.create_task(c.push_frames(frames, size=50_000))
        await asyncio.sleep(0.5)
        assert not pusher.done()  # the server stopped reading: TCP pushes back
        gate.set()
        async with asyncio.timeout(20):
            await pusher
        await c.unpublish()
        sink = await handler.wait_closed("bp")
        assert sink.video_frames() == frames
        assert [p[5] for _, _, p in sink.messages] == [i & 0xFF for i in range(frames)]


async def test_logs_never_show_query_values(
    server: RTMPServer, handler: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mediagw.ingest.rtmp")
    c = await Client.open(server.port)
    await c.publish("cam?key=TOPSECRET")
    await c.send(b"\x07" * 5000)  # garbage mid-stream: protocol error logged with the name
    await handler.wait_closed("cam")
    assert caplog.records
    assert any(getattr(r, "stream", None) == "cam" for r in caplog.records)
    assert any(getattr(r, "query_keys", None) == ["key"] for r in caplog.records)
    for record in caplog.records:
        assert "TOPSECRET" not in record.getMessage()
        assert "TOPSECRET" not in repr(vars(record))


class StuckClose(RecordingSink):
    """A sink whose teardown takes as long as the test says (e.g. a busy media executor)."""

    def __init__(self, req: PublishRequest, release: asyncio.Event) -> None:
        super().__init__(req)
        self.release = release

    async def close(self, error: str | None) -> None:
        await self.release.wait()
        await super().close(error)


class StuckHandler(RecordingHandler):
    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def on_publish(self, req: PublishRequest) -> RecordingSink:
        sink = StuckClose(req, self.release)
        self.sinks.append(sink)
        self.live[req.name] = sink
        return sink


@pytest.mark.parametrize("unpublish", [False, True], ids=["hang-up", "unpublish-then-hang-up"])
async def test_socket_is_closed_when_the_peer_goes_even_while_the_publish_tears_down(
    unpublish: bool,
) -> None:
    """No CLOSE-WAIT: the server closes its socket on the peer's FIN (or reset) at once, not
    after the sink's close() returns."""
    handler = StuckHandler()
    async with RTMPServer(handler, limits=FAST, host="127.0.0.1", port=0) as srv:
        c = await Client.open(srv.port)
        await c.publish("cam")
        await c.push_frames(3)
        if unpublish:
            s = c.script
            await c.send(s.command("FCUnpublish", "cam") + s.command("deleteStream", 1.0))
        c.writer.write_eof()  # FIN; the client still reads
        try:
            async with asyncio.timeout(2.0):
                while await c.reader.read(65536):
                    pass
        except TimeoutError:
            raise AssertionError("the server kept the socket open (CLOSE-WAIT)") from None
        sink = handler.sink("cam")
        assert not sink.closes  # the teardown is still going on
        handler.release.set()
        await handler.wait_closed("cam", timeout=2.0)
        assert sink.closes == [None] and sink.video_frames() == 3
        c.writer.close()


async def test_logs_name_the_public_id_never_the_stream_key(
    server: RTMPServer, caplog: pytest.LogCaptureFixture
) -> None:
    class Keyed(RecordingSink):
        @property
        def public_id(self) -> str:
            return "concert"

    class Handler(RecordingHandler):
        async def on_publish(self, req: PublishRequest) -> RecordingSink:
            if req.name != "sk_TOPSECRET1":
                raise PublishRejected("unknown stream key", "NetStream.Publish.Unauthorized")
            sink = Keyed(req)
            self.sinks.append(sink)
            self.live[req.name] = sink
            return sink

    caplog.set_level(logging.DEBUG)
    handler = Handler()
    server.handler = handler
    c = await Client.open(server.port)
    await c.publish("sk_TOPSECRET1")
    await c.push_frames(3)
    await c.unpublish()
    await handler.wait_closed("sk_TOPSECRET1")
    wrong = await Client.open(server.port)
    await wrong.publish("sk_TOPSECRET2", expect="NetStream.Publish.Unauthorized")
    assert await wrong.closed_by_server()
    started = [r for r in caplog.records if r.getMessage() == "rtmp publish started"]
    assert [getattr(r, "stream", None) for r in started] == ["concert"]
    assert any(r.getMessage() == "rtmp publish rejected" for r in caplog.records)
    for record in caplog.records:
        assert "TOPSECRET" not in repr(vars(record)), record


def test_a_transport_closed_while_the_handler_decides_is_no_error_under_uvloop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by ``mediagw bench fuzzlive``: uvloop (production's loop) raises RuntimeError on a
    write to a transport it has closed (a reset, a failed write), where asyncio's loop drops the
    bytes. When that happened while the publish handler decided, the answer to the publish was
    written there: "rtmp connection failed" with a traceback. Now: a lost connection, and the
    accepted publish is closed. (The handler closes the transport itself here, as uvloop does
    on a reset: the fuzz's sessions hit it at random.)"""
    uvloop = pytest.importorskip("uvloop")

    class ClosingHandler(RecordingHandler):
        server: RTMPServer

        async def on_publish(self, req: PublishRequest) -> RecordingSink:
            for conn in self.server._conns:
                conn.writer.transport.abort()
            await asyncio.sleep(0.1)  # the handle is closed by now
            return await super().on_publish(req)

    async def scenario() -> None:
        handler = ClosingHandler()
        async with RTMPServer(handler, limits=FAST, host="127.0.0.1", port=0) as srv:
            handler.server = srv
            c = await Client.open(srv.port)
            await c.send(c.script.setup("cam"))
            sink = await handler.wait_closed("cam", timeout=3.0)
            assert sink.closes

    caplog.set_level(logging.INFO)
    uvloop.run(scenario())
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failed, [(r.getMessage(), r.exc_info) for r in failed]
    assert any(r.getMessage() == "rtmp connection lost" for r in caplog.records)


class _Choosy(RecordingSink):
    """Takes media from ``offer()`` except every third frame (left to ``media()``); logs
    media and metadata in one sequence, with the path each message came by: ``offer()`` from
    the socket's callback (no task runs) or from the connection's task."""

    def __init__(self, req: PublishRequest) -> None:
        super().__init__(req)
        self.order: list[tuple[str, Any]] = []

    def offer(self, msg_type: int, timestamp: int, payload: bytes) -> bool:
        if (timestamp // 33) % 3 == 2:
            return False
        self.order.append(("inline" if asyncio.current_task() is None else "task", timestamp))
        return super().offer(msg_type, timestamp, payload)

    async def media(self, msg_type: int, timestamp: int, payload: bytes) -> None:
        await asyncio.sleep(0.01)  # the task is busy: the next reads queue behind it
        self.order.append(("media", timestamp))
        await super().media(msg_type, timestamp, payload)

    async def metadata(self, meta: dict[str, Any]) -> None:
        self.order.append(("meta", meta["n"]))
        await super().metadata(meta)


async def test_reads_are_handled_inline_and_the_order_holds_across_both_paths() -> None:
    """Most frames reach the sink from the socket's callback; the ones ``offer()`` leaves, the
    metadata, and the reads that come while the task works on those go through the task, and
    every message still arrives once, in the order sent."""
    handler = RecordingHandler(sink=_Choosy)
    async with RTMPServer(handler, limits=FAST, host="127.0.0.1", port=0) as srv:
        c = await Client.open(srv.port)
        await c.publish("order")
        for i in range(90):
            data = c.script.media(mt.VIDEO, i * 33, video_payload(i, 1500, i == 0))
            if i % 10 == 5:
                data += c.script.metadata({"n": float(i)})
            await c.send(data)
            # after a frame offer() leaves, the next one comes while the task works on it
            await asyncio.sleep(0.003 if i % 3 == 2 else 0.015)
        await c.unpublish()
        sink = await handler.wait_closed("order")
    assert isinstance(sink, _Choosy) and sink.closes == [None]
    assert [ts for _, ts, _ in sink.messages] == [i * 33 for i in range(90)]
    expected: list[Any] = []
    for i in range(90):
        expected.append(i * 33)
        if i % 10 == 5:
            expected.append(("meta", float(i)))
    assert [ts if path != "meta" else (path, ts) for path, ts in sink.order] == expected
    paths = {ts: path for path, ts in sink.order if path != "meta"}
    assert all(paths[i * 33] == "media" for i in range(2, 90, 3))  # offer() left them
    inline = sum(1 for path in paths.values() if path == "inline")
    assert inline >= 15, sink.order  # read while the task waited
    assert "task" in paths.values(), sink.order  # read while it worked


async def test_a_protocol_error_read_inline_ends_the_publish_with_the_frames_before_it(
    server: RTMPServer, handler: RecordingHandler
) -> None:
    c = await Client.open(server.port)
    await c.publish("broken")
    await c.push_frames(10)
    await asyncio.sleep(0.05)
    await c.send(bytes([0x80 | 40]) + bytes(20))  # a new chunk stream starting with type 2
    assert await c.closed_by_server()
    sink = await handler.wait_closed("broken")
    assert sink.video_frames() == 10
    assert len(sink.closes) == 1 and sink.closes[0] is not None
    assert sink.closes[0].startswith("protocol error: chunk stream 40 starts with a type 2")


class _Holding(RecordingSink):
    """Lets every read wait (``hold_reads``), or none; notes the loop time of
    each frame it is offered (the frames of one read share it)."""

    hold = True

    def __init__(self, req: PublishRequest) -> None:
        super().__init__(req)
        self.read_at: list[float] = []

    def hold_reads(self) -> bool:
        return self.hold

    def offer(self, msg_type: int, timestamp: int, payload: bytes) -> bool:
        self.read_at.append(asyncio.get_running_loop().time())
        return super().offer(msg_type, timestamp, payload)


def _reads(times: list[float]) -> list[float]:
    """When each read came: the frames one read holds are offered within a millisecond."""
    return [t for i, t in enumerate(times) if i == 0 or t - times[i - 1] > 0.001]


async def _paced(port: int, name: str, frames: int, gap: float) -> None:
    c = await Client.open(port)
    await c.publish(name)
    for i in range(frames):
        await c.send(c.script.media(mt.VIDEO, i * 33, video_payload(i, 1500, i == 0)))
        await asyncio.sleep(gap)
    await c.unpublish()


@pytest.mark.parametrize("hold", [True, False])
async def test_held_reads_come_on_the_ticks_a_period_apart_and_lose_nothing(hold: bool) -> None:
    """Read moderation: two publishers' frames 5 ms apart, with a 100 ms read period. A sink
    that lets reads wait gets each publisher's frames in a few reads, on the moderator's ticks
    and a period apart; every frame arrives, in order. A sink that does not gets a read per
    frame or two."""
    _Holding.hold = hold
    limits = RTMPLimits(idle_timeout=3.0, close_grace=1.0, read_hold=0.1)
    handler = RecordingHandler(sink=_Holding)
    async with RTMPServer(handler, limits=limits, host="127.0.0.1", port=0) as srv:
        await asyncio.gather(*(_paced(srv.port, n, 100, 0.005) for n in ("a", "b")))
        sinks = [await handler.wait_closed(n) for n in ("a", "b")]
        holds = srv.moderator.holds
        assert srv.moderator.held == 0  # both gone: nothing waits for a tick
        conns = list(srv._conns)  # still open after the unpublish: their sinks are let go
        assert len(conns) == 2 and all(conn._hold is None for conn in conns)
    for sink in sinks:
        assert isinstance(sink, _Holding) and sink.closes == [None]
        assert [ts for _, ts, _ in sink.messages] == [i * 33 for i in range(100)]
    reads = [_reads(s.read_at) for s in sinks]  # type: ignore[attr-defined]
    if not hold:
        assert holds == 0
        assert all(len(r) >= 40 for r in reads), [len(r) for r in reads]
        return
    assert holds > 0
    # about 0.6 s of frames: a read a period, and the few before the first hold
    assert all(len(r) <= 12 for r in reads), [len(r) for r in reads]
    step = 0.1 / SLOTS
    for r in reads:
        later = r[3:]
        phases = sorted(t % step for t in later)  # after a tick of the loop's time, mostly
        assert phases[len(phases) // 2] < step / 2, (phases, step)
        gaps = [b - a for a, b in itertools.pairwise(later)]
        assert all(g >= 0.1 - 0.005 for g in gaps), gaps  # a period apart


async def test_no_read_waits_with_the_read_tick_off() -> None:
    _Holding.hold = True
    limits = RTMPLimits(idle_timeout=3.0, close_grace=1.0, read_hold=0.0)
    handler = RecordingHandler(sink=_Holding)
    async with RTMPServer(handler, limits=limits, host="127.0.0.1", port=0) as srv:
        await _paced(srv.port, "off", 50, 0.005)
        sink = await handler.wait_closed("off")
        assert srv.moderator.holds == 0
    assert len(sink.messages) == 50
