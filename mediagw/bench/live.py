"""``mediagw bench live``: what the gateway adds on the live AI path, through ``noop``.

An in-process reference orchestrator runs ``noop`` (the output segment is the input, untouched),
an ffmpeg publisher pushes a live-paced 720p30 clip with ``?pipeline=noop``. Reported:
- input: segment handed to the session -> its first byte on the trickle input channel;
- output: output segment fully received -> handed to the manager, and -> listed in the HLS
  playlist and queued for WHEP;
- the segment round trip: source segment listed -> the same segment of AI output listed
  (the gateway's work on both sides plus the orchestrator's noop, on loopback).
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


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def run_live_bench(*, seconds: float, json_out: str = "") -> int:
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
        gw = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0",
                              orch_addr=(orch.url,)))  # fmt: skip
        await gw.start()
        source_listed: dict[int, float] = {}

        class Tap:
            def on_stream_start(self, stream: Any) -> None: ...
            def on_stream_end(self, stream: Any) -> None: ...
            def on_stream_removed(self, stream: Any) -> None: ...

            def on_segment(self, stream: Any, segment: Any) -> None:
                source_listed[segment.seq] = time.monotonic()

        gw.hub.add_listener(Tap())
        print(f"pushing {seconds:g} s live through noop ...", file=sys.stderr, flush=True)
        url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/bench?pipeline=noop"
        proc = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(clip),
            "-c", "copy", "-f", "flv", url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await proc.wait()
        manager = gw.live_ai
        assert manager is not None
        for _ in range(150):  # the stream's last output is drained just after ffmpeg exits
            if "bench" in manager.finished:
                break
            await asyncio.sleep(0.2)
        status = manager.finished.get("bench") or manager.status("bench") or {}
        timings = status.get("timings", {})
        round_trips = [
            manager.listed_at[("bench-out", seq)] - at
            for seq, at in source_listed.items()
            if ("bench-out", seq) in manager.listed_at
        ]
        publish = list(manager.publish_time.recent)
        await gw.stop()
        await orch.stop()

    first_byte = timings.get("input_first_byte", {})
    handoff = timings.get("output_handoff", {})
    result: dict[str, Any] = {
        "segments_in": len(source_listed),
        "segments_out": len(round_trips),
        "input_first_byte_ms_p95": round(first_byte.get("p95", 0) * 1000, 2),
        "input_first_byte_ms_max": round(first_byte.get("max", 0) * 1000, 2),
        "output_handoff_ms_p95": round(handoff.get("p95", 0) * 1000, 2),
        "output_publish_ms_p50": round(_pct(publish, 0.5) * 1000, 2),
        "output_publish_ms_p99": round(_pct(publish, 0.99) * 1000, 2),
        "segment_round_trip_ms_p50": round(_pct(round_trips, 0.5) * 1000, 2),
        "segment_round_trip_ms_p99": round(_pct(round_trips, 0.99) * 1000, 2),
    }
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if json_out:
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(result, indent=2) + "\n")
    return 0 if result["segments_out"] else 1
