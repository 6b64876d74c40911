"""``LiveManager``: the O's live video-to-video side: the trickle server mounted at
``/ai/trickle/``, the idle "containers" per model (capacity), and the running sessions.

A start request (``http.LiveStartHandler``) reserves a container for its model (step 3 of live-AI
spec §3.2), then ``open_session`` creates the four channels (step 8), validates the params and
starts the runner (step 9; bad params -> 500 and the channels are closed). The container is
released when the session ends (input closed or swept, out of credit, a fault, shutdown).

The gateway's GETs of a session's ``<mid>-out`` pass by ``LiveSession.output_fault`` first
(counted there; the ``live_output_*`` fault switches answer them, see faults.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

from mediagw.livepeer.proto import net
from mediagw.livepeer.trickle import TrickleError

from ..balances import Balances
from ..caps import LIVE_VIDEO_TO_VIDEO
from ..config import OrchestratorConfig
from ..errors import LiveParamsError, RequestRejected
from ..stats import OrchestratorStats
from ..trickle import TrickleServerConfig
from ..trickle.routes import Route, RouteKind, parse_route
from .accounting import LiveAccounting
from .faults import InterceptingTrickleServer, Reply
from .params import parse_params
from .session import LiveSession, channel_names

__all__ = ["TRICKLE_PATH", "LiveManager"]

log = logging.getLogger("mediagw.orchestrator.live")

TRICKLE_PATH = "/ai/trickle/"
MIMES = ("video/MP2T", "video/MP2T", "application/json", "application/json")


class LiveManager:
    def __init__(
        self,
        config: OrchestratorConfig,
        stats: OrchestratorStats,
        balances: Balances,
        service_uri: str,
    ) -> None:
        self.config = config
        self.stats = stats
        self.balances = balances
        self.service_uri = service_uri.rstrip("/")
        self.models = dict(config.live_models)
        self.trickle = InterceptingTrickleServer(
            TrickleServerConfig(
                autocreate=False,
                idle_timeout=config.live_trickle_idle_timeout,
                sweep_interval=config.live_trickle_sweep_interval,
            ),
            clock=config.monotonic,
            intercept=self._intercept,
            cut=self._cut_input,
        )
        self.sessions: dict[str, LiveSession] = {}
        self._in_use: Counter[str] = Counter()
        self._executor = ThreadPoolExecutor(max(1, config.live_workers), "orch-live")

    @property
    def enabled(self) -> bool:
        return bool(self.models)

    async def start(self) -> None:
        if self.enabled:
            await self.trickle.start()

    async def close(self) -> None:
        sessions = list(self.sessions.values())
        for session in sessions:
            session.end("orchestrator stopped")
        for session in sessions:
            await session.wait()
        await self.trickle.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- capacity ---------------------------------------------------------------------------

    def in_use(self, model: str) -> int:
        return self._in_use[model]

    def has_capacity(self, model: str) -> bool:
        """An idle container for ``model`` (CheckAICapacity)."""
        return model in self.models and self._in_use[model] < self.config.live_capacity

    def reserve(self, model: str) -> bool:
        if not self.has_capacity(model):
            return False
        self._in_use[model] += 1
        return True

    def release(self, model: str) -> None:
        if self._in_use[model] > 0:
            self._in_use[model] -= 1

    def annotate(self, caps: net.Capabilities) -> None:
        """Fill ``capacityInUse`` of each model in an outgoing Capabilities."""
        if not self.enabled:
            return
        per = caps.constraints.PerCapability[LIVE_VIDEO_TO_VIDEO]
        for model in self.models:
            per.models[model].capacityInUse = self._in_use[model]

    # --- sessions ---------------------------------------------------------------------------

    def new_mid(self) -> str:
        """A fresh request ID (8 hex chars) = the session's manifest ID."""
        while True:
            mid = self.config.rand(4).hex()
            if mid not in self.sessions and self.trickle.get_channel(mid) is None:
                return mid

    def url(self, name: str) -> str:
        return f"{self.service_uri}{TRICKLE_PATH}{name}"

    def open_session(
        self,
        *,
        mid: str,
        model: str,
        params: object,
        sender: bytes,
        price: Fraction | None,
        request_id: str = "",
        stream_id: str = "",
    ) -> dict[str, str]:
        """Steps 8-9 for a reserved container: channels, params, runner. Returns the reply JSON.
        Raises RequestRejected(500) (channels closed again); the caller releases the container."""
        names = channel_names(mid)
        try:
            for name, mime in zip(names, MIMES, strict=True):
                self.trickle.create_channel(name, mime)
            parsed = parse_params(model, params)
        except (LiveParamsError, TrickleError) as exc:
            for name in names:
                self.trickle.close_channel(name)
            raise RequestRejected(500, str(exc)) from None
        accounting = None
        if price is not None:
            accounting = LiveAccounting(
                balances=self.balances,
                sender=sender,
                mid=mid,
                price=price,
                interval=self.config.live_payment_interval,
                start=self.config.monotonic(),
            )
        session = LiveSession(
            mid=mid,
            params=parsed,
            server=self.trickle,
            config=self.config,
            stats=self.stats,
            executor=self._executor,
            accounting=accounting,
            on_end=self._ended,
            request_id=request_id,
            stream_id=stream_id,
        )
        self.sessions[mid] = session
        self.stats.live_sessions_started += 1
        session.start()
        log.info(
            "live session started",
            extra={"mid": mid, "model": model, "request_id": request_id,
                   "stream_id": stream_id, "priced": accounting is not None},
        )  # fmt: skip
        inp, out, control, events = (self.url(n) for n in names)
        return {
            "publish_url": inp,
            "subscribe_url": out,
            "control_url": control,
            "events_url": events,
            "manifest_id": mid,
        }

    def _intercept(self, method: str, tail: str) -> Reply | None:
        """Before the trickle server: a GET of a session's output goes by the session."""
        if method != "GET":
            return None
        route = parse_route(method, tail)
        if not isinstance(route, Route) or route.kind is not RouteKind.SUBSCRIBE:
            return None
        if not route.channel.endswith("-out") or route.seq is None:
            return None
        session = self.sessions.get(route.channel.removesuffix("-out"))
        return session.output_fault(route.seq) if session is not None else None

    def _cut_input(self, method: str, tail: str) -> int | None:
        """``Faults.live_cut_input``: the POST of a session's input segment to cut, and where."""
        cut = self.config.faults.live_cut_input
        if cut is None or method != "POST":
            return None
        route = parse_route(method, tail)
        if not isinstance(route, Route) or route.kind is not RouteKind.PUBLISH:
            return None
        session = self.sessions.get(route.channel)
        seq, limit = cut
        if (
            session is None
            or route.seq != seq
            or not session.config.faults.live_applies(session.stream_id)
        ):
            return None
        self.stats.faults_injected += 1
        return limit

    def _ended(self, session: LiveSession) -> None:
        if self.sessions.pop(session.mid, None) is session:
            self.release(session.model)
            self.stats.live_sessions_ended += 1
