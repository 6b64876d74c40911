"""Loopback tests with the real ffmpeg CLI as publisher: exact frame counts, nothing lost.

Skipped without ffmpeg, except under CI=true where a missing ffmpeg fails the run.
"""

from __future__ import annotations

import asyncio

import pytest
from rtmp.rtmp_testkit import (
    C0C1,
    ClientScript,
    RecordingHandler,
    RecordingSink,
    ServerReplies,
    ffmpeg_path,
    ffmpeg_push,
    finish,
    read_until,
    video_payload,
)

from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.server import RTMPLimits, RTMPServer

pytestmark = pytest.mark.ffmpeg

LIMITS = RTMPLimits(handshake_timeout=1.0, idle_timeout=10.0, close_grace=1.0)


@pytest.fixture
def ffmpeg() -> str:
    return ffmpeg_path()


@pytest.fixture
def limits() -> RTMPLimits:
    return LIMITS


def url(server: RTMPServer, name: str) -> str:
    return f"rtmp://127.0.0.1:{server.port}/live/{name}"


def check_stream(sink: RecordingSink, frames: int) -> None:
    """Every frame arrived, in order, after one sequence header; close() once, cleanly."""
    assert sink.video_frames() == frames
    video = [(ts, p) for t, ts, p in sink.messages if t == mt.VIDEO]
    assert video[0][1][:2] == b"\x17\x00"  # AVC sequence header first
    stamps = [ts for ts, p in video if p[1] == 1]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] == pytest.approx((frames - 1) * 1000 / 30, abs=2)
    assert sink.audio_frames() > 0
    assert sink.meta and sink.meta[0]["width"] > 0
    assert sink.closes == [None]


@pytest.mark.parametrize("realtime", [True, False], ids=["paced", "fast"])
async def test_ffmpeg_push(
    ffmpeg: str, server: RTMPServer, handler: RecordingHandler, realtime: bool
) -> None:
    proc = await ffmpeg_push(ffmpeg, url(server, "test1?key=abc"), seconds=4, realtime=realtime)
    code, err = await finish(proc)
    assert code == 0, err
    sink = await handler.wait_closed("test1")
    assert sink.req.app == "live" and sink.req.query == {"key": "abc"}
    check_stream(sink, 120)


async def test_ffmpeg_long_fast_push_into_a_slow_sink_loses_nothing(ffmpeg: str) -> None:
    """20 s of 640x360 pushed as fast as ffmpeg can, while the sink lags behind.

    ffmpeg finishes writing long before the server has read everything; it then closes its
    socket. Had the server sent it anything it did not read (acknowledgements, pings), that
    close would be a RST and the kernel would drop the unread tail on our side.
    """
    handler = RecordingHandler(delay=0.002)
    async with RTMPServer(handler, limits=LIMITS, host="127.0.0.1", port=0) as srv:
        proc = await ffmpeg_push(ffmpeg, url(srv, "long"), seconds=20, size="640x360")
        code, err = await finish(proc, timeout=60)
        assert code == 0, err
        sink = await handler.wait_closed("long", timeout=30)
        check_stream(sink, 600)


async def test_five_concurrent_publishers(
    ffmpeg: str, server: RTMPServer, handler: RecordingHandler
) -> None:
    names = [f"cam{i}" for i in range(5)]
    procs = [await ffmpeg_push(ffmpeg, url(server, n), seconds=3, realtime=True) for n in names]
    results = await asyncio.gather(*(finish(p) for p in procs))
    assert [code for code, _ in results] == [0] * 5, results
    for name in names:
        check_stream(await handler.wait_closed(name), 90)


async def test_second_publisher_on_a_live_name_is_refused(
    ffmpeg: str, server: RTMPServer, handler: RecordingHandler
) -> None:
    first = await ffmpeg_push(ffmpeg, url(server, "busy"), seconds=4, realtime=True)
    async with asyncio.timeout(10):
        while not handler.sinks:
            await asyncio.sleep(0.05)
    second = await ffmpeg_push(ffmpeg, url(server, "busy"), seconds=1)
    code, err = await finish(second)
    assert code != 0
    assert "already being published" in err  # ffmpeg read our onStatus error before the close
    assert len(handler.rejected) == 1
    code, err = await finish(first)
    assert code == 0, err
    check_stream(await handler.wait_closed("busy"), 120)


async def test_bad_clients_do_not_disturb_a_publisher(
    ffmpeg: str, server: RTMPServer, handler: RecordingHandler
) -> None:
    good = await ffmpeg_push(ffmpeg, url(server, "good"), seconds=4, realtime=True)
    port = server.port

    async def closed_by_server(r: asyncio.StreamReader) -> bool:
        try:
            while await r.read(65536):
                pass
        except ConnectionResetError:
            pass  # closing with bytes of ours unread is a RST: fine for a bad client
        return True

    async def garbage() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 20)
        assert await closed_by_server(r)  # closed at once
        w.close()

    async def truncated_handshake(wait: bool) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(C0C1[:700])
        await w.drain()
        if wait:
            assert await closed_by_server(r)  # handshake timeout
        w.close()

    async def huge_chunk_size() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        s, replies = ClientScript(), ServerReplies()
        w.write(s.handshake() + s.connect())
        await read_until(r, replies, "_result")
        w.write(s.set_chunk_size(16 << 20))
        assert await closed_by_server(r)  # protocol error: closed
        w.close()

    async def unknown_commands_then_publish() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        s, replies = ClientScript(chunk_size=4096), ServerReplies()
        w.write(s.handshake() + s.set_chunk_size(4096) + s.connect())
        w.write(s.command("getStreamLength", "x"))
        w.write(s.command("whatever", {"a": 1}) + s.command("_checkbw"))
        got = await read_until(r, replies, "_error", count=3)
        assert [g.name for g in got if g.name] == ["_result", "_error", "_error", "_error"]
        w.write(s.publish_commands("odd"))
        await read_until(r, replies, "NetStream.Publish.Start")
        for i in range(30):
            w.write(s.media(mt.VIDEO, i * 33, video_payload(i, 1000, i == 0)))
        w.write(s.command("FCUnpublish", "odd") + s.command("deleteStream", 1.0))
        w.close()

    async def vanish_mid_message() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        s, replies = ClientScript(chunk_size=4096), ServerReplies()
        w.write(s.setup("vanish"))
        await read_until(r, replies, "NetStream.Publish.Start")
        w.write(s.media(mt.VIDEO, 0, video_payload(0, 1000, True)))
        w.write(s.media(mt.VIDEO, 33, video_payload(1, 50_000))[:20_000])
        await w.drain()
        w.close()  # gone mid-message (a FIN: an abort's RST could also drop what we sent)

    async with asyncio.timeout(20):
        await asyncio.gather(
            garbage(),
            truncated_handshake(wait=False),
            truncated_handshake(wait=True),
            huge_chunk_size(),
            unknown_commands_then_publish(),
            vanish_mid_message(),
        )
    odd = await handler.wait_closed("odd")
    assert odd.video_frames() == 30 and odd.closes == [None]
    vanished = await handler.wait_closed("vanish")
    assert len(vanished.messages) == 1  # the complete frame; the cut one is not delivered
    assert vanished.closes == ["connection closed mid-message"]

    code, err = await finish(good)
    assert code == 0, err
    check_stream(await handler.wait_closed("good"), 120)
