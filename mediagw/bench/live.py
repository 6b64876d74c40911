"""``mediagw bench live``: what the gateway adds on the live AI path, through ``noop``.

In-process reference orchestrators run ``noop`` (the output is the input, untouched); the gateway
transcodes nothing else. The phases (``--phases``, all by default):

- ``gateway``: an ffmpeg publisher pushes a live-paced 720p30 clip over RTMP with
  ``?pipeline=noop``. Reported: input segment handed to the session (its first keyframe cut:
  input goes out progressively) -> its first byte on the trickle input channel, and capture ->
  first byte on trickle (its first keyframe reached the gateway -> that byte); output segment
  fully received -> handed to the manager, and -> listed in HLS and queued for WHEP; source
  segment listed -> the same AI output segment listed.
- ``whip``: glass-to-glass. A client process (:mod:`.glass`) publishes numbered frames over WHIP
  and watches the AI output over WHEP (and polls its HLS); each frame's latency is its display
  time minus its capture time, split per segment (:func:`.figures.analyse`).
- ``rtmp``: the same with an RTMP publisher (libx264, 1 s GOP, FFmpeg's RTMP client).
- ``hls``: WHIP publisher; hls.js in headless Chromium plays the output's TS playlist and its
  LL-HLS playlist (``LL_URL_TEMPLATE``; "unavailable" while it answers 404) and reads the frame
  numbers it shows; the TS playlist's poller figure (glass-to-HLS) comes with it.
- ``swap``: two orchestrators; the one serving the stream loses its output channel (the
  reference O's ``live_output_404`` fault) after two outputs; the output gap across the swap
  against the segment duration.

Each glass-to-glass phase runs ``runs`` times (a fresh stream each); the median of the runs'
figures is reported. The client runs in its own process so encoding and decoding do not share the
gateway's loop and CPU. Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from ..gateway import Gateway
from . import LIVE_PHASES, LL_URL_TEMPLATE
from .figures import analyse, players, summarise_runs, swap_figures
from .ingest import make_clip

__all__ = ["LL_URL_TEMPLATE", "PHASES", "run_live_bench"]

PHASES = LIVE_PHASES
# per-segment first-byte times the split wants from the gateway's LiveSession, when it has them:
# input seq -> monotonic time of its first byte on the trickle input channel, and output seq ->
# the first byte of that output segment received; else the split uses the segments' listing
INPUT_FIRST_BYTE_FIELD = "input_first_byte_at"
OUTPUT_FIRST_BYTE_FIELD = "output_first_byte_at"
MEDIAN_KEYS = (
    "g2g_whep_ms_p50", "g2g_whep_ms_p99", "g2g_hls_first_frame_ms_p50",
    "g2g_part_capture_to_input_ms_p50", "g2g_part_orchestrator_round_trip_ms_p50",
    "g2g_part_output_to_whep_shown_ms_p50", "hlsjs_ts_ms_p50", "hlsjs_ts_ms_p99",
    "hlsjs_ll_ms_p50", "hlsjs_ll_ms_p99", "swap_output_gap_ms", "swap_viewer_longest_pause_ms",
)  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Tap:
    """A hub listener: when each source segment is listed, its duration, and the live session
    of each stream (the manager, a listener added before, has started it)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.listed: dict[str, dict[int, float]] = {}
        self.durations: dict[str, list[float]] = {}
        self.sessions: dict[str, Any] = {}

    def on_stream_start(self, stream: Any) -> None:
        run = self.gw.live_ai.runs.get(stream.id) if self.gw.live_ai else None
        if run is not None:
            self.sessions[stream.id] = run.session

    def on_stream_end(self, stream: Any) -> None: ...
    def on_stream_removed(self, stream: Any) -> None: ...

    def on_segment(self, stream: Any, segment: Any) -> None:
        self.listed.setdefault(stream.id, {})[segment.seq] = time.monotonic()
        if not segment.last:  # the final segment is cut short by the publisher's stop
            self.durations.setdefault(stream.id, []).append(segment.duration)


@dataclass
class _Bench:
    gw: Gateway
    tap: _Tap
    orchs: list[Any]
    seconds: float
    size: str
    ll_url_template: str


@contextlib.asynccontextmanager
async def _bench_gateway(
    tmp: Path, orchestrators: int, segment_duration: float, seconds: float, size: str, ll: str
) -> AsyncIterator[_Bench]:
    from ..orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

    orchs = [ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS))
             for _ in range(orchestrators)]  # fmt: skip
    for orch in orchs:
        await orch.start()
    loopback = "127.0.0.1"
    settings = Settings(rtmp_addr=f"{loopback}:0", http_addr=f"{loopback}:0",
                        orch_addr=tuple(o.url for o in orchs), transcoding_options="",
                        webrtc_host_addresses=(loopback,),
                        live_ai_segment_duration=segment_duration,
                        data_dir=str(tmp / f"data-{orchestrators}"))  # fmt: skip
    gw = Gateway(settings)
    await gw.start()
    tap = _Tap(gw)
    gw.hub.add_listener(tap)
    try:
        yield _Bench(gw, tap, orchs, seconds, size, ll)
    finally:
        await gw.stop()
        for orch in orchs:
            await orch.stop()


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


async def _gateway_added(b: _Bench, ffmpeg: str, clip: Path) -> dict[str, Any]:
    gw, tap = b.gw, b.tap
    manager = gw.live_ai
    assert manager is not None
    _progress(f"gateway: pushing {b.seconds:g} s live through noop ...")
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


async def _client(b: _Bench, stream: str, *args: str) -> dict[str, Any]:
    """Run the glass-to-glass client process on ``stream``; its raw times."""
    base = f"http://127.0.0.1:{b.gw.http_port}"
    cmd = [sys.executable, "-m", "mediagw.bench.glass", "--base", base, "--stream", stream,
           "--seconds", f"{b.seconds:g}", "--size", b.size, *args]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), b.seconds + 120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ConfigError("the glass-to-glass client did not finish") from None
    if proc.returncode != 0:
        raise ConfigError(f"the glass-to-glass client failed (exit {proc.returncode})")
    raw: dict[str, Any] = json.loads(out)
    return raw


def _marks(session: Any, name: str) -> dict[int, float] | None:
    marks = getattr(session, name, None)
    return dict(marks) if marks else None


async def _figures(b: _Bench, stream: str, raw: dict[str, Any]) -> dict[str, Any]:
    manager = b.gw.live_ai
    assert manager is not None
    status = await _wait_finished(b.gw, stream)
    out_id = f"{stream}-out"
    output_listed = {seq: at for (sid, seq), at in manager.listed_at.items() if sid == out_id}
    session = b.tap.sessions.get(stream)
    result = analyse(
        raw,
        b.tap.listed.get(stream, {}),
        output_listed,
        b.tap.durations.get(stream, []),
        _marks(session, INPUT_FIRST_BYTE_FIELD),
        _marks(session, OUTPUT_FIRST_BYTE_FIELD),
    )
    result["_status"] = status
    return result


async def _phase_g2g(b: _Bench, phase: str, run: int) -> dict[str, Any]:
    stream = f"{phase}-{run}"
    args: list[str] = []
    if phase == "rtmp":
        args = ["--rtmp", f"rtmp://127.0.0.1:{b.gw.rtmp_port}/live/{stream}?pipeline=noop"]
    elif phase == "hls":
        args = ["--players", "--ll-url", b.ll_url_template.format(id=f"{stream}-out")]
    _progress(f"{phase} run {run}: glass-to-glass for {b.seconds:g} s ...")
    raw = await _client(b, stream, *args)
    result = await _figures(b, stream, raw)
    result.pop("_status")
    if phase == "hls":
        reported = raw.get("players") or {}
        if "unavailable" in reported:
            result["hlsjs"] = f"unavailable: {reported['unavailable']}"
        else:
            result.update(players(raw["captured_wall"], reported))
            if "ll_unavailable" in reported:
                result["hlsjs_ll"] = f"unavailable: {reported['ll_unavailable']}"
    return result


async def _phase_swap(b: _Bench, run: int) -> dict[str, Any]:
    stream = f"swap-{run}"
    manager = b.gw.live_ai
    assert manager is not None

    async def fail_current() -> None:
        out_id = f"{stream}-out"
        for _ in range(round(4 * b.seconds / 0.05)):  # two outputs (or give up)
            if sum(1 for sid, _ in manager.listed_at if sid == out_id) >= 2:
                break
            await asyncio.sleep(0.05)
        session = b.tap.sessions[stream]
        victim = next(o for o in b.orchs if session.current.url == o.service_uri)
        victim.faults.live_stream = stream
        victim.faults.live_output_404 = -1  # the output channel is gone: the gateway swaps
        _progress(f"swap run {run}: {victim.service_uri} lost the output channel")

    _progress(f"swap run {run}: WHIP through two orchestrators for {b.seconds:g} s ...")
    fault = asyncio.ensure_future(fail_current())
    try:
        raw = await _client(b, stream)
    finally:
        fault.cancel()
    result = await _figures(b, stream, raw)
    status = result.pop("_status")
    timings = status.get("timings", {})
    gaps, steady = timings.get("swap_output_gaps", []), timings.get("output_gap", {})
    swap = swap_figures(raw["shown"], gaps, b.tap.durations.get(stream, []), steady.get("mean", 0))
    return {**swap, "g2g_whep_ms_p50": result["g2g_whep_ms_p50"],
            "g2g_frames_matched": result["g2g_frames_matched"]}  # fmt: skip


def _row(phase: str, label: str, r: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return f"{r[key]:.0f}" if isinstance(r.get(key), int | float) else "-"

    if phase == "swap":
        return (f"{phase:<7} {label:<7} gap {ms('swap_output_gap_ms')} ms (viewer pause "
                f"{ms('swap_viewer_longest_pause_ms')} ms) vs segment "
                f"{ms('swap_segment_duration_ms')} ms, steady output gap "
                f"{ms('swap_steady_output_gap_ms')} ms")  # fmt: skip
    text = (f"{phase:<7} {label:<7} WHEP p50 {ms('g2g_whep_ms_p50')} p99 {ms('g2g_whep_ms_p99')}"
            f" | split {ms('g2g_part_capture_to_input_ms_p50')} / "
            f"{ms('g2g_part_orchestrator_round_trip_ms_p50')} / "
            f"{ms('g2g_part_output_to_whep_shown_ms_p50')} | HLS poll "
            f"{ms('g2g_hls_first_frame_ms_p50')}")  # fmt: skip
    if phase == "hls" and "hlsjs" in r:  # no Chromium or hls.js here
        text += f" | hls.js {r['hlsjs']}"
    elif phase == "hls":
        ll = r.get("hlsjs_ll") or f"p50 {ms('hlsjs_ll_ms_p50')} p99 {ms('hlsjs_ll_ms_p99')}"
        text += (f" | hls.js TS p50 {ms('hlsjs_ts_ms_p50')} p99 {ms('hlsjs_ts_ms_p99')}, "
                 f"LL {ll}")  # fmt: skip
    return text


def _print_table(result: dict[str, Any]) -> None:
    gateway = result.get("gateway")
    if gateway:
        width = max(len(k) for k in gateway)
        for k, v in gateway.items():
            print(f"{k:<{width}}  {v}")
    print("phase   run     ms (split: capture -> input / orchestrator round trip / -> shown)")
    for phase in PHASES[1:]:
        if phase not in result:
            continue
        for i, run in enumerate(result[phase]["runs"], 1):
            print(_row(phase, str(i), run))
        if len(result[phase]["runs"]) > 1:
            print(_row(phase, "median", result[phase]["median"]))


def _ok(result: dict[str, Any]) -> bool:
    ok = not result.get("gateway") or bool(result["gateway"]["segments_out"])
    for phase in ("whip", "rtmp", "hls"):
        ok = ok and all(r["g2g_frames_matched"] for r in result.get(phase, {}).get("runs", []))
    return ok and all(r["swaps"] >= 1 for r in result.get("swap", {}).get("runs", []))


async def run_live_bench(
    *,
    seconds: float,
    json_out: str = "",
    phases: Sequence[str] = PHASES,
    runs: int = 3,
    g2g_size: str = "1280x720",
    segment_duration: float = 1.0,
    ll_url_template: str = LL_URL_TEMPLATE,
) -> int:
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise ConfigError(f"unknown bench phase {unknown}: choose from {', '.join(PHASES)}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None and "gateway" in phases:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        args = (segment_duration, seconds, g2g_size, ll_url_template)
        if set(phases) - {"swap"}:
            async with _bench_gateway(tmp, 1, *args) as b:
                if "gateway" in phases and ffmpeg is not None:
                    clip = tmp / "clip.flv"
                    _progress(f"encoding a {seconds:g} s 1280x720@30 clip ...")
                    await asyncio.to_thread(make_clip, clip, seconds, "1280x720", 30, ffmpeg)
                    result["gateway"] = await _gateway_added(b, ffmpeg, clip)
                for phase in ("whip", "rtmp", "hls"):
                    if phase in phases:
                        done = [await _phase_g2g(b, phase, i) for i in range(1, runs + 1)]
                        result[phase] = {"runs": done, "median": summarise_runs(done, MEDIAN_KEYS)}
        if "swap" in phases:
            async with _bench_gateway(tmp, 2, *args) as b:
                done = [await _phase_swap(b, i) for i in range(1, runs + 1)]
                result["swap"] = {"runs": done, "median": summarise_runs(done, MEDIAN_KEYS)}
    _print_table(result)
    if json_out:
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(result, indent=2) + "\n")
    return 0 if _ok(result) else 1
