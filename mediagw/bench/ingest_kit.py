"""Parts of ``mediagw bench ingest``: the publishers (the light one, or N ffmpeg), the RSS
sampler, the hub listener that notes when each segment is listed, and the figures computed
the same way for every server.

Segment latency, for any server: from the publisher's send time of the video keyframe that
closes segment k to the time segment k is listed. The keyframe is found by media time: segment
k ends (its start + duration, relative to the stream's first segment) where a keyframe is
(relative to the stream's first keyframe); PTS for mediagw's segments (their start is the first
video PTS), DTS for nginx's fragments (their EXTINF durations come from DTS). A segment closed by
the end of the stream ends at no keyframe and gives no sample.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segmenter import CLOCK, Segment

from ..config import Settings
from ..stream.hub import Stream

__all__ = [
    "Listings",
    "RssSampler",
    "StreamFigures",
    "bench_settings",
    "percentile_ms",
    "run_publishers",
    "segment_latencies",
    "stream_figures",
    "tally",
]

# what a gateway made of one stream: segments, video frames, (segment end, listed at) pairs,
# and its own latencies (keyframe received -> listed)
StreamFigures = tuple[int, int, list[tuple[float, float]], list[float]]

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MATCH_MS = 100.0  # a segment end this close to a keyframe was closed by it (3 frames at 30 fps)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile_ms(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in ms (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 2)


def segment_latencies(
    ends: Sequence[tuple[float, float]], keyframes: Sequence[Sequence[float]], *, pts: bool
) -> list[float]:
    """Seconds from each closing keyframe's send time to its segment's listing.

    ``ends``: (segment end in ms from the stream's first segment start, listed at);
    ``keyframes``: the publisher's (DTS ms, PTS ms, due, sent) of the stream."""
    if not keyframes:
        return []
    col = 1 if pts else 0
    first = keyframes[0][col]
    rel = [k[col] - first for k in keyframes]
    out: list[float] = []
    for end_ms, listed in ends:
        i = bisect.bisect_left(rel, end_ms)
        best = min((j for j in (i - 1, i) if 0 <= j < len(rel)), key=lambda j: abs(rel[j] - end_ms))
        if abs(rel[best] - end_ms) <= MATCH_MS:
            out.append(listed - keyframes[best][3])
    return out


class Listings:
    """A hub listener: when each segment of each stream was listed (``time.monotonic``). It is
    added after the HLS publisher, so a segment is in the playlist when it is noted."""

    def __init__(self) -> None:
        self.by_stream: dict[str, list[tuple[int, int, bool, float]]] = defaultdict(list)

    def on_stream_start(self, stream: Stream) -> None:
        pass

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        self.by_stream[stream.id].append(
            (segment.start_pts, segment.duration_ticks, segment.last, time.monotonic())
        )

    def on_stream_end(self, stream: Stream) -> None:
        pass

    def on_stream_removed(self, stream: Stream) -> None:
        pass

    def ends(self, stream_id: str) -> list[tuple[float, float]]:
        """(end ms from the first segment's start, listed at) of the segments a keyframe
        closed (not the last of a session)."""
        segs = self.by_stream.get(stream_id, [])
        if not segs:
            return []
        first = segs[0][0]
        return [((start + dur - first) * 1000 / CLOCK, at) for start, dur, last, at in segs
                if not last]  # fmt: skip


def bench_settings(
    work: Path, tag: str, streams: int, *, metering: bool, read_hold: float | None, **more: Any
) -> Settings:
    """A benched gateway's settings: limits above ``streams``, a store of this run's own (or
    ``more``'s ``store_url``), ``-rtmpReadHold`` when given (None: the default)."""
    settings = Settings(
        max_sessions=streams + 10,
        max_conns=streams + 10,
        max_conns_per_ip=streams + 10,
        data_dir=str(work / f"data-{tag}"),
        metering=metering,
        **more,
    )
    if read_hold is not None:
        settings = dataclasses.replace(settings, rtmp_read_hold=read_hold)
    return settings


def stream_figures(stream: Stream | None, listings: Listings) -> StreamFigures:
    """One stream's figures from the hub (None: it never published)."""
    if stream is None:
        return 0, 0, [], []
    stats = stream.stats
    return stats.segments, stats.video_frames, listings.ends(stream.id), list(stats.ingest_latency)


def tally(
    clip_segments: int, clip_frames: int, pushed: dict[str, Any], figures: Sequence[StreamFigures]
) -> tuple[list[float], int, int]:
    """Latencies, segments lost and frames lost over the streams, ``figures`` in the order of
    the publishers' URLs. The light publisher's latency is from its keyframe's send time; with
    ffmpeg publishers, the gateway's own (from the keyframe's arrival)."""
    latencies: list[float] = []
    lost_segments = lost_frames = 0
    for i, (segments, frames, ends, own) in enumerate(figures):
        lost_segments += max(0, clip_segments - segments)
        lost_frames += max(0, clip_frames - frames)
        if pushed["streams"] is not None:
            latencies += segment_latencies(ends, pushed["streams"][i]["keyframes"], pts=True)
        else:
            latencies += own
    return latencies, lost_segments, lost_frames


def nginx_ends(fragments: Sequence[tuple[str, float, float]]) -> list[tuple[float, float]]:
    """(end ms from the first fragment's start, listed at) from nginx's (URI, EXTINF, at)."""
    out, end = [], 0.0
    for _, duration, at in fragments:
        end += duration * 1000
        out.append((end, at))
    return out


class RssSampler:
    """``rss()`` (MB) every ``every`` seconds while running: its peak."""

    def __init__(self, rss: Callable[[], float], every: float = 0.5) -> None:
        self.rss, self.every = rss, every
        self.idle = rss()
        self.peak = self.idle
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.peak = max(self.peak, self.rss())

    async def stop(self) -> float:
        """The peak minus the idle RSS, MB."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, self.rss())
        return self.peak - self.idle


async def ffmpeg_push(ffmpeg: str, clip: Path, url: str, delay: float) -> tuple[int, str]:
    """``ffmpeg -re -i CLIP -c copy -f flv URL`` after ``delay`` s: its exit code and error."""
    await asyncio.sleep(delay)
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(clip),
        "-c", "copy", "-f", "flv", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if not proc.returncode:
        return 0, ""
    text = err.decode(errors="replace").strip() or f"exit {proc.returncode}"
    print(f"  publisher {url} failed: {text}", file=sys.stderr)
    return proc.returncode or 1, text


async def _ffmpeg_push(ffmpeg: str, clip: Path, url: str, delay: float) -> str:
    return (await ffmpeg_push(ffmpeg, clip, url, delay))[1]


async def run_publishers(
    kind: str, clip: Path, urls: list[str], *, ffmpeg: str = "", stagger: float = 2.0,
    limit: float = 600.0,
) -> dict[str, Any]:  # fmt: skip
    """Publish ``clip`` to every URL at live pace, starts spread over ``stagger`` s: the
    light publisher (one child process) or one ``ffmpeg -re -c copy`` per URL.

    ``{"errors": [per URL], "cpu_seconds": the publishers' CPU, "streams": the light
    publisher's per-stream results (keyframe send times) or None}``."""
    cpu0 = _children_cpu()
    if kind == "ffmpeg":
        step = stagger / len(urls)
        errors = await asyncio.gather(
            *(_ffmpeg_push(ffmpeg, clip, u, i * step) for i, u in enumerate(urls))
        )
        return {"errors": list(errors), "cpu_seconds": _children_cpu() - cpu0, "streams": None}
    with tempfile.TemporaryDirectory(prefix="mediagw-push-") as tmp:
        urls_file, out_file = Path(tmp) / "urls.json", Path(tmp) / "result.json"
        urls_file.write_text(json.dumps(urls))
        root = _ROOT  # this mediagw, whatever the cwd
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediagw.bench.flv_push", "--clip", str(clip),
            "--urls", str(urls_file), "--out", str(out_file), "--stagger", str(stagger),
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:  # the publisher bounds every wait of its own; this is a last resort
            _, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"the light publisher did not finish in {limit:.0f} s") from None
        if proc.returncode or not out_file.exists():
            raise RuntimeError(f"the light publisher failed: {err.decode(errors='replace')}")
        result = json.loads(out_file.read_text())
    for line in err.decode(errors="replace").splitlines()[:3]:
        print(f"  {line}", file=sys.stderr)
    streams = result["streams"]
    return {
        "errors": [s["error"] for s in streams],
        "cpu_seconds": _children_cpu() - cpu0,
        "cpu_seconds_push": result["cpu_seconds_push"],
        "loop": result["loop"],
        "streams": streams,
    }
