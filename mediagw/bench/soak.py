"""``mediagw bench soak``: many streams for a long while; does the gateway grow or lose anything?

Every party is its own process, so what is measured is the gateway alone: the gateway (``mediagw
run``), two reference orchestrators (``mediagw orchestrator``: one transcoding, one that also
runs the live AI model ``noop``), one ffmpeg CLI publisher per stream looping a small
pre-encoded clip (``-re -stream_loop -1 -c copy``: 320x180 15 fps, so publishers cost little).
``--streams`` streams (10), ``--live-ai`` of them (2) live AI (``?pipeline=noop``, the output
is ``NAME-out``), the others transcoded into a small ladder (256x144 and 160x90, 15 fps). HLS
viewers (playlist + new segments every second) and WHEP viewers (aiortc on loopback; a
stream's source ``/webrtc/NAME``, an AI output ``/live/video-to-video/NAME/whep``) join a
random stream, stay a random while, leave (DELETE), and come again, all through the run.

Every ``--sample-seconds`` (60) it samples the gateway process: RSS, open fds and threads (from
/proc) and asyncio tasks (its ``/metrics``: ``mediagw_asyncio_tasks``), its CPU, the load
average and the segments listed so far, one row each (stderr as it goes, the table on stdout).

Checks (exit code 1 if one fails):

- growth < 5 % for each of RSS, fds, threads and tasks after the warm-up (10 % of the run or
  5 minutes, whichever is shorter). The rule: "start" is the median of the first 3 samples
  taken at or after the warm-up, "end" the median of the last 3 (with fewer than 6 such
  samples, 1 each: the warm-up sample and the last). Medians of 3 keep one viewer joining at
  the moment of a sample from deciding; a leak grows every sample and shows all the same;
- no segment lost: every stream's source playlist lists every seq from 0 to its last, each
  transcoded rendition lists every source seq (a missing one or an ``EXT-X-GAP`` is lost), an
  AI output lists every seq from 0 to its last, and the live AI session's own counters
  (``/live/video-to-video/NAME/status``) dropped, failed or skipped no input segment. The
  playlists are polled every 2 s with a 10-segment window (``-hlsWindow 10``: 20 s), so a
  poll never misses one;
- every publisher ran to the end, every playlist ended (``EXT-X-ENDLIST``), and the viewers
  got media (HLS segments, WHEP frames).

Needs Linux (/proc) and the ffmpeg CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from ..errors import ConfigError
from .ingest import make_clip
from .nodes import _Node
from .soak_kit import Child, Sample, Viewers, Watch, cpu_of, orchestrator, publisher, sample

__all__ = ["growth", "run_soak_bench"]

LADDER = [
    {"name": "144p", "width": 256, "height": 144, "bitrate": 200_000, "fps": 15},
    {"name": "90p", "width": 160, "height": 90, "bitrate": 100_000, "fps": 15},
]
LIMIT_PCT = 5.0
METRICS = ("rss_mb", "fds", "threads", "tasks")
HEADER = ("time", "RSS MB", "fds", "threads", "tasks", "gw CPU %", "all CPU %", "load1", "src segs",
          "out segs", "viewers")  # fmt: skip
END_TIMEOUT = 60.0  # seconds for every playlist to end after the publishers stop


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _row(s: Sample) -> tuple[str, ...]:
    return (f"{int(s.t) // 60}:{int(s.t) % 60:02d}", f"{s.rss_mb:.1f}", str(s.fds),
            str(s.threads), str(s.tasks),
            f"{s.cpu_pct:.0f}", f"{s.all_cpu_pct:.0f}", f"{s.load1:.2f}", str(s.source_segments),
            str(s.output_segments), str(s.viewers))  # fmt: skip


def format_rows(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def growth(samples: Sequence[Sample], warmup: float) -> dict[str, dict[str, Any]]:
    """Per metric: start, end and growth % after the warm-up (the rule in the module doc)."""
    after = [s for s in samples if s.t >= warmup]
    if len(after) < 2:
        return {}
    k = 3 if len(after) >= 6 else 1
    out: dict[str, dict[str, Any]] = {}
    for name in METRICS:
        start = statistics.median(getattr(s, name) for s in after[:k])
        end = statistics.median(getattr(s, name) for s in after[-k:])
        pct = 100 * (end - start) / start if start else 0.0
        out[name] = {"start": start, "end": end, "growth_pct": round(pct, 2),
                     "ok": pct < LIMIT_PCT}  # fmt: skip
    return out


def _lost(watch: Watch, name: str, ai: bool, status: dict[str, Any]) -> dict[str, Any]:
    """Segments lost by one stream (see the module doc)."""
    src = watch.seen[(name, "source")]
    last = max(src.seqs, default=-1)
    result: dict[str, Any] = {"stream": name, "kind": "live AI" if ai else "transcode",
                              "source_segments": last + 1,
                              "source_lost": len(src.missing(range(last + 1)))}  # fmt: skip
    outs = {k[1] if k[0] == name else "out": s for k, s in watch.seen.items()
            if k[0] in (name, name + "-out") and k != (name, "source")}  # fmt: skip
    for label, seen in outs.items():
        want = range(max(seen.seqs, default=-1) + 1) if ai else sorted(src.seqs)
        result[f"{label}_lost"] = len(seen.missing(want))
        result[f"{label}_segments"] = len(seen.seqs)
    if ai:
        seg = status.get("gateway_status", {}).get("segments", {})
        result["ai_in"], result["ai_out"] = seg.get("in", 0), seg.get("out", 0)
        result["ai_lost"] = sum(int(seg.get(k, 0)) for k in ("dropped", "failed", "skipped"))
        if not seg:
            result["ai_lost"] = None  # no status: cannot tell
    result["ended"] = all(s.ended for k, s in watch.seen.items() if k[0] in (name, name + "-out"))
    lost = [v for k, v in result.items() if k.endswith("_lost")]
    result["lost"] = None if None in lost else sum(lost)
    return result


async def _ai_status(http: aiohttp.ClientSession, base: str, name: str) -> dict[str, Any]:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
        async with http.get(f"{base}/live/video-to-video/{name}/status") as resp:
            if resp.status == 200:
                doc = await resp.json()
                return doc if isinstance(doc, dict) else {}
    return {}


async def _run(work: Path, ffmpeg: str, opts: dict[str, Any], out: dict[str, Any]) -> None:
    streams, live_ai, seconds = opts["streams"], opts["live_ai"], opts["minutes"] * 60
    names = [f"ai{i}" if i < live_ai else f"s{i:02d}" for i in range(streams)]
    ai = set(names[:live_ai])
    clip = work / "clip.flv"
    await asyncio.to_thread(
        make_clip, clip, 10, "320x180", 15, ffmpeg, "300k", 0
    )  # no B-frames: WHEP
    ladder = work / "ladder.json"
    await asyncio.to_thread(ladder.write_text, json.dumps(LADDER))
    orchs: list[Child] = []
    pubs: list[Child] = []
    gw: _Node | None = None
    viewers: Viewers | None = None
    watch: Watch | None = None
    try:
        started_orchs = await asyncio.gather(
            orchestrator(work, "orch-transcode", ["-maxSessions", str(streams + 2)], orchs),
            orchestrator(work, "orch-live", ["-maxSessions", str(streams + 2), "-liveModels",
                                             "noop", "-liveCapacity", str(max(1, live_ai))],
                         orchs),
            return_exceptions=True,
        )  # fmt: skip
        for failed in started_orchs:
            if isinstance(failed, BaseException):
                raise failed
        url1, url2 = (str(u) for u in started_orchs)
        gw = _Node(work, "gateway", ["-orchAddr", f"{url1},{url2}", "-transcodingOptions",
                                     str(ladder), "-webrtcHostAddresses", "127.0.0.1",
                                     "-hlsWindow", "10"])  # fmt: skip
        await gw.start()
        assert gw.proc is not None
        pid, base = gw.proc.pid, gw.url
        _progress(f"gateway pid {pid} at {base}; orchestrators {url1} (transcode), {url2} (live)")
        keys = [(n, "source") for n in names]
        keys += [(n + "-out", "source") for n in names if n in ai]
        keys += [(n, str(r["name"])) for n in names if n not in ai for r in LADDER]
        watch = Watch(base, keys)
        pubs += [publisher(ffmpeg, clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{n}"
                           + ("?pipeline=noop" if n in ai else ""), work / f"pub-{n}.log")
                 for n in names]  # fmt: skip
        started = time.monotonic()
        for pub in pubs:
            await pub.start()
        watch.start()
        stay_max = min(120.0, max(4.0, seconds / 3))
        viewers = Viewers(
            base, keys, [f"/live/video-to-video/{n}/whep" if n in ai else f"/webrtc/{n}"
                         for n in names], (min(20.0, stay_max / 2), stay_max),
        )  # fmt: skip
        samples: list[Sample] = out["samples"]
        statuses: dict[str, dict[str, Any]] = {}
        interval, viewers_on = opts["sample_seconds"], False
        _progress(format_rows([HEADER]))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            others = [p.proc.pid for p in (*orchs, *pubs) if p.proc is not None]
            others.append(os.getpid())
            last_cpu = (time.monotonic(), gw.cpu(), gw.cpu() + cpu_of(others))
            k = 0
            while True:
                at = min(started + k * interval, started + seconds)
                while time.monotonic() < at:
                    await asyncio.sleep(min(1.0, at - time.monotonic()))
                    if not viewers_on and time.monotonic() - started > 4:
                        viewers.start(opts["hls_viewers"], opts["whep_viewers"])
                        viewers_on = True
                s, last_cpu = await sample(http, base, pid, others, time.monotonic() - started,
                                           last_cpu, watch, viewers.watching)  # fmt: skip
                samples.append(s)
                _progress(format_rows([HEADER, _row(s)]).splitlines()[-1])
                for n in ai:
                    statuses[n] = await _ai_status(http, base, n) or statuses.get(n, {})
                if at >= started + seconds:
                    break
                k += 1
            out["publishers_exited_early"] = {p.name: p.exited() for p in pubs
                                              if p.exited() is not None}  # fmt: skip
            await viewers.stop()
            _progress("stopping the publishers ...")
            await asyncio.gather(*(p.stop() for p in pubs))
            out["playlists_ended"] = await watch.until_ended(END_TIMEOUT)
            await watch.poll(http)
            for n in ai:
                statuses[n] = await _ai_status(http, base, n) or statuses.get(n, {})
        out["streams"] = [_lost(watch, n, n in ai, statuses.get(n, {})) for n in names]
        failures = viewers.failures
        out["viewers"] = {
            "joins": viewers.joins, "hls_segments": viewers.hls_segments,
            "whep_frames": viewers.whep_frames,
            "failures": {k: sorted(set(v))[:10] for k, v in failures.items()},
            "failure_counts": {k: len(v) for k, v in failures.items()},
        }  # fmt: skip
    finally:
        if viewers is not None:
            await viewers.stop()
        if watch is not None:
            await watch.stop()
        # publishers first, then the gateway and the orchestrators; whatever is left: killed
        await asyncio.gather(*(p.stop() for p in pubs), return_exceptions=True)
        stops = [gw.stop()] if gw is not None else []
        await asyncio.gather(*stops, *(o.stop() for o in orchs), return_exceptions=True)
        for child in (*pubs, *orchs):
            child.kill()
        if gw is not None and gw.proc is not None and gw.proc.poll() is None:
            gw.proc.kill()


def _report(out: dict[str, Any]) -> bool:
    """Print the final table and the checks; True when every check passed."""
    samples: list[Sample] = out["samples"]
    print(format_rows([HEADER, *(_row(s) for s in samples)]))
    warm = out["warmup_s"]
    print(f"\nwarm-up: the first {warm:g} s ({out['warmup_rule']}); growth from the warm-up "
          f"to the end ({out['growth_rule']}), pass < {LIMIT_PCT:g} %:")  # fmt: skip
    ok = bool(out["growth"])
    if not ok:
        print("  not enough samples after the warm-up: run longer or sample more often")
    for name, g in out["growth"].items():
        ok &= g["ok"]
        print(f"  {name:<8} {g['start']:>9g} -> {g['end']:>9g}  {g['growth_pct']:+.2f} %  "
              f"{'ok' if g['ok'] else 'FAIL'}")  # fmt: skip
    print(
        "\nsegments lost (source: seqs 0..last; renditions: every source seq; AI: output "
        "seqs 0..last and the session's dropped/failed/skipped):"
    )
    for st in out.get("streams", []):
        parts = ", ".join(f"{k.removesuffix('_lost')} {v}" for k, v in st.items()
                          if k.endswith("_lost"))  # fmt: skip
        flag = "ok" if st["lost"] == 0 and st["ended"] else "FAIL"
        ended = "" if st["ended"] else ", playlists did not end"
        print(f"  {st['stream']:<5} {st['kind']:<9} {st['source_segments']:>5} segments, "
              f"lost: {parts}{ended}  {flag}")  # fmt: skip
        ok &= flag == "ok"
    early = out.get("publishers_exited_early", {})
    if early:
        print(f"publishers that exited before the end: {early}  FAIL")
        ok = False
    v = out.get("viewers", {})
    print(f"\nviewers: joins {v.get('joins')}, HLS segments {v.get('hls_segments')}, WHEP "
          f"frames {v.get('whep_frames')}, failed joins {v.get('failure_counts')}")  # fmt: skip
    for kind, failures in v.get("failures", {}).items():
        for failure in failures:
            print(f"  {kind}: {failure}")
    if not v.get("hls_segments") or not v.get("whep_frames"):
        print("  the viewers got no media  FAIL")
        ok = False
    if any(v.get("failure_counts", {}).values()):
        print("  viewers could not join or watch  FAIL")
        ok = False
    print(f"\nsoak: {'PASS' if ok else 'FAIL'}")
    return ok


async def _stoppable(run: Coroutine[Any, Any, None]) -> bool:
    """Run ``run``; SIGINT (Ctrl-C) or SIGTERM cancel it, so its ``finally`` stops every process
    it started (SIGINT is handled here too: a shell's background job ignores it otherwise).
    False when a signal stopped it."""
    loop, task = asyncio.get_running_loop(), asyncio.ensure_future(run)
    signals: list[int] = []

    def stop(sig: int) -> None:
        if not signals:  # once: a second signal must not cut the clean-up short
            task.cancel()
        signals.append(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        await task
    except asyncio.CancelledError:
        if not signals:
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return not signals


async def run_soak_bench(
    *, minutes: float = 60.0, streams: int = 10, live_ai: int = 2, hls_viewers: int = 4,
    whep_viewers: int = 2, sample_seconds: float = 60.0, json_out: str = "",
) -> int:  # fmt: skip
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    if not await asyncio.to_thread(os.path.exists, "/proc/self/status"):
        raise ConfigError("the soak benchmark reads the gateway from /proc: run it on Linux")
    if not (0 <= live_ai <= streams and streams >= 1 and minutes > 0 and sample_seconds > 0):
        raise ConfigError("need --streams >= 1, 0 <= --live-ai <= --streams, --minutes > 0")
    seconds = minutes * 60
    warmup = min(0.1 * seconds, 300.0)
    out: dict[str, Any] = {
        "minutes": minutes, "streams": streams, "live_ai": live_ai,
        "hls_viewers": hls_viewers, "whep_viewers": whep_viewers,
        "sample_seconds": sample_seconds, "ladder": LADDER, "warmup_s": warmup,
        "warmup_rule": "10 % of the run" if warmup < 300 else "5 minutes", "samples": [],
    }  # fmt: skip
    opts = {"minutes": minutes, "streams": streams, "live_ai": live_ai,
            "hls_viewers": hls_viewers, "whep_viewers": whep_viewers,
            "sample_seconds": sample_seconds}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-soak-") as tmp:
        _progress(f"soak: {streams} streams ({live_ai} live AI) for {minutes:g} min, "
                  f"{hls_viewers} HLS + {whep_viewers} WHEP viewer slots")  # fmt: skip
        if not await _stoppable(_run(Path(tmp), ffmpeg, opts, out)):
            _progress("soak: stopped by a signal; every process it started is stopped")
            return 130
    after = sum(1 for s in out["samples"] if s.t >= warmup)
    out["growth_rule"] = (
        "median of the first 3 samples after it vs median of the last 3" if after >= 6
        else "the warm-up sample vs the last sample"
    )  # fmt: skip
    out["growth"] = growth(out["samples"], warmup)
    ok = _report(out)
    out["pass"] = ok
    if json_out:
        doc = {**out, "samples": [s.as_dict() for s in out["samples"]]}
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(doc, indent=2) + "\n")
    return 0 if ok else 1
