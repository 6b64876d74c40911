"""One accepted RTMP connection: moves bytes between a socket and a :class:`ServerConnection`.

Reads at most ``limits.read_size`` bytes at a time and handles every event of a read (awaiting
the sink for each media message) before reading again, so a slow sink slows the publisher
down through TCP flow control: nothing is dropped and nothing piles up in memory.

While a publish is under way, reads are handled as they arrive, in the socket's callback
(:class:`InlineReaderProtocol`), with no hand-off to the connection's task: media messages go
to the sink's ``offer()``. That is the common case: tens of reads a second per stream, each
holding a frame or two (such a read is what the event loop read, not ``read_size``; the chunk
parser's own limits apply all the same). Whatever needs the task (a command, an answer to
send, a sink that would make us wait, an error, the end) wakes it with the rest of that read's
events; later reads queue in the stream reader behind them, and the task goes back to waiting
only once it has read everything queued, so the order of messages never changes.

Everything that goes wrong ends this connection only; the sink's ``close()`` is called exactly
once. The socket is closed as soon as the peer has gone (EOF or reset) or the connection fails,
before the publish is torn down, so a slow or stuck teardown never leaves it in CLOSE-WAIT; an
unpublish command starts the teardown without holding up reading either.

Logs carry the peer, app, the stream's public id (``PublishSink.public_id``, once the publish is
accepted) and query *keys*: never the stream name the publisher sent, nor query values, as
either may be its secret key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any, cast

from ...errors import MediaGWError, PublishRejected, RTMPProtocolError
from .events import (
    Closing,
    Event,
    MediaMessage,
    Metadata,
    PublishEnded,
    PublishRequested,
)
from .moderation import ReadModerator
from .statemachine import ServerConnection, State
from .types import PublishHandler, PublishRequest, PublishSink, RTMPLimits

__all__ = ["RTMPConnection"]

log = logging.getLogger("mediagw.ingest.rtmp")


class _SinkFailed(Exception):
    """The PublishSink raised (its cause is attached): our side failed, not the peer."""


class InlineReaderProtocol(asyncio.StreamReaderProtocol):
    """The stream protocol of an RTMP connection: hands each read to the connection while it
    takes reads inline (see the module docstring), else to the stream reader as usual."""

    conn: RTMPConnection | None = None
    fed = 0  # bytes given to the stream reader (the connection counts those it read back)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is not None and conn.inline:
            conn.received_inline(data)
            return
        self.fed += len(data)
        super().data_received(data)

    def eof_received(self) -> bool:
        if self.conn is not None:
            self.conn.stop_inline()
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn.stop_inline()
        super().connection_lost(exc)


# a read handled inline that left work for the task: the events not taken, bytes to send, and
# the error that ended it (the peer's protocol error, or the sink failing)
_Backlog = tuple[list[Event], bytes, BaseException | None]


class RTMPConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: PublishHandler,
        limits: RTMPLimits,
        peer: tuple[str, int],
        *,
        rand: Callable[[int], bytes] = os.urandom,
        moderator: ReadModerator | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.moderator = moderator  # read moderation (see .moderation); None: never hold
        self._hold: Callable[[], bool] | None = None  # the sink's hold_reads, if moderated
        self.handler = handler
        self.limits = limits
        self.peer = peer
        self.core = ServerConnection(rand=rand, config=limits.protocol)
        self.sink: PublishSink | None = None
        # reads handled inline (see the module docstring); None: the transport is not ours
        self.protocol: InlineReaderProtocol | None = None
        self.inline = False  # the next read is handled inline
        self._inline_over = False  # EOF or the connection lost: the task reads what is left
        self._read_back = 0  # bytes the task read from the stream reader
        self._wake: asyncio.Future[None] | None = None
        self._backlog: _Backlog | None = None
        self.request: PublishRequest | None = None
        self.public_id: str | None = None  # of the accepted publish, for logs
        self._sink_closes: set[asyncio.Task[None]] = set()  # publishes ended by a command
        self.media_messages = 0
        self.bytes_in = 0  # per read (up to read_size bytes), never per message
        # the idle watchdog (see _serve)
        self._last_read = 0.0
        self._reading = False
        self._idle = False
        self._watchdog: asyncio.TimerHandle | None = None

    def _fields(self, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"peer": f"{self.peer[0]}:{self.peer[1]}"}
        if self.request is not None:
            fields["app"] = self.request.app
            if self.public_id is not None:
                fields["stream"] = self.public_id
            fields["query_keys"] = sorted(self.request.query)
        fields.update(extra)
        return fields

    async def run(self) -> None:
        error: str | None = None
        try:
            await self._serve()
        except RTMPProtocolError as exc:
            error = f"protocol error: {exc}"
            log.warning("rtmp protocol error, closing", extra=self._fields(error=str(exc)))
        except TimeoutError:
            error = "timeout"
            log.info("rtmp connection timed out", extra=self._fields(state=self.core.state.value))
        except OSError as exc:  # resets, broken pipes, unreachable peers
            error = f"connection lost: {exc.__class__.__name__}"
            log.info("rtmp connection lost", extra=self._fields(error=error))
        except asyncio.CancelledError:
            error = "server shutting down"
            raise
        except _SinkFailed as exc:
            cause = exc.__cause__ or exc
            error = f"sink failed: {cause.__class__.__name__}: {cause}"
            if isinstance(cause, MediaGWError):  # expected kinds of failure: no traceback
                log.warning("rtmp publish failed", extra=self._fields(error=error))
            else:
                log.error("rtmp sink failed", exc_info=cause, extra=self._fields())
        except Exception as exc:
            error = f"internal error: {exc.__class__.__name__}"
            log.exception("rtmp connection failed", extra=self._fields())
        finally:
            await self._close_transport()  # first: the peer is gone or is being sent away
            await self._close_sink(error)
            if self._sink_closes:  # never cut short: a cancelled teardown leaves a stream live
                await asyncio.shield(asyncio.gather(*self._sink_closes))

    async def _serve(self) -> None:
        core = self.core
        limits = self.limits
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.handshake_timeout
        read = self.reader.read
        size = limits.read_size
        while core.state is State.HANDSHAKE:  # a few reads: a timeout each is cheap enough
            async with asyncio.timeout(min(limits.idle_timeout, deadline - loop.time())):
                got = await read(size)
            self._read_back += len(got)
            if not await self._received(got):
                return
        # Publishing: up to hundreds of reads a second. One timer per connection checks for
        # silence instead of a timeout around each read (arming and cancelling one per read
        # cost more than parsing what it read).
        task = asyncio.current_task()
        assert task is not None
        self._last_read = loop.time()
        self._watchdog = loop.call_at(self._last_read + limits.idle_timeout, self._watch, task)
        try:
            while True:
                self._reading = True
                backlog: _Backlog | None = None
                data: bytes | None = None
                try:
                    if self._can_inline():
                        backlog = await self._inline_reads()
                    else:
                        data = await read(size)
                except asyncio.CancelledError:
                    if self._idle and task.uncancel() == 0:  # our watchdog: no byte came
                        raise TimeoutError from None
                    raise
                finally:
                    self._reading = False
                    self.inline = False
                if data is None:  # reads were handled inline until one left work for us
                    if backlog is not None:
                        events, out, error = backlog
                        if error is not None:
                            raise error
                        if not await self._dispatch(events, out):
                            return
                    continue  # (no backlog: the end came; the reader holds it)
                self._read_back += len(data)
                self._last_read = loop.time()
                if not await self._received(data):
                    return
        finally:
            self._watchdog.cancel()

    def _can_inline(self) -> bool:
        """Reads may be handled inline from now on: a publish is under way and the stream
        reader holds nothing (what it holds came first)."""
        protocol = self.protocol
        return (
            protocol is not None
            and self.sink is not None
            and not self._inline_over
            and protocol.fed == self._read_back
            and self.core.state is State.PUBLISHING
        )

    async def _inline_reads(self) -> _Backlog | None:
        """Let the protocol hand reads to ``received_inline`` until one leaves work for this
        task (its backlog), or the end comes (None)."""
        self._wake = wake = asyncio.get_running_loop().create_future()
        self.inline = True
        await wake
        backlog, self._backlog = self._backlog, None
        return backlog

    def received_inline(self, data: bytes) -> None:
        """One read, in the protocol's callback: media goes to the sink's ``offer()``;
        anything else wakes the task with what is left (never raises)."""
        self._last_read = asyncio.get_running_loop().time()
        self.bytes_in += len(data)
        core = self.core
        sink = self.sink
        events: list[Event] = []
        taken = 0
        error: BaseException | None = None
        try:
            events = core.receive_data(data)  # (the time is the handshake's only, long done)
        except RTMPProtocolError as exc:
            error = exc
        if error is None and sink is not None:
            offer = sink.offer
            try:
                for ev in events:
                    if type(ev) is not MediaMessage or not offer(
                        ev.msg_type, ev.timestamp, ev.payload
                    ):
                        break
                    taken += 1
            except Exception as exc:
                error = _SinkFailed(exc)
                error.__cause__ = exc
            self.media_messages += taken
        out = core.data_to_send()
        if error is None and taken == len(events) and not out and not core.closing:
            hold = self._hold
            if hold is not None and hold():
                assert self.moderator is not None
                self.moderator.hold(cast(asyncio.Transport, self.writer.transport))
            return
        self.inline = False  # later reads wait in the stream reader, behind this backlog
        self._backlog = (events[taken:], out, error)
        self._wake_task()

    def stop_inline(self) -> None:
        """EOF or the connection lost: the task reads the rest from the stream reader."""
        self._inline_over = True
        self.inline = False
        self._wake_task()

    def _wake_task(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _watch(self, task: asyncio.Task[None]) -> None:
        """Fires ``idle_timeout`` after the last read it knows of: cancels a read that has
        waited that long, else comes back when the latest read would time out."""
        loop = asyncio.get_running_loop()
        due = self._last_read + self.limits.idle_timeout
        if loop.time() >= due and self._reading:
            self._idle = True
            task.cancel()
            return
        self._watchdog = loop.call_at(max(due, loop.time() + 1.0), self._watch, task)

    async def _received(self, data: bytes) -> bool:
        """Handle one read; False once the connection is over (EOF, or closing)."""
        core = self.core
        if not data:
            events = core.receive_eof()
            await self._close_transport()  # the peer has gone: free the socket at once
            await self._handle(events)
            return False
        self.bytes_in += len(data)
        events = core.receive_data(data, int(time.time() * 1000))
        return await self._dispatch(events, core.data_to_send())

    async def _dispatch(self, events: list[Event], out: bytes) -> bool:
        """Send our answers, then handle the events of a read; False once closing."""
        if out:
            await self._send(out)
        if events:
            await self._handle(events)
        if self.core.closing:
            await self._linger()
            return False
        return True

    async def _handle(self, events: list[Event]) -> None:
        for ev in events:
            sink = self.sink
            if type(ev) is MediaMessage and sink is not None:  # one frame each
                self.media_messages += 1
                try:
                    if not sink.offer(ev.msg_type, ev.timestamp, ev.payload):
                        await sink.media(ev.msg_type, ev.timestamp, ev.payload)
                except Exception as exc:
                    raise _SinkFailed(exc) from exc
            elif isinstance(ev, PublishRequested):
                await self._publish(ev)
            elif isinstance(ev, Closing):
                log.info("rtmp connection closing", extra=self._fields(reason=ev.reason))
            elif sink is not None:
                try:
                    await self._deliver(sink, ev)
                except Exception as exc:
                    raise _SinkFailed(exc) from exc

    async def _deliver(self, sink: PublishSink, ev: Event) -> None:
        """Events other than media (``_handle`` delivers those itself)."""
        if isinstance(ev, Metadata):
            await sink.metadata(ev.meta)
        elif isinstance(ev, PublishEnded):
            log.info("rtmp publish ended", extra=self._fields(error=ev.error))
            # torn down beside the reading: the peer's FIN that usually follows is seen at once
            self.sink = self._hold = None
            task = asyncio.get_running_loop().create_task(self._close(sink, ev.error))
            self._sink_closes.add(task)
            task.add_done_callback(self._sink_closes.discard)

    async def _publish(self, ev: PublishRequested) -> None:
        req = PublishRequest(ev.app, ev.name, ev.query, ev.tc_url, self.peer)
        self.request = req
        try:
            async with asyncio.timeout(self.limits.publish_timeout):
                sink = await self.handler.on_publish(req)
        except PublishRejected as exc:
            log.info("rtmp publish rejected", extra=self._fields(code=exc.code))
            self.core.reject_publish(exc.code, exc.description)
        except TimeoutError:
            log.warning("rtmp publish handler timed out", extra=self._fields())
            self.core.reject_publish("NetStream.Publish.Rejected", "publish check timed out")
        except Exception:
            log.exception("rtmp publish handler failed", extra=self._fields())
            self.core.reject_publish("NetStream.Publish.Rejected", "internal error")
        else:
            self.sink = sink
            self.public_id = sink.public_id
            if self.moderator is not None and self.moderator.period > 0:
                self._hold = getattr(sink, "hold_reads", None)
            self.core.accept_publish()
            log.info("rtmp publish started", extra=self._fields())
        await self._flush()

    async def _flush(self) -> None:
        data = self.core.data_to_send()
        if data:
            await self._send(data)

    async def _send(self, data: bytes) -> None:
        if self.writer.is_closing():
            # the transport closed under us (a reset, a failed write): uvloop raises
            # RuntimeError on a write there, asyncio's loop drops the bytes
            raise ConnectionResetError("the connection closed before our answer")
        self.writer.write(data)
        # A peer that never reads our replies must not park this task forever.
        async with asyncio.timeout(self.limits.idle_timeout):
            await self.writer.drain()

    async def _linger(self) -> None:
        """After a refusal: half-close, then let the peer read our answer and hang up first.

        Closing with unread bytes in our receive buffer would send a RST, and a RST can make
        the peer's kernel drop the answer before the peer reads it.
        """
        await self._flush()
        if not self.writer.is_closing() and self.writer.can_write_eof():
            self.writer.write_eof()
        try:
            async with asyncio.timeout(self.limits.close_grace):
                while await self.reader.read(self.limits.read_size):
                    pass
        except (TimeoutError, ConnectionError):
            pass

    async def _close_sink(self, error: str | None) -> None:
        sink, self.sink = self.sink, None
        self._hold = None  # the sink's method: it would keep the ended publisher alive
        if sink is not None:
            await self._close(sink, error)

    async def _close(self, sink: PublishSink, error: str | None) -> None:
        try:
            await sink.close(error)
        except Exception:
            log.exception("rtmp sink close failed", extra=self._fields())

    async def _close_transport(self) -> None:
        writer = self.writer
        if writer.is_closing():
            return
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError):
            writer.transport.abort()  # unsent bytes for a peer that reads nothing: drop them
