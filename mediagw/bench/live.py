"""``mediagw bench live``: what the gateway adds on the live AI path, through ``noop``.

An in-process reference orchestrator runs ``noop`` (the output segment is the input, untouched).

Phase 1, gateway-added latency: an ffmpeg publisher pushes a live-paced 720p30 clip over RTMP with
``?pipeline=noop``. Reported:
- input: segment handed to the session (its first keyframe cut: input goes out progressively)
  -> its first byte on the trickle input channel, and capture -> first byte on trickle: its
  first keyframe reached the gateway -> that byte;
- output: output segment fully received -> handed to the manager, and -> listed in the HLS
  playlist and queued for WHEP;
- the segment round trip: source segment listed -> the same segment of AI output listed
  (the gateway's work on both sides plus the orchestrator's noop, on loopback).

Phase 2, glass-to-glass (``--g2g``, on by default): a client process (:mod:`.glass`) publishes
numbered frames over WHIP and watches the AI output over WHEP and HLS; each frame's latency is
its display time minus its capture time. The figure is split per segment into capture -> source
segment listed, the gateway + noop round trip, and output listed -> shown over WHEP.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from ..gateway import Gateway
from .ingest import make_clip

G2G_STREAM = "g2g"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


class _Tap:
    """A hub listener: when each source segment is listed, and its duration, per stream."""

    def __init__(self) -> None:
        self.listed: dict[str, dict[int, float]] = {}
        self.durations: dict[str, list[float]] = {}

    def on_stream_start(self, stream: Any) -> None: ...
    def on_stream_end(self, stream: Any) -> None: ...
    def on_stream_removed(self, stream: Any) -> None: ...

    def on_segment(self, stream: Any, segment: Any) -> None:
        self.listed.setdefault(stream.id, {})[segment.seq] = time.monotonic()
        if not segment.last:  # the final segment is cut short by the publisher's stop
            self.durations.setdefault(stream.id, []).append(segment.duration)


async def push_rtmp(ffmpeg: str, clip: Path, url: str) -> None:
    """Publish ``clip`` live-paced with the ffmpeg CLI (stream copy) until it ends."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(clip),
        "-c", "copy", "-f", "flv", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await proc.wait()


async def _wait_finished(gw: Gateway, stream: str, timeout: float = 30.0) -> dict[str, Any]:
    manager = gw.live_ai
    assert manager is not None
    for _ in range(round(timeout / 0.2)):  # the last output is drained after the publisher stops
        if stream in manager.finished:
            break
        await asyncio.sleep(0.2)
    return manager.finished.get(stream) or manager.status(stream) or {}


async def _gateway_added(gw: Gateway, tap: _Tap, ffmpeg: str, clip: Path, seconds: float) -> Any:
    manager = gw.live_ai
    assert manager is not None
    print(f"pushing {seconds:g} s live through noop ...", file=sys.stderr, flush=True)
    await push_rtmp(ffmpeg, clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/bench?pipeline=noop")
    status = await _wait_finished(gw, "bench")
    timings = status.get("timings", {})
    source_listed = tap.listed.get("bench", {})
    round_trips = [
        manager.listed_at[("bench-out", seq)] - at
        for seq, at in source_listed.items()
        if ("bench-out", seq) in manager.listed_at
    ]
    publish = list(manager.publish_time.recent)
    first_byte = timings.get("input_first_byte", {})
    ingest = timings.get("input_ingest_first_byte", {})
    handoff = timings.get("output_handoff", {})
    return {
        "segments_in": len(source_listed),
        "segments_out": len(round_trips),
        "input_first_byte_ms_p95": round(first_byte.get("p95", 0) * 1000, 2),
        "input_first_byte_ms_max": round(first_byte.get("max", 0) * 1000, 2),
        "capture_to_trickle_first_byte_ms_p95": round(ingest.get("p95", 0) * 1000, 2),
        "capture_to_trickle_first_byte_ms_max": round(ingest.get("max", 0) * 1000, 2),
        "output_handoff_ms_p95": round(handoff.get("p95", 0) * 1000, 2),
        "output_publish_ms_p50": round(_pct(publish, 0.5) * 1000, 2),
        "output_publish_ms_p99": round(_pct(publish, 0.99) * 1000, 2),
        "segment_round_trip_ms_p50": round(_pct(round_trips, 0.5) * 1000, 2),
        "segment_round_trip_ms_p99": round(_pct(round_trips, 0.99) * 1000, 2),
    }


async def _glass_to_glass(gw: Gateway, tap: _Tap, seconds: float, size: str) -> dict[str, Any]:
    from .glass import analyse

    manager = gw.live_ai
    assert manager is not None
    base = f"http://127.0.0.1:{gw.http_port}"
    cmd = [sys.executable, "-m", "mediagw.bench.glass", "--base", base,
           "--stream", G2G_STREAM, "--seconds", f"{seconds:g}", "--size", size]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + 90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ConfigError("the glass-to-glass client did not finish") from None
    if proc.returncode != 0:
        raise ConfigError(f"the glass-to-glass client failed (exit {proc.returncode})")
    raw = json.loads(out)
    await _wait_finished(gw, G2G_STREAM)
    out_id = f"{G2G_STREAM}-out"
    output_listed = {seq: at for (sid, seq), at in manager.listed_at.items() if sid == out_id}
    return analyse(
        raw,
        tap.listed.get(G2G_STREAM, {}),
        output_listed,
        tap.durations.get(G2G_STREAM, []),
    )


async def run_live_bench(
    *,
    seconds: float,
    json_out: str = "",
    g2g: bool = True,
    g2g_size: str = "1280x720",
    segment_duration: float = 1.0,
) -> int:
    from ..orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-") as tmp:
        clip = Path(tmp) / "clip.flv"
        print(f"encoding a {seconds:g} s 1280x720@30 clip ...", file=sys.stderr, flush=True)
        await asyncio.to_thread(make_clip, clip, seconds, "1280x720", 30, ffmpeg)
        orch = ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS))
        await orch.start()
        loopback = "127.0.0.1"
        settings = Settings(rtmp_addr=f"{loopback}:0", http_addr=f"{loopback}:0",
                            orch_addr=(orch.url,), webrtc_host_addresses=(loopback,),
                            live_ai_segment_duration=segment_duration,
                            data_dir=str(Path(tmp) / "data"))  # fmt: skip
        gw = Gateway(settings)
        await gw.start()
        tap = _Tap()
        gw.hub.add_listener(tap)
        try:
            result = await _gateway_added(gw, tap, ffmpeg, clip, seconds)
            if g2g:
                result.update(await _glass_to_glass(gw, tap, seconds, g2g_size))
        finally:
            await gw.stop()
            await orch.stop()

    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if json_out:
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(result, indent=2) + "\n")
    ok = bool(result["segments_out"]) and (not g2g or bool(result["g2g_frames_matched"]))
    return 0 if ok else 1
