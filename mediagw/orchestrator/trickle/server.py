"""``TrickleServer``: the channels of one trickle endpoint, their limits and the idle sweep.

It knows no HTTP: ``asgi_app()`` gives the ASGI application of the §4.1 routes (hypercorn, as
the reference orchestrator serves), ``aiohttp_app()`` the same routes as an aiohttp sub-app.
The owner (an orchestrator) creates channels with ``create_channel`` and reads/writes its own
side in process with ``subscribe`` / ``Channel.segment_writer``.

    server = TrickleServer()
    await server.start()                     # idle sweep task
    server.create_channel(mid, "video/MP2T")
    app = server.asgi_app("/ai/trickle/")    # mount under the base path
    async for seg in server.subscribe(mid):  # O's own reader of <mid>
        data = await seg.read()
    await server.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiohttp import web

from mediagw.livepeer.trickle.errors import TrickleChannelGone, TrickleLimitError, TrickleUsageError

from .aiohttp_app import make_aiohttp_app
from .asgi import AbortHook, TrickleASGI
from .channel import Channel
from .config import TrickleLimits, TrickleServerConfig, TrickleStats
from .local import LocalSubscription
from .routes import valid_channel_name

__all__ = ["TrickleServer"]

log = logging.getLogger("mediagw.trickle")


class TrickleServer:
    def __init__(
        self,
        config: TrickleServerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or TrickleServerConfig()
        self.clock = clock
        self.stats = TrickleStats()
        self._channels: dict[str, Channel] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def limits(self) -> TrickleLimits:
        return self.config.limits

    # --- channels ---------------------------------------------------------------------------

    def create_channel(self, name: str, mime: str = "video/MP2T") -> Channel:
        """Create (or return the existing) channel ``name``."""
        existing = self._channels.get(name)
        if existing is not None and not existing.closed:
            return existing  # (a closed one lingering after close_channel is replaced)
        if not valid_channel_name(name):
            raise TrickleUsageError(f"invalid channel name {name[:64]!r}")
        if len(self._channels) >= self.limits.max_channels:
            raise TrickleLimitError(
                f"channel limit reached ({self.limits.max_channels} channels)", name
            )
        channel = Channel(name, mime, limits=self.limits, stats=self.stats, clock=self.clock)
        self._channels[name] = channel
        self.stats.channels_created += 1
        log.debug("trickle channel created", extra={"channel": name, "mime": mime})
        return channel

    def get_channel(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def channel_names(self) -> list[str]:
        return list(self._channels)

    def close_channel(self, name: str, *, linger: float = 0.0) -> bool:
        """Close ``name``: waiting readers get ``Lp-Trickle-Closed``. It is removed at once (new
        requests 404), or after ``linger`` seconds during which the segments it still holds are
        served and other requests get ``Lp-Trickle-Closed``, so a reader a moment late for the
        last segment still gets it. False when there was no such channel."""
        channel = self._channels.get(name)
        if channel is None:
            return False
        if not channel.closed:
            channel.close()
            self.stats.channels_closed += 1
            log.debug("trickle channel closed", extra={"channel": name, "linger": linger})
        if linger > 0:
            asyncio.get_running_loop().call_later(linger, self._forget, name, channel)
        else:
            self._forget(name, channel)
        return True

    def _forget(self, name: str, channel: Channel) -> None:
        if self._channels.get(name) is channel:
            del self._channels[name]

    def subscribe(self, name: str, start_seq: int = -1) -> LocalSubscription:
        """Read channel ``name`` in process (async iterator of segments)."""
        channel = self._channels.get(name)
        if channel is None:
            raise TrickleChannelGone("no such channel", name)
        return channel.subscribe(start_seq)

    # --- idle sweep -------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> list[str]:
        """Close the channels without a write for ``idle_timeout``; names starting with ``_``
        are kept. Returns the names closed."""
        now = self.clock() if now is None else now
        timeout = self.config.idle_timeout
        idle = [
            name
            for name, ch in self._channels.items()
            if not name.startswith("_") and not ch.closed and ch.rules.idle(now, timeout)
        ]
        for name in idle:
            self.close_channel(name)
            self.stats.channels_swept += 1
        if idle:
            log.info("trickle idle channels closed", extra={"channels": idle})
        return idle

    async def start(self) -> None:
        """Start the idle sweep (every ``sweep_interval`` seconds)."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="trickle-sweep")

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval)
            try:
                self.sweep()
            except Exception:  # never let one bad sweep stop the next ones
                log.exception("trickle sweep failed")

    async def close(self) -> None:
        """Stop the sweep and close every channel."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for name in list(self._channels):
            self.close_channel(name)

    async def __aenter__(self) -> TrickleServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- HTTP front ends --------------------------------------------------------------------

    def asgi_app(self, base_path: str = "/", *, abort: AbortHook | None = None) -> TrickleASGI:
        """The ASGI app of the trickle routes under ``base_path``. ``abort(scope)``, when
        given, kills the connection of a request (used to cut a reader mid-body)."""
        return TrickleASGI(self, base_path, abort=abort)

    def aiohttp_app(self) -> web.Application:
        """The trickle routes as an aiohttp application (mount it with ``add_subapp``)."""
        return make_aiohttp_app(self)
