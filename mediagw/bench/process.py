"""Gateways as child processes on loopback: ``GatewayProcess`` is one ``mediagw run`` with ports of
its own, its output in a log file, ready when it answers ``/healthz``; ``run_mediagw`` runs a
``mediagw`` command to its end. The nodes benchmark starts its nodes with them, and so do the
tests' multi-node kit (tests/nodes_testkit.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from ..errors import ConfigError

__all__ = [
    "READY_TIMEOUT",
    "GatewayProcess",
    "command",
    "cpu_seconds",
    "free_port",
    "proc_figures",
    "run_mediagw",
]

READY_TIMEOUT = 30.0  # seconds for a gateway to answer /healthz (a loaded machine, Alembic)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_figures(pid: int) -> tuple[float, int, int, float]:
    """(RSS MB, open fds, threads, CPU seconds) of a process, from /proc."""
    with open(f"/proc/{pid}/status") as fh:
        status = dict(line.partition(":")[::2] for line in fh.read().splitlines())
    rss_mb = int(status["VmRSS"].split()[0]) / 1024
    return rss_mb, len(os.listdir(f"/proc/{pid}/fd")), int(status["Threads"]), cpu_seconds(pid)


def command(*args: str) -> list[str]:
    """The ``mediagw ARGS`` command line on this interpreter (the package it imports, not the
    ``mediagw`` script of whichever environment is on the PATH)."""
    main = "import sys; from mediagw.cli import main; sys.exit(main())"
    return [sys.executable, "-c", main, *args]


async def run_mediagw(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> str:
    """Run ``mediagw ARGS`` to its end: its stdout (a failure raises with its stderr's end)."""
    done = await asyncio.to_thread(
        subprocess.run, command(*args), capture_output=True, cwd=cwd, env=env, timeout=timeout
    )
    if done.returncode:
        raise ConfigError(f"mediagw {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode()


class GatewayProcess:
    """One ``mediagw run ARGS`` process. ``args`` is set after the ports are chosen (they are
    in it); ``own_group``: the process leads a process group of its own, which ``kill`` and
    ``stop`` signal whole (a test's ``kill -9`` of a node)."""

    def __init__(
        self,
        name: str,
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        own_group: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.http_port, self.rtmp_port = free_port(), free_port()
        self.args: list[str] = []
        self.cwd, self.env, self.own_group = cwd, env, own_group
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    def address_flags(self) -> list[str]:
        """``-nodeId``, ``-nodeUrl`` and the listen addresses of its ports."""
        return [
            "-nodeId", self.name, "-nodeUrl", self.url,
            "-httpAddr", f"127.0.0.1:{self.http_port}", "-rtmpAddr", f"127.0.0.1:{self.rtmp_port}",
        ]  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                command("run", *self.args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=self.own_group,
            )

    async def start(self, timeout: float = READY_TIMEOUT) -> None:
        self.proc = await asyncio.to_thread(self._spawn)
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until it answers ``/healthz``; it exited or ``timeout`` passed: killed, and an error
        with the end of its log."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while loop.time() < deadline:
                if not self.alive:
                    code = self.proc and self.proc.returncode
                    raise ConfigError(
                        f"gateway {self.name} exited ({code}) before it was ready; "
                        f"its log ends:\n{await asyncio.to_thread(self.log_tail)}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        await asyncio.to_thread(self.kill)
        raise ConfigError(
            f"gateway {self.name} did not answer {self.url}/healthz in {timeout:.0f} s; "
            f"its log ends:\n{await asyncio.to_thread(self.log_tail)}"
        )

    def kill(self) -> None:
        """``kill -9`` (its process group if it has one): no shutdown runs."""
        self._signal(signal.SIGKILL)

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it lingers ``timeout`` seconds."""
        self._signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                await asyncio.to_thread(self.kill)

    def _signal(self, signum: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.own_group:
                os.killpg(self.proc.pid, signum)
            else:
                self.proc.send_signal(signum)
        if signum == signal.SIGKILL:
            self.proc.wait()
