"""``mediagw bench ...``: the benchmarks' command line (their options, and which runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

from ..config_values import read_hold
from . import LIVE_PHASES as PHASES
from . import LL_URL_TEMPLATE
from .fault_cases import CASES as FAULT_CASES

__all__ = ["add_bench_parser", "run_bench"]

FAULT_NAMES = tuple(FAULT_CASES)

RunAsync = Callable[[Coroutine[Any, Any, int]], int]


def _counts(text: str) -> list[int]:
    """``50`` or ``50,100,200``: stream counts, each at least 1."""
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        msg = f"not a count or a comma list of counts: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"counts must be at least 1: {text!r}")
    return counts


def add_bench_parser(sub: Any) -> None:
    """The ``bench`` subcommand and its benchmarks, on the top parser's subparsers."""
    bench = sub.add_parser("bench", help="benchmarks (not tests)")
    bench_sub = bench.add_subparsers(dest="bench", metavar="BENCH")
    ingest = bench_sub.add_parser(
        "ingest", help="N concurrent 720p30 RTMP publishers on loopback: CPU, memory, latency, "
        "losses; beside nginx-rtmp with --baseline nginx-rtmp"
    )  # fmt: skip
    ingest.add_argument(
        "--streams", type=_counts, default=[10],
        help="concurrent publishers: a count, or a comma list (a ramp: 50,100,200,300)",
    )  # fmt: skip
    ingest.add_argument("--seconds", type=float, default=40.0, help="length of each push")
    ingest.add_argument(
        "--publisher", choices=("light", "ffmpeg"), default="light",
        help="light: one process, N sockets, pre-chunked FLV; ffmpeg: N ffmpeg -re -c copy",
    )  # fmt: skip
    ingest.add_argument(
        "--baseline", choices=("nginx-rtmp",), default=None,
        help="also run the same pushes into Debian's nginx-rtmp (HLS on, one worker)",
    )  # fmt: skip
    ingest.add_argument(
        "--extras", action="store_true",
        help="also: metering off (CPU ratio) and the segmenter vs ffmpeg -f segment",
    )  # fmt: skip
    ingest.add_argument(
        "--workers", type=int, default=1,
        help="mediagw as -workers N (and nginx-rtmp with N worker processes); needs --postgres "
        "and --redis",
    )  # fmt: skip
    ingest.add_argument(
        "--postgres", default="",
        help="--workers: a PostgreSQL server where the bench may create a database",
    )  # fmt: skip
    ingest.add_argument("--redis", default="", help="--workers: a spare Redis database")
    ingest.add_argument(
        "--read-hold", type=read_hold, default=None,
        help="mediagw's -rtmpReadHold (default: the gateway's; 0: every read at once)",
    )  # fmt: skip
    ingest.add_argument("--size", default="1280x720", help="test video size")
    ingest.add_argument("--fps", type=int, default=30)
    ingest.add_argument("--json", dest="json_out", default="", help="also write results here")
    tbench = bench_sub.add_parser(
        "transcode", help="gateway overhead per segment vs a bare HTTPS POST; signatures/s"
    )
    tbench.add_argument("--segments", type=int, default=200, help="measured segments per run")
    tbench.add_argument("--runs", type=int, default=3, help="measured runs (CPU figure each)")
    tbench.add_argument(
        "--sampled",
        type=float,
        default=0.1,
        help="then the same runs with -verifyResults at this share (0: skip them)",
    )
    tbench.add_argument("--json", dest="json_out", default="", help="also write results here")
    lbench = bench_sub.add_parser(
        "live", help="gateway-added and glass-to-glass latency on the live AI path (noop)"
    )
    lbench.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    lbench.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated, from {','.join(PHASES)} (default: all)",
    )
    lbench.add_argument(
        "--g2g",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--no-g2g: the gateway phase only",
    )
    lbench.add_argument("--runs", type=int, default=3, help="runs of each glass-to-glass phase")
    lbench.add_argument("--g2g-size", default="1280x720", help="glass-to-glass video size")
    lbench.add_argument(
        "--segment-duration",
        type=float,
        default=1.0,
        help="live AI target segment seconds (-liveAISegmentDuration)",
    )
    lbench.add_argument(
        "--ll-url-template",
        default=LL_URL_TEMPLATE,
        help="path of the AI output's LL-HLS playlist; {id} = the output stream (NAME-out)",
    )
    lbench.add_argument("--json", dest="json_out", default="", help="also write results here")
    nbench = bench_sub.add_parser(
        "nodes",
        help="shared state's cost per stream-minute: 1 node on SQLite vs 2 on PostgreSQL + Redis",
    )
    nbench.add_argument("--streams", type=int, default=4, help="concurrent publishers")
    nbench.add_argument("--seconds", type=float, default=60.0, help="length of each push")
    nbench.add_argument(
        "--postgres", required=True, help="a PostgreSQL server URL the bench may create a DB on"
    )
    nbench.add_argument("--redis", required=True, help="a spare Redis database: redis://H:P/N")
    nbench.add_argument("--json", dest="json_out", default="", help="also write results here")
    fbench = bench_sub.add_parser(
        "faults", help="each fault against a live stream: segments lost, gap, recovery, causes"
    )
    fbench.add_argument(
        "--faults", default=",".join(FAULT_NAMES), help=f"comma-separated subset of: "
        f"{', '.join(FAULT_NAMES)}"
    )  # fmt: skip
    fbench.add_argument("--seconds", type=float, default=12.0, help="length of each push")
    fbench.add_argument(
        "--postgres", default="", help="a PostgreSQL server URL (database-restart fault)"
    )
    fbench.add_argument("--json", dest="json_out", default="", help="also write results here")
    sbench = bench_sub.add_parser(
        "soak", help="streams + viewers for long: RSS, fds, tasks, threads growth, lost segments"
    )
    sbench.add_argument("--minutes", type=float, default=60.0, help="length of the run")
    sbench.add_argument("--streams", type=int, default=10, help="concurrent publishers")
    sbench.add_argument("--live-ai", type=int, default=2, help="of them live AI (noop)")
    sbench.add_argument("--hls-viewers", type=int, default=4, help="HLS viewer slots")
    sbench.add_argument("--whep-viewers", type=int, default=2, help="WHEP viewer slots")
    sbench.add_argument("--sample-seconds", type=float, default=60.0, help="between samples")
    sbench.add_argument("--json", dest="json_out", default="", help="also write results here")
    zbench = bench_sub.add_parser(
        "fuzz", help="every network parser against mutated inputs: crashes, other exceptions"
    )
    zbench.add_argument("--target", default="all", help="a target name (see --list) or all")
    zbench.add_argument("--inputs", type=int, default=100_000, help="inputs per target")
    zbench.add_argument("--seed", type=int, default=1, help="the mutations' random seed")
    zbench.add_argument(
        "--engine",
        choices=("auto", "atheris", "mutate"),
        default="auto",
        help="atheris: coverage-guided (when installed; auto picks it); mutate: deterministic",
    )
    zbench.add_argument("--list", action="store_true", help="list the targets and exit")
    zbench.add_argument("--json", dest="json_out", default="", help="also write results here")
    zlive = bench_sub.add_parser(
        "fuzzlive", help="fuzzed RTMP sessions and HTTP requests beside a clean live stream"
    )
    zlive.add_argument("--sessions", type=int, default=10_000, help="fuzzed RTMP sessions")
    zlive.add_argument("--requests", type=int, default=10_000, help="fuzzed HTTP requests")
    zlive.add_argument("--concurrency", type=int, default=16, help="of each kind, at once")
    zlive.add_argument("--seed", type=int, default=1, help="the mutations' random seed")
    zlive.add_argument("--clip-seconds", type=float, default=10.0, help="clean clip length")
    zlive.add_argument(
        "--ended-ttl", type=float, default=None,
        help="the gateway's -endedStreamTtl, seconds (default: its own, 300)",
    )  # fmt: skip
    zlive.add_argument(
        "--gateway-args",
        default="",
        help="more flags for the gateway, e.g. --gateway-args='-hlsWindow 5'",
    )
    zlive.add_argument("--json", dest="json_out", default="", help="also write results here")


def run_bench(args: argparse.Namespace, run_async: RunAsync) -> int | None:
    """Run the benchmark ``args`` names; None when it names none."""
    if args.bench == "ingest":
        from .ingest import run_ingest_bench

        return run_async(
            run_ingest_bench(
                streams=args.streams,
                seconds=args.seconds,
                size=args.size,
                fps=args.fps,
                json_out=args.json_out,
                publisher=args.publisher,
                baseline=args.baseline or "",
                extras=args.extras,
                workers=args.workers,
                postgres=args.postgres,
                redis=args.redis,
                read_hold=args.read_hold,
            )
        )
    if args.bench == "transcode":
        from .transcode import run_transcode_bench

        return run_async(
            run_transcode_bench(
                segments=args.segments,
                runs=args.runs,
                sampled=args.sampled,
                json_out=args.json_out,
            )
        )
    if args.bench == "live":
        from .live import run_live_bench

        return run_async(
            run_live_bench(
                seconds=args.seconds,
                json_out=args.json_out,
                phases=args.phases.split(",") if args.g2g else ["gateway"],
                runs=args.runs,
                g2g_size=args.g2g_size,
                segment_duration=args.segment_duration,
                ll_url_template=args.ll_url_template,
            )
        )
    if args.bench == "nodes":
        from .nodes import run_nodes_bench

        return run_async(
            run_nodes_bench(
                streams=args.streams,
                seconds=args.seconds,
                postgres=args.postgres,
                redis=args.redis,
                json_out=args.json_out,
            )
        )
    if args.bench == "faults":
        from .faults import run_faults_bench

        return run_async(
            run_faults_bench(
                faults=[f for f in args.faults.split(",") if f],
                seconds=args.seconds,
                postgres=args.postgres,
                json_out=args.json_out,
            )
        )
    if args.bench == "soak":
        from .soak import run_soak_bench

        return run_async(
            run_soak_bench(
                minutes=args.minutes, streams=args.streams, live_ai=args.live_ai,
                hls_viewers=args.hls_viewers, whep_viewers=args.whep_viewers,
                sample_seconds=args.sample_seconds, json_out=args.json_out,
            )
        )  # fmt: skip
    if args.bench == "fuzz":
        from .fuzz import list_targets, run_fuzz_bench

        if args.list:
            return list_targets()
        return run_fuzz_bench(
            args.target, args.inputs, args.seed, args.engine, json_out=args.json_out
        )
    if args.bench == "fuzzlive":
        from .fuzzlive import run_fuzzlive_bench

        opts = {k: v for k, v in vars(args).items() if k not in ("command", "bench")}
        return run_async(run_fuzzlive_bench(**opts))
    return None
