"""WHEP egress with real aiortc viewers on loopback: one encoded stream, no re-encoding."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
import av
import pytest
from aiohttp import web
from aiortc import RTCRtpReceiver
from mediatools import wait_until

from webrtc import (
    AudioPacket,
    EncodedSource,
    IceConfig,
    Pacer,
    UnsupportedMediaError,
    VideoAccessUnit,
    WhepConfig,
    WhepEgress,
    add_whep_routes,
)

if TYPE_CHECKING:
    from .conftest import Kit, Serve

PATH = "/live/video-to-video/{stream}/whep"
SDP = {"Content-Type": "application/sdp"}


async def _play(
    source: EncodedSource,
    video: list[VideoAccessUnit],
    audio: list[AudioPacket] = (),  # type: ignore[assignment]
) -> None:
    """Push the clip at real time, audio interleaved by timestamp."""
    pacer = Pacer()
    items = [(u.pts / 90_000, u) for u in video] + [(a.pts / 48_000, a) for a in audio]
    items.sort(key=lambda x: x[0])
    for t, unit in items:
        await pacer.wait(round(t * 90_000))
        if isinstance(unit, VideoAccessUnit):
            source.push_video(unit)
        else:
            source.push_audio(unit)


async def test_two_viewers_decode_and_a_stalled_one_does_not_block(
    kit: Kit,
    ice: IceConfig,
    serve: Serve,
    http: aiohttp.ClientSession,
    h264_clip: list[VideoAccessUnit],
    opus_clip: list[AudioPacket],
) -> None:
    egress = WhepEgress(WhepConfig(ice=ice, max_sessions=3))
    app = web.Application()
    add_whep_routes(app, PATH, egress)
    url = (await serve(app)) + PATH.format(stream="cam1")
    source = egress.add_source("cam1", has_audio=True)
    try:
        viewers = [kit.viewer(audio=True), kit.viewer(), kit.viewer(read=False)]
        for viewer in viewers:
            async with http.post(url, data=await viewer.offer(), headers=SDP) as resp:
                assert resp.status == 201, await resp.text()
                assert resp.headers["ETag"].startswith('W/"')
                answer = await resp.text()
            assert "H264/90000" in answer and "VP8" not in answer
            await viewer.answer(answer)
        assert source.viewers == 3

        # Full: a fourth viewer is refused; an unknown stream is 404.
        extra = kit.viewer(read=False)
        offer = await extra.offer()
        async with http.post(url, data=offer, headers=SDP) as resp:
            assert resp.status == 503
        async with http.post(url.replace("cam1", "nope"), data=offer, headers=SDP) as resp:
            assert resp.status == 404

        await wait_until(
            lambda: all(s.subscription.active for s in egress.sessions.values()), timeout=10
        )
        await _play(source, h264_clip, opus_clip)
        await asyncio.sleep(0.3)

        # Each keyframe-started reader decodes most of what was sent after it joined.
        sent_after_join = [s.subscription.stats.video_frames for s in egress.sessions.values()]
        assert min(sent_after_join) >= len(h264_clip) - 20
        for viewer in viewers[:2]:
            frames = viewer.frames["video"]
            assert len(frames) >= len(h264_clip) - 25
            assert all(
                isinstance(f, av.VideoFrame) and (f.width, f.height) == (320, 240) for f in frames
            )
        sound = viewers[0].frames.get("audio", [])
        assert len(sound) >= 100 and all(isinstance(f, av.AudioFrame) for f in sound)
        assert "audio" not in viewers[1].frames  # offered no audio: gets none
        assert viewers[2].frames == {}  # never read, and held nobody up
        for session in egress.sessions.values():
            assert session.subscription.stats.dropped_video == 0

        # DELETE one viewer; PATCH is 501 (go-livepeer).
        session_id = next(iter(egress.sessions))
        async with http.patch(f"{url}/{session_id}", data="") as resp:
            assert resp.status == 501
        async with http.delete(f"{url}/{session_id}") as resp:
            assert resp.status == 200
        assert source.viewers == 2 and len(egress) == 2

        # Ending the stream ends its viewers.
        await egress.remove_source("cam1")
        assert len(egress) == 0
    finally:
        await egress.aclose()


async def test_viewer_liveness(kit: Kit, ice: IceConfig, h264_clip: list[VideoAccessUnit]) -> None:
    egress = WhepEgress(WhepConfig(ice=ice, viewer_timeout=2.5, connect_timeout=1.0, tick=0.1))
    source = egress.add_source("s")
    play = asyncio.create_task(_play(source, h264_clip))
    try:
        viewer = kit.viewer()
        answer, session_id = await egress.offer("s", await viewer.offer())
        await viewer.answer(answer)
        session = egress.get(session_id)
        never = kit.viewer(read=False)  # offers, never applies the answer
        _, never_id = await egress.offer("s", await never.offer())
        unconnected = egress.get(never_id)

        await wait_until(lambda: session.state == "connected", timeout=10)
        await asyncio.sleep(3.0)  # aiortc reports every 0.5-1.5 s: kept open past viewer_timeout
        assert not session.closed, session.close_reason
        assert unconnected.closed and unconnected.close_reason == "not connected within 1 s"

        await viewer.close()  # DTLS close: the session ends at once
        await wait_until(lambda: session.closed, timeout=5)
        assert len(egress) == 0 and source.viewers == 0
    finally:
        play.cancel()
        await asyncio.gather(play, return_exceptions=True)
        await egress.aclose()


async def test_offers_the_stream_cannot_serve(kit: Kit, ice: IceConfig) -> None:
    egress = WhepEgress(WhepConfig(ice=ice))
    egress.add_source("video-only")
    try:
        # Audio offered, the stream has none: video only, audio section inactive.
        answer, _ = await egress.offer("video-only", await kit.viewer(audio=True).offer())
        audio_section = answer[answer.index("m=audio") :]
        assert "a=inactive" in audio_section.split("m=video")[0]
        assert "a=sendonly" in answer[answer.index("m=video") :]

        vp8 = kit.client()
        vp8.pc.addTransceiver("video", direction="recvonly").setCodecPreferences(
            [c for c in RTCRtpReceiver.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
        )
        with pytest.raises(UnsupportedMediaError, match=r"H\.264"):
            await egress.offer("video-only", await vp8.offer())
        assert egress.source("video-only").viewers == 1
    finally:
        await egress.aclose()
