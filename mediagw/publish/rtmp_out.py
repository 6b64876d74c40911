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

Transitions go to ``on_event(event, error)`` (from the event loop; it must not block):
- ``connected``: FFmpeg's ``-progress`` report shows bytes written to the output
  (``total_size`` > 0). FFmpeg opens an ``rtmp://`` output only once the server has accepted the
  publish (``NetStream.Publish.Start``), and the FLV header is written with the first packet, so
  this is the destination taking media, not a process that merely started. Once per session.
- ``error``: a session failed, with the redacted error text; once per failure: retries that
  fail the same way say nothing more until the output has connected again.
- ``disconnected``: the output ended (the stream ended, ``close()``) after having connected.
Never the URL: it holds the destination's stream key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..destinations import destination_refusal

log = logging.getLogger("mediagw.publish.rtmp_out")

__all__ = ["CONNECTED", "DISCONNECTED", "ERROR", "OutputEvent", "RtmpOutput", "RtmpOutputStats"]

BACKOFF_MAX = 10.0
CONNECTED, ERROR, DISCONNECTED = "connected", "error", "disconnected"
OutputEvent = Callable[[str, str], None]  # (event, redacted error text or "")


async def _tail(stream: asyncio.StreamReader, keep: int = 16 * 1024) -> bytes:
    """Everything up to EOF, keeping the last ``keep`` bytes."""
    data = b""
    while chunk := await stream.read(keep):
        data = (data + chunk)[-keep:]
    return data


async def _progress(stream: asyncio.StreamReader, connected: Callable[[], None]) -> None:
    """Read FFmpeg's ``-progress`` reports to EOF (so FFmpeg never blocks on the pipe); call
    ``connected`` once a report shows bytes written to the output."""
    rest = b""
    while chunk := await stream.read(4096):
        *lines, rest = (rest + chunk).split(b"\n")
        rest = rest[-256:]  # a report line is short: never grows
        for line in lines:
            key, _, value = line.partition(b"=")
            if key.strip() == b"total_size" and value.strip().isdigit() and int(value) > 0:
                connected()


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
        on_event: OutputEvent | None = None,
        allow_private: bool = False,
    ) -> None:
        self.url = url
        self.allow_private = allow_private  # else loopback / private destinations are refused
        self.name = name
        self.ffmpeg = ffmpeg or shutil.which("ffmpeg") or ""
        self.max_queue = max_queue
        self.backoff = backoff
        self.stats = RtmpOutputStats()
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()  # set by close(): ends a back-off early
        self.on_event = on_event
        self.connected = False  # the current session carries media to the destination
        self._ever_connected = False
        self._failing = False  # an error was reported and the output has not connected since

    @property
    def redacted(self) -> str:
        """The URL without its last path element (usually the secret stream key)."""
        head, _, _ = self.url.rpartition("/")
        return f"{head}/***" if head.count("/") >= 3 else self.url

    def _redact(self, text: str) -> str:
        """``text`` without the URL and without its stream key (a server may echo it)."""
        text = text.replace(self.url, self.redacted)
        key = self.url.rpartition("/")[2]
        return text.replace(key, "***") if len(key) >= 4 and self.redacted != self.url else text

    def _report(self, event: str, error: str = "") -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event, error)
        except Exception:  # a listener's failure never stops the output
            log.exception("RTMP output event not handled", extra={"stream": self.name})

    def _connected(self) -> None:
        if not self.connected:
            self.connected = self._ever_connected = True
            self._failing = False
            log.info("RTMP output connected", extra={"stream": self.name, "url": self.redacted})
            self._report(CONNECTED)

    def _failed(self, error: str) -> None:
        self.connected = False
        if not self._failing:
            self._failing = True
            self._report(ERROR, error)

    @property
    def closing(self) -> bool:
        return self._closing

    def start(self) -> None:
        if not self.ffmpeg:
            error = "the ffmpeg CLI is needed for RTMP output: apt-get install ffmpeg"
            self.stats.last_error = error
            log.warning("RTMP output off", extra={"stream": self.name, "error": error})
            # after the caller's other start-up work (the stream's listeners) is done
            asyncio.get_running_loop().call_soon(self._failed, error)
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
        self._closed.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        try:
            await self._sessions()
        finally:
            if self._ever_connected:
                self.connected = False
                self._report(DISCONNECTED)

    async def _sessions(self) -> None:
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
            delay = self.backoff if ok else min(BACKOFF_MAX, delay * 2)

    async def _session(self) -> bool:
        """One FFmpeg process; True if it carried at least one segment."""
        refused = None if self.allow_private else await destination_refusal(self.url)
        if refused is not None:  # checked before each connection: a name may change (rebinding)
            self.stats.last_error = refused
            self._failed(refused)
            return False
        cmd = [
            self.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1",
            "-probesize", "1000000", "-analyzeduration", "1000000",
            "-f", "mpegts", "-i", "pipe:0",
            "-map", "0:v?", "-map", "0:a?", "-c", "copy",
            "-f", "flv", "-flvflags", "no_duration_filesize", self.url,
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
        errors = asyncio.get_running_loop().create_task(_tail(proc.stderr))
        progress = asyncio.get_running_loop().create_task(_progress(proc.stdout, self._connected))
        self.connected = False
        error = ""
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
            error = f"ffmpeg stopped reading: {exc}"
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
            exited.cancel()
            await progress  # the last report: a short session may have connected
            text = (await errors).decode(errors="replace").strip()
            if text:  # FFmpeg names the URL: never show its stream key
                error = self._redact(text.splitlines()[-1])[:300]
            elif proc.returncode not in (0, None) and not self._closing:
                error = f"ffmpeg exited with {proc.returncode}"
            elif not error and not self._closing:
                error = "the RTMP server ended the connection"
            if error:
                self.stats.last_error = error
            # a failure: whenever it was not closed, or when closing it never got through
            if not self._closing or (not self.connected and (proc.returncode or 0) > 0):
                self._failed(error or f"ffmpeg exited with {proc.returncode}")
        return carried
