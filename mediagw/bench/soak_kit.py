"""The parts of ``mediagw bench soak`` (:mod:`.soak`): child processes (reference orchestrators,
ffmpeg publishers), the playlist watch that counts segments, HLS and WHEP viewers that come and
go, and the gateway process's sample (RSS, open fds, threads from /proc; asyncio tasks from its
``/metrics``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ..errors import ConfigError
from .process import command, cpu_seconds, free_port, proc_figures

__all__ = ["Child", "Sample", "Viewers", "Watch", "orchestrator", "publisher", "sample"]

SDP = {"Content-Type": "application/sdp"}
JOIN_TRIES = 30  # WHEP offers answered 404 before a viewer gives up (0.5 s apart)
POLL = 2.0  # seconds between two polls of a media playlist (the window is -hlsWindow x 2 s)


class Child:
    """A child process with its output in a log file; stopped by a signal, then killed."""

    def __init__(self, name: str, cmd: Sequence[str], log: Path, stop_signal: int) -> None:
        self.name, self.cmd, self.log, self.stop_signal = name, list(cmd), log, stop_signal
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        self.proc = await asyncio.to_thread(self._spawn)

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    async def stop(self, timeout: float = 15.0) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        return proc.returncode

    def kill(self) -> None:
        """The last resort (synchronous: also from a ``finally`` after a second Ctrl-C)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-2000:]
        return ""


async def wait_port(child: Child, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.exited() is None:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise ConfigError(f"{child.name} did not start; its log ends:\n{child.tail()}")


async def orchestrator(work: Path, name: str, flags: Sequence[str], into: list[Child]) -> str:
    """A reference orchestrator process (``mediagw orchestrator``), added to ``into`` (to be
    stopped) as soon as it runs; its URL."""
    port = free_port()
    cmd = [*command("orchestrator", "-httpAddr", f"127.0.0.1:{port}"),
           "-datadir", str(work / name), "-x264Preset", "ultrafast", *flags]  # fmt: skip
    child = Child(name, cmd, work / f"{name}.log", signal.SIGTERM)
    into.append(child)
    await child.start()
    await wait_port(child, port)
    return f"https://127.0.0.1:{port}"


def publisher(ffmpeg: str, clip: Path, url: str, log: Path) -> Child:
    """FFmpeg's RTMP client looping a pre-encoded clip at real time, stream copy (SIGINT: it
    ends the FLV stream cleanly)."""
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop",
           "-1", "-i", str(clip), "-c", "copy", "-f", "flv", url]  # fmt: skip
    return Child(log.stem, cmd, log, signal.SIGINT)


@dataclass
class Seen:
    """What the polls of one media playlist saw: seq -> is a gap; ended (EXT-X-ENDLIST)."""

    seqs: dict[int, bool] = field(default_factory=dict)
    ended: bool = False

    def missing(self, expected: Sequence[int] | None = None) -> list[int]:
        """Seqs not seen (or seen as a gap): of ``expected``, else of first..last seen."""
        want = (range(min(self.seqs), max(self.seqs) + 1) if self.seqs else []) \
            if expected is None else expected  # fmt: skip
        return [s for s in want if self.seqs.get(s, True)]


def parse_playlist(text: str, seen: Seen) -> None:
    seq, gap = 0, False
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.partition(":")[2])
        elif line == "#EXT-X-GAP":
            gap = True
        elif line == "#EXT-X-ENDLIST":
            seen.ended = True
        elif line and not line.startswith("#"):
            seen.seqs[seq] = seen.seqs.get(seq, False) or gap
            seq, gap = seq + 1, False


class Watch:
    """Polls every watched media playlist every ``POLL`` s: (stream, rendition) -> ``Seen``."""

    def __init__(self, base: str, playlists: Sequence[tuple[str, str]]) -> None:
        self.base = base
        self.seen = {key: Seen() for key in playlists}
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def poll(self, http: aiohttp.ClientSession) -> None:
        async def one(key: tuple[str, str]) -> None:
            try:
                async with http.get(f"{self.base}/stream/{key[0]}/{key[1]}.m3u8") as resp:
                    if resp.status == 200:
                        parse_playlist(await resp.text(), self.seen[key])
            except (aiohttp.ClientError, TimeoutError, ValueError):
                self.errors += 1

        await asyncio.gather(*(one(k) for k in self.seen if not self.seen[k].ended))

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                await self.poll(http)
                await asyncio.sleep(POLL)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def until_ended(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.ended for s in self.seen.values()):
                return True
            await asyncio.sleep(0.5)
        return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def segments(self, outputs: bool) -> int:
        """Segments listed so far: of the sources (a stream's ``source``), or of the outputs
        (transcoded renditions, AI outputs ``NAME-out``)."""
        return sum(
            len(seen.seqs)
            for (stream, rendition), seen in self.seen.items()
            if (rendition != "source" or stream.endswith("-out")) == outputs
        )


@dataclass
class Sample:
    t: float  # seconds since the publishers started
    rss_mb: float
    fds: int
    threads: int
    tasks: int
    cpu_pct: float  # the gateway's CPU (user + system) over the last interval, % of one core
    all_cpu_pct: float  # ... of every process of the soak (gateway, Os, publishers, this one)
    load1: float  # the machine's 1-minute load average (other work on the machine counts too)
    source_segments: int
    output_segments: int  # transcoded renditions and AI outputs
    viewers: int  # viewers (HLS + WHEP) watching at the time

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def metric(http: aiohttp.ClientSession, base: str, name: str) -> float:
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    values = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
    ]
    return sum(values)


def load1() -> float:
    return os.getloadavg()[0]


def cpu_of(pids: Sequence[int]) -> float:
    """CPU seconds of the processes still running (and of this one: ``os.getpid()``)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += cpu_seconds(pid)
    return total


async def sample(
    http: aiohttp.ClientSession, base: str, pid: int, others: Sequence[int], t: float,
    last: tuple[float, float, float], watch: Watch, viewers: int,
) -> tuple[Sample, tuple[float, float, float]]:  # fmt: skip
    """One sample of the gateway ``pid``; ``others``: the soak's other processes; ``last`` =
    (monotonic, gateway CPU seconds, everyone's CPU seconds) at the previous sample."""
    rss, fds, threads, cpu = await asyncio.to_thread(proc_figures, pid)
    every = cpu + await asyncio.to_thread(cpu_of, others)
    tasks = int(await metric(http, base, "mediagw_asyncio_tasks"))
    now = time.monotonic()
    wall = max(1e-6, now - last[0])
    pct, all_pct = 100 * (cpu - last[1]) / wall, 100 * (every - last[2]) / wall
    s = Sample(round(t, 1), round(rss, 1), fds, threads, tasks, round(pct, 1), round(all_pct, 1),
               round(load1(), 2), watch.segments(False), watch.segments(True), viewers)  # fmt: skip
    return s, (now, cpu, every)


class Viewers:
    """``hls`` + ``whep`` viewer slots; each joins a random stream, watches for a random while
    (``stay`` seconds, min-max), leaves, and joins again after a pause, until stopped."""

    def __init__(self, base: str, hls: Sequence[tuple[str, str]], whep: Sequence[str],
                 stay: tuple[float, float]) -> None:  # fmt: skip
        self.base, self.hls_targets, self.whep_targets, self.stay = base, hls, whep, stay
        self.watching = 0
        self.joins = {"hls": 0, "whep": 0}
        self.failures: dict[str, list[str]] = {"hls": [], "whep": []}
        self.hls_segments = self.whep_frames = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, hls: int, whep: int) -> None:
        self._tasks += [asyncio.create_task(self._slot(self._hls)) for _ in range(hls)]
        self._tasks += [asyncio.create_task(self._slot(self._whep)) for _ in range(whep)]

    async def _slot(self, watch: Any) -> None:
        rng = random.Random()
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                await asyncio.sleep(rng.uniform(0.5, 3.0))
                self.watching += 1
                try:
                    await watch(http, rng, time.monotonic() + rng.uniform(*self.stay))
                finally:
                    self.watching -= 1

    async def _hls(self, http: aiohttp.ClientSession, rng: random.Random, until: float) -> None:
        stream, rendition = rng.choice(self.hls_targets)
        url = f"{self.base}/stream/{stream}/{rendition}.m3u8"
        self.joins["hls"] += 1
        fetched: set[str] = set()
        try:
            while time.monotonic() < until:
                async with http.get(url) as resp:
                    text = await resp.text() if resp.status == 200 else ""
                for uri in [x for x in text.splitlines() if x and not x.startswith("#")][-3:]:
                    if uri not in fetched:
                        async with http.get(f"{self.base}/stream/{stream}/{uri}") as seg:
                            if seg.status == 200 and await seg.read():
                                fetched.add(uri)
                                self.hls_segments += 1
                await asyncio.sleep(1.0)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failures["hls"].append(f"{stream}/{rendition}: {type(exc).__name__}: {exc}")

    async def _whep(self, http: aiohttp.ClientSession, rng: random.Random, until: float) -> None:
        from aiortc import MediaStreamTrack, RTCPeerConnection

        from webrtc import IceConfig

        from .glass import negotiate

        path = rng.choice(self.whep_targets)
        ice = IceConfig.loopback()
        pc = RTCPeerConnection(ice.rtc_configuration())
        pc.addTransceiver("video", direction="recvonly")
        readers: list[asyncio.Task[None]] = []

        async def read(track: MediaStreamTrack) -> None:
            with contextlib.suppress(Exception):  # MediaStreamError: the track ended
                while True:
                    await track.recv()
                    self.whep_frames += 1

        pc.on("track", lambda track: readers.append(asyncio.ensure_future(read(track))))
        self.joins["whep"] += 1
        location = ""
        try:
            location = await negotiate(http, self.base + path, pc, ice, tries=JOIN_TRIES, wait=0.5)
            await asyncio.sleep(max(0.0, until - time.monotonic()))
        except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as exc:
            self.failures["whep"].append(f"{path}: {type(exc).__name__}: {exc}")
        finally:
            if location:  # leave as a WHEP client does: DELETE its session
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.delete(self.base + location):
                        pass
            await pc.close()
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
