"""Plans' stream limits: concurrent streams, and stream and live-AI minutes per UTC day and month.

``StreamQuotas`` is three things at once, all in memory (nothing touches the store per segment):

- the publish gate of ``StoreStreamAuth`` (``admit``): a stored stream of a key whose plan has no
  minutes left, or that already has ``max_concurrent_streams`` live, is refused with a message
  saying which limit and what to do (RTMP ``NetStream.Publish.Rejected``, WHIP 403). An admitted
  publish holds its place for ``reserve_for`` seconds until the hub reports it live, so two
  publishes at once cannot both take the last place;
- a hub listener: live streams per owner, and stream minutes from each segment's duration;
- a usage sink: live-AI minutes from the ``live_ai`` events (ms of media handed to the O).

When a key's minutes run out, its live streams (for live-AI minutes: those running a pipeline)
are ended: the publisher is disconnected (``terminate``), the stream's status reason becomes
``quota_exhausted`` (``status_reason``, shown by ``GET /api/stream/{id}`` as ``statusReason``
and sent with the ``stream.idle`` event), and ``quota.exhausted`` is emitted. Other keys' streams
are untouched.

Alone, a gateway counts in memory from its start: a restart forgets it (the usage ledger
persists usage; its totals can seed these windows). With ``-redisUrl`` (``attach``), the limits
hold across the nodes sharing Redis (``platform/shared/stream_limits``): a publish is admitted
against every node's live streams and minutes, segments' minutes are summed here and flushed
every second, and the totals read back end a key's streams on every node within about a second
of its minutes running out. Redis down: each node enforces what it knows (fail open).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..clock import SYSTEM, Clock
from ..errors import PublishRejected
from ..usage import LIVE_AI, UsageEvent
from .lifecycle import EventSink, LiveStream
from .limits import PlanLimits, UsageWindows, Windows
from .plan_limits import PlanCache
from .shared.stream_limits import LIVE_AI as SHARED_AI
from .shared.stream_limits import STREAM as SHARED_STREAM
from .shared.stream_limits import SharedStreamLimits, Totals
from .store import Store, Stream
from .studio_json import to_studio
from .tasks import TaskSet

log = logging.getLogger("mediagw.platform.quota")

__all__ = ["QUOTA_EXHAUSTED", "REJECTED", "StreamQuotas"]

QUOTA_EXHAUSTED = "quota_exhausted"
REJECTED = "NetStream.Publish.Rejected"
MAX_REASONS = 10_000

Terminate = Callable[[str, str], bool]  # (playback id, message) -> whether a publisher was live


class _Segment(Protocol):
    @property
    def duration(self) -> float: ...


@dataclass(eq=False)
class _Live:
    owner: str
    row: Stream
    ending: bool = False


def _exhausted(win: Windows, daily: float | None, monthly: float | None) -> str:
    """Which window is used up ("daily", "monthly"), or ""."""
    if daily is not None and win.day_used >= daily:
        return "daily"
    if monthly is not None and win.month_used >= monthly:
        return "monthly"
    return ""


class StreamQuotas:
    def __init__(
        self,
        plans: PlanCache,
        granted: Mapping[str, Stream],
        terminate: Terminate,
        *,
        clock: Clock = SYSTEM,
        reserve_for: float = 30.0,
    ) -> None:
        self.plans = plans
        self.granted = granted  # playback id -> stream (StoreStreamAuth.granted)
        self.terminate = terminate
        self.clock = clock
        self.reserve_for = reserve_for
        self.events: EventSink | None = None
        self.store: Store | None = None  # for the events' stream documents
        self.live: dict[str, _Live] = {}  # playback id -> its live stream of a limited key
        self.reserved: dict[str, tuple[str, float]] = {}  # playback id -> (owner, until)
        self.stream_minutes = UsageWindows()
        self.live_ai_minutes = UsageWindows()
        self._reasons: OrderedDict[str, str] = OrderedDict()  # stream id -> status reason
        self._tasks = TaskSet(log, "quota work")
        self._last: dict[str, PlanLimits] = {}  # owner -> its limits as last looked up
        self._refreshing: set[str] = set()  # owners whose limits are being looked up
        self.shared: SharedStreamLimits | None = None  # -redisUrl: the limits across nodes

    def attach(self, shared: SharedStreamLimits) -> None:
        """Hold the limits across the nodes sharing ``shared``'s Redis."""
        self.shared = shared
        shared.held = self._held
        shared.on_totals = self._on_totals

    def start(self) -> None:
        if self.shared is not None:
            self.shared.start(self.clock.wall)

    # -- the publish gate -------------------------------------------------------------------------
    async def admit(self, stream: Stream) -> None:
        """Raise ``PublishRejected`` if ``stream``'s owner may not publish it now."""
        limits = await self.plans.limits_of_owner(stream.owner_key_id)
        if limits is None or stream.owner_key_id is None:
            return  # the operator's: no limits
        owner, now = stream.owner_key_id, self.clock.wall()
        self._last[owner] = limits
        minutes = (
            limits.stream_minutes_daily,
            limits.stream_minutes_monthly,
            limits.live_ai_minutes_daily,
            limits.live_ai_minutes_monthly,
        )
        shared = self.shared if any(m is not None for m in minutes) else None
        if shared is not None and (totals := await shared.totals(owner, now)):  # every node's
            self._merge(owner, totals, now)
        spent = _exhausted(
            self.stream_minutes.used(owner, now),
            limits.stream_minutes_daily,
            limits.stream_minutes_monthly,
        )
        if spent:
            raise PublishRejected(_used_up("stream", spent), REJECTED)
        if stream.pipeline:
            spent = _exhausted(
                self.live_ai_minutes.used(owner, now),
                limits.live_ai_minutes_daily,
                limits.live_ai_minutes_monthly,
            )
            if spent:
                raise PublishRejected(_used_up("live AI", spent), REJECTED)
        cap = limits.max_concurrent_streams
        if cap is not None and (
            self._streams_of(owner, stream.playback_id) >= cap
            or (
                self.shared is not None
                and not await self.shared.reserve(owner, stream.playback_id, cap)
            )
        ):
            raise PublishRejected(
                f"this API key already has {cap} live streams, its plan's maximum: end one"
                " before publishing another, or ask the operator for a larger plan",
                REJECTED,
            )
        self.reserved[stream.playback_id] = (owner, self.clock.monotonic() + self.reserve_for)

    def _expire(self) -> None:
        mono = self.clock.monotonic()
        for playback_id, (_, until) in list(self.reserved.items()):
            if until <= mono:
                del self.reserved[playback_id]

    def _streams_of(self, owner: str, besides: str) -> int:
        self._expire()
        ids = {p for p, live in self.live.items() if live.owner == owner}
        ids |= {p for p, (o, _) in self.reserved.items() if o == owner}
        ids.discard(besides)  # its own publish again: the hub refuses a second publisher
        return len(ids)

    # -- hub listener -----------------------------------------------------------------------------
    def on_stream_start(self, stream: LiveStream) -> None:
        reserved = self.reserved.pop(stream.id, None)
        row = self.granted.get(stream.id)
        if reserved is None or row is None or stream.request.stream_id != row.id:
            return  # not a limited key's stored stream
        self.live[stream.id] = _Live(reserved[0], row)
        self._reasons.pop(row.id, None)  # a new session: the last one's reason is history

    def on_segment(self, stream: LiveStream, segment: _Segment) -> None:
        live = self.live.get(stream.id)
        if live is None or live.ending:
            return
        minutes = segment.duration / 60.0
        if self.shared is not None:
            self.shared.add(live.owner, SHARED_STREAM, minutes)
        win = self.stream_minutes.add(live.owner, minutes, self.clock.wall())
        self._check(live.owner, win, "stream")

    def on_stream_end(self, stream: LiveStream) -> None:
        live = self.live.pop(stream.id, None)
        if live is not None and self.shared is not None:
            self.shared.release(live.owner, stream.id)
        if live is not None and not any(o.owner == live.owner for o in self.live.values()):
            self._last.pop(live.owner, None)  # bounded: only owners with live streams

    def on_stream_removed(self, stream: LiveStream) -> None:
        pass

    # -- usage sink -------------------------------------------------------------------------------
    def emit(self, event: UsageEvent) -> None:
        if event.kind != LIVE_AI:
            return
        live = self.live.get(event.stream)
        if live is None:
            return
        minutes = event.quantity / 60_000.0
        if self.shared is not None:
            self.shared.add(live.owner, SHARED_AI, minutes)
        win = self.live_ai_minutes.add(live.owner, minutes, self.clock.wall())
        self._check(live.owner, win, "live AI")

    # -- across nodes (-redisUrl) ----------------------------------------------------------------
    def _held(self) -> dict[str, set[str]]:
        """Owner -> its playback ids live or admitted here (renewed in Redis)."""
        self._expire()
        held: dict[str, set[str]] = {}
        for playback_id, live in self.live.items():
            held.setdefault(live.owner, set()).add(playback_id)
        for playback_id, (owner, _) in self.reserved.items():
            held.setdefault(owner, set()).add(playback_id)
        return held

    def _merge(self, owner: str, totals: Totals, now: float) -> tuple[Windows, Windows]:
        """Take every node's totals as this node's windows."""
        wins = self.stream_minutes.used(owner, now), self.live_ai_minutes.used(owner, now)
        for win, day, month in zip(
            wins,
            (totals.stream_day, totals.live_ai_day),
            (totals.stream_month, totals.live_ai_month),
            strict=True,
        ):
            if win.day == totals.day:
                win.day_used = max(win.day_used, day)
            if win.month == totals.month:
                win.month_used = max(win.month_used, month)
        return wins

    def _on_totals(self, owner: str, totals: Totals) -> None:
        streams, live_ai = self._merge(owner, totals, self.clock.wall())
        self._check(owner, streams, "stream")
        self._check(owner, live_ai, "live AI")

    # -- running out ------------------------------------------------------------------------------
    def _check(self, owner: str, win: Windows, what: str) -> None:
        found, limits = self.plans.cached(owner)
        if not found or limits is None:
            self._refresh(owner)  # the cache expired: look again, judge with what was known
            limits = self._last.get(owner)
        else:
            self._last[owner] = limits
        if limits is None:
            return
        if what == "stream":
            spent = _exhausted(win, limits.stream_minutes_daily, limits.stream_minutes_monthly)
        else:
            spent = _exhausted(win, limits.live_ai_minutes_daily, limits.live_ai_minutes_monthly)
        if spent:
            self._exhaust(owner, what, spent, limits)

    def _exhaust(self, owner: str, what: str, spent: str, limits: PlanLimits) -> None:
        message = _used_up(what, spent)
        for playback_id, live in list(self.live.items()):
            if live.owner != owner or live.ending or (what == "live AI" and not live.row.pipeline):
                continue
            live.ending = True
            self._reasons[live.row.id] = QUOTA_EXHAUSTED
            while len(self._reasons) > MAX_REASONS:
                self._reasons.popitem(last=False)
            log.warning(
                "stream ended: its key's quota is used up",
                extra={"stream": playback_id, "key": owner, "quota": f"{what} {spent}"},
            )
            self.terminate(playback_id, message)
            payload = {"reason": QUOTA_EXHAUSTED, "quota": f"{what} minutes {spent}"}
            self._tasks.spawn(self._event(live.row, payload))

    def status_reason(self, stream_id: str) -> str | None:
        """Why the stream last ended, if a limit ended it (in memory: since the start)."""
        return self._reasons.get(stream_id)

    # -- async work -------------------------------------------------------------------------------
    def _refresh(self, owner: str) -> None:
        """Look ``owner``'s limits up again, once at a time: every stream of a key checks at
        every segment, and a lookup each (hundreds, when the cache expired under many live
        streams) would queue in the store and hold up the publishes waiting on it."""
        if owner in self._refreshing:
            return
        self._refreshing.add(owner)

        async def load() -> None:
            try:
                limits = await self.plans.limits_of_owner(owner)
            finally:
                self._refreshing.discard(owner)
            if limits is None:
                self._last.pop(owner, None)
            else:
                self._last[owner] = limits

        self._tasks.spawn(load())

    async def _event(self, row: Stream, payload: dict[str, Any]) -> None:
        if self.events is None:
            return
        stream = (await self.store.get_stream(row.id) if self.store else None) or row
        doc = to_studio(stream, with_key=False)
        await self.events.emit("quota.exhausted", stream_id=row.id, stream_doc=doc, payload=payload)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close(self.clock.wall())
        await self._tasks.cancel()


def _used_up(what: str, window: str) -> str:
    renews = "at 00:00 UTC" if window == "daily" else "on the 1st at 00:00 UTC"
    return (
        f"this API key used its {window} {what} minutes ({QUOTA_EXHAUSTED}): they renew {renews};"
        " ask the operator for a larger plan"
    )
