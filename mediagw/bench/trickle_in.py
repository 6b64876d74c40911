"""``python -m mediagw.bench.trickle_in``: how long a packet spends in the gateway on the live AI
input path, from its arrival at the ``Publisher`` to its bytes being written on the trickle POST.

An in-process reference orchestrator runs ``noop``; a live-paced publisher sends H.264 + audio
for ``--seconds``: first over RTMP (the ffmpeg CLI, AAC), then over WHIP (aiortc in process,
640x360 H.264 + Opus, which the gateway transcodes to AAC). The code under test is instrumented from
outside (attributes patched for the run):

- ``Publisher.unit``: the arrival of each ingest unit (keyed by its payload);
- the Publisher's demuxer: which unit each demuxed packet came out of;
- ``LiveSession.extend``: when each progress item (TS bytes + the packets muxed into them)
  reached the live session;
- ``BodyPipe.get``: when each chunk was handed to aiohttp's request writer (which writes it to
  the socket at once: ``transport.write``, TCP_NODELAY).

Each packet is followed by its timestamps: from the unit that carried it (WHIP video: the unit
with its PTS, so the wait for the audio horizon in segmenter/rtpmedia.py counts), through the
progress item that handed it to the session, to the TS chunk holding its PES start (found by
PTS in the bytes written, so a hold in the muxer's interleaver counts). Reported per ingest, in
ms, p50/p95/p99/max over every packet: ``unit_to_demuxed`` (out of the demuxer),
``unit_to_session`` (muxed, its progress item handed to the live session), ``unit_to_wire``
(its bytes handed to the socket writer), the same for video only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segmenter import Segmenter

from ..config import Settings
from ..gateway import Gateway
from ..livepeer.trickle.pipe import BodyPipe
from ..orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from ..pipelines.live_ai.session import LiveSession
from ..stream.publisher import Publisher
from .figures import percentiles
from .ingest import make_clip
from .live import push_rtmp


def _pes_starts(chunk: bytes) -> list[tuple[str, int]]:
    """(kind, PTS) of each PES that starts in ``chunk`` (whole 188-byte TS packets)."""
    found: list[tuple[str, int]] = []
    for off in range(0, len(chunk) - 187, 188):  # (a PES starting across pieces is missed)
        pkt = chunk[off : off + 188]
        if pkt[0] != 0x47 or not pkt[1] & 0x40:
            continue
        start = 4 + (1 + pkt[4] if (pkt[3] >> 4) & 2 else 0)
        pes = pkt[start:]
        if len(pes) < 14 or pes[:3] != b"\x00\x00\x01" or not pes[7] & 0x80:
            continue
        kind = "video" if 0xE0 <= pes[3] <= 0xEF else "audio" if 0xC0 <= pes[3] <= 0xDF else ""
        b = pes[9:14]
        pts = ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
        if kind:
            found.append((kind, pts))
    return found


class _Probe:
    """The instrumentation (see the module docstring); ``install`` patches, ``remove`` undoes."""

    def __init__(self) -> None:
        self.units: dict[int, float] = {}  # id(payload) -> arrival
        self.refs: list[Any] = []  # keeps the keyed objects alive (their ids stay unique)
        self.unit_pts: dict[tuple[str, int], float] = {}  # WHIP (kind, pts) -> arrival
        self.packets: dict[int, tuple[float, float]] = {}  # id(data) -> (arrival, demuxed)
        # TS (kind, pts) -> (arrival, demuxed, muxed); the progress item reached the session
        self.muxed: dict[tuple[str, int], tuple[float, float, float]] = {}
        self.handed: dict[tuple[str, int], float] = {}
        self.chunks: list[tuple[float, bytes]] = []  # (handed to the writer, TS bytes)
        self._undo: list[tuple[Any, str, Any]] = []

    def _patch(self, owner: Any, name: str, value: Any) -> None:
        self._undo.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    def remove(self) -> None:
        for owner, name, value in reversed(self._undo):
            setattr(owner, name, value)
        self._undo.clear()

    def install(self) -> None:
        probe = self
        unit, init = Publisher.unit, Publisher.__init__
        extend, get, take = LiveSession.extend, BodyPipe.get, Segmenter.take_progress

        async def timed_unit(self: Publisher, *args: Any) -> None:
            now = time.monotonic()
            for arg in args:
                if isinstance(arg, bytes | bytearray):
                    probe.units[id(arg)] = now
                    probe.refs.append(arg)
            if len(args) >= 3 and args[0] == "video":  # WHIP: (kind, data, pts)
                probe.unit_pts[("video", args[2])] = now
            await unit(self, *args)

        class Tap:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def feed(self, *args: Any) -> list[Any]:
                arrival = next((probe.units[id(a)] for a in args if id(a) in probe.units), None)
                items: list[Any] = self.inner.feed(*args)
                fed = time.monotonic()
                for item in items:
                    data = getattr(item, "data", None)
                    if arrival is None or not isinstance(data, bytes):
                        continue
                    first = probe.unit_pts.get((item.kind, item.pts), arrival)
                    probe.packets[id(data)] = (first, fed)
                    probe.refs.append(data)
                return items

            def flush(self) -> list[Any]:
                flushed: list[Any] = self.inner.flush()
                return flushed

        def tapped_init(self: Publisher, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            self._demuxer = Tap(self._demuxer)

        def timed_take(self: Segmenter) -> list[Any]:
            events: list[Any] = take(self)
            now = time.monotonic()
            for event in events:
                for p in getattr(event, "packets", ()):
                    if id(p.data) in probe.packets:
                        arrival, fed = probe.packets[id(p.data)]
                        probe.muxed[(p.kind, p.pts)] = (arrival, fed, now)
            return events

        def timed_extend(self: LiveSession, progress: Any) -> None:
            now = time.monotonic()
            for p in progress.packets:
                probe.handed[(p.kind, p.pts)] = now
            extend(self, progress)

        async def timed_get(self: BodyPipe) -> Any:
            chunk = await get(self)
            if chunk is not None and (self.sent or bytes(chunk[:1]) == b"G"):  # TS bodies
                skip = -self.sent % 188  # pieces of a whole segment: from its next TS packet
                probe.chunks.append((time.monotonic(), bytes(chunk[skip:])))
            return chunk

        self._patch(Publisher, "unit", timed_unit)
        self._patch(Publisher, "__init__", tapped_init)
        self._patch(LiveSession, "extend", timed_extend)
        self._patch(Segmenter, "take_progress", timed_take)
        self._patch(BodyPipe, "get", timed_get)

    def report(self) -> dict[str, float]:
        written: dict[tuple[str, int], float] = {}
        for at, chunk in self.chunks:
            for key in _pes_starts(chunk):
                written.setdefault(key, at)  # a re-sent segment counts at its first sending
        stages: dict[str, list[float]] = {"demuxed": [], "session": [], "wire": [], "wire_v": []}
        for key, (arrival, fed, _) in self.muxed.items():
            if key not in written:
                continue
            stages["demuxed"].append(fed - arrival)  # WHIP video: incl. the audio horizon hold
            if key in self.handed:  # muxed, its progress item handed to the session
                stages["session"].append(self.handed[key] - arrival)
            stages["wire"].append(written[key] - arrival)  # incl. the interleaver's hold
            if key[0] == "video":
                stages["wire_v"].append(written[key] - arrival)
        out = {"packets": float(len(stages["wire"]))}
        out.update(percentiles(stages["demuxed"], "unit_to_demuxed_ms"))
        out.update(percentiles(stages["session"], "unit_to_session_ms"))
        out.update(percentiles(stages["wire"], "unit_to_wire_ms"))
        out.update(percentiles(stages["wire_v"], "video_unit_to_wire_ms"))
        return out


async def _rtmp(gw: Gateway, ffmpeg: str, clip: Path) -> None:
    await push_rtmp(ffmpeg, clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/rtmp?pipeline=noop")


async def _whip(gw: Gateway, seconds: float) -> None:
    import aiohttp
    from aiortc import AudioStreamTrack, RTCPeerConnection, RTCRtpSender

    from webrtc import IceConfig

    from .glass import NumberedFrames, negotiate

    ice = IceConfig.loopback()
    pc = RTCPeerConnection(ice.rtc_configuration())
    video = pc.addTransceiver(NumberedFrames(640, 360), direction="sendonly")
    codecs = RTCRtpSender.getCapabilities("video").codecs
    video.setCodecPreferences([c for c in codecs if c.mimeType.lower() == "video/h264"])
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")  # paced silence, Opus
    base = f"http://127.0.0.1:{gw.http_port}"
    async with aiohttp.ClientSession() as http:
        location = await negotiate(
            http, f"{base}/live/video-to-video/whip/whip?pipeline=noop", pc, ice
        )
        await asyncio.sleep(seconds)
        await http.delete(f"{base}{location}")
    await pc.close()


async def run(seconds: float) -> dict[str, Any]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg not found on PATH")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.flv"
        await asyncio.to_thread(make_clip, clip, seconds, "1280x720", 30, ffmpeg)
        config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
        async with ReferenceOrchestrator(config) as orch:
            settings = Settings(
                rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0", data_dir=str(Path(tmp) / "gw"),
                orch_addr=(orch.url,), webrtc_host_addresses=("127.0.0.1",),
            )  # fmt: skip
            gw = Gateway(settings)
            await gw.start()
            try:
                for name, publish in (
                    ("rtmp", _rtmp(gw, ffmpeg, clip)),
                    ("whip", _whip(gw, seconds)),
                ):
                    probe = _Probe()
                    probe.install()
                    try:
                        print(f"{name}: {seconds:g} s live ...", file=sys.stderr, flush=True)
                        await publish
                        await asyncio.sleep(2)
                    finally:
                        probe.remove()
                    results[name] = probe.report()
            finally:
                await gw.stop()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.seconds)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
