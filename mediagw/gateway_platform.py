"""The gateway's platform half: the store and what lives on it (streams, webhooks, the Studio
API, playback tokens, the stream lifecycle, the usage ledger), and the hooks the media half
calls into it (terminate a stream, name a recording's folder, report a multistream transition),
and what a node tells the others (its URL, who owns a stream, the cursor's discontinuity).

``Gateway`` (gateway.py, the composition root) inherits it, and its HTTP front
(gateway_http.py): one object, three files, so none grows past what a reader holds at once.
Nothing here touches media.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .api.playback_gate import add_playback_gate
from .api.studio import Api, ApiContext, DashboardSources, mount_api
from .config import Settings
from .platform.access import PlaybackAccess
from .platform.billing import BillingPush, open_ledger
from .platform.ledger import UsageLedger
from .platform.lifecycle import EventSink, StreamLifecycle
from .platform.limits import DEFAULT_LIMITS, PlanLimits
from .platform.plan_limits import RequestLimits, limits_of_plan
from .platform.plans import plan_for_key
from .platform.shared.fanout import share_access, share_plans
from .platform.shared.limiter import RedisLimiter
from .platform.store import ApiKey, Store, open_store
from .platform.streams import StreamService
from .platform.webhook_delivery import WebhookDispatcher
from .platform.webhooks import WebhookService
from .publish.hls import SOURCE

if TYPE_CHECKING:
    from aiohttp import web

    from .api.metrics import GatewayMetrics
    from .api.node_proxy import NodeProxy, OwnerLookup
    from .clock import Clock
    from .pipelines.metering import DeliveryMeter
    from .pipelines.transcode import TranscodeManager
    from .platform.plan_limits import PlanCache
    from .platform.shared.fanout import Invalidations
    from .platform.shared.leases import StreamLeases
    from .platform.shared.orchestrators import SharedOrchestrators
    from .platform.shared.redis import SharedRedis
    from .platform.store_auth import StoreStreamAuth
    from .platform.stream_quota import StreamQuotas
    from .platform.throttle import FailureThrottle
    from .publish.hls import HLSPublisher
    from .publish.recorder import Recorder
    from .stack import TranscodeStack
    from .stream.health import StreamHealth
    from .stream.hub import Stream as HubStream
    from .stream.hub import StreamHub
    from .usage import StreamUsage, UsageQueue

log = logging.getLogger("mediagw.gateway")

__all__ = ["GatewayPlatform"]


class GatewayPlatform:
    """The platform's parts of a ``Gateway`` and how they are opened (``_open_platform``)."""

    # set by Gateway.__init__ (the media half)
    settings: Settings
    clock: Clock
    hub: StreamHub
    http_app: web.Application
    metrics: GatewayMetrics
    store_auth: StoreStreamAuth
    plans: PlanCache
    quotas: StreamQuotas
    usage: UsageQueue
    delivery: DeliveryMeter
    stream_health: StreamHealth
    stream_usage: StreamUsage
    session_recorder: Recorder
    auth_throttle: FailureThrottle
    redis: SharedRedis | None
    node_id: str
    leases: StreamLeases | None
    node_proxy: NodeProxy | None
    orchestrators: SharedOrchestrators | None
    hls: HLSPublisher
    invalidations: Invalidations | None
    stack: TranscodeStack | None
    transcodes: TranscodeManager | None
    # opened by _open_platform
    store: Store | None
    streams: StreamService | None
    webhooks: WebhookService | None
    webhook_dispatcher: WebhookDispatcher | None
    playback_access: PlaybackAccess | None
    api: Api | None
    lifecycle: StreamLifecycle | None
    events: EventSink | None
    ledger: UsageLedger | None
    billing: BillingPush | None

    @property
    def http_port(self) -> int:
        raise NotImplementedError

    @property
    def node_port(self) -> int:
        raise NotImplementedError

    def public_url(self) -> str:
        raise NotImplementedError

    def _configured_url(self) -> str:
        raise NotImplementedError

    def _recording_folder(self, stream: HubStream) -> str | None:
        return self.lifecycle.recording_session(stream.id) if self.lifecycle else None

    def _multistream_event(
        self, playback_id: str, event: str, target: Mapping[str, Any], error: str
    ) -> None:
        if self.lifecycle is not None:
            self.lifecycle.multistream_event(playback_id, event, target, error)

    def _transcoded(self, playback_id: str) -> tuple[int, float, int]:
        return self.transcodes.transcoded(playback_id) if self.transcodes else (0, 0.0, 0)

    def _scoreboard(self) -> list[dict[str, Any]]:
        return self.stack.transcoder.scoreboard_rows() if self.stack is not None else []

    def _recording_url(self, session_id: str) -> str:
        return f"{self.public_url()}/recordings/{session_id}/index.m3u8"

    def _terminate(self, playback_id: str, reason: str = "terminated through the API") -> bool:
        """Stop a stream's live publisher (the streams API's terminate, suspend, delete; a
        plan's quota)."""
        stream = self.hub.get(playback_id)
        if stream is None or not stream.live or stream.stop_ingest is None:
            return False
        stream.stop_ingest(reason)
        return True

    async def _open_platform(self) -> None:
        if self.redis is not None:
            await self.redis.start()
        if self.store is None:
            self.store = await open_store(self.settings.store_url or self.settings.data_dir)
        self.store_auth.store = self.plans.store = self.quotas.store = self.store
        self.streams = StreamService(self.store, terminate=self._terminate, clock=self.clock)
        self.webhooks = WebhookService(
            self.store, clock=self.clock, allow_private=self.settings.webhook_allow_private
        )
        self.webhook_dispatcher = WebhookDispatcher(
            self.store, self.webhooks, clock=self.clock, metrics=self.metrics
        )
        self.webhook_dispatcher.start()
        self.playback_access = PlaybackAccess(self.store, clock=self.clock)
        if self.invalidations is not None:  # a key disabled here is refused on every node
            share_access(self.playback_access, self.invalidations)
            share_plans(self.plans, self.invalidations)  # a plan changed here, on every node
            self.invalidations.start()
        add_playback_gate(self.http_app, self.playback_access)
        self.api = mount_api(
            self.http_app,
            ApiContext(
                self.store,
                clock=self.clock,
                throttle=self.auth_throttle,
                public_url=self._configured_url,
                limits=RequestLimits(
                    self.plans,
                    RedisLimiter(self.redis) if self.redis is not None else None,
                    clock=self.clock,
                    on_refused=self._rate_limited,
                )
                if self.settings.metering
                else None,
                services={
                    "quotas": self.quotas,
                    "plans": self.plans,
                    "streams": self.streams,
                    "webhooks": self.webhooks,
                    "access": self.playback_access,
                    "dashboard": DashboardSources(
                        self.hub, self.stream_health, self.stream_usage, self._scoreboard
                    ),
                },
            ),
        )
        self.lifecycle = StreamLifecycle(
            self.store,
            self.store_auth.granted,
            events=self.events or self.webhooks,
            transcoded=self._transcoded,
            recording_url=self._recording_url,
            recording_ended=self.session_recorder.ended,
            clock=self.clock,
            end_reason=self.quotas.status_reason,
            node_id=self.node_id,
            owner=self.leases.holder if self.leases is not None else None,
        )
        self.quotas.events = self.lifecycle.events
        self.quotas.start()
        if self.settings.metering:
            self.ledger, self.billing = open_ledger(
                self.store,
                wei_rate=self.settings.wei_rate,
                interval=self.settings.usage_flush_interval,
                billing_url=self.settings.billing_webhook_url,
                clock=self.clock,
                before_flush=self.delivery.flush,
                granted=self.store_auth.granted,
            )
            self.usage.consumers.append(self.ledger)
        await self.lifecycle.recover()  # what an unclean stop left active
        self.lifecycle.start()
        self.hub.add_listener(self.lifecycle)  # before the session recorder: it names the folder
        self.hub.add_listener(self.session_recorder)

    async def _stored_plan(self, key: ApiKey) -> PlanLimits:
        """A key's limits: its plan in the store (``/api/admin/plans``), else the default."""
        if self.store is None:
            return DEFAULT_LIMITS
        return limits_of_plan(await plan_for_key(self.store, key.id))

    def _rate_limited(self) -> None:
        self.metrics.rate_limited("api")

    # -- several nodes ----------------------------------------------------------------------
    def node_url(self) -> str:
        """Where the other gateway nodes reach this node's HTTP (``-nodeUrl``, else the bound
        address, a worker's own port under ``-workers N``; on a wildcard address, this host's
        name)."""
        if self.settings.node_url:
            return self.settings.node_url
        host, _ = Settings.split_addr(self.settings.http_addr)
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        return f"http://{host}:{self.node_port}"

    def _discontinuity(self, stream_id: str) -> int:
        rendition = self.hls.rendition(stream_id, SOURCE)
        return rendition.playlist.discontinuity_number if rendition is not None else 0

    @property
    def owner_lookup(self) -> OwnerLookup | None:
        """Which other node owns a stream (``StreamLeases.owner_url``): its playback is proxied
        there. Only with ``-redisUrl``; without, setting it changes nothing."""
        return self.node_proxy.owner_lookup if self.node_proxy is not None else None

    @owner_lookup.setter
    def owner_lookup(self, lookup: OwnerLookup | None) -> None:
        if self.node_proxy is not None:
            self.node_proxy.owner_lookup = lookup

    async def _close_shared(self) -> None:
        """Last of all: what the nodes share (Redis's subscriptions, then its client)."""
        if self.invalidations is not None:
            await self.invalidations.close()
        if self.orchestrators is not None:
            await self.orchestrators.close()
        if self.redis is not None:
            await self.redis.close()
