"""``mediagw bench ingest``: N concurrent 720p30 RTMP publishers against an in-process gateway.

Reports, for the gateway process alone (the ffmpeg publishers are separate processes):
- CPU seconds per stream-minute (user + system, all threads), with the usage ledger, plan limits
  and quotas on, and its ratio to the same pushes with them off (``-metering=false``), both run
  in this command: stored streams of a customer's key on a plan with quotas, so every metering
  path runs;
- segment latency, from the arrival of the keyframe that closes a segment to the segment being
  listed in the playlist, p50/p99;
- lost segments and lost frames against what the clip holds;
- the segmenter's throughput as a ratio to ``ffmpeg -c copy -f segment`` on the same file, both
  run in this command (best of a few alternating runs, so machine noise hits both alike).
Needs the ffmpeg CLI (the publishers and the baseline).
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from segmenter.bench import segment_file

from ..config import Settings
from ..errors import ConfigError
from ..gateway import Gateway


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def make_clip(
    path: Path, seconds: float, size: str, fps: int, ffmpeg: str, bitrate: str = "2500k",
    bframes: int | None = None,
) -> None:  # fmt: skip
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-g", str(fps * 2), "-keyint_min", str(fps * 2), "-sc_threshold", "0", "-b:v", bitrate,
        "-c:a", "aac", "-b:a", "128k", *(() if bframes is None else ("-bf", str(bframes))),
        "-f", "flv", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=600)


def count_video_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)


def compare_segmenter(
    clip: Path, ffmpeg: str, work: Path, rounds: int = 3, loops: int = 10
) -> dict[str, float]:
    """Best-of-N wall time of our segmenter vs the FFmpeg CLI, same input, same work.

    Both play the clip ``loops`` times as one stream and write every segment to a file, so the
    FFmpeg process's start-up is a small part of its time.
    """
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(rounds):
        out = work / f"ours{i}"
        out.mkdir(exist_ok=True)
        _, seconds = segment_file(str(clip), 2.0, out_dir=str(out), loops=loops)
        ours.append(seconds)
        shutil.rmtree(out)
        out = work / f"ff{i}"
        out.mkdir(exist_ok=True)
        started = time.perf_counter()
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1),
             "-i", str(clip), "-c", "copy", "-f", "segment", "-segment_time", "2",
             str(out / "seg%05d.ts")],
            check=True, timeout=600,
        )  # fmt: skip
        theirs.append(time.perf_counter() - started)
        shutil.rmtree(out)
    return {
        "segmenter_seconds": min(ours),
        "ffmpeg_segment_seconds": min(theirs),
        "ratio_vs_ffmpeg": min(theirs) / min(ours),
        "media_seconds_each": loops,
    }


async def push_clip(ffmpeg: str, clip: Path, url: str, delay: float) -> int:
    await asyncio.sleep(delay)
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(clip),
        "-c", "copy", "-f", "flv", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode:
        print(f"  publisher {url} failed: {err.decode(errors='replace').strip()}", file=sys.stderr)
    return proc.returncode or 0


async def _phase(
    work: Path, clip: Path, ffmpeg: str, streams: int, *, metering: bool
) -> dict[str, Any]:
    """Push ``streams`` stored streams (a customer's key, on a plan with quotas) into a fresh
    gateway, ``metering`` on or off; the gateway process's CPU and what reached the hub."""
    from ..platform import keys
    from ..platform.plans import Plan
    from ..platform.tenancy import tenant_of

    settings = Settings(
        rtmp_addr="127.0.0.1:0",
        http_addr="127.0.0.1:0",
        max_sessions=streams + 10,
        max_conns=streams + 10,
        max_conns_per_ip=streams + 10,
        data_dir=str(work / ("data-on" if metering else "data-off")),  # this run's store only
        metering=metering,
    )
    gateway = Gateway(settings)
    await gateway.start()
    assert gateway.store is not None and gateway.streams is not None
    plan = Plan(id="bench", name="bench", stream_minutes_daily=10**6, stream_minutes_monthly=10**6,
                max_concurrent_streams=streams + 10)  # fmt: skip
    await gateway.store.create_plan(plan)
    row, _ = await keys.create_key(gateway.store, "bench customer", ["streams"])
    await gateway.store.set_key_plan(row.id, plan.id)
    stored = [
        await gateway.streams.create({"name": f"bench{i}"}, tenant=tenant_of(row))
        for i in range(streams)
    ]
    label = "on" if metering else "off"
    print(f"metering {label}: pushing {streams} live-paced streams ...", file=sys.stderr,
          flush=True)  # fmt: skip
    cpu0, wall0 = _cpu(), time.perf_counter()
    rng = random.Random(1)
    codes = await asyncio.gather(
        *(
            push_clip(ffmpeg, clip, f"rtmp://127.0.0.1:{gateway.rtmp_port}/live/{s.stream_key}",
                  rng.uniform(0, 2.0))
            for s in stored
        )
    )  # fmt: skip
    # ffmpeg has exited; each session's last flush finishes just after.
    for publisher in list(gateway.ingest.publishers.values()):
        await publisher.wait_ended(timeout=30)
    cpu = _cpu() - cpu0
    wall = time.perf_counter() - wall0
    hub = [gateway.hub.get(s.playback_id) for s in stored]
    await gateway.stop()
    return {"cpu": cpu, "wall": wall, "codes": codes, "streams": hub}


async def run_ingest_bench(
    *, streams: int, seconds: float, size: str, fps: int, json_out: str = ""
) -> int:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-") as tmp:
        work = Path(tmp)
        clip = work / "clip.flv"
        print(f"encoding a {seconds:g} s {size}@{fps} test clip ...", file=sys.stderr, flush=True)
        await asyncio.to_thread(make_clip, clip, seconds, size, fps, ffmpeg)
        frames_in = await asyncio.to_thread(count_video_frames, clip)
        expected_segments, _ = await asyncio.to_thread(segment_file, str(clip), 2.0)

        print("segmenter vs ffmpeg -c copy -f segment ...", file=sys.stderr, flush=True)
        seg = await asyncio.to_thread(compare_segmenter, clip, ffmpeg, work)

        # the same pushes with the usage ledger, plan limits and quotas off, then on
        off = await _phase(work, clip, ffmpeg, streams, metering=False)
        on = await _phase(work, clip, ffmpeg, streams, metering=True)
        cpu, wall, codes = on["cpu"], on["wall"], on["codes"]
        latencies: list[float] = []
        lost_segments = lost_frames = 0
        for stream in on["streams"]:
            got_segments = stream.stats.segments if stream else 0
            got_frames = stream.stats.video_frames if stream else 0
            lost_segments += max(0, expected_segments - got_segments)
            lost_frames += max(0, frames_in - got_frames)
            if stream:
                latencies.extend(stream.stats.ingest_latency)

    stream_minutes = streams * seconds / 60
    result: dict[str, Any] = {
        "streams": streams,
        "clip": f"{size}@{fps} {seconds:g}s H.264+AAC",
        "publishers_failed": sum(1 for c in codes if c),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_per_stream_minute": round(cpu / stream_minutes, 3),
        "cpu_seconds_metering_off": round(off["cpu"], 2),
        "metering_cpu_ratio": round(cpu / off["cpu"], 3) if off["cpu"] else 0.0,
        "segment_latency_ms_p50": round(_pct(latencies, 0.50) * 1000, 2),
        "segment_latency_ms_p99": round(_pct(latencies, 0.99) * 1000, 2),
        "segments_expected": expected_segments * streams,
        "segments_lost": lost_segments,
        "frames_lost": lost_frames,
        "segmenter_seconds": round(seg["segmenter_seconds"], 4),
        "ffmpeg_segment_seconds": round(seg["ffmpeg_segment_seconds"], 4),
        "segmenter_ratio_vs_ffmpeg": round(seg["ratio_vs_ffmpeg"], 2),
        "segmenter_media_seconds": round(seg["media_seconds_each"] * seconds),
        "latency_samples": len(latencies),
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if json_out:
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(result, indent=2) + "\n")
    ok = result["segments_lost"] == 0 and result["publishers_failed"] == 0
    return 0 if ok else 1
