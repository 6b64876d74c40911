"""``TricklePublisher``: writes one channel's segments, one streamed POST each (spec §4.5).

- seqs are explicit: 0, 1, 2, ... (``start_seq``), or ``start_seq=None``: ask ``GET /next`` and
  send ``Lp-Trickle-Reset: 1`` with the first POST (a restarted publisher);
- while segment n is written, the POST of n+1 is already open (preconnect), so the next segment
  starts without connection set-up;
- a failed segment is retried once after 250 ms only if no byte of it was sent (the next
  segment cannot have started: segments are written one at a time); otherwise it is dropped:
  its POST is closed and ``DELETE /{ch}/{seq}`` is sent on a fresh connection, the write raises
  ``TrickleSegmentDropped`` and the publisher goes on with the next seq;
- 404 raises ``TrickleChannelGone``, ``Lp-Trickle-Closed`` ``TrickleChannelClosed``; both are
  terminal (every later write raises the same error);
- interim 1xx answers (keepalives) are skipped by aiohttp, however many come;
- ``close()`` sends ``DELETE /{ch}``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from collections.abc import AsyncIterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from .aio import cancel_quietly
from .errors import (
    TrickleChannelClosed,
    TrickleChannelGone,
    TrickleError,
    TrickleSegmentDropped,
    TrickleSegmentTooLarge,
    TrickleUsageError,
)
from .pipe import BodyPipe, PipeAborted, PipePayload
from .positions import PublishStep, publish_step
from .wire import H_CLOSED, H_LATEST, H_RESET, parse_int

__all__ = ["PublisherStats", "SegmentUpload", "TricklePublisher"]

log = logging.getLogger("mediagw.trickle.publisher")

SSLArg = _ssl.SSLContext | bool
PIECE = 256 << 10  # a bytes segment goes out in pieces of this size (memoryview, no copy)


@dataclass(slots=True)
class PublisherStats:
    segments: int = 0
    bytes: int = 0
    retries: int = 0
    dropped: int = 0
    preconnects_used: int = 0


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None  # None: transport failure
    closed: bool = False
    text: str = ""
    error: BaseException | None = None


class _Attempt:
    """One POST of segment ``seq``, running from the moment it is made (preconnect)."""

    def __init__(self, pub: TricklePublisher, seq: int, reset: bool) -> None:
        self.seq = seq
        self.pipe = BodyPipe(pub.queue_chunks)
        self.task = asyncio.create_task(self._run(pub, reset), name=f"trickle-post-{seq}")
        self.task.add_done_callback(lambda _: self.pipe.abort())

    async def _run(self, pub: TricklePublisher, reset: bool) -> _Outcome:
        headers = {"Content-Type": pub.mime}
        if reset:
            headers[H_RESET] = "1"
        payload = PipePayload(self.pipe, pub.mime)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=pub.connect_timeout)
        outcome: _Outcome | None = None
        try:
            async with pub.session.post(
                f"{pub.url}/{self.seq}", data=payload, headers=headers, ssl=pub.ssl, timeout=timeout
            ) as resp:
                text = (await resp.content.read(4096)).decode("utf-8", "replace").strip()
                outcome = _Outcome(resp.status, bool(resp.headers.get(H_CLOSED)), text)
                # an answer ends the body: an unfinished one is cut off, never completed
                self.pipe.abort()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if outcome is None:
                return _Outcome(None, error=exc)
        assert outcome is not None
        return outcome

    def cancel(self) -> None:
        self.pipe.abort()
        self.task.cancel()

    async def answer(self, timeout: float) -> _Outcome:
        """The outcome, once the body has gone out and the server answered; a server that
        does not answer within ``timeout`` after the end of the body counts as a failure."""
        task = self.task
        while not task.done():
            if self.pipe.body_done:
                await asyncio.wait({task}, timeout=timeout)
                if not task.done():
                    self.cancel()
                    return _Outcome(None, error=TimeoutError(f"no answer in {timeout} s"))
            else:
                waits: list[asyncio.Future[Any]] = [task, self.pipe.drained()]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return task.result()


class SegmentUpload:
    """One segment being published: ``await upload.write(chunk)`` streams it. Leaving the
    ``async with`` block ends the body and waits for the server's answer; leaving it with an
    exception drops the segment."""

    def __init__(self, pub: TricklePublisher) -> None:
        self._pub = pub
        self.seq = -1
        self.size = 0
        self._attempt: _Attempt | None = None
        self._number = 1  # attempt number
        self._held: list[bytes | memoryview] | None = []  # chunks while none was sent (retry)

    async def __aenter__(self) -> SegmentUpload:
        pub = self._pub
        pub._check_usable()
        if pub._active is not None:
            raise TrickleUsageError("a segment is already being written", pub.url)
        if pub.seq is None:
            await pub.start()
        assert pub.seq is not None
        pub._active = self
        self.seq = pub.seq
        try:
            self._attempt = await pub._attempt_for(self.seq)
        except BaseException:
            pub._active = None
            raise
        if pub.preconnect:
            pub._preconnect(self.seq + 1)
        return self

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        pub = self._pub
        self.size += len(data)
        if self.size > pub.max_segment_bytes:
            raise TrickleSegmentTooLarge(pub.max_segment_bytes, pub.url, self.seq)
        chunk = data if isinstance(data, bytes | memoryview) else bytes(data)
        attempt = self._attempt
        assert attempt is not None
        if self._held is not None:
            if attempt.pipe.sent:
                self._held = None  # bytes are out: this segment can no longer be retried
            else:
                self._held.append(chunk)
        try:
            await attempt.pipe.put(chunk)
        except PipeAborted:
            await self._settle(await attempt.task, finishing=False)

    async def _settle(self, outcome: _Outcome, *, finishing: bool) -> None:
        """The POST ended. Returns when the segment is done (or re-sent by a retry that is
        still running); raises when it is dropped or the channel is gone."""
        pub = self._pub
        while True:
            attempt = self._attempt
            assert attempt is not None
            step = publish_step(
                outcome.status,
                closed=outcome.closed,
                body_sent=attempt.pipe.body_done,
                bytes_sent=attempt.pipe.sent,
                attempt=self._number,
            )
            if step is PublishStep.DONE:
                return
            if step is PublishStep.RETRY and self._held is not None:
                pub.stats.retries += 1
                log.info("trickle segment retry", extra={"seq": self.seq, "status": outcome.status})
                await asyncio.sleep(pub.retry_delay)
                self._number += 1
                self._attempt = attempt = pub._new_attempt(self.seq)
                try:
                    for chunk in self._held:
                        await attempt.pipe.put(chunk)
                    if not finishing:
                        return
                    attempt.pipe.finish()
                except PipeAborted:
                    pass
                outcome = await attempt.answer(pub.answer_timeout)
                continue
            if step is PublishStep.GONE:
                raise pub._terminate(TrickleChannelGone("channel not found", pub.url, self.seq))
            if step is PublishStep.CLOSED:
                raise pub._terminate(TrickleChannelClosed("channel closed", pub.url, self.seq))
            reason = f"HTTP {outcome.status}" if outcome.status else repr(outcome.error)
            raise TrickleSegmentDropped(
                f"segment dropped ({reason}{': ' + outcome.text if outcome.text else ''})",
                pub.url,
                self.seq,
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pub = self._pub
        attempt = self._attempt
        try:
            if attempt is None:
                return
            if exc_type is None:
                attempt.pipe.finish()
                try:
                    await self._settle(await attempt.answer(pub.answer_timeout), finishing=True)
                except TrickleSegmentDropped:
                    await self._drop()
                    raise
                pub.stats.segments += 1
                pub.stats.bytes += self.size
            elif isinstance(exc, Exception) and not isinstance(exc, TrickleChannelGone):
                await self._drop()
            else:  # cancelled, or the channel is gone: just stop the POST
                attempt.cancel()
        finally:
            pub._active = None
            if self.seq == pub.seq:
                pub.seq = self.seq + 1

    async def _drop(self) -> None:
        attempt = self._attempt
        if attempt is not None:
            attempt.pipe.abort()
            await cancel_quietly(attempt.task)
        self._pub.stats.dropped += 1
        await self._pub._delete(f"{self._pub.url}/{self.seq}")


class TricklePublisher:
    def __init__(
        self,
        url: str,
        mime: str = "video/MP2T",
        *,
        session: aiohttp.ClientSession,
        ssl: SSLArg = True,
        start_seq: int | None = 0,
        preconnect: bool = True,
        max_segment_bytes: int = 64 << 20,
        retry_delay: float = 0.25,
        connect_timeout: float = 10.0,
        answer_timeout: float = 10.0,
        queue_chunks: int = 8,
    ) -> None:
        """``ssl``: True = verify, False = accept any certificate (an O's self-signed one),
        or an ``SSLContext`` (e.g. a pin store's). ``answer_timeout``: how long the server may
        take to answer once the whole body went out."""
        if start_seq is not None and start_seq < 0:
            raise TrickleUsageError(f"start seq must be >= 0 or None, got {start_seq}", url)
        self.url = url.rstrip("/")
        self.mime = mime
        self.session = session
        self.ssl = ssl
        self.seq: int | None = start_seq  # the seq of the next segment
        self.preconnect = preconnect
        self.max_segment_bytes = max_segment_bytes
        self.retry_delay = retry_delay
        self.connect_timeout = connect_timeout
        self.answer_timeout = answer_timeout
        self.queue_chunks = queue_chunks
        self.stats = PublisherStats()
        self._reset_seq: int | None = None  # the seq whose POSTs carry Lp-Trickle-Reset
        self._pending: _Attempt | None = None
        self._active: SegmentUpload | None = None
        self._terminal: TrickleError | None = None
        self._closed = False

    async def start(self) -> None:
        """Resolve the first seq (``GET /next`` when ``start_seq`` is None) and preconnect it.
        Called by the first write when not called before."""
        self._check_usable()
        if self.seq is None:
            self.seq = await self._fetch_next()
            self._reset_seq = self.seq
        if self.preconnect and self._pending is None:
            self._preconnect(self.seq)

    def segment(self) -> SegmentUpload:
        """``async with pub.segment() as up: await up.write(chunk)`` streams one segment."""
        return SegmentUpload(self)

    async def write_segment(self, data: bytes | memoryview | AsyncIterable[bytes]) -> int:
        """Publish one segment; returns its seq."""
        async with self.segment() as upload:
            if isinstance(data, bytes | bytearray | memoryview):
                view = memoryview(data).cast("B")
                for start in range(0, len(view), PIECE):
                    await upload.write(view[start : start + PIECE])
            else:
                async for chunk in data:
                    await upload.write(chunk)
        return upload.seq

    async def close(self) -> None:
        """End the channel: ``DELETE /{ch}``, then drop the preconnected POST."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._terminal is None:
                await self._delete(self.url)
        finally:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None

    async def __aenter__(self) -> TricklePublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- internals --------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._terminal is not None:
            raise self._terminal
        if self._closed:
            raise TrickleUsageError("publisher closed", self.url)

    def _terminate(self, error: TrickleError) -> TrickleError:
        self._terminal = error
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        return error

    def _new_attempt(self, seq: int) -> _Attempt:
        return _Attempt(self, seq, reset=seq == self._reset_seq)

    def _preconnect(self, seq: int) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self._new_attempt(seq)

    async def _attempt_for(self, seq: int) -> _Attempt:
        """The preconnected POST of ``seq`` if it is still usable, else a new one."""
        pending, self._pending = self._pending, None
        if pending is not None and pending.seq == seq:
            if not pending.task.done():
                self.stats.preconnects_used += 1
                return pending
            outcome = pending.task.result()
            if outcome.closed:
                raise self._terminate(TrickleChannelClosed("channel closed", self.url, seq))
            if outcome.status == 404:
                raise self._terminate(TrickleChannelGone("channel not found", self.url, seq))
            # it died idle (connection dropped, or the segment was closed under it): reconnect
        elif pending is not None:
            pending.cancel()
        return self._new_attempt(seq)

    async def _fetch_next(self) -> int:
        timeout = aiohttp.ClientTimeout(total=self.connect_timeout * 2)
        try:
            async with self.session.get(f"{self.url}/next", ssl=self.ssl, timeout=timeout) as resp:
                body = (await resp.content.read(64)).decode("ascii", "replace")
                if resp.status == 404:
                    raise self._terminate(TrickleChannelGone("channel not found", self.url))
                if resp.headers.get(H_CLOSED):
                    raise self._terminate(TrickleChannelClosed("channel closed", self.url))
                latest = parse_int(resp.headers.get(H_LATEST))
                if latest is None:
                    latest = parse_int(body)
                if resp.status != 200 or latest is None or latest < 0:
                    raise TrickleError(f"GET /next answered {resp.status} {body!r}", self.url)
                return latest
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TrickleError(f"GET /next failed: {exc!r}", self.url) from exc

    async def _delete(self, url: str) -> None:
        """DELETE on a fresh connection (the one the segment used may be broken)."""
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=self.connect_timeout)
        try:
            async with (
                aiohttp.ClientSession(connector=connector, timeout=timeout) as fresh,
                fresh.delete(url, ssl=self.ssl) as resp,
            ):
                if resp.status not in (200, 400, 404):
                    log.warning("trickle DELETE failed", extra={"url": url, "status": resp.status})
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("trickle DELETE failed", extra={"url": url, "error": repr(exc)})
