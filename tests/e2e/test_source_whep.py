"""WHEP playback of a published stream's source video (``POST /webrtc/{stream}``): an ffmpeg RTMP
publisher, the whole gateway, aiortc viewers on loopback decoding what they receive."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, push, wait_until
from whep_testkit import SDP, Viewer

from mediagw.gateway import Gateway

pytestmark = pytest.mark.ffmpeg

SIZE = (416, 240)  # not the clips' default: the viewer sees the source's own resolution


async def _start(
    gateway_factory: Any, make_clip: ClipMaker, seconds: float, bframes: int = 0
) -> tuple[Gateway, str, Any]:
    """A gateway offering loopback ICE candidates, its HTTP base URL, a clip of ``SIZE``."""
    gw = await gateway_factory(webrtc_host_addresses=("127.0.0.1",))
    clip = make_clip(seconds=seconds, size=f"{SIZE[0]}x{SIZE[1]}", bframes=bframes)
    return gw, f"http://127.0.0.1:{gw.http_port}", clip


def _segments(gw: Gateway, stream: str) -> int:
    s = gw.hub.get(stream)
    return s.stats.segments if s is not None else 0


async def test_a_published_stream_plays_over_whep_and_ends_with_its_publisher(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    gw, base, clip = await _start(gateway_factory, make_clip, 8)
    viewer = Viewer()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/webrtc/nobody", data="v=0\r\n", headers=SDP) as resp:
            assert resp.status == 404, await resp.text()
            assert "not live" in await resp.text()
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
        started = time.monotonic()
        pusher = asyncio.create_task(push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/src1"))
        await wait_until(lambda: gw.hub.get("src1") is not None and gw.hub.get("src1").live, 10)
        resp = await viewer.play(http, f"{base}/webrtc/src1")
        assert resp.status == 201
        assert viewer.location.startswith("/webrtc/src1/")
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Location" in resp.headers["Access-Control-Expose-Headers"]
        try:
            await wait_until(lambda: len(viewer.frames) >= 30, 20)
            assert viewer.first_frame_at is not None
            print(f"push -> first WHEP frame: {viewer.first_frame_at - started:.2f} s")
            assert {(f.width, f.height) for f in viewer.frames} == {SIZE}
            code, err = await pusher
            assert code == 0, err
            # the publisher stopped: the viewer's track ends, the feed and its source are gone
            await asyncio.wait_for(viewer.ended.wait(), 20)
            await wait_until(lambda: gw.source_whep.feeds == 0 and len(gw.whep) == 0, 10)
            async with http.post(f"{base}/webrtc/src1", data="v=0\r\n", headers=SDP) as resp:
                assert resp.status == 404, await resp.text()  # ended: not live any more
        finally:
            await viewer.close()
    assert gw.source_whep.stats.demuxed >= 2 and gw.source_whep.stats.unplayable == 0
    # the viewer's time is in the usage ledger: one viewer, the segments fed while it watched
    assert gw.ledger is not None and gw.store is not None
    gw.delivery.flush()
    gw.usage.drain()
    await gw.ledger.flush()
    rows = await gw.store.usage(0, 2**62)
    whep_ms = sum(r.ms for r in rows if r.kind == "delivery_whep" and r.stream_id == "src1")
    fed = gw.source_whep.stats.demuxed * 2000  # 2 s segments, each fed to the one viewer
    assert 0 < whep_ms <= fed, (whep_ms, fed)


async def test_viewers_come_and_go_and_nothing_is_demuxed_while_nobody_watches(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    gw, base, clip = await _start(gateway_factory, make_clip, 20)
    pusher = asyncio.create_task(push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/src2"))
    first, second = Viewer(), Viewer()
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until(lambda: _segments(gw, "src2") >= 2, 15)
            assert gw.source_whep.stats.demuxed == 0 and gw.source_whep.feeds == 0  # unwatched

            assert (await first.play(http, f"{base}/webrtc/src2")).status == 201
            await wait_until(lambda: len(first.frames) >= 15, 20)
            # a second viewer joins mid-stream (at the next keyframe) and decodes the source too
            assert (await second.play(http, f"{base}/webrtc/src2")).status == 201
            await wait_until(lambda: len(second.frames) >= 15, 20)
            assert {(f.width, f.height) for f in first.frames + second.frames} == {SIZE}
            assert gw.source_whep.feeds_started == 1  # both watch the one feed

            # DELETE ends a session: the first viewer's track ends, the second plays on
            async with http.delete(base + first.location) as resp:
                assert resp.status == 200
            await asyncio.wait_for(first.ended.wait(), 10)
            playing = len(second.frames)
            await wait_until(lambda: len(second.frames) >= playing + 15, 10)
            async with http.delete(base + first.location) as resp:
                assert resp.status == 404

            # nobody watches: the feed ends at the next segment, and nothing more is demuxed
            async with http.delete(base + second.location) as resp:
                assert resp.status == 200
            await wait_until(lambda: gw.source_whep.feeds == 0, 10)
            demuxed, cut = gw.source_whep.stats.demuxed, _segments(gw, "src2")
            await wait_until(lambda: _segments(gw, "src2") >= cut + 2, 15)
            assert gw.source_whep.stats.demuxed == demuxed
            assert gw.hub.get("src2").live  # type: ignore[union-attr]
    finally:
        await first.close()
        await second.close()
    code, err = await pusher
    assert code == 0, err


async def test_a_source_with_b_frames_is_refused_with_a_reason(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    gw, base, clip = await _start(gateway_factory, make_clip, 8, bframes=2)
    pusher = asyncio.create_task(push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/src3"))
    viewer = Viewer()
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until(lambda: gw.hub.get("src3") is not None, 10)
            assert (await viewer.play(http, f"{base}/webrtc/src3")).status == 201
            # its first segment shows B-frames: played out of order, so not played at all
            await asyncio.wait_for(viewer.ended.wait(), 20)
            assert viewer.frames == []
            async with http.post(f"{base}/webrtc/src3", data="v=0\r\n", headers=SDP) as resp:
                assert resp.status == 422
                assert "B-frames" in await resp.text()
    finally:
        await viewer.close()
    code, err = await pusher
    assert code == 0, err
