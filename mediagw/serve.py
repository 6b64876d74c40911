"""``mediagw run``'s gateway process: the event loop it runs on, the embedded orchestrator it
starts when none is configured, and the gateway until a stop signal. ``mediagw run -workers N``
runs this in each worker (``workers.py``)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Settings
from .signals import wait_for_stop_signal
from .threads import freeze_startup_heap, io_workers, start_all, tune_gil

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["embedded_orchestrator", "run_async", "serve"]

log = logging.getLogger("mediagw")


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed, else the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return int(uvloop.run(main))


async def embedded_orchestrator(settings: Settings) -> tuple[Settings, Any]:
    """Start a local reference orchestrator when none is configured (``make run``)."""
    if settings.orch_addr or settings.orch_webhook_url or not settings.embedded_orchestrator:
        return settings, None
    from .orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

    config = OrchestratorConfig(host="127.0.0.1", port=0, live_models=DEFAULT_LIVE_MODELS)
    orch = ReferenceOrchestrator(config)
    await orch.start()
    log.warning(
        "no orchestrator configured (-orchAddr): started an embedded reference orchestrator "
        "that transcodes on this machine's CPU; point -orchAddr at real orchestrators, or "
        "-embeddedOrchestrator=false for source-only HLS",
        extra={"orchestrator": orch.url},
    )
    return dataclasses.replace(settings, orch_addr=(orch.url,)), orch


async def serve(
    settings: Settings, *, until: Callable[[Gateway], Awaitable[None]] | None = None
) -> int:
    """``mediagw run``: one gateway process (a worker of ``-workers N`` too) until a stop
    signal, or until ``until(gateway)`` returns (the ingest bench's workers)."""
    from .gateway import Gateway
    from .gateway_http import http_host_for

    tune_gil()
    # asyncio.to_thread's pool (file I/O), all its threads started now, as the media pool's
    io = ThreadPoolExecutor(io_workers(), thread_name_prefix="io")
    asyncio.get_running_loop().set_default_executor(io)
    await start_all(io, io_workers())
    settings, embedded = await embedded_orchestrator(settings)
    gateway = Gateway(settings)
    try:
        await gateway.start()
    except OSError as exc:
        log.error(f"cannot listen: {exc.strerror or exc}: pick free ports with -rtmpAddr/-httpAddr")
        await gateway.stop()
        if embedded is not None:
            await embedded.stop()
        return 2
    freeze_startup_heap()
    if settings.reuse_port:  # a worker of -workers N: the parent printed where to publish
        log.info("worker ready", extra={"node": gateway.node_id, "node_url": gateway.node_url()})
    else:
        print(
            f"mediagw {__version__} ready\n"
            f"  publish: ffmpeg -re -i INPUT -c copy -f flv "
            f"rtmp://{http_host_for(settings.rtmp_addr)}:{gateway.rtmp_port}/live/NAME\n"
            f"  play:    http://{http_host_for(settings.http_addr)}:{gateway.http_port}"
            "/stream/NAME.m3u8\n"
            f"  streams: http://{http_host_for(settings.http_addr)}:{gateway.http_port}/streams\n"
            "  stop:    Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
    if until is None:
        await wait_for_stop_signal()
    else:
        await until(gateway)
    if settings.reuse_port:
        # a worker ends its streams whatever comes next: its parent kills it if this takes too
        # long, and a parent killed outright sends the death signal once per thread of its
        # that exits (Linux re-parents the worker to each in turn), not once
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
    log.info("shutting down")
    await gateway.stop()
    if embedded is not None:
        await embedded.stop()
    return 0
