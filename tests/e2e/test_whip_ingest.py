"""A WebRTC (WHIP) publisher into the gateway, with a real aiortc peer on loopback: H.264 from
the browser side goes into keyframe-aligned segments without re-encoding and out as HLS."""

from __future__ import annotations

from typing import Any

import aiohttp
import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription, VideoStreamTrack
from mediatools import fetch_hls, wait_until

from webrtc import IceConfig, gathering_scope


class Pattern(VideoStreamTrack):
    """320x240 at 30 fps with a moving bar; aiortc encodes it with H.264 when negotiated."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        x0 = (self.sent * 4) % 312
        frame.planes[0].update((b"\x40" * x0 + b"\xe0" * 8 + b"\x40" * (312 - x0)) * 240)
        frame.planes[1].update(b"\x80" * frame.planes[1].buffer_size)
        frame.planes[2].update(b"\x80" * frame.planes[2].buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


async def _publish(url: str, ice: IceConfig) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(ice.rtc_configuration())
    transceiver = pc.addTransceiver(Pattern(), direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/h264"])
    with gathering_scope(ice):
        await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as s:
        headers = {"Content-Type": "application/sdp"}
        async with s.post(url, data=pc.localDescription.sdp, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            location = resp.headers["Location"]
            assert resp.headers["Livepeer-Playback-URL"].endswith(".m3u8")
            answer = await resp.text()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, location


async def test_whip_publish_plays_as_hls(gateway_factory: Any) -> None:
    gw = await gateway_factory(webrtc_host_addresses=("127.0.0.1",))
    base = f"http://127.0.0.1:{gw.http_port}"
    ice = IceConfig.loopback()
    pc, location = await _publish(f"{base}/live/video-to-video/cam/whip", ice)
    try:
        # keyframes are requested every segment duration: segments appear at that pace
        await wait_until(lambda: (gw.hls.rendition("cam", "source") or _none()).segments, 20)
        await wait_until(lambda: len(gw.hls.rendition("cam", "source").segments) >= 3, 20)  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as s:
            # a second publisher on the same stream is refused, the first goes on
            async with s.post(
                f"{base}/whip/cam", data="v=0\r\n", headers={"Content-Type": "application/sdp"}
            ) as resp:
                assert resp.status == 409
            async with s.delete(f"{base}{location}") as resp:
                assert resp.status == 200
        await wait_until(lambda: not gw.hub.get("cam").live, 10)  # type: ignore[union-attr]
    finally:
        await pc.close()
    result = await fetch_hls(gw.http_port, "cam")
    assert result.ended and len(result.segments) >= 3
    for seg in result.segments:
        assert seg.first_is_key and (seg.width, seg.height) == (320, 240)
    # keyframes are asked for when a segment reaches 2 s: segments are 2 s + a round trip
    assert all(1.99 <= s.duration <= 2.4 for s in result.segments[:-1]), [
        s.duration for s in result.segments
    ]


async def test_whip_refusals_are_clear(gateway_factory: Any) -> None:
    gw = await gateway_factory(stream_keys={"sk1": "show"}, webrtc_host_addresses=("127.0.0.1",))
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as s:
        sdp = {"Content-Type": "application/sdp"}
        async with s.post(f"{base}/whip/wrongkey", data="v=0\r\n", headers=sdp) as resp:
            assert resp.status == 403 and "unknown stream key" in await resp.text()
        async with s.post(f"{base}/whip/sk1", data="not sdp", headers=sdp) as resp:
            assert resp.status == 400
        async with s.post(
            f"{base}/whip/sk1", data="v=0", headers={"Content-Type": "text/plain"}
        ) as resp:
            assert resp.status == 415


class _none:
    segments: list[int] = []
