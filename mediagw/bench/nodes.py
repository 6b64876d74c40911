"""``mediagw bench nodes``: what shared state costs per stream-minute.

The same K live-paced RTMP pushes (stored streams of a customer's key on a plan with quotas, so
the ledger, limits and lifecycle paths all run) go, in one command, to:

(a) one gateway process with its embedded SQLite store and no Redis;
(b) two gateway processes on one PostgreSQL database and one Redis, the streams split between
    them (as a load balancer would).

For each it reports, over the pushes (from the first publish to 2 s after the last ends), the
store's SQL statements and the Redis commands the gateways sent (``/metrics``:
``mediagw_store_statements_total``, ``mediagw_redis_commands_total``), their sum as round trips
per stream-minute, and the gateway processes' CPU seconds (user + system, from /proc) per
stream-minute, with (b)'s ratio to (a). Background work (outbox polls, ledger flushes) in that
window counts too: it is part of what a node costs. Needs Linux (/proc), the ffmpeg CLI, a
PostgreSQL server where it may create and drop a database (``--postgres``) and a Redis database
it may write to (``--redis``; use a spare database number: nothing is deleted from it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from ..errors import ConfigError
from .ingest import make_clip, push_clip
from .process import GatewayProcess, cpu_seconds, run_mediagw
from .stored import database, stored_streams

__all__ = ["run_nodes_bench"]

SETTLE = 2.0  # seconds after the last push ends: sessions close, their rows are written
COUNTERS = ("mediagw_store_statements_total", "mediagw_redis_commands_total")


class _Node(GatewayProcess):
    def __init__(self, work: Path, name: str, flags: Sequence[str]) -> None:
        super().__init__(name, work / f"{name}.log")
        self.args = [
            *self.address_flags(), "-dataDir", str(work / name),
            "-embeddedOrchestrator=false", "-logLevel", "warning", *flags,
        ]  # fmt: skip

    async def counters(self) -> dict[str, float]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/metrics") as resp:
            text = await resp.text()
        values = dict.fromkeys(COUNTERS, 0.0)
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in values:
                values[name] = float(value)
        return values

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)


async def _phase(
    work: Path,
    clip: Path,
    ffmpeg: str,
    streams: int,
    seconds: float,
    flags: list[list[str]],
    store: str,
    settle: float = SETTLE,
) -> dict[str, Any]:
    """Start one node per entry of ``flags`` (on ``store``: a data directory or a database URL)
    and push ``streams`` streams, split between them."""
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    nodes = [_Node(work, f"node{i}", f) for i, f in enumerate(flags)]
    where = ["-storeUrl", store] if "://" in store else ["-dataDir", store]
    out = await run_mediagw("keys", "create", "--name", "bench admin", *where)  # migrates it too
    admin_key = out.strip().splitlines()[-1]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        keys = [key for key, _ in await stored_streams(nodes[0].url, admin_key, streams)]
        before = [await n.counters() for n in nodes]
        cpu0 = [n.cpu() for n in nodes]
        codes = await asyncio.gather(
            *(push_clip(ffmpeg, clip, nodes[i % len(nodes)].rtmp_url(k), 0)
              for i, k in enumerate(keys))
        )  # fmt: skip
        await asyncio.sleep(settle)
        after = [await n.counters() for n in nodes]
        cpu = sum(n.cpu() for n in nodes) - sum(cpu0)
    finally:
        await asyncio.gather(*(n.stop(15) for n in nodes))
    stream_minutes = streams * seconds / 60
    statements = sum(a[COUNTERS[0]] - b[COUNTERS[0]] for a, b in zip(after, before, strict=True))
    commands = sum(a[COUNTERS[1]] - b[COUNTERS[1]] for a, b in zip(after, before, strict=True))
    return {
        "nodes": len(nodes),
        "publishers_failed": sum(1 for c in codes if c),
        "store_statements": int(statements),
        "redis_commands": int(commands),
        "round_trips_per_stream_minute": round((statements + commands) / stream_minutes, 1),
        "store_statements_per_stream_minute": round(statements / stream_minutes, 1),
        "redis_commands_per_stream_minute": round(commands / stream_minutes, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_per_stream_minute": round(cpu / stream_minutes, 3),
    }


async def run_nodes_bench(
    *,
    streams: int,
    seconds: float,
    postgres: str,
    redis: str,
    json_out: str = "",
    settle: float = SETTLE,
) -> int:
    """``settle``: seconds counted after the last push ends (a test's slice: less)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    if not postgres.startswith(("postgresql://", "postgres://")) or not redis.startswith("redis"):
        raise ConfigError(
            "give --postgres postgresql://USER@HOST/DB (a server where the bench may create a "
            "database) and --redis redis://HOST:PORT/N (a spare database)"
        )
    if not await asyncio.to_thread(os.path.exists, "/proc/self/stat"):
        raise ConfigError("the nodes benchmark reads CPU time from /proc: run it on Linux")
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-nodes-") as tmp:
        work = Path(tmp)
        clip = work / "clip.flv"
        print(f"encoding a {seconds:g} s test clip ...", file=sys.stderr, flush=True)
        await asyncio.to_thread(make_clip, clip, seconds, "320x180", 30, ffmpeg)
        print(f"(a) one node, SQLite, no Redis: {streams} streams ...", file=sys.stderr)
        one = await _phase(
            work / "a", clip, ffmpeg, streams, seconds, [[]], str(work / "a" / "node0"), settle
        )
        async with database(postgres) as store_url:
            print(f"(b) two nodes, PostgreSQL + Redis: {streams} streams ...", file=sys.stderr)
            shared = ["-storeUrl", store_url, "-redisUrl", redis]
            two = await _phase(
                work / "b", clip, ffmpeg, streams, seconds, [shared, shared], store_url, settle
            )
    result: dict[str, Any] = {
        "streams": streams,
        "seconds": seconds,
        "stream_minutes": round(streams * seconds / 60, 3),
        "one_node_sqlite": one,
        "two_nodes_postgresql_redis": two,
        "cpu_ratio_vs_one_node": (
            round(two["cpu_seconds"] / one["cpu_seconds"], 3) if one["cpu_seconds"] else 0.0
        ),
    }
    for phase in ("one_node_sqlite", "two_nodes_postgresql_redis"):
        print(phase)
        for key, value in result[phase].items():
            print(f"  {key:<36}  {value}")
    print(f"cpu_ratio_vs_one_node                   {result['cpu_ratio_vs_one_node']}")
    if json_out:
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(result, indent=2) + "\n")
    failed = one["publishers_failed"] + two["publishers_failed"]
    return 0 if failed == 0 else 1
