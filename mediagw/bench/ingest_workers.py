"""``mediagw bench ingest --workers N``: the same pushes into N gateway worker processes.

The workers are what ``mediagw run -workers N`` starts (``workers.worker_settings``: the RTMP
and HTTP ports shared through ``SO_REUSEPORT``, each worker a node on one PostgreSQL database and
one Redis database), spawned here rather than by the command so that each also runs the hub
listener that notes when each segment was listed (``Listings``, as in the one-process phase):
``CLOCK_MONOTONIC`` is one clock for every process of the machine, so the publisher's send
times and the workers' listing times compare as in one process. The publishers all connect to
the one shared port and the kernel picks a worker per connection, as for an operator's gateway.

CPU and memory are the workers' own (``/proc``, all their threads); PostgreSQL's and Redis's are
not counted (``mediagw bench nodes`` reports the round trips to them per stream-minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..log import setup_logging
from ..serve import run_async, serve
from ..workers import (
    WorkerProcess,
    check_workers,
    stop_workers,
    worker_group,
    worker_settings,
)
from .ingest_kit import (
    Listings,
    RssSampler,
    StreamFigures,
    bench_settings,
    run_publishers,
    stream_figures,
    tally,
)
from .process import cpu_seconds, free_port, proc_figures, run_mediagw
from .stored import database, stored_streams

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["workers_phase"]

READY_TIMEOUT = 60.0  # seconds for every worker to listen (Alembic, thread pools)


def _bench_worker(settings: Settings, conn: multiprocessing.connection.Connection) -> None:
    """A worker's entry (spawned): the gateway until the parent says the pushes are over; then
    its figures go back on ``conn``."""
    setup_logging(settings.log_level, settings.log_format)

    async def until(gateway: Gateway) -> None:
        listings = Listings()
        gateway.hub.add_listener(listings)  # after the HLS publisher: listed when noted
        conn.send(("ready", gateway.node_id))
        await asyncio.to_thread(conn.recv)  # the publishers are done
        sessions = list(gateway.ingest.publishers.values())
        await asyncio.gather(*(s.wait_ended(timeout=30) for s in sessions))
        streams = {s.id: stream_figures(s, listings) for s in gateway.hub.streams()}
        conn.send(("done", streams))

    sys.exit(run_async(serve(settings, until=until)))


class _Workers:
    """The bench's workers (``WorkerProcess``, as ``-workers`` runs them), each with a pipe to
    the bench."""

    def __init__(self, settings: Settings) -> None:
        self.conns: list[multiprocessing.connection.Connection] = []
        self.workers: list[WorkerProcess] = []
        group = worker_group(settings)
        for i in range(1, settings.workers + 1):
            parent, child = multiprocessing.Pipe()
            args = (worker_settings(settings, i, group), child)
            self.workers.append(WorkerProcess(i, _bench_worker, args, daemon=True))
            self.conns.append(parent)

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def _recv(self, conn: multiprocessing.connection.Connection, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise TimeoutError("a bench worker did not answer: see its log lines above")
        return conn.recv()

    async def ready(self) -> None:
        for conn in self.conns:
            kind, _ = await asyncio.to_thread(self._recv, conn, READY_TIMEOUT)
            assert kind == "ready", kind

    def _pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None and w.proc.pid]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self._pids())

    def rss_mb(self) -> float:
        return sum(proc_figures(pid)[0] for pid in self._pids())

    async def results(self) -> list[dict[str, StreamFigures]]:
        """Each worker's streams: (segments, video frames, listed segment ends, the gateway's
        own latencies: keyframe received -> listed)."""
        for conn in self.conns:
            conn.send("stop")
        out: list[dict[str, StreamFigures]] = []
        for conn in self.conns:
            kind, streams = await asyncio.to_thread(self._recv, conn, 120)
            assert kind == "done", kind
            out.append(streams)
        return out

    async def stop(self) -> None:
        await stop_workers(self.workers)
        for conn in self.conns:
            conn.close()


async def workers_phase(
    work: Path, clip: Any, streams: int, *, workers: int, postgres: str, redis: str,
    publisher: str, ffmpeg: str, metering: bool, read_hold: float | None = None,
) -> tuple[float, float, float, dict[str, Any], list[float], int, int, list[int]]:  # fmt: skip
    """Push ``streams`` stored streams into ``workers`` gateway workers: (cpu, wall, rss MB,
    the publishers' report, latencies, segments lost, frames lost, streams per worker)."""
    async with database(postgres) as store_url:
        tag = f"{'on' if metering else 'off'}-{streams}-w{workers}"
        rtmp_port, http_port = free_port(), free_port()
        settings = bench_settings(
            work, tag, streams, metering=metering, read_hold=read_hold,
            rtmp_addr=f"127.0.0.1:{rtmp_port}", http_addr=f"127.0.0.1:{http_port}",
            store_url=store_url, redis_url=redis, workers=workers, embedded_orchestrator=False,
            log_level="warning",
        )  # fmt: skip
        check_workers(settings)
        out = await run_mediagw("keys", "create", "--name", "bench admin", "-storeUrl", store_url)
        admin_key = out.strip().splitlines()[-1]  # the store is migrated by now, as -workers does
        pool = _Workers(settings)
        pool.start()
        try:
            await pool.ready()
            stored = await stored_streams(f"http://127.0.0.1:{http_port}", admin_key, streams)
            urls = [f"rtmp://127.0.0.1:{rtmp_port}/live/{key}" for key, _ in stored]
            print(f"mediagw, {workers} workers (metering {'on' if metering else 'off'}): "
                  f"{streams} live-paced streams ...", file=sys.stderr, flush=True)  # fmt: skip
            rss = RssSampler(pool.rss_mb)
            rss.start()
            cpu0, wall0 = pool.cpu(), time.perf_counter()
            try:
                pushed = await run_publishers(
                    publisher, clip.path, urls, ffmpeg=ffmpeg, limit=clip.seconds + 120
                )
                per_worker = await pool.results()
                cpu, wall = pool.cpu() - cpu0, time.perf_counter() - wall0
                rss_mb = await rss.stop()
            finally:
                with contextlib.suppress(Exception):
                    await rss.stop()
        finally:
            await pool.stop()
    results = {k: v for streams_of in per_worker for k, v in streams_of.items()}
    spread = [len(streams_of) for streams_of in per_worker]
    figures = [results.get(playback_id, (0, 0, [], [])) for _, playback_id in stored]
    latencies, lost_segments, lost_frames = tally(clip.segments, clip.frames, pushed, figures)
    return cpu, wall, rss_mb, pushed, latencies, lost_segments, lost_frames, spread
