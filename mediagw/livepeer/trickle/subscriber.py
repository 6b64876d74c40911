"""``TrickleSubscriber``: reads one channel's segments in order (spec §4.6).

    async with TrickleSubscriber(url, session=s, start_seq=-1) as sub:
        async for segment in sub:          # TrickleSegment, in seq order
            async for chunk in segment:    # bytes as the publisher sends them
                ...
            # or: data = await segment.read()

- as soon as the headers of segment n arrive, the GET of n+1 is sent (preconnect); a GET whose
  headers do not come within ``refresh_interval`` (20 s) is re-issued;
- what to ask next comes from ``SubscriberPosition`` (positions.py): 470 jumps to
  ``Lp-Trickle-Latest`` (or waits 250 ms when that is behind the asked seq), 404 and
  ``Lp-Trickle-Closed`` end the iteration, empty segments are skipped, errors are retried every
  300 ms and the sixth in a row raises ``TrickleUnavailable``;
- moving to the next segment drops the unread rest of the current one;
- a segment whose body breaks raises ``TrickleSegmentBroken`` from its iteration; the
  subscriber itself goes on with the next segment;
- a run of 470 answers long enough to be paced (a "470 storm") is logged once as a warning when
  it starts and once when segments come again; ``ended_by`` says why the iteration ended.

``stats`` may be passed in, to sum several subscribers (e.g. one per orchestrator of a stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp

from ...clock import SYSTEM
from .aio import cancel_quietly
from .errors import TrickleSegmentBroken, TrickleSegmentTooLarge, TrickleUnavailable
from .positions import Step, SubscriberPosition
from .wire import H_CLOSED, H_LATEST, H_SEQ, parse_int

__all__ = ["SubscriberStats", "TrickleSegment", "TrickleSubscriber"]

log = logging.getLogger("mediagw.trickle.subscriber")

SSLArg = _ssl.SSLContext | bool


@dataclass(slots=True)
class SubscriberStats:
    requests: int = 0  # GETs sent (re-issues included)
    refreshes: int = 0  # GETs re-issued after refresh_interval without headers
    preconnects_used: int = 0  # segments whose GET was already open when asked for
    segments: int = 0
    skipped: int = 0  # empty segments
    jumps: int = 0  # 470 answers
    errors: int = 0
    storms: int = 0  # runs of 470 answers long enough to be paced
    longest_storm: int = 0  # the most 470 answers in a row


@dataclass(slots=True)
class _Answer:
    asked: int
    status: int = 0  # 0: transport failure
    seq: int | None = None
    latest: int | None = None
    closed: bool = False
    empty: bool = False
    response: aiohttp.ClientResponse | None = None
    first: bytes = b""
    error: BaseException | None = None

    def discard(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None


class TrickleSegment:
    """One received segment. Iterate it for its chunks, or ``read()`` it whole."""

    def __init__(
        self, url: str, answer: _Answer, response: aiohttp.ClientResponse, max_bytes: int
    ) -> None:
        self.seq = answer.seq if answer.seq is not None else answer.asked
        self.latest = answer.latest
        self.content_type = response.headers.get("Content-Type", "")
        self._url = url
        self._response: aiohttp.ClientResponse | None = response
        self._first: bytes | None = answer.first
        self._max = max_bytes
        self.size = 0
        self.complete = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        response = self._response
        if response is None:
            raise TrickleSegmentBroken("segment already released", self._url, self.seq)
        try:
            if self._first is not None:
                first, self._first = self._first, None
                self.size += len(first)
                yield first
            while True:
                try:
                    chunk = await response.content.readany()
                except (aiohttp.ClientError, OSError) as exc:
                    raise TrickleSegmentBroken(
                        f"segment body broke after {self.size} bytes: {exc!r}", self._url, self.seq
                    ) from exc
                if not chunk:
                    self.complete = True
                    return
                self.size += len(chunk)
                if self.size > self._max:
                    raise TrickleSegmentTooLarge(self._max, self._url, self.seq)
                yield chunk
        finally:
            self.release()

    async def read(self) -> bytes:
        """All the segment's bytes."""
        return b"".join([chunk async for chunk in self])

    def release(self) -> None:
        """Stop reading; an unread rest is dropped (its connection is closed)."""
        response, self._response = self._response, None
        if response is not None:
            if self.complete:
                response.release()
            else:
                response.close()


class TrickleSubscriber:
    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession,
        start_seq: int = -1,
        ssl: SSLArg = True,
        max_errors: int = 5,
        retry_delay: float = 0.3,
        ahead_delay: float = 0.25,
        refresh_interval: float = 20.0,
        connect_timeout: float = 10.0,
        max_segment_bytes: int = 64 << 20,
        stats: SubscriberStats | None = None,
        clock: Callable[[], float] = SYSTEM.monotonic,
    ) -> None:
        """``ssl``: True = verify, False = accept any certificate (an O's self-signed one),
        or an ``SSLContext`` (e.g. a pin store's). ``clock``: monotonic seconds."""
        self.url = url.rstrip("/")
        self._clock = clock
        self.session = session
        self.ssl = ssl
        self.position = SubscriberPosition(
            start_seq, max_errors=max_errors, retry_delay=retry_delay, ahead_delay=ahead_delay
        )
        self.refresh_interval = refresh_interval
        self.connect_timeout = connect_timeout
        self.max_segment_bytes = max_segment_bytes
        self.stats = stats if stats is not None else SubscriberStats()
        self.ended_by = ""  # why the iteration ended (404, Lp-Trickle-Closed, errors, close())
        self._storm_started: float | None = None  # a 470 storm is going on since (monotonic)
        self._current: TrickleSegment | None = None
        self._pre: asyncio.Task[_Answer] | None = None
        self._pre_seq = -99
        self._closed = False

    def __aiter__(self) -> TrickleSubscriber:
        return self

    async def __anext__(self) -> TrickleSegment:
        if self._current is not None:
            self._current.release()
            self._current = None
        pos = self.position
        while not pos.ended and not self._closed:
            answer = await self._answer_for(pos.seq)
            if answer.status == 0:
                self.stats.errors += 1
                verdict = pos.on_error()
                log.debug(
                    "trickle GET failed", extra={"url": self.url, "error": repr(answer.error)}
                )
            else:
                verdict = pos.on_answer(
                    answer.status,
                    seq=answer.seq,
                    latest=answer.latest,
                    closed=answer.closed,
                    empty=answer.empty,
                )
            self._watch_storm(verdict.step, pos.unavailable)
            if verdict.step is Step.DELIVER and answer.response is not None:
                segment = TrickleSegment(self.url, answer, answer.response, self.max_segment_bytes)
                segment.seq = verdict.answered
                self._current = segment
                self.stats.segments += 1
                self._preconnect(verdict.seq)
                return segment
            answer.discard()
            if verdict.step is Step.SKIP:
                self.stats.skipped += 1
            elif verdict.step in (Step.JUMP, Step.WAIT):
                self.stats.jumps += 1
            elif verdict.step is Step.FAIL:
                self.ended_by = f"gave up after {pos.errors} failed requests in a row"
                raise TrickleUnavailable(
                    f"giving up after {pos.errors} failed requests in a row", self.url, pos.seq
                )
            elif verdict.step is Step.END:
                self.ended_by = (
                    "Lp-Trickle-Closed: the server closed the channel"
                    if answer.closed
                    else f"HTTP {answer.status}: the channel is gone"
                )
            if verdict.delay > 0 and not verdict.terminal:
                await asyncio.sleep(verdict.delay)
        if not self.ended_by:
            self.ended_by = "closed by this side"
        raise StopAsyncIteration

    def _watch_storm(self, step: Step, in_a_row: int) -> None:
        """Log the start and the end of a run of 470 answers once it is paced."""
        pos = self.position
        if step in (Step.JUMP, Step.WAIT):
            self.stats.longest_storm = max(self.stats.longest_storm, in_a_row)
            if in_a_row == pos.spin_after + 1:
                self._storm_started = self._clock()
                self.stats.storms += 1
                log.warning(
                    "trickle: the server keeps answering 470 (segment not available); "
                    "jumping to its latest segment, paced",
                    extra={"url": self.url, "in_a_row": in_a_row, "seq": pos.seq,
                           "every_s": pos.ahead_delay},
                )  # fmt: skip
        elif self._storm_started is not None and step is not Step.RETRY:
            lasted = self._clock() - self._storm_started
            self._storm_started = None
            log.info(
                "trickle: segments available again after a run of 470 answers",
                extra={"url": self.url, "seconds": round(lasted, 3), "seq": pos.seq},
            )

    async def close(self) -> None:
        self._closed = True
        if self._current is not None:
            self._current.release()
            self._current = None
        await self._cancel_preconnect()

    async def __aenter__(self) -> TrickleSubscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- internals --------------------------------------------------------------------------

    def _preconnect(self, seq: int) -> None:
        self._pre_seq = seq
        self._pre = asyncio.create_task(self._fetch(seq), name=f"trickle-get-{seq}")

    async def _cancel_preconnect(self) -> None:
        pre, self._pre = self._pre, None
        if pre is None:
            return
        answer = await cancel_quietly(pre)
        if answer is not None:
            answer.discard()

    async def _answer_for(self, seq: int) -> _Answer:
        if self._pre is not None and self._pre_seq == seq:
            pre, self._pre = self._pre, None
            if not pre.done():
                self.stats.preconnects_used += 1
            return await pre
        await self._cancel_preconnect()
        return await self._fetch(seq)

    async def _fetch(self, seq: int) -> _Answer:
        """GET segment ``seq`` until its headers arrive (re-issued every refresh_interval)."""
        url = f"{self.url}/{seq}"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        while True:
            self.stats.requests += 1
            try:
                response = await asyncio.wait_for(
                    self.session.get(url, ssl=self.ssl, timeout=timeout), self.refresh_interval
                )
            except aiohttp.ClientError as exc:  # aiohttp's own timeouts included
                return _Answer(seq, error=exc)
            except TimeoutError:  # no headers within refresh_interval: ask again
                self.stats.refreshes += 1
                continue
            except OSError as exc:
                return _Answer(seq, error=exc)
            return await self._classify(seq, response)

    async def _classify(self, seq: int, response: aiohttp.ClientResponse) -> _Answer:
        headers = response.headers
        answer = _Answer(
            seq,
            status=response.status,
            seq=parse_int(headers.get(H_SEQ)),
            latest=parse_int(headers.get(H_LATEST)),
            closed=bool(headers.get(H_CLOSED)),
        )
        if response.status != 200 or answer.closed or response.content_length == 0:
            answer.empty = True
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await response.content.read(4096)  # small error texts; keeps the connection
            response.release()
            return answer
        try:
            answer.first = await response.content.readany()
        except (aiohttp.ClientError, OSError) as exc:
            response.close()
            return _Answer(seq, error=exc)
        if not answer.first:
            answer.empty = True
            response.release()
            return answer
        answer.response = response
        return answer
