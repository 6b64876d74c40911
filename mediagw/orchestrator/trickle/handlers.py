"""HTTP semantics of the trickle routes (spec §4.1, §4.3-§4.5), written once against a small
``Exchange`` interface that the ASGI and aiohttp front ends implement.

Texts and statuses are go-livepeer's (``http.Error`` plain text). What goes beyond it:
413 for a segment over the size limit, 503 when a segment already has the maximum number of
readers, 400 for negative seqs other than -1 (POST) / -1, -2 (GET).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from mediagw.livepeer.trickle.aio import cancel_quietly
from mediagw.livepeer.trickle.wire import (
    CLOSED_VALUE,
    H_CLOSED,
    H_EXPECT_CONTENT,
    H_LATEST,
    H_RESET,
    H_SEQ,
    NOT_FOUND_BODY,
    STATUS_UNAVAILABLE,
)

from .config import WriteResult
from .routes import Route, RouteError, RouteKind
from .rules import GetOutcome, GetPlan, PostOutcome
from .segment import PeerGone, Segment, SegmentCut, SegmentReader
from .types import ChannelHost, ChannelPort

__all__ = ["Exchange", "Headers", "TrickleHandlers"]

log = logging.getLogger("mediagw.trickle")

Headers = list[tuple[str, str]]
TEXT = "text/plain; charset=utf-8"


class Exchange(Protocol):
    """One HTTP request/response as the handlers see it."""

    def header(self, name: str) -> str: ...

    async def read(self) -> bytes | None:
        """The next non-empty body chunk, None at the end; raises ``PeerGone``."""

    async def interim(self) -> bool:
        """Send a 1xx keepalive if the transport can; True when sent."""

    async def respond(self, status: int, headers: Headers, body: bytes = b"") -> None: ...

    async def start(self, status: int, headers: Headers) -> None:
        """Start a streamed (chunked) response."""

    async def write(self, data: bytes) -> None:
        """Send body bytes; raises ``PeerGone``."""

    async def end(self) -> None: ...

    def abort(self) -> None:
        """Give up the response so the client sees an incomplete body."""

    def gone(self) -> asyncio.Future[None]:
        """Done once the client is known to have gone away (request body fully read)."""


async def _error(ex: Exchange, status: int, text: str, extra: Headers | None = None) -> None:
    headers = [("Content-Type", TEXT), ("X-Content-Type-Options", "nosniff"), *(extra or [])]
    await ex.respond(status, headers, (text + "\n").encode())


class TrickleHandlers:
    def __init__(self, server: ChannelHost) -> None:
        self.server = server

    async def handle(self, route: Route | RouteError, ex: Exchange) -> None:
        try:
            if isinstance(route, RouteError):
                await _error(ex, route.status, route.text)
            elif route.kind is RouteKind.PUBLISH:
                await self.publish(route, ex)
            elif route.kind is RouteKind.SUBSCRIBE:
                await self.subscribe(route, ex)
            elif route.kind is RouteKind.NEXT:
                await self.next(route, ex)
            elif route.kind is RouteKind.CREATE:
                await self.create(route, ex)
            elif route.kind is RouteKind.DROP:
                await self.drop(route, ex)
            else:
                await self.delete(route, ex)
        except PeerGone:
            pass

    # --- channel routes ---------------------------------------------------------------------

    async def create(self, route: Route, ex: Exchange) -> None:
        server = self.server
        if server.get_channel(route.channel) is None:
            if not server.config.autocreate:
                await _error(ex, 404, "Stream not found")
                return
            if len(server.channel_names()) >= server.limits.max_channels:
                await _error(ex, 503, "Too many channels")
                return
            server.create_channel(route.channel, ex.header(H_EXPECT_CONTENT))
        await ex.respond(200, [])

    async def delete(self, route: Route, ex: Exchange) -> None:
        if not self.server.close_channel(route.channel):
            await _error(ex, 400, "Invalid stream")
            return
        await ex.respond(200, [])

    async def drop(self, route: Route, ex: Exchange) -> None:
        channel = self.server.get_channel(route.channel)
        if channel is None:
            await _error(ex, 404, "Stream not found")
        elif route.seq is None:
            await _error(ex, 400, "Invalid idx")
        elif not channel.drop(route.seq):
            await _error(ex, 400, "Nonexistent segment")
        else:
            await ex.respond(200, [])

    async def next(self, route: Route, ex: Exchange) -> None:
        channel = self.server.get_channel(route.channel)
        if channel is None:
            await _error(ex, 404, "Stream not found")
            return
        latest = str(channel.next_write)
        headers = [(H_LATEST, latest), ("Content-Type", TEXT)]
        if channel.closed:
            headers.append((H_CLOSED, CLOSED_VALUE))
        await ex.respond(200, headers, latest.encode())

    # --- publish ----------------------------------------------------------------------------

    def _channel_for_post(self, route: Route, ex: Exchange) -> ChannelPort | None:
        server = self.server
        channel = server.get_channel(route.channel)
        room = len(server.channel_names()) < server.limits.max_channels
        if channel is None and server.config.autocreate and room:
            channel = server.create_channel(route.channel, ex.header("Content-Type"))
        return channel

    async def publish(self, route: Route, ex: Exchange) -> None:
        channel = self._channel_for_post(route, ex)
        if channel is None:
            # Connection: close wakes up preconnected publishers (go-livepeer)
            await _error(ex, 404, "Stream not found", [("Connection", "close")])
            return
        if route.seq is None:
            await _error(ex, 400, "Invalid idx")
            return
        plan = channel.open_post(route.seq, reset=bool(ex.header(H_RESET)))
        if plan.outcome is PostOutcome.BAD or plan.segment is None:
            if plan.outcome is PostOutcome.CLOSED:
                await _error(ex, 404, "Stream not found", [("Connection", "close")])
            else:
                await _error(ex, 400, "Invalid idx")
            return
        seg = plan.segment
        try:
            await self._receive_segment(channel, seg, ex)
        finally:
            channel.release_post(seg)

    async def _first_chunk(self, seg: Segment, ex: Exchange) -> bytes | None:
        """Wait for the first body byte, sending a 1xx every ``keepalive_interval`` meanwhile.
        None: the body ended empty, or the segment was closed under this POST first."""
        interval = self.server.config.keepalive_interval
        reading: asyncio.Future[bytes | None] = asyncio.ensure_future(ex.read())
        try:
            while True:
                if seg.closed:
                    return None
                waits: list[asyncio.Future[Any]] = [reading, seg.changed()]
                done, _ = await asyncio.wait(
                    waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED
                )
                if reading.done():
                    return reading.result()
                if not done and await ex.interim():
                    self.server.stats.keepalives_sent += 1
        finally:
            if not reading.done():
                with contextlib.suppress(PeerGone):
                    await cancel_quietly(reading)

    async def _receive_segment(self, channel: ChannelPort, seg: Segment, ex: Exchange) -> None:
        limit = self.server.limits.max_segment_bytes
        try:
            chunk = await self._first_chunk(seg, ex)
            if chunk is None:  # empty preconnect: answer at once and read no further
                channel.end_post(seg)
                headers = [(H_SEQ, str(seg.seq)), ("Connection", "close")]
                if channel.closed:
                    headers.append((H_CLOSED, CLOSED_VALUE))
                await ex.respond(200, headers)
                return
            while chunk is not None:
                if channel.write(seg, chunk) is WriteResult.TOO_LARGE:
                    text = f"Segment exceeds the {limit} byte limit"
                    await _error(ex, 413, text, [("Connection", "close"), (H_SEQ, str(seg.seq))])
                    return
                chunk = await ex.read()
        except PeerGone:
            channel.abandon_post(seg)
            return
        channel.end_post(seg)
        headers = [(H_SEQ, str(seg.seq))]
        if channel.closed:
            headers.append((H_CLOSED, CLOSED_VALUE))
        await ex.respond(200, headers)

    # --- subscribe --------------------------------------------------------------------------

    async def subscribe(self, route: Route, ex: Exchange) -> None:
        channel = self.server.get_channel(route.channel)
        if channel is None:
            await _error(ex, 404, "Stream not found")
            return
        if route.seq is None:
            await _error(ex, 400, "Invalid idx")
            return
        plan = channel.open_get(route.seq)
        if plan.outcome is GetOutcome.BAD:
            await _error(ex, 400, "Invalid idx")
            return
        if plan.outcome is not GetOutcome.SERVE or plan.segment is None:
            headers = [(H_LATEST, str(plan.latest)), (H_SEQ, str(plan.seq))]
            status = 200 if plan.outcome is GetOutcome.CLOSED else STATUS_UNAVAILABLE
            if status == 200:
                headers.append((H_CLOSED, CLOSED_VALUE))
            await ex.respond(status, [*headers, ("Content-Type", TEXT)], NOT_FOUND_BODY)
            return
        seg = plan.segment
        if not channel.enter(seg):
            await _error(ex, 503, "Too many subscribers")
            return
        cut = False
        try:
            await self._stream_segment(channel, plan, seg, ex)
        except SegmentCut:
            cut = True
            ex.abort()
        finally:
            channel.leave(seg, cut=cut)

    async def _stream_segment(
        self, channel: ChannelPort, plan: GetPlan[Segment], seg: Segment, ex: Exchange
    ) -> None:
        reader = SegmentReader(seg)
        gone = ex.gone()
        try:
            data = await reader.next(gone)
        except SegmentCut:
            data = None  # left the window before any byte: answer as an empty segment
        if data is None:
            headers = [(H_SEQ, str(seg.seq)), (H_LATEST, str(channel.next_write))]
            if channel.closed:
                headers.append((H_CLOSED, CLOSED_VALUE))
            await ex.respond(200, headers)
            return
        headers = [(H_SEQ, str(seg.seq)), ("Content-Type", channel.mime)]
        if plan.send_latest:
            headers.append((H_LATEST, str(plan.latest)))
        await ex.start(200, headers)
        stats = self.server.stats
        while data is not None:
            await ex.write(data)
            stats.bytes_out += len(data)
            data = await reader.next(gone)
        await ex.end()
