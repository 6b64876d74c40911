"""Glass-to-glass client of ``mediagw bench live``.

A publisher sends 30 fps frames that show their own number (:mod:`.framecode`) into
``/live/video-to-video/{stream}/whip?pipeline=noop`` (aiortc, H.264) or, with ``--rtmp URL``, to
the gateway's RTMP ingest (:mod:`.rtmp_publish`, a 1 s GOP); the moment a frame is handed to the
encoder is its capture time. A WHEP viewer (aiortc) of the AI output decodes every frame and reads
its number back: display time - capture time is that frame's glass-to-glass latency. An HLS
watcher polls ``/stream/{stream}-out/source.m3u8`` and reads the first frame of every new output
segment (glass-to-HLS: the age of a segment's oldest frame when it is listed). With
``--players``, hls.js in headless Chromium plays the output's TS playlist and its LL-HLS playlist
(``--ll-url``) and reads the numbers of the frames it shows (:mod:`.chromium`).

It runs in its own process (``python -m mediagw.bench.glass``) so that encoding and decoding do
not share the gateway's event loop and CPU. It prints raw times as JSON on stdout, progress on
stderr; the benchmark turns them into figures with :mod:`.figures` (which says which clocks).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from yarl import URL

from webrtc import IceConfig, gathering_scope

from .framecode import make_frame, read_frame
from .rtmp_publish import RtmpNumbered

__all__ = ["run_client"]

HLS_POLL = 0.025  # seconds between playlist polls (the glass-to-HLS figure is that coarse)
SDP = {"Content-Type": "application/sdp"}


class NumberedFrames(VideoStreamTrack):
    """Frames 0, 1, 2, ... at 30 fps (aiortc's pacing); ``captured[n]`` is when n was made."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.captured: list[float] = []
        self.captured_wall: list[float] = []

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        number = len(self.captured)
        self.captured.append(time.monotonic())
        self.captured_wall.append(time.time())
        frame = await asyncio.to_thread(make_frame, number, self.width, self.height)
        frame.pts, frame.time_base = pts, time_base
        return frame


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def negotiate(
    http: aiohttp.ClientSession,
    url: str,
    pc: RTCPeerConnection,
    ice: IceConfig,
    *,
    tries: int = 100,
    wait: float = 0.1,
) -> str:
    """Offer to a WHIP/WHEP endpoint (a 404, not live yet, retried ``tries`` times ``wait`` s
    apart); returns the Location."""
    with gathering_scope(ice):
        await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    for _ in range(tries):
        async with http.post(url, data=pc.localDescription.sdp, headers=SDP) as resp:
            if resp.status == 404:  # the AI output is not there yet
                await asyncio.sleep(wait)
                continue
            if resp.status != 201:
                raise RuntimeError(f"{url}: {resp.status} {(await resp.text())[:200].strip()}")
            location, answer = resp.headers.get("Location", ""), await resp.text()
            break
    else:
        raise RuntimeError(f"{url}: still 404 after {tries * wait:g} s")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return location


class _Viewer:
    """A WHEP viewer: ``shown[n]`` is when frame n was decoded."""

    def __init__(self, ice: IceConfig) -> None:
        self.pc = RTCPeerConnection(ice.rtc_configuration())
        self.pc.addTransceiver("video", direction="recvonly")
        self.shown: dict[int, float] = {}
        self.decoded = self.unreadable = 0
        self.last_frame_at = 0.0
        self.done = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                self.decoded += 1
                self.last_frame_at = now
                number = read_frame(frame) if isinstance(frame, av.VideoFrame) else None
                if number is None:
                    self.unreadable += 1
                elif number not in self.shown:
                    self.shown[number] = now
        except Exception:  # MediaStreamError: the track ended
            pass
        finally:
            self.done.set()


def _first_number(ts: bytes) -> int | None:
    with av.open(io.BytesIO(ts), mode="r", format="mpegts") as container:
        for frame in container.decode(video=0):
            return read_frame(frame)
    return None


async def _watch_hls(
    http: aiohttp.ClientSession, url: str, seen: dict[int, list[Any]], stop: asyncio.Event
) -> None:
    """Note when each output segment is first listed, then read its first frame's number."""
    fetches: list[asyncio.Task[None]] = []

    async def fetch(seq: int, uri: str) -> None:
        async with http.get(uri) as resp:
            data = await resp.read() if resp.status == 200 else b""
        if data:
            seen[seq][1] = await asyncio.to_thread(_first_number, data)

    while not stop.is_set():
        try:
            async with http.get(url) as resp:
                text = await resp.text() if resp.status == 200 else ""
        except aiohttp.ClientError:
            text = ""
        now = time.monotonic()
        for line in text.splitlines():
            m = re.search(r"(\d+)\.ts$", line)
            if m is None or line.startswith("#"):
                continue
            seq = int(m[1])
            if seq not in seen:
                seen[seq] = [now, None]
                fetches.append(asyncio.ensure_future(fetch(seq, str(resp.url.join(URL(line))))))
        if "#EXT-X-ENDLIST" in text:
            break
        try:
            await asyncio.wait_for(stop.wait(), HLS_POLL)
        except TimeoutError:
            pass
    await asyncio.gather(*fetches, return_exceptions=True)


async def _players(
    http: aiohttp.ClientSession, base: str, stream: str, seconds: float, ll_url: str
) -> dict[str, Any]:
    """hls.js in headless Chromium on the output's TS playlist (``ts``) and, when it exists, its
    LL-HLS playlist (``ll``): what each player showed and when (:mod:`.chromium`)."""
    from .chromium import STATIC, find_chromium, find_hls_js, run_page, serve_page

    chromium, hls_js = find_chromium(), find_hls_js()
    if chromium is None or hls_js is None:
        why = "chromium is not installed" if chromium is None else "hls.js is not installed"
        return {"unavailable": f"{why} (make system-deps)"}
    ts_url = f"{base}/stream/{stream}-out.m3u8"
    for _ in range(100):  # the output appears after the first segment's round trip
        async with http.get(ts_url) as resp:
            if resp.status == 200:
                break
        await asyncio.sleep(0.1)
    play = [f"ts:{ts_url}"]
    ll_status = 0
    if ll_url:
        async with http.get(base + ll_url) as resp:
            ll_status = resp.status
        if ll_status == 200:
            play.append(f"ll:{base}{ll_url}")
    files = {"/hls.min.js": hls_js, "/framecode.js": STATIC / "framecode.js"}
    runner, port, reported = await serve_page(STATIC / "players.html", "127.0.0.1", files)
    try:
        query = "&".join(f"play={quote(p, safe=':/')}" for p in play)
        page = f"http://127.0.0.1:{port}/?seconds={seconds:g}&{query}"
        _progress(f"g2g: hls.js in Chromium playing {', '.join(p.split(':')[0] for p in play)}")
        result = await run_page(chromium, page, reported, seconds + 30)
    finally:
        await runner.cleanup()
    if ll_url and ll_status != 200:
        result["ll_unavailable"] = f"GET {ll_url}: HTTP {ll_status}"
    return result


async def _publish_rtmp(url: str, width: int, height: int) -> RtmpNumbered:
    publisher = RtmpNumbered(url, width, height)
    publisher.start()
    for _ in range(100):  # FFmpeg's RTMP client connects and sends the first frame
        if publisher.captured or publisher.error:
            break
        await asyncio.sleep(0.05)
    if publisher.error:
        raise RuntimeError(f"{url}: {publisher.error}")
    return publisher


async def run_client(
    base: str,
    stream: str,
    seconds: float,
    width: int = 1280,
    height: int = 720,
    *,
    rtmp: str = "",
    whep: bool = True,
    ll_url: str | None = None,
) -> dict[str, Any]:
    """Publish ``seconds`` of numbered frames (over WHIP, or to the RTMP URL ``rtmp``), watch
    the output over WHEP, HLS and (``ll_url`` not None) hls.js; the raw times, as a dict.
    ``ll_url``: the path of the output's LL-HLS playlist ("" = none, hls.js on TS only)."""
    ice = IceConfig.loopback()
    track = NumberedFrames(width, height)
    viewer = _Viewer(ice)
    hls: dict[int, list[Any]] = {}
    stop = asyncio.Event()
    publisher = RTCPeerConnection(ice.rtc_configuration())
    rtmp_pub: RtmpNumbered | None = None
    page: asyncio.Future[dict[str, Any]] | None = None
    async with aiohttp.ClientSession() as http:
        live = f"{base}/live/video-to-video/{stream}"
        try:
            location = ""
            if rtmp:
                rtmp_pub = await _publish_rtmp(rtmp, width, height)
                _progress(f"g2g: publishing {width}x{height}@30 over RTMP for {seconds:g} s ...")
            else:
                transceiver = publisher.addTransceiver(track, direction="sendonly")
                codecs = RTCRtpSender.getCapabilities("video").codecs
                h264 = [c for c in codecs if c.mimeType.lower() == "video/h264"]
                transceiver.setCodecPreferences(h264)
                location = await negotiate(http, f"{live}/whip?pipeline=noop", publisher, ice)
                _progress(f"g2g: publishing {width}x{height}@30 over WHIP for {seconds:g} s ...")
            if whep:
                await negotiate(http, f"{live}/whep", viewer.pc, ice)
            watcher = asyncio.ensure_future(
                _watch_hls(http, f"{base}/stream/{stream}-out/source.m3u8", hls, stop)
            )
            started = time.monotonic()
            if ll_url is not None:
                page = asyncio.ensure_future(_players(http, base, stream, seconds - 3, ll_url))
            captured = rtmp_pub.captured if rtmp_pub is not None else track.captured
            while (elapsed := time.monotonic() - started) < seconds:
                await asyncio.sleep(min(5.0, seconds - elapsed))
                latest = max(viewer.shown, default=None)
                last = (
                    f", last {1000 * (viewer.shown[latest] - captured[latest]):.0f} ms"
                    if latest is not None
                    else ""
                )
                _progress(f"g2g: {len(captured)} frames sent, {len(viewer.shown)} shown "
                          f"over WHEP{last}, {len(hls)} HLS segments")  # fmt: skip
            if rtmp_pub is not None:
                await asyncio.to_thread(rtmp_pub.stop)
            else:
                async with http.delete(base + location) as resp:
                    await resp.read()
                await publisher.close()
            # the tail drains for a while; the viewer ends when the gateway drops the output
            ended = time.monotonic()
            while whep and not viewer.done.is_set() and time.monotonic() - ended < 15:
                if viewer.last_frame_at and time.monotonic() - viewer.last_frame_at > 3:
                    break
                await asyncio.sleep(0.2)
            stop.set()
            await watcher
            reported = await page if page is not None else None
        finally:
            if rtmp_pub is not None:
                await asyncio.to_thread(rtmp_pub.stop)
            await publisher.close()
            await viewer.pc.close()
    source = rtmp_pub if rtmp_pub is not None else track
    return {
        "size": [width, height],
        "captured": source.captured,
        "captured_wall": source.captured_wall,
        "shown": sorted(viewer.shown.items()),
        "decoded": viewer.decoded,
        "unreadable": viewer.unreadable,
        "hls": sorted([seq, at, first] for seq, (at, first) in hls.items()),
        "players": reported,
    }


# -- the client process ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediagw.bench.glass")
    parser.add_argument("--base", required=True, help="gateway HTTP base URL")
    parser.add_argument("--stream", default="g2g")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--rtmp", default="", help="publish to this RTMP URL instead of WHIP")
    parser.add_argument("--no-whep", dest="whep", action="store_false", help="no WHEP viewer")
    parser.add_argument("--players", action="store_true", help="hls.js players in Chromium")
    parser.add_argument("--ll-url", default="", help="the output's LL-HLS playlist path")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    ll_url = args.ll_url if args.players else None
    run = run_client(args.base, args.stream, args.seconds, width, height, rtmp=args.rtmp,
                     whep=args.whep, ll_url=ll_url)  # fmt: skip
    raw = asyncio.run(run)
    json.dump(raw, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
