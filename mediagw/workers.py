"""``mediagw run -workers N``: N gateway processes on one machine, one per core.

One Python process runs Python on one core at a time, so one gateway uses about one core however
many the machine has (``mediagw bench ingest``: the event loop's thread saturates first). With
``-workers N`` the command starts N worker processes, each a whole gateway: a node, as on separate
machines. They listen on the same RTMP and HTTP ports (``SO_REUSEPORT``: the kernel spreads new
connections between them); they share the store (PostgreSQL), key limits and stream ownership
(Redis) as nodes do; and each also listens on a port of its own (``node_url``) that the others
proxy a stream's playback to when a viewer's request lands on a worker that does not hold it.

The parent process (this module) checks the settings, migrates the store once, starts the
embedded orchestrator once for all the workers (when no orchestrator is configured), restarts a
worker that dies, and stops them all on SIGINT/SIGTERM. It holds no state of its own: there is
nothing here a separate machine would not do the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.process
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .config import Settings, WorkerGroup
from .errors import ConfigError
from .log import setup_logging
from .platform.store import open_store
from .serve import embedded_orchestrator, run_async, serve

__all__ = [
    "WorkerProcess",
    "check_workers",
    "run_workers",
    "stop_workers",
    "worker_group",
    "worker_settings",
]

log = logging.getLogger("mediagw.workers")

RESTART_DELAY = 1.0  # seconds before a worker that died is started again
EARLY_EXIT = 10.0  # a worker that exits with code 2 this soon after it started: a config error
STOP_TIMEOUT = 30.0  # seconds a worker has to end its streams after SIGTERM, then SIGKILL
_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no loop, threads or locks


def check_workers(settings: Settings) -> None:
    """Refuse ``-workers N`` (N > 1) without what the workers share, saying what to give."""
    n = settings.workers
    if n <= 1:
        return
    if not settings.redis_url:
        raise ConfigError(
            f"-workers {n} needs -redisUrl: the workers are gateway nodes on one machine, and "
            "nodes share stream ownership (playback of a stream on another worker), key limits "
            "and live-AI state through Redis"
        )
    if not settings.store_url.startswith(("postgresql", "postgres:")):
        raise ConfigError(
            f"-workers {n} needs a PostgreSQL -storeUrl (postgresql://USER@HOST/DB): the "
            "embedded SQLite store belongs to one process"
        )
    if settings.node_url:
        raise ConfigError(
            f"-workers {n} and -nodeUrl: each worker has a node URL of its own (its own port on "
            "the -httpAddr host); drop -nodeUrl, or run one node per machine to name it"
        )


def _free_port(host: str) -> int:
    return _free_ports(host, 1)[0]


def _free_ports(host: str, count: int) -> tuple[int, ...]:
    """``count`` different ports free on ``host`` now (all bound at once, then let go)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(
                socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            )
            sock.bind((host or "0.0.0.0", 0))
            ports.append(int(sock.getsockname()[1]))
        return tuple(ports)


def worker_group(settings: Settings) -> WorkerGroup:
    """The workers' own ports (each its node URL, the same across a worker's restarts, so the
    others always know where it is) and their shared secret; ``index`` is set per worker."""
    host, _ = Settings.split_addr(settings.http_addr)
    return WorkerGroup(0, _free_ports(host, settings.workers), secrets.token_urlsafe(24))


def _with_port(addr: str) -> str:
    """``addr`` with a concrete port: the workers must all bind the same one, not each its
    own ephemeral port."""
    host, port = Settings.split_addr(addr)
    if port:
        return addr
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{_free_port(host)}"


def worker_settings(settings: Settings, index: int, group: WorkerGroup) -> Settings:
    """What worker ``index`` (1..N) runs with: the shared ports, no orchestrator of its own (the
    parent's, if embedded, is in ``orch_addr``), a node id of its own when one was given, and
    its place in ``group`` (``worker_group``: its own port, its siblings')."""
    return dataclasses.replace(
        settings,
        workers=1,
        worker_group=dataclasses.replace(group, index=index),
        embedded_orchestrator=False,
        node_id=f"{settings.node_id}-w{index}" if settings.node_id else "",
    )


def _worker_main(settings: Settings, index: int) -> None:
    """A worker process's entry (spawned: a fresh interpreter). It leaves the terminal's
    process group: Ctrl-C reaches the parent alone, which sends each worker one SIGTERM (a
    second signal during a worker's shutdown would cut it short)."""
    with contextlib.suppress(OSError):
        os.setsid()
    with contextlib.suppress(Exception):  # Linux: SIGTERM when the parent dies, whatever kills it
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    setup_logging(settings.log_level, settings.log_format)
    try:
        code = run_async(serve(settings))
    except KeyboardInterrupt:  # Ctrl-C before the loop's handler was in place
        code = 130
    except ConfigError as exc:
        print(f"mediagw worker {index}: configuration error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


class WorkerProcess:
    """One worker: ``target(*args)`` in a spawned interpreter (fresh, no state inherited),
    started again by ``start`` after it died. ``mediagw run -workers N`` runs ``_worker_main``
    in each; ``mediagw bench ingest --workers N`` its own entry (daemon: gone with the bench)."""

    def __init__(
        self, index: int, target: Callable[..., None], args: tuple[Any, ...], *,
        daemon: bool = False,
    ) -> None:  # fmt: skip
        self.index, self.target, self.args, self.daemon = index, target, args, daemon
        self.proc: multiprocessing.process.BaseProcess | None = None
        self.started = 0.0
        self.restarts = 0

    def start(self) -> None:
        self.proc = _SPAWN.Process(
            target=self.target,
            args=self.args,
            name=f"mediagw-worker-{self.index}",
            daemon=self.daemon,
        )
        self.proc.start()
        self.started = time.monotonic()
        log.info("worker started", extra={"worker": self.index, "pid": self.proc.pid})

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.terminate()  # SIGTERM: the worker ends its streams and exits

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        self.proc.join(timeout)
        if self.proc.is_alive():
            log.warning("worker did not stop in time: killed", extra={"worker": self.index})
            self.proc.kill()
            self.proc.join(5)


async def stop_workers(workers: Sequence[WorkerProcess], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to each, then wait for them together; one still running after ``timeout``
    seconds is killed."""
    for worker in workers:
        worker.stop()
    await asyncio.gather(*(asyncio.to_thread(w.wait, timeout) for w in workers))


async def run_workers(settings: Settings) -> int:
    """Run ``settings.workers`` gateway processes until SIGINT/SIGTERM; the exit code."""
    check_workers(settings)
    settings = dataclasses.replace(
        settings,
        rtmp_addr=_with_port(settings.rtmp_addr),
        http_addr=_with_port(settings.http_addr),
    )
    store = await open_store(settings.store_url)  # migrated once here, not by N workers at once
    await store.close()
    settings, embedded = await embedded_orchestrator(settings)
    group = worker_group(settings)
    workers = [
        WorkerProcess(i, _worker_main, (worker_settings(settings, i, group), i))
        for i in range(1, settings.workers + 1)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        for worker in workers:
            worker.start()
        print(
            f"mediagw: {len(workers)} workers on rtmp://{settings.rtmp_addr} and "
            f"http://{settings.http_addr} (one gateway node each, sharing -storeUrl and "
            "-redisUrl)\n  stop:    Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            for worker in workers:
                proc = worker.proc
                if stop.is_set() or proc is None or proc.is_alive():
                    continue
                exitcode = proc.exitcode
                if exitcode == 2 and time.monotonic() - worker.started < EARLY_EXIT:
                    log.error(
                        "a worker could not start (its log says why): stopping",
                        extra={"worker": worker.index},
                    )
                    code = 2
                    stop.set()
                    break
                worker.restarts += 1
                log.error(
                    "worker exited: starting it again",
                    extra={"worker": worker.index, "exitcode": exitcode,
                           "restarts": worker.restarts},
                )  # fmt: skip
                await asyncio.sleep(RESTART_DELAY)
                if not stop.is_set():
                    worker.start()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        log.info("stopping the workers")
        await stop_workers(workers)
        if embedded is not None:
            await embedded.stop()
    return code
