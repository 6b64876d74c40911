"""A WebRTC (WHIP) publisher into the gateway, with a real aiortc peer on loopback: H.264 from
the browser side goes into keyframe-aligned segments without re-encoding and out as HLS."""

from __future__ import annotations

import array
import asyncio
import fractions
import io
import itertools
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import pytest
from aiortc import (
    AudioStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from mediatools import fetch_hls, parse_media_playlist, wait_until
from redis_testkit import redis_url

import segmenter
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


async def _publish(
    url: str,
    ice: IceConfig,
    video: VideoStreamTrack | None = None,
    audio: AudioStreamTrack | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(ice.rtc_configuration())
    transceiver = pc.addTransceiver(video or Pattern(), direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/h264"])
    if audio is not None:
        pc.addTransceiver(audio, direction="sendonly")
    with gathering_scope(ice):
        await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as s:
        sent = {"Content-Type": "application/sdp", **(headers or {})}
        async with s.post(url, data=pc.localDescription.sdp, headers=sent) as resp:
            assert resp.status == 201, await resp.text()
            location = resp.headers["Location"]
            assert resp.headers["Livepeer-Playback-URL"].endswith(".m3u8")
            # readable by a page on another origin (it ends the session with DELETE)
            exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
            assert {"Location", "ETag", "Link", "Accept-Patch", "Livepeer-Playback-URL"} <= exposed
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
    assert result.audio_frames == 0  # no audio offered: video-only segments
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
            assert resp.status == 401 and "unknown stream key" in await resp.text()
            assert resp.headers["WWW-Authenticate"] == "Bearer"
        async with s.post(f"{base}/whip/sk1", data="not sdp", headers=sdp) as resp:
            assert resp.status == 400
        async with s.post(
            f"{base}/whip/sk1", data="v=0", headers={"Content-Type": "text/plain"}
        ) as resp:
            assert resp.status == 415


async def test_a_stored_stream_publishes_over_whip_with_its_key(gateway_factory: Any) -> None:
    gw = await gateway_factory(webrtc_host_addresses=("127.0.0.1",), require_stream_key=True)
    base = f"http://127.0.0.1:{gw.http_port}"
    ice = IceConfig.loopback()
    stream = await gw.streams.create({"name": "browser cam"})
    async with aiohttp.ClientSession() as s:  # -requireStreamKey: an unknown key is a 401
        sdp = {"Content-Type": "application/sdp"}
        async with s.post(f"{base}/whip/nokey", data="v=0\r\n", headers=sdp) as resp:
            assert resp.status == 401 and "unknown stream key" in await resp.text()
    # the key in the path, as for RTMP ...
    pc, location = await _publish(f"{base}/whip/{stream.stream_key}", ice)
    try:
        pid = stream.playback_id
        # the session's URL names the stream by its id, not by the key
        assert location.startswith(f"/whip/{pid}/") and stream.stream_key not in location
        await wait_until(lambda: (gw.hls.rendition(pid, "source") or _none()).segments, 20)
        assert gw.hub.get(stream.stream_key) is None  # it plays at its playback id only
        async with aiohttp.ClientSession() as s, s.delete(f"{base}{location}") as resp:
            assert resp.status == 200
        await wait_until(lambda: not gw.hub.get(pid).live, 10)  # type: ignore[union-attr]
    finally:
        await pc.close()
    # ... or as a bearer token, as OBS's WHIP output sends it
    auth = {"Authorization": f"Bearer {stream.stream_key}"}
    pc, location = await _publish(f"{base}/whip/browser", ice, headers=auth)
    try:
        await wait_until(lambda: gw.hub.get(stream.playback_id).live, 10)  # type: ignore[union-attr]
        assert gw.hub.get("browser") is None
    finally:
        await pc.close()


async def test_a_whip_delete_on_another_node_ends_the_session_where_it_runs(
    gateway_factory: Any,
) -> None:
    """Two gateway nodes sharing a store and Redis (or two workers of ``-workers N``): a
    session's ``DELETE`` that reaches the node without it (a load balancer without sticky
    sessions, the kernel's pick of a worker) is proxied to the node that holds it, which ends
    it; the session's URL names the stream's id, so a stream key offer is found as well."""
    shared = {"webrtc_host_addresses": ("127.0.0.1",), "redis_url": redis_url()}
    a, b = (
        await gateway_factory(node_id="whip-a", **shared),
        await gateway_factory(node_id="whip-b", **shared),
    )
    stream = await a.streams.create({"name": "moving cam"})
    pid = stream.playback_id
    pc, location = await _publish(
        f"http://127.0.0.1:{a.http_port}/whip/{stream.stream_key}", IceConfig.loopback()
    )
    try:
        await wait_until(lambda: (a.hls.rendition(pid, "source") or _none()).segments, 20)
        assert b.node_proxy is not None and b.node_proxy.proxied == 0
        url = f"http://127.0.0.1:{b.http_port}{location}"
        async with aiohttp.ClientSession() as s:
            async with s.delete(url) as resp:
                assert resp.status == 200, await resp.text()
            await wait_until(lambda: not a.hub.get(pid).live, 10)  # type: ignore[union-attr]
            assert b.node_proxy.proxied == 1 and b.hub.get(pid) is None
            async with s.delete(url) as resp:  # gone: nobody holds it now
                assert resp.status == 404
    finally:
        await pc.close()


async def test_loopback_only_host_answers_with_loopback_candidates(
    gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No -webrtcHostAddresses on a host where aioice finds no address (only lo): answers carry
    127.0.0.1 candidates (not none at all) and start-up warns once how to reach remote clients.
    (The real thing, in a namespace with only lo: tests/browser.)"""
    import mediagw.gateway_http

    monkeypatch.setattr(mediagw.gateway_http, "detect_host_addresses", lambda: [])
    caplog.set_level(logging.WARNING, logger="mediagw.gateway")
    gw = await gateway_factory()
    assert gw.webrtc_loopback_only
    warnings = [r for r in caplog.records if "-webrtcHostAddresses" in r.getMessage()]
    assert len(warnings) == 1 and "-webrtcNatIps" in warnings[0].getMessage()
    pc, _ = await _publish(f"http://127.0.0.1:{gw.http_port}/whip/lo", IceConfig.loopback())
    try:
        assert pc.remoteDescription is not None
        candidates = [
            line.split()[4]
            for line in pc.remoteDescription.sdp.splitlines()
            if line.startswith("a=candidate:")
        ]
        assert candidates and set(candidates) == {"127.0.0.1"}, candidates
        await wait_until(lambda: (gw.hls.rendition("lo", "source") or _none()).segments, 20)
    finally:
        await pc.close()
    assert len([r for r in caplog.records if "-webrtcHostAddresses" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("detected", "configured"),
    [(["192.0.2.2"], ()), (["2001:db8::2"], ()), ([], ("127.0.0.1",))],
)
async def test_hosts_with_an_address_keep_their_ice_settings(
    gateway_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    detected: list[str],
    configured: tuple[str, ...],
) -> None:
    import mediagw.gateway_http

    monkeypatch.setattr(mediagw.gateway_http, "detect_host_addresses", lambda: detected)
    caplog.set_level(logging.WARNING, logger="mediagw.gateway")
    gw = await gateway_factory(webrtc_host_addresses=configured)
    assert not gw.webrtc_loopback_only
    assert gw.whip.ingest.config.ice == gw.whep.config.ice == IceConfig(host_addresses=configured)
    assert not [r for r in caplog.records if "-webrtcHostAddresses" in r.getMessage()]


class _none:
    segments: list[int] = []


# -- audio: Opus from the publisher arrives as AAC in the same segments ---------------------------

PERIOD, BEEP = 1.0, 0.2  # every second: a 200 ms beep and, at the same wall-clock time, a flash
RATE = 48_000


def _flashing(t0: float, wall: float) -> bool:
    return (wall - t0) % PERIOD < BEEP


class FlashPattern(Pattern):
    """The moving bar, all white while the beep plays (both follow the same wall clock)."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0

    async def recv(self) -> av.VideoFrame:
        frame = await super().recv()
        wall = self._start + float(frame.pts * frame.time_base)
        if _flashing(self.t0, wall):
            frame.planes[0].update(b"\xeb" * frame.planes[0].buffer_size)
        return frame


class BeepTrack(AudioStreamTrack):
    """48 kHz stereo, 20 ms frames: a 440 Hz tone at 0.25 full scale, and an 880 Hz beep at 0.8
    during the first ``BEEP`` of every ``PERIOD`` of the shared wall clock."""

    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.samples = 0

    async def recv(self) -> av.AudioFrame:
        n = RATE // 50
        if self.samples == 0:
            self._start = time.time()
        else:
            await asyncio.sleep(self._start + self.samples / RATE - time.time())
        base = self._start + self.samples / RATE - self.t0
        pcm = array.array("h")
        for k in range(n):
            t = base + k / RATE
            amp, freq = (0.8, 880) if t % PERIOD < BEEP else (0.25, 440)
            v = int(32767 * amp * math.sin(2 * math.pi * freq * t))
            pcm.extend((v, v))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = RATE
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, RATE)
        self.samples += n
        return frame


@dataclass
class AvSegment:
    seq: int
    duration: float  # EXTINF
    audio_codec: str | None = None
    video: list[tuple[float, float]] = field(default_factory=list)  # (time, mean luma)
    audio_pts: list[float] = field(default_factory=list)  # packet times (s)
    pcm: array.array[float] = field(default_factory=lambda: array.array("f"))  # channel 0
    audio_start: float = 0.0  # time of the first decoded sample

    @property
    def audio_duration(self) -> float:
        return len(self.pcm) / RATE

    @property
    def video_duration(self) -> float:
        return len(self.video) / 30


def _analyse(seq: int, duration: float, data: bytes) -> AvSegment:
    seg = AvSegment(seq, duration)
    with av.open(io.BytesIO(data), format="mpegts") as container:
        audio = [s for s in container.streams if s.type == "audio"]
        seg.audio_codec = audio[0].codec_context.name if audio else None
        for packet in container.demux():
            if packet.stream.type == "audio" and packet.pts is not None:
                seg.audio_pts.append(float(packet.pts * packet.time_base))
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    luma = bytes(frame.planes[0])[::61]
                    seg.video.append((float(frame.time), sum(luma) / len(luma)))
                elif isinstance(frame, av.AudioFrame):
                    if not seg.pcm:
                        seg.audio_start = float(frame.time)
                    seg.pcm.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
    return seg


async def _fetch_segments(port: int, stream: str) -> tuple[str, list[AvSegment]]:
    base = f"http://127.0.0.1:{port}/stream/{stream}"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/source.m3u8") as resp:
            playlist = await resp.text()
        out = []
        for duration, uri in parse_media_playlist(playlist):
            async with s.get(f"{base}/{uri}") as resp:
                data = await resp.read()
            seq = int(uri.rsplit("/", 1)[-1].split(".")[0])
            out.append(await asyncio.to_thread(_analyse, seq, duration, data))
    return playlist, out


def _rms(pcm: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in pcm) / max(1, len(pcm)))


def _beep_onsets(seg: AvSegment) -> list[float]:
    """Times where the 5 ms RMS crosses 0.4 upwards (the beep starts)."""
    win = RATE // 200
    out, loud = [], True  # a segment starting inside a beep is no onset
    for i in range(0, len(seg.pcm) - win + 1, win):
        now = _rms(seg.pcm[i : i + win]) > 0.4
        if now and not loud:
            out.append(seg.audio_start + i / RATE)
        loud = now
    return out


def _flash_onsets(seg: AvSegment) -> list[float]:
    out, lit = [], True
    for t, luma in seg.video:
        now = luma > 150
        if now and not lit:
            out.append(t)
        lit = now
    return out


def _spy_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Record, for each media call of the WHIP path, whether it ran on the event loop thread."""
    loop_thread = threading.get_ident()
    calls: list[tuple[str, bool]] = []
    for cls, name in (
        (segmenter.RtpDemuxer, "feed"),
        (segmenter.RtpDemuxer, "flush"),
        (segmenter.OpusToAac, "__init__"),
        (segmenter.OpusToAac, "feed"),
        (segmenter.OpusToAac, "flush"),
    ):
        real = getattr(cls, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append((_name, threading.get_ident() == loop_thread))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, name, spy)
    return calls


async def test_whip_opus_arrives_as_aac_in_sync(
    gateway_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy_threads(monkeypatch)
    gw = await gateway_factory(webrtc_host_addresses=("127.0.0.1",))
    base = f"http://127.0.0.1:{gw.http_port}"
    ice = IceConfig.loopback()
    t0 = time.time() + 0.5
    pc, location = await _publish(f"{base}/whip/tone", ice, FlashPattern(t0), BeepTrack(t0))
    try:
        await wait_until(
            lambda: len((gw.hls.rendition("tone", "source") or _none()).segments) >= 4, 30
        )
        async with aiohttp.ClientSession() as s, s.delete(f"{base}{location}") as resp:
            assert resp.status == 200
        await wait_until(lambda: not gw.hub.get("tone").live, 10)  # type: ignore[union-attr]
    finally:
        await pc.close()
    playlist, segments = await _fetch_segments(gw.http_port, "tone")
    assert "#EXT-X-ENDLIST" in playlist and len(segments) >= 4
    assert gw.whip.audio_packets > 0 and gw.whip.audio_bad_packets == 0
    # every demux / transcode call (PyAV) ran on a worker thread, never on the event loop
    assert {name for name, _ in calls} == {"feed", "flush", "__init__"}
    assert not [name for name, on_loop in calls if on_loop]

    for seg in segments:
        # every segment carries AAC, with the tone in it, as long as its video
        assert seg.audio_codec == "aac", seg.seq
        assert _rms(seg.pcm) > 0.1, (seg.seq, _rms(seg.pcm))
        assert abs(seg.audio_duration - seg.video_duration) < 0.05, (
            seg.seq,
            seg.audio_duration,
            seg.video_duration,
        )
    # audio is continuous across segments: no hole or overlap of one AAC frame or more
    frame = 1024 / RATE
    for prev, nxt in itertools.pairwise(segments):
        step = nxt.audio_pts[0] - prev.audio_pts[-1]
        assert abs(step - frame) < 0.001, (prev.seq, step)
    # A/V offset at the start, and sync all along: each beep starts with its flash
    first = segments[0]
    assert abs(first.audio_pts[0] - first.video[0][0]) < 0.1
    beeps = [t for seg in segments for t in _beep_onsets(seg)]
    flashes = [t for seg in segments for t in _flash_onsets(seg)]
    assert len(flashes) >= 4 and len(beeps) >= 4, (flashes, beeps)
    offsets = [min(beeps, key=lambda b: abs(b - f)) - f for f in flashes]
    assert all(abs(o) < 0.1 for o in offsets), offsets
