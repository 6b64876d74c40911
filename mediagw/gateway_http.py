"""The gateway's front: its HTTP app and the WebRTC endpoints on it (WHIP ingest, WHEP of the
AI output and of the sources), the routes of the parts, the middlewares, and the listening
socket; and the URLs the gateway is reached at.

``Gateway`` (gateway.py, the composition root) inherits it, as it does ``GatewayPlatform``:
one object, three files. ``_http_front`` runs once from ``Gateway.__init__``, after the parts
it routes to exist; ``_serve_http`` from ``Gateway.start``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from webrtc import (
    IceConfig,
    WhepConfig,
    WhepEgress,
    add_whep_routes,
    detect_host_addresses,
    loopback_fallback,
)
from webrtc.routes import Authorize

from .api.conn_limit import PerIPConnections
from .api.dashboard import add_dashboard_page
from .api.guard import body_deadline, client_errors, send_deadline
from .api.http import build_app
from .api.llhls_http import install_llhls
from .api.metrics import add_metrics_route
from .api.node_proxy import NodeProxy, OwnerLookup
from .api.playback_gate import whep_authorize
from .api.recordings import add_recording_routes
from .api.start_key import start_key_check
from .api.worker_metrics import Siblings
from .config import Settings
from .errors import ConfigError
from .exposure import is_loopback
from .ingest.whip import WhipGateway
from .log import quiet_request_errors
from .pipelines.source_whep import SourceWhep
from .publish.llhls import LLHLSPublisher

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .api.metrics import GatewayMetrics
    from .api.push import PushIngest
    from .clock import Clock
    from .pipelines.metering import DeliveryMeter
    from .platform.access import PlaybackAccess
    from .platform.admission import Admission
    from .platform.shared.leases import StreamLeases
    from .platform.store import Store
    from .platform.throttle import FailureThrottle
    from .publish.hls import HLSPublisher
    from .stream.hub import StreamHub
    from .usage import StreamUsage

__all__ = ["AI_WHEP", "LIVE_CONTROL", "SOURCE_WHEP", "GatewayHttp", "http_host_for"]

HTTP_LOG = logging.getLogger("mediagw.http")  # aiohttp's errors about our HTTP clients
# an HTTP connection with no request in progress (idle, or a request's head still arriving:
# slowloris) is closed after this many seconds; aiohttp's default is about an hour
HTTP_IDLE_TIMEOUT = 15.0

AI_WHEP = "/live/video-to-video/{stream}/whep"  # WHEP of a stream's live AI output
SOURCE_WHEP = "/webrtc/{stream}"  # WHEP of a stream's source video
LIVE_CONTROL = ("/live/video-to-video/{stream}/update", "/live/video-to-video/{stream}/status")
# a WHIP session's resource (its DELETE), on the node its publisher is connected to
WHIP_SESSIONS = ("/live/video-to-video/{stream}/whip/{session_id}", "/whip/{stream}/{session_id}")


class GatewayHttp:
    """The HTTP and WebRTC front of a ``Gateway``."""

    # set by Gateway.__init__ before _http_front
    settings: Settings
    clock: Clock
    hub: StreamHub
    hls: HLSPublisher
    executor: ThreadPoolExecutor
    admission: Admission
    metrics: GatewayMetrics
    delivery: DeliveryMeter
    stream_usage: StreamUsage
    auth_throttle: FailureThrottle
    leases: StreamLeases | None
    push: PushIngest
    recordings_dir: Path
    node_id: str
    store: Store | None
    playback_access: PlaybackAccess | None

    def _http_front(
        self, settings: Settings, http_host: str, owner_lookup: OwnerLookup | None
    ) -> None:
        """Build the HTTP app with every route and the WebRTC endpoints."""
        clock = self.clock
        try:
            ice = IceConfig(
                host_addresses=settings.webrtc_host_addresses,
                nat_1to1_ips=settings.webrtc_nat_ips,
            )
        except ValueError as exc:
            raise ConfigError(f"-webrtcHostAddresses / -webrtcNatIps: {exc}") from None
        # decided once here, not per offer: only loopback on this host -> loopback candidates
        fallback = loopback_fallback(ice, detect_host_addresses())
        self.webrtc_loopback_only = fallback is not None
        ice = fallback or ice
        self.whip = WhipGateway(
            self.hub,
            self.admission,
            self.executor,
            ice=ice,
            keyframe_interval=settings.segment_duration,
            max_sessions=settings.max_whip_sessions,
            clock=clock,
        )
        self.whep = WhepEgress(WhepConfig(ice=ice))
        # an exposed -httpAddr: /streams (every stream, its outputs) needs an admin API key
        streams_key = None
        if not is_loopback(http_host):
            streams_key = start_key_check(
                lambda: self.store, self.auth_throttle, clock, scopes=("admin",)
            )
        self.http_app = build_app(
            self.hub, self.hls, usage=self.stream_usage, on_served=self._hls_served,
            streams_key=streams_key,
        )  # fmt: skip
        self.llhls: LLHLSPublisher | None = None
        if settings.llhls:  # LL-HLS beside HLS: fMP4 parts of every stream, as it is cut
            self.llhls = install_llhls(
                self.hub,
                self.http_app,
                settings.llhls_part_target,
                target_duration=settings.segment_duration,
                window=settings.hls_window,
                wall=clock.wall,
            )
        # an exposed -httpAddr without -metricsKey: /metrics for this host's clients only
        add_metrics_route(
            self.http_app, self.metrics, settings.metrics_key,
            local_only=not is_loopback(http_host), siblings=self._siblings(),
        )  # fmt: skip
        self.http_app.middlewares.append(client_errors)  # inside the CORS one
        self.http_app.middlewares.insert(0, body_deadline)  # slow request bodies: cut
        self.http_app.middlewares.insert(0, send_deadline)  # outermost: it writes the answer
        # several nodes (-redisUrl): playback of a stream another node owns is proxied there
        self.node_proxy: NodeProxy | None = None
        if settings.redis_url:
            self.node_proxy = NodeProxy(
                self.hub,
                self.node_id,
                whep_prefixes=(AI_WHEP, SOURCE_WHEP),
                stream_routes=LIVE_CONTROL + WHIP_SESSIONS,  # on the publisher's node
                # the owner named by its lease, unless a lookup is given (tests)
                owner_lookup=owner_lookup or (self.leases.owner_url if self.leases else None),
                read_timeout=max(15.0, 4 * settings.segment_duration + 7.0),  # > LL-HLS holds
            )
            self.node_proxy.install(self.http_app)  # before the playback gate
        self.push.routes(self.http_app)
        add_recording_routes(self.http_app, self.recordings_dir)
        add_dashboard_page(self.http_app)
        self.whip.routes(self.http_app)
        # WHEP plays a stream's live AI output ({stream}-out), as go-livepeer does
        add_whep_routes(
            self.http_app,
            AI_WHEP,
            self.whep,
            stream_of=_ai_output,
            authorize=self._playback_gate(_ai_output),
            cors_origin="*",
        )
        # WHEP plays every live stream's source video (H.264 passthrough, on demand)
        self.source_whep = SourceWhep(
            self.hub, self.whep, executor=self.executor, on_played=self.delivery.whep_played
        )
        self.hub.add_listener(self.source_whep)
        self.source_whep.routes(self.http_app, SOURCE_WHEP, authorize=self._playback_gate(None))
        self.http_conns = PerIPConnections(settings.http_max_conns_per_ip)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._node_site: web.TCPSite | None = None  # -workers N: this worker's own port

    async def _serve_http(self) -> None:
        """Listen on ``-httpAddr``."""
        http_host, http_port = Settings.split_addr(self.settings.http_addr)
        self.request_errors = quiet_request_errors(HTTP_LOG)
        self._runner = web.AppRunner(
            self.http_app,
            access_log=None,
            handle_signals=False,
            logger=HTTP_LOG,
            keepalive_timeout=HTTP_IDLE_TIMEOUT,
        )
        await self._runner.setup()
        assert self._runner.server is not None
        self.http_conns.install(self._runner.server)
        reuse_port = self.settings.reuse_port or None
        self._site = web.TCPSite(
            self._runner, http_host, http_port, reuse_address=True, reuse_port=reuse_port
        )
        await self._site.start()
        group = self.settings.worker_group
        if group is not None:
            # a worker of ``-workers N``: the shared port reaches any worker, so the other nodes
            # proxy a stream's playback to a port of this worker's own (``node_url``)
            own = group.own_port
            self._node_site = web.TCPSite(self._runner, http_host, own, reuse_address=True)
            try:
                await self._node_site.start()
            except OSError as exc:  # taken since the parent chose it: any port rather than none
                HTTP_LOG.warning(
                    "this worker's own port is taken: listening on another, which the other"
                    " workers do not know (their /metrics on the shared port miss this one's)",
                    extra={"port": own, "error": str(exc)},
                )
                self._node_site = web.TCPSite(self._runner, http_host, 0, reuse_address=True)
                await self._node_site.start()

    @property
    def http_port(self) -> int:
        return _bound_port(self._site)

    def _siblings(self) -> Siblings | None:
        """A worker of ``-workers N``: where the others' ``/metrics`` are (their own ports)."""
        group = self.settings.worker_group
        if group is None:
            return None
        host = http_host_for(self.settings.http_addr)
        shown = f"[{host}]" if ":" in host else host
        urls = tuple(f"http://{shown}:{port}/metrics" for port in group.ports)
        return Siblings(group.index, urls, group.secret, lambda: self.http_port)

    @property
    def node_port(self) -> int:
        """The port the other nodes reach this one on: a worker's own, else ``http_port``."""
        return _bound_port(self._node_site) if self._node_site is not None else self.http_port

    def _configured_url(self) -> str:
        """``-gatewayHost`` as a URL, or "" (the API then answers with the request's host)."""
        host = self.settings.gateway_host
        return "" if not host else host if "://" in host else f"http://{host}"

    def public_url(self) -> str:
        """This gateway's HTTP API as its clients reach it (``-gatewayHost``, else the bound
        address), for the URLs given to webhooks."""
        host = self.settings.gateway_host
        if host:
            return host if "://" in host else f"http://{host}"
        return f"http://{http_host_for(self.settings.http_addr)}:{self.http_port}"

    def _playback_gate(self, stream_of: Callable[[web.Request], str] | None) -> Authorize:
        """WHEP's ``authorize`` hook: token-gated streams play only with a valid token (once
        the store is open; every stream is public before)."""

        async def authorize(request: web.Request) -> None:
            if self.playback_access is not None:
                await whep_authorize(self.playback_access, stream_of)(request)

        return authorize

    def _hls_served(self, stream_id: str, nbytes: int, seconds: float) -> None:
        self.metrics.hls_served(stream_id, nbytes)
        if self.settings.metering:
            self.delivery.hls_served(stream_id, nbytes, seconds)


def _ai_output(request: web.Request) -> str:
    name = request.match_info["stream"]
    return name if name.endswith("-out") else f"{name}-out"


def _bound_port(site: web.TCPSite | None) -> int:
    if site is None or site._server is None:
        return 0
    sockets = getattr(site._server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else 0


def http_host_for(addr: str) -> str:
    host, _ = Settings.split_addr(addr)
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
