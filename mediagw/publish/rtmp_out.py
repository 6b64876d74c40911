"""Push a live output (MPEG-TS segments) to an RTMP server: the live AI output to YouTube, Twitch,
another media server (``?rtmpOutput=`` or the live AI auth webhook's ``rtmp_output_url``).

Each output runs FFmpeg's own RTMP client in a child process (``ffmpeg -f mpegts -i pipe:0 -c copy
-f flv URL``) fed the segments on its stdin; nothing is re-encoded. Why a process and not PyAV in
a thread: libavformat's network writes would hold the interpreter while a slow or unreachable
RTMP server blocks them, which would stall the gateway's event loop; a process also isolates
crashes and makes a reconnect a restart.

Live rules: ``push()`` never blocks; at most ``max_queue`` segments wait, the oldest is dropped
when the server is slower than real time (counted). If the connection fails or FFmpeg exits, the
output is restarted after a back-off (1 s doubling to 10 s); segments that come meanwhile are
dropped, the stream itself is never affected. ``close()`` ends the FLV cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("mediagw.publish.rtmp_out")

__all__ = ["RtmpOutput", "RtmpOutputStats"]

BACKOFF_MAX = 10.0


async def _tail(stream: asyncio.StreamReader, keep: int = 16 * 1024) -> bytes:
    """Everything up to EOF, keeping the last ``keep`` bytes."""
    data = b""
    while chunk := await stream.read(keep):
        data = (data + chunk)[-keep:]
    return data


@dataclass(slots=True)
class RtmpOutputStats:
    segments: int = 0  # written to FFmpeg
    bytes: int = 0
    dropped: int = 0  # not sent: queue full or output down
    restarts: int = 0
    last_error: str = ""


class RtmpOutput:
    def __init__(
        self,
        url: str,
        *,
        name: str = "",
        ffmpeg: str | None = None,
        max_queue: int = 4,
        backoff: float = 1.0,
    ) -> None:
        self.url = url
        self.name = name
        self.ffmpeg = ffmpeg or shutil.which("ffmpeg") or ""
        self.max_queue = max_queue
        self.backoff = backoff
        self.stats = RtmpOutputStats()
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def redacted(self) -> str:
        """The URL without its last path element (usually the secret stream key)."""
        head, _, _ = self.url.rpartition("/")
        return f"{head}/***" if head.count("/") >= 3 else self.url

    @property
    def closing(self) -> bool:
        return self._closing

    def start(self) -> None:
        if not self.ffmpeg:
            error = "the ffmpeg CLI is needed for RTMP output: apt-get install ffmpeg"
            self.stats.last_error = error
            log.warning("RTMP output off", extra={"stream": self.name, "error": error})
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"rtmp-out:{self.name}"
        )

    def push(self, segment: bytes) -> None:
        if self._task is None or self._closing:
            return
        if len(self._queue) >= self.max_queue:
            self._queue.popleft()
            self.stats.dropped += 1
        self._queue.append(segment)
        self._wake.set()

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued, end the FLV, stop FFmpeg (killed after ``timeout``)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        delay = self.backoff
        while not self._closing:
            ok = await self._session()
            if self.closing:  # (a property: mypy would narrow the attribute)
                return
            self.stats.restarts += 1
            dropped = len(self._queue)
            self._queue.clear()
            self.stats.dropped += dropped
            log.warning(
                "RTMP output lost, restarting",
                extra={"stream": self.name, "url": self.redacted, "in_s": delay,
                       "error": self.stats.last_error},
            )  # fmt: skip
            await asyncio.sleep(delay)
            delay = self.backoff if ok else min(BACKOFF_MAX, delay * 2)

    async def _session(self) -> bool:
        """One FFmpeg process; True if it carried at least one segment."""
        cmd = [
            self.ffmpeg, "-hide_banner", "-loglevel", "error",
            "-probesize", "1000000", "-analyzeduration", "1000000",
            "-f", "mpegts", "-i", "pipe:0",
            "-map", "0:v?", "-map", "0:a?", "-c", "copy",
            "-f", "flv", "-flvflags", "no_duration_filesize", self.url,
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stderr is not None
        errors = asyncio.get_running_loop().create_task(_tail(proc.stderr))
        exited = asyncio.get_running_loop().create_task(proc.wait())
        carried = False
        try:
            while True:
                while not self._queue and not self._closing and not exited.done():
                    self._wake.clear()
                    waiter = asyncio.get_running_loop().create_task(self._wake.wait())
                    await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                if exited.done():
                    break
                if not self._queue:  # closing, all sent
                    proc.stdin.close()
                    await asyncio.wait({exited}, timeout=5.0)
                    break
                data = self._queue.popleft()
                proc.stdin.write(data)
                await proc.stdin.drain()
                self.stats.segments += 1
                self.stats.bytes += len(data)
                carried = True
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.stats.last_error = f"ffmpeg stopped reading: {exc}"
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
            exited.cancel()
            text = (await errors).decode(errors="replace").strip()
            if text:  # FFmpeg names the URL: never show its stream key
                self.stats.last_error = text.splitlines()[-1].replace(self.url, self.redacted)[:300]
            elif proc.returncode not in (0, None) and not self._closing:
                self.stats.last_error = f"ffmpeg exited with {proc.returncode}"
        return carried
