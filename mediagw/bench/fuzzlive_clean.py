"""The clean stream of ``mediagw bench fuzzlive``, and the gateway process it runs against.

:class:`CleanStream` publishes a clip with a known frame count (the ffmpeg CLI, live-paced) again
and again under fresh names until told to stop, and counts the frames each publish left in the
gateway's HLS output (every segment fetched and decoded, as a player would); :class:`GatewayProc`
runs ``mediagw run`` in a child process, so a crash is seen as one, and reads its threads, RSS
and open files from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from segmenter.errors import SegmenterError
from segmenter.probe import probe_ts

from ..errors import MediaGWError
from .ingest import push_clip
from .process import command, proc_figures

__all__ = ["CleanStream", "GatewayProc", "ProcStats"]

_ROOT = str(Path(__file__).resolve().parents[2])
_READY = re.compile(rb"rtmp://[^/\s]+:(\d+)/live/NAME.*?http://[^/\s]+:(\d+)/stream/", re.S)


@dataclass
class ProcStats:
    threads: int = 0
    rss_mb: float = 0.0
    fds: int = 0


class GatewayProc:
    """``mediagw run`` in a child process, its log (JSON lines) in ``log``."""

    def __init__(self, work: Path, args: list[str]) -> None:
        self.log = work / "gateway.log"
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.rtmp_port = self.http_port = 0
        self.peak = ProcStats()

    async def start(self, timeout: float = 60.0) -> None:
        with open(self.log, "wb") as log:  # noqa: ASYNC230 (the child's stdout/stderr)
            self.proc = await asyncio.create_subprocess_exec(
                *command("run", *self.args),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, "PYTHONPATH": _ROOT},
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _READY.search(self.log.read_bytes())
            if found:
                self.rtmp_port, self.http_port = int(found[1]), int(found[2])
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        tail = self.log.read_bytes()[-2000:].decode(errors="replace")
        raise MediaGWError(f"the gateway did not start: {tail}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def stats(self) -> ProcStats:
        if not self.alive or self.proc is None:
            return ProcStats()
        try:
            rss_mb, fds, threads, _ = proc_figures(self.proc.pid)
        except (OSError, ValueError, KeyError):
            return ProcStats()
        out = ProcStats(threads, rss_mb, fds)
        self.peak = ProcStats(
            max(self.peak.threads, out.threads),
            max(self.peak.rss_mb, out.rss_mb),
            max(self.peak.fds, out.fds),
        )
        return out

    async def sample(self, every: float = 0.5) -> None:
        while self.alive:
            self.stats()
            await asyncio.sleep(every)

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then the exit status; None when it had to be killed (a hang on stop)."""
        if self.proc is None:
            return None
        if self.proc.returncode is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


@dataclass
class Publish:
    name: str
    code: int = 0
    expected: tuple[int, int] = (0, 0)  # (video, audio) frames in the clip
    got: tuple[int, int] = (0, 0)  # decoded from the HLS output
    error: str = ""

    @property
    def whole(self) -> bool:
        return self.code == 0 and not self.error and self.got == self.expected


@dataclass
class CleanStream:
    ffmpeg: str
    clip: Path
    frames: tuple[int, int]
    gw: GatewayProc
    publishes: list[Publish] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    token: str = field(default_factory=lambda: secrets.token_hex(6))

    def url(self, name: str) -> str:
        return f"rtmp://127.0.0.1:{self.gw.rtmp_port}/live/{name}"

    @property
    def current(self) -> str:
        return self.publishes[-1].name if self.publishes else f"clean{self.token}x0"

    async def run(self) -> None:
        """Publish until ``stop`` is set (the publish under way then finishes), counting each."""
        counts: list[asyncio.Task[None]] = []
        while True:
            pub = Publish(f"clean{self.token}x{len(self.publishes)}", expected=self.frames)
            self.publishes.append(pub)
            pub.code = await push_clip(self.ffmpeg, self.clip, self.url(pub.name), 0)
            counts.append(asyncio.create_task(self._count(pub)))
            if self.stop.is_set() or pub.code:
                break
        await asyncio.gather(*counts)

    async def live(self, timeout: float = 30.0) -> None:
        """Until the first publish's playlist lists a segment."""
        url = f"http://127.0.0.1:{self.gw.http_port}/stream/{self.current}/source.m3u8"
        async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url) as resp:
                        if resp.status == 200 and ".ts" in await resp.text():
                            return
                await asyncio.sleep(0.2)

    async def _count(self, pub: Publish, timeout: float = 30.0) -> None:
        base = f"http://127.0.0.1:{self.gw.http_port}/stream/{pub.name}"
        try:
            async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
                while True:  # the stream's end is listed once its last segment is
                    async with http.get(f"{base}/source.m3u8") as resp:
                        text = await resp.text()
                    if resp.status == 200 and "#EXT-X-ENDLIST" in text:
                        break
                    await asyncio.sleep(0.2)
                video = audio = 0
                for uri in _segments(text):
                    async with http.get(f"{base}/{uri}") as resp:
                        if resp.status != 200:
                            pub.error = f"{uri}: HTTP {resp.status}"
                            return
                        data = await resp.read()
                    probe = await asyncio.to_thread(probe_ts, data)
                    video += probe.video_frames
                    audio += probe.audio_frames
                pub.got = (video, audio)
        except (TimeoutError, aiohttp.ClientError, SegmenterError) as exc:
            pub.error = f"{type(exc).__name__}: {exc}"


def _segments(playlist: str) -> list[str]:
    """Segment URIs a player loads (a gap, ``EXT-X-GAP``, is a lost segment: not loaded)."""
    out, gap = [], False
    for line in playlist.splitlines():
        if line == "#EXT-X-GAP":
            gap = True
        elif line and not line.startswith("#"):
            if not gap:
                out.append(line)
            gap = False
    return out
