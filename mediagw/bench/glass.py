"""Glass-to-glass client of ``mediagw bench live``.

A WHIP publisher (aiortc, H.264) sends 30 fps frames that show their own number
(:mod:`.framecode`) into ``/live/video-to-video/{stream}/whip?pipeline=noop``; the moment a frame
is handed to the encoder is its capture time. A WHEP viewer (aiortc) of the AI output decodes
every frame and reads its number back: display time - capture time is that frame's glass-to-glass
latency. An HLS watcher polls ``/stream/{stream}-out/source.m3u8`` and reads the first frame of
every new output segment (glass-to-HLS: the age of a segment's oldest frame when it is listed).

It runs in its own process (``python -m mediagw.bench.glass``) so that encoding and decoding do
not share the gateway's event loop and CPU. It prints raw ``time.monotonic()`` times (one clock
for every process of the machine on Linux and macOS) as JSON on stdout, progress on stderr; the
benchmark turns them into figures with :func:`analyse`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

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

__all__ = ["analyse", "percentiles", "run_client"]

HLS_POLL = 0.025  # seconds between playlist polls (the glass-to-HLS figure is that coarse)
SDP = {"Content-Type": "application/sdp"}


class NumberedFrames(VideoStreamTrack):
    """Frames 0, 1, 2, ... at 30 fps (aiortc's pacing); ``captured[n]`` is when n was made."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.captured: list[float] = []

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        number = len(self.captured)
        self.captured.append(time.monotonic())
        frame = await asyncio.to_thread(make_frame, number, self.width, self.height)
        frame.pts, frame.time_base = pts, time_base
        return frame


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _negotiate(
    http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection, ice: IceConfig
) -> str:
    """Offer to a WHIP/WHEP endpoint (retrying a 404 for a while); returns the Location."""
    with gathering_scope(ice):
        await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    for _ in range(50):
        async with http.post(url, data=pc.localDescription.sdp, headers=SDP) as resp:
            if resp.status == 404:  # the AI output is not there yet
                await asyncio.sleep(0.1)
                continue
            if resp.status != 201:
                raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
            location, answer = resp.headers.get("Location", ""), await resp.text()
            break
    else:
        raise RuntimeError(f"{url}: still 404 after 5 s")
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


async def run_client(
    base: str, stream: str, seconds: float, width: int = 1280, height: int = 720
) -> dict[str, Any]:
    """Publish ``seconds`` of numbered frames, watch the output; the raw times, as a dict."""
    ice = IceConfig.loopback()
    track = NumberedFrames(width, height)
    viewer = _Viewer(ice)
    hls: dict[int, list[Any]] = {}
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        publisher = RTCPeerConnection(ice.rtc_configuration())
        transceiver = publisher.addTransceiver(track, direction="sendonly")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() == "video/h264"])
        live = f"{base}/live/video-to-video/{stream}"
        try:
            location = await _negotiate(http, f"{live}/whip?pipeline=noop", publisher, ice)
            _progress(f"g2g: publishing {width}x{height}@30 over WHIP for {seconds:g} s ...")
            await _negotiate(http, f"{live}/whep", viewer.pc, ice)
            watcher = asyncio.ensure_future(
                _watch_hls(http, f"{base}/stream/{stream}-out/source.m3u8", hls, stop)
            )
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds:
                await asyncio.sleep(min(5.0, seconds - elapsed))
                latest = max(viewer.shown, default=None)
                last = (
                    f", last {1000 * (viewer.shown[latest] - track.captured[latest]):.0f} ms"
                    if latest is not None
                    else ""
                )
                _progress(f"g2g: {len(track.captured)} frames sent, {len(viewer.shown)} shown "
                          f"over WHEP{last}, {len(hls)} HLS segments")  # fmt: skip
            async with http.delete(base + location) as resp:
                await resp.read()
            await publisher.close()
            # the tail drains for a while; the viewer ends when the gateway drops the output
            ended = time.monotonic()
            while not viewer.done.is_set() and time.monotonic() - ended < 15:
                if viewer.last_frame_at and time.monotonic() - viewer.last_frame_at > 3:
                    break
                await asyncio.sleep(0.2)
            stop.set()
            await watcher
        finally:
            await publisher.close()
            await viewer.pc.close()
    return {
        "size": [width, height],
        "captured": track.captured,
        "shown": sorted(viewer.shown.items()),
        "decoded": viewer.decoded,
        "unreadable": viewer.unreadable,
        "hls": sorted([seq, at, first] for seq, (at, first) in hls.items()),
    }


# -- analysis (in the benchmark) -------------------------------------------------------------


def percentiles(values: Sequence[float], prefix: str) -> dict[str, float]:
    """``{prefix}_p50/_p95/_p99/_max`` in milliseconds (nearest rank)."""
    ordered = sorted(values)
    out: dict[str, float] = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
        v = ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0
        out[f"{prefix}_{name}"] = round(v * 1000, 1)
    return out


def analyse(
    raw: Mapping[str, Any],
    source_listed: Mapping[int, float],
    output_listed: Mapping[int, float],
    segment_durations: Sequence[float] = (),
) -> dict[str, Any]:
    """Figures from the client's raw times and the gateway's per-segment times (monotonic).

    Per output segment (its first frame's number read from HLS): capture -> source segment listed
    (the segment's duration + the cut), source listed -> output listed (gateway + noop round
    trip), output listed -> that frame shown over WHEP (pacing, RTP, the viewer's decode).
    """
    captured: list[float] = raw["captured"]
    shown = {int(n): float(t) for n, t in raw["shown"]}
    g2g = [t - captured[n] for n, t in shown.items() if n < len(captured)]
    hls = [(int(seq), float(at), first) for seq, at, first in raw["hls"]]
    g2hls = [at - captured[first] for _, at, first in hls if first is not None
             and first < len(captured)]  # fmt: skip
    cut, round_trip, to_whep = [], [], []
    for seq, _, first in hls:
        if first is None or first >= len(captured) or seq not in source_listed:
            continue
        cut.append(source_listed[seq] - captured[first])
        if seq in output_listed:
            round_trip.append(output_listed[seq] - source_listed[seq])
            if first in shown:
                to_whep.append(shown[first] - output_listed[seq])
    result: dict[str, Any] = {
        "g2g_frames_sent": len(captured),
        "g2g_frames_matched": len(g2g),
        "g2g_frames_unreadable": int(raw.get("unreadable", 0)),
        **percentiles(g2g, "g2g_whep_ms"),
        "g2g_hls_segments": len(g2hls),
        **percentiles(g2hls, "g2g_hls_first_frame_ms"),
    }
    if segment_durations:
        result["g2g_segment_duration_ms_mean"] = round(
            1000 * sum(segment_durations) / len(segment_durations), 1
        )
    for name, values in (
        ("capture_to_source_listed", cut),
        ("source_to_output_listed", round_trip),
        ("output_listed_to_whep_shown", to_whep),
    ):
        p = percentiles(values, "")
        result[f"g2g_part_{name}_ms_p50"] = p["_p50"]
        result[f"g2g_part_{name}_ms_max"] = p["_max"]
    return result


# -- the client process ----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mediagw.bench.glass")
    parser.add_argument("--base", required=True, help="gateway HTTP base URL")
    parser.add_argument("--stream", default="g2g")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    raw = asyncio.run(run_client(args.base, args.stream, args.seconds, width, height))
    json.dump(raw, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
