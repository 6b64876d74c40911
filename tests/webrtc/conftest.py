"""Loopback WebRTC test kit: real aiortc peers on 127.0.0.1, media made with PyAV at test time.

Every peer (ours and the test clients) gathers on 127.0.0.1 only (``IceConfig.loopback()`` inside
``gathering_scope``) with an empty ICE server list, so no packet leaves the machine.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import av
import pytest
from aiohttp import web
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)

from webrtc import AudioPacket, IceConfig, VideoAccessUnit, gathering_scope

WIDTH, HEIGHT, FPS = 320, 240, 30


class PatternTrack(VideoStreamTrack):
    """A bar moving over grey, 320x240 at 30 fps (few scene cuts: x264 adds no keyframes)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self.running = asyncio.Event()  # clear it to stall the publisher (no RTP, peer alive)
        self.running.set()

    async def recv(self) -> av.VideoFrame:
        await self.running.wait()
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        x0 = (self.sent * 4) % (WIDTH - 8)
        row = b"\x40" * x0 + b"\xe0" * 8 + b"\x40" * (WIDTH - 8 - x0)
        frame.planes[0].update(row * HEIGHT)
        frame.planes[1].update(b"\x80" * frame.planes[1].buffer_size)
        frame.planes[2].update(b"\x80" * frame.planes[2].buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.sent += 1
        return frame


@dataclass
class Client:
    """A test peer: publisher (WHIP) or viewer (WHEP)."""

    pc: RTCPeerConnection
    ice: IceConfig
    frames: dict[str, list[av.VideoFrame | av.AudioFrame]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def offer(self) -> str:
        with gathering_scope(self.ice):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def read_tracks(self) -> None:
        """Decode every received track into ``frames[kind]`` (aiortc's own decoders)."""

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            got = self.frames.setdefault(track.kind, [])

            async def pump() -> None:
                while True:
                    try:
                        got.append(await track.recv())  # type: ignore[arg-type]
                    except Exception:
                        return

            self.tasks.append(asyncio.create_task(pump()))

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class Kit:
    ice: IceConfig
    clients: list[Client] = field(default_factory=list)

    def client(self) -> Client:
        client = Client(RTCPeerConnection(self.ice.rtc_configuration()), self.ice)
        self.clients.append(client)
        return client

    def publisher(
        self, *, audio: bool = True, codecs: tuple[str, ...] = ()
    ) -> tuple[Client, PatternTrack]:
        """A client sending the pattern (aiortc encodes; H.264 when the answer picks it)."""
        client = self.client()
        track = PatternTrack()
        video = client.pc.addTransceiver(track, direction="sendonly")
        if codecs:
            caps = RTCRtpSender.getCapabilities("video").codecs
            video.setCodecPreferences([c for c in caps if c.mimeType.lower() in codecs])
        if audio:
            client.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        return client, track

    def viewer(self, *, audio: bool = False, read: bool = True) -> Client:
        client = self.client()
        client.pc.addTransceiver("video", direction="recvonly")
        if audio:
            client.pc.addTransceiver("audio", direction="recvonly")
        if read:
            client.read_tracks()
        return client

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients))


@pytest.fixture
def ice() -> IceConfig:
    return IceConfig.loopback()


@pytest.fixture
async def kit(ice: IceConfig) -> AsyncIterator[Kit]:
    k = Kit(ice)
    yield k
    await k.close()


Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an aiohttp app on 127.0.0.1 (random port); returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def encode_h264(seconds: float, *, fps: int = FPS, gop: int = 15) -> list[VideoAccessUnit]:
    """H.264 (baseline, no B-frames, Annex B) of a moving pattern, as access units."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.gop_size = gop
    codec.max_b_frames = 0
    codec.profile = "Baseline"
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "sc_threshold": "0"}
    units: list[VideoAccessUnit] = []
    tick = 90_000 // fps

    def take(packets: list[av.Packet]) -> None:  # type: ignore[type-arg]
        for p in packets:
            assert p.pts is not None
            units.append(VideoAccessUnit(bytes(p), p.pts * tick, p.pts * tick, p.is_keyframe))

    for i in range(int(seconds * fps)):
        frame = av.VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        x0 = (i * 4) % (WIDTH - 8)
        frame.planes[0].update((b"\x30" * x0 + b"\xd0" * 8 + b"\x30" * (WIDTH - 8 - x0)) * HEIGHT)
        frame.planes[1].update(bytes([(i * 3) % 256]) * frame.planes[1].buffer_size)
        frame.planes[2].update(b"\x80" * frame.planes[2].buffer_size)
        frame.pts = i
        take(codec.encode(frame))
    take(codec.encode(None))
    return units


def encode_opus(seconds: float) -> list[AudioPacket]:
    """20 ms Opus packets of a 440 Hz tone, 48 kHz stereo."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48_000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.time_base = fractions.Fraction(1, 48_000)
    out: list[AudioPacket] = []
    n = 960
    for i in range(int(seconds * 50)):
        samples = array.array(
            "h",
            (
                int(8000 * math.sin(2 * math.pi * 440 * (i * n + k) / 48_000))
                for k in range(n)
                for _ in range(2)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="stereo", samples=n)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 48_000
        frame.pts = i * n
        frame.time_base = fractions.Fraction(1, 48_000)
        for p in codec.encode(frame):
            assert p.pts is not None
            out.append(AudioPacket(bytes(p), p.pts))
    return out


@pytest.fixture(scope="session")
def h264_clip() -> list[VideoAccessUnit]:
    return encode_h264(3.0)


@pytest.fixture(scope="session")
def opus_clip() -> list[AudioPacket]:
    return encode_opus(3.0)
