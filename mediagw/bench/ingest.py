"""``mediagw bench ingest``: N concurrent live-paced 720p30 RTMP publishers against mediagw (an
in-process gateway), and with ``--baseline nginx-rtmp`` against Debian's nginx-rtmp (HLS on, one
worker) with the same publishers, clip and counts, in one command.

Per server and stream count (``--streams 50`` or a ramp ``50,100,200,300``):
- CPU seconds per stream-minute (user + system, all threads) over the push: mediagw's is this
  process's (the publishers are child processes), with the usage ledger, plan limits and quotas
  on (stored streams of a customer's key on a plan with quotas); nginx's its master's + worker's;
  and their ratio;
- memory per stream: peak RSS during the push minus RSS before it (sampled every 0.5 s), / N;
- segment latency p50/p99, measured from outside the same way for both (:mod:`.ingest_kit`);
- lost segments against what the clip holds (and lost frames for mediagw), publishers failed,
  the publishers' CPU;
- the highest count with 0 lost segments and segment latency p99 <= 50 ms.
Publishers: ``light`` (:mod:`.flv_push`: one process, N sockets, pre-chunked FLV) or ``ffmpeg``
(N ``ffmpeg -re -c copy``; latency then from the gateway's own keyframe arrival, nginx none).
``--extras``: also the same pushes with metering off (the ratio) and the segmenter's throughput
against ``ffmpeg -c copy -f segment`` (best of alternating runs). Needs the ffmpeg CLI.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segmenter.bench import segment_file

from ..errors import ConfigError
from ..gateway import Gateway
from ..threads import freeze_startup_heap, tune_gil
from .ingest_kit import (
    Listings,
    RssSampler,
    bench_settings,
    ffmpeg_push,
    nginx_ends,
    percentile_ms,
    run_publishers,
    segment_latencies,
    stream_figures,
    tally,
)
from .nginx_rtmp import NginxRtmp, PlaylistWatcher
from .process import proc_figures

LATENCY_P99_MS = 50.0  # a step "reached": 0 lost segments and p99 at most this


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _self_rss() -> float:
    return proc_figures(os.getpid())[0]


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
    """One ``ffmpeg -re -c copy`` publisher (the other benches'): its exit code."""
    return (await ffmpeg_push(ffmpeg, clip, url, delay))[0]


class _Clip:
    """The clip and what it holds."""

    def __init__(self, path: Path, seconds: float, frames: int, segments: int) -> None:
        self.path, self.seconds, self.frames, self.segments = path, seconds, frames, segments


async def _mediagw_phase(
    work: Path, clip: _Clip, streams: int, *, publisher: str, ffmpeg: str, metering: bool,
    workers: int = 1, postgres: str = "", redis: str = "", read_hold: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Push ``streams`` stored streams (a customer's key, on a plan with quotas) into a fresh
    in-process gateway, ``metering`` on or off: its figures. The process's GIL switch interval
    is what ``mediagw run`` sets while it runs, the caller's again after. ``workers`` > 1: into
    that many worker processes instead, as ``mediagw run -workers N`` runs them."""
    if workers > 1:
        from .ingest_workers import workers_phase

        figures = await workers_phase(
            work, clip, streams, workers=workers, postgres=postgres, redis=redis,
            publisher=publisher, ffmpeg=ffmpeg, metering=metering, read_hold=read_hold,
        )  # fmt: skip
        cpu, wall, rss_mb, pushed, latencies, lost_segments, lost_frames, spread = figures
        _progress(pushed, wall)
        out = _figures(clip, streams, cpu, wall, rss_mb, pushed, latencies, lost_segments,
                       lost_frames)  # fmt: skip
        # the kernel's choice of worker per connection
        return {"workers": workers, "streams_per_worker": "/".join(map(str, spread)), **out}
    previous = tune_gil()
    try:
        return await _mediagw_push(
            work, clip, streams, publisher=publisher, ffmpeg=ffmpeg, metering=metering,
            read_hold=read_hold,
        )  # fmt: skip
    finally:
        sys.setswitchinterval(previous)
        gc.unfreeze()


async def _mediagw_push(
    work: Path, clip: _Clip, streams: int, *, publisher: str, ffmpeg: str, metering: bool,
    read_hold: float | None,
) -> dict[str, Any]:  # fmt: skip
    from ..platform import keys
    from ..platform.plans import Plan
    from ..platform.tenancy import tenant_of

    tag = f"{'on' if metering else 'off'}-{streams}"
    settings = bench_settings(
        work, tag, streams, metering=metering, read_hold=read_hold,
        rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0",
    )  # fmt: skip
    gateway = Gateway(settings)
    await gateway.start()
    freeze_startup_heap()  # as mediagw run does (undone in _mediagw_phase)
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
    listings = Listings()
    gateway.hub.add_listener(listings)  # after the HLS publisher: listed when noted
    urls = [f"rtmp://127.0.0.1:{gateway.rtmp_port}/live/{s.stream_key}" for s in stored]
    print(f"mediagw (metering {'on' if metering else 'off'}): {streams} live-paced streams ...",
          file=sys.stderr, flush=True)  # fmt: skip
    rss = RssSampler(_self_rss)
    rss.start()
    cpu0, wall0 = _cpu(), time.perf_counter()
    try:
        pushed = await run_publishers(
            publisher, clip.path, urls, ffmpeg=ffmpeg, limit=clip.seconds + 120
        )
        _progress(pushed, time.perf_counter() - wall0)
        # the publishers are gone; each session's last flush finishes just after
        sessions = list(gateway.ingest.publishers.values())
        await asyncio.gather(*(s.wait_ended(timeout=30) for s in sessions))
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
        rss_mb = await rss.stop()
        figures = [stream_figures(gateway.hub.get(s.playback_id), listings) for s in stored]
    finally:
        await rss.stop()
        await gateway.stop()
    latencies, lost_segments, lost_frames = tally(clip.segments, clip.frames, pushed, figures)
    return _figures(clip, streams, cpu, wall, rss_mb, pushed, latencies, lost_segments,
                    lost_frames)  # fmt: skip


async def _nginx_phase(
    work: Path, clip: _Clip, streams: int, *, publisher: str, ffmpeg: str, workers: int = 1
) -> dict[str, Any]:
    """The same pushes into nginx-rtmp (HLS on, ``workers`` worker processes): its figures."""
    nginx = NginxRtmp(
        work / f"nginx-{streams}", playlist_seconds=int(clip.seconds * 2 + 60), workers=workers
    )
    await nginx.start()
    watcher = PlaylistWatcher(nginx.hls)
    watcher.start()
    names = [f"s{i}" for i in range(streams)]
    print(f"nginx-rtmp: {streams} live-paced streams ...", file=sys.stderr, flush=True)
    rss = RssSampler(nginx.rss_mb)
    rss.start()
    cpu0, wall0 = nginx.cpu(), time.perf_counter()
    try:
        urls = [nginx.rtmp_url(n) for n in names]
        pushed = await run_publishers(
            publisher, clip.path, urls, ffmpeg=ffmpeg, limit=clip.seconds + 120
        )
        _progress(pushed, time.perf_counter() - wall0)
        # nginx closes a stream's last fragment when its publisher leaves: wait until every
        # stream has what the clip holds, or nothing more came for 2 s
        loop = asyncio.get_running_loop()
        last, since, deadline = -1, loop.time(), loop.time() + 15
        while loop.time() < deadline:
            listed = sum(len(v) for v in watcher.listed.values())
            if listed >= clip.segments * streams or loop.time() - since > 2:
                break
            if listed != last:
                last, since = listed, loop.time()
            await asyncio.sleep(0.1)
        cpu, wall = nginx.cpu() - cpu0, time.perf_counter() - wall0
        rss_mb = await rss.stop()
    finally:
        await rss.stop()
        await asyncio.to_thread(watcher.stop)
        await nginx.stop()
    latencies: list[float] = []
    lost = 0
    for i, name in enumerate(names):
        fragments = watcher.listed.get(name, [])
        lost += max(0, clip.segments - len(fragments))
        if pushed["streams"] is not None:
            keyframes = pushed["streams"][i]["keyframes"]
            latencies += segment_latencies(nginx_ends(fragments), keyframes, pts=False)
    out = _figures(clip, streams, cpu, wall, rss_mb, pushed, latencies, lost, None)
    out["listing_watch"] = watcher.method
    return out


def _progress(pushed: dict[str, Any], wall: float) -> None:
    failed = sum(1 for e in pushed["errors"] if e)
    print(f"  publishers done in {wall:.1f} s ({failed} failed, their CPU "
          f"{pushed['cpu_seconds']:.2f} s)", file=sys.stderr, flush=True)  # fmt: skip


def _figures(
    clip: _Clip, streams: int, cpu: float, wall: float, rss_mb: float, pushed: dict[str, Any],
    latencies: list[float], lost_segments: int, lost_frames: int | None,
) -> dict[str, Any]:  # fmt: skip
    failed = sum(1 for e in pushed["errors"] if e)
    published = max(1, streams - failed)  # per stream that published: a refused one costs ~0
    stream_minutes = published * clip.seconds / 60
    lags = [k[3] - k[2] for s in pushed["streams"] or () for k in s["keyframes"]]
    p99 = percentile_ms(latencies, 0.99)
    out: dict[str, Any] = {
        "cpu_seconds": round(cpu, 2),
        "cpu_seconds_per_stream_minute": round(cpu / stream_minutes, 3),
        "memory_mb_per_stream": round(rss_mb / published, 2),
        "segment_latency_ms_p50": percentile_ms(latencies, 0.50),
        "segment_latency_ms_p99": p99,
        "latency_samples": len(latencies),
        "segments_expected": clip.segments * streams,
        "segments_lost": lost_segments,
        "frames_lost": lost_frames,
        "publishers_failed": failed,
        "publisher_cpu_seconds": round(pushed["cpu_seconds"], 2),
        "publisher_cpu_seconds_push": round(pushed.get("cpu_seconds_push", float("nan")), 2),
        # keyframes sent after they were due (the publisher or a server that stopped reading)
        "publisher_late_ms_p99": percentile_ms(lags, 0.99),
        "wall_seconds": round(wall, 2),
    }
    errors = Counter(e for e in pushed["errors"] if e)
    if errors:  # the commonest reasons, with their counts
        out["publisher_errors"] = "; ".join(f"{n} x {e[:80]}" for e, n in errors.most_common(2))
    out["reached"] = lost_segments == 0 and out["publishers_failed"] == 0 and p99 <= LATENCY_P99_MS
    if lost_frames is None:
        del out["frames_lost"]
    return out


_NOTES = ("publisher_errors", "listing_watch")  # below a step's table, not in it


def _table(result: dict[str, Any]) -> str:
    servers = ["mediagw"] + (["nginx-rtmp"] if result["baseline"] else [])
    lines = [f"clip {result['clip']}, publisher {result['publisher']}"]
    for step in result["steps"]:
        rows: list[tuple[str, ...]] = [(f"streams {step['streams']}", *servers)]
        notes = []
        keys = dict.fromkeys(k for srv in servers for k in step[srv])
        for key in keys:
            if key in _NOTES:
                notes += [f"  {s} {key}: {step[s][key]}" for s in servers if key in step[s]]
            else:
                rows.append((key, *(str(step[s].get(key, "")) for s in servers)))
        for key, value in step.items():
            if key not in ("streams", *servers):
                rows.append((key, str(value)))
        widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(len(rows[0]))]
        lines.append("")
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()
                  for r in rows]  # fmt: skip
        lines += notes
    lines.append("")
    for server, count in result["highest_count_reached"].items():
        lines.append(f"highest count reached ({server}, 0 lost, p99 <= {LATENCY_P99_MS:g} ms): "
                     f"{count}")  # fmt: skip
    for key, value in result.get("extras", {}).items():
        lines.append(f"{key}  {value}")
    return "\n".join(lines)


async def run_ingest_bench(
    *, streams: int | Sequence[int], seconds: float, size: str, fps: int, json_out: str = "",
    publisher: str = "light", baseline: str = "", extras: bool = False, workers: int = 1,
    postgres: str = "", redis: str = "", read_hold: float | None = None,
) -> int:  # fmt: skip
    """Exit status 0 when mediagw lost nothing and no publisher failed at the first count.
    ``workers`` > 1: mediagw as ``-workers N`` (its PostgreSQL server where the bench may create
    a database, and a spare Redis database). ``read_hold``: mediagw's ``-rtmpReadHold`` (None:
    its default)."""
    counts = [streams] if isinstance(streams, int) else list(streams)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    if baseline not in ("", "nginx-rtmp"):
        raise ConfigError(f"unknown baseline {baseline!r} (nginx-rtmp)")
    if publisher not in ("light", "ffmpeg"):
        raise ConfigError(f"unknown publisher {publisher!r} (light, ffmpeg)")
    if workers > 1 and (not postgres.startswith(("postgresql://", "postgres://"))
                        or not redis.startswith("redis")):  # fmt: skip
        raise ConfigError(
            f"--workers {workers} runs mediagw as -workers does: give --postgres "
            "postgresql://USER@HOST/DB (a server where the bench may create a database) and "
            "--redis redis://HOST:PORT/N (a spare database)"
        )
    result: dict[str, Any] = {
        "clip": f"{size}@{fps} {seconds:g}s H.264+AAC", "publisher": publisher,
        "baseline": baseline, "steps": [],
        **({} if read_hold is None else {"read_hold": read_hold}),
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-") as tmp:
        work = Path(tmp)
        path = work / "clip.flv"
        print(f"encoding a {seconds:g} s {size}@{fps} test clip ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        await asyncio.to_thread(make_clip, path, seconds, size, fps, ffmpeg)
        print(f"  encoded in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        frames_in = await asyncio.to_thread(count_video_frames, path)
        expected_segments, _ = await asyncio.to_thread(segment_file, str(path), 2.0)
        clip = _Clip(path, seconds, frames_in, expected_segments)
        if extras:
            print("segmenter vs ffmpeg -c copy -f segment ...", file=sys.stderr, flush=True)
            seg = await asyncio.to_thread(compare_segmenter, path, ffmpeg, work)
            result["extras"] = {
                "segmenter_seconds": round(seg["segmenter_seconds"], 4),
                "ffmpeg_segment_seconds": round(seg["ffmpeg_segment_seconds"], 4),
                "segmenter_ratio_vs_ffmpeg": round(seg["ratio_vs_ffmpeg"], 2),
                "segmenter_media_seconds": round(seg["media_seconds_each"] * seconds),
            }
        for n in counts:
            step: dict[str, Any] = {"streams": n}
            opts: dict[str, Any] = {"publisher": publisher, "ffmpeg": ffmpeg}
            ours: dict[str, Any] = {
                "workers": workers, "postgres": postgres, "redis": redis, "read_hold": read_hold
            }  # fmt: skip
            if extras:  # the same pushes with the usage ledger, plan limits and quotas off
                off = await _mediagw_phase(work, clip, n, metering=False, **opts, **ours)
            step["mediagw"] = await _mediagw_phase(work, clip, n, metering=True, **opts, **ours)
            if extras:
                on_cpu = step["mediagw"]["cpu_seconds"]
                step["cpu_seconds_metering_off"] = off["cpu_seconds"]
                step["metering_cpu_ratio"] = round(on_cpu / off["cpu_seconds"], 3) if off[
                    "cpu_seconds"] else 0.0  # fmt: skip
            if baseline:
                step["nginx-rtmp"] = await _nginx_phase(work, clip, n, workers=workers, **opts)
                theirs = step["nginx-rtmp"]["cpu_seconds_per_stream_minute"]
                ours = step["mediagw"]["cpu_seconds_per_stream_minute"]
                step["cpu_ratio_mediagw_vs_nginx"] = round(ours / theirs, 2) if theirs else None
            result["steps"].append(step)
    servers = ["mediagw"] + (["nginx-rtmp"] if baseline else [])
    result["highest_count_reached"] = {
        s: max((st["streams"] for st in result["steps"] if st[s]["reached"]), default=0)
        for s in servers
    }
    print(_table(result))
    if json_out:
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(result, indent=2) + "\n")
    first = result["steps"][0]["mediagw"]
    return 0 if first["segments_lost"] == 0 and first["publishers_failed"] == 0 else 1
