"""An aiortc WHEP viewer on loopback for whole-gateway tests: offers, decodes what it gets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from webrtc import IceConfig, gathering_scope

SDP = {"Content-Type": "application/sdp"}


class Viewer:
    """An aiortc WHEP client on loopback: decodes the video it receives into ``frames``."""

    def __init__(self) -> None:
        self.ice = IceConfig.loopback()
        self.pc = RTCPeerConnection(self.ice.rtc_configuration())
        self.pc.addTransceiver("video", direction="recvonly")
        self.frames: list[Any] = []
        self.first_frame_at: float | None = None
        self.ended = asyncio.Event()
        self.location = ""
        self.readers: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.readers.append(asyncio.ensure_future(self._read(track)))

    async def play(self, http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
        with gathering_scope(self.ice):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        async with http.post(url, data=self.pc.localDescription.sdp, headers=SDP) as resp:
            if resp.status == 201:
                self.location = resp.headers["Location"]
                answer = await resp.text()
                await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            return resp

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                self.frames.append(await track.recv())
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
        except Exception:  # MediaStreamError: the track ended
            pass
        finally:
            self.ended.set()

    async def close(self) -> None:
        await self.pc.close()
        await asyncio.gather(*self.readers, return_exceptions=True)
