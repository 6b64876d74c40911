"""The gateway process: wires the RTMP server, stream hub, HLS publisher, recorder and HTTP API.

    gw = Gateway(settings)
    await gw.start()      # binds the RTMP and HTTP ports (port 0 = ephemeral, see .rtmp_port)
    ...
    await gw.stop()       # ends every stream (ENDLIST), closes ports, waits for writers

Usable as a library: everything it needs comes in through ``Settings`` and the constructor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .api.live import add_live_routes
from .api.metrics import GatewayMetrics
from .api.node_proxy import OwnerLookup
from .api.push import PushIngest
from .api.start_key import start_key_check
from .api.studio import Api
from .clock import SYSTEM, Clock
from .config import Settings
from .exposure import ingest_policy, log_exposure
from .gateway_http import GatewayHttp, http_host_for
from .gateway_platform import GatewayPlatform
from .ingest.rtmp.server import RTMPLimits, RTMPServer
from .ingest.rtmp_ingest import RTMPIngest
from .livepeer.profiles import Profile
from .metrics import NULL_METRICS, Metrics
from .payments.live import LivePaymentSource, LocalLivePayments
from .payments.sender import PaymentSender
from .payments.signer import LocalSigner
from .pipelines.live_ai.config import LiveConfig
from .pipelines.live_ai.heartbeat import LiveHeartbeat
from .pipelines.live_ai.manager import LiveAIManager
from .pipelines.metering import DeliveryMeter, SourceMeter
from .pipelines.transcode import TranscodeManager, ladder_for
from .platform.access import PlaybackAccess
from .platform.admission import Admission
from .platform.billing import BillingPush
from .platform.ledger import UsageLedger
from .platform.lifecycle import EventSink, StreamLifecycle
from .platform.live_auth import LiveAIAuthorizer, LiveAIAuthWebhook
from .platform.plan_limits import PlanCache, PlanLookup
from .platform.shared.fanout import Invalidations
from .platform.shared.leases import StreamLeases
from .platform.shared.live import SharedLiveState, stopped_ttl
from .platform.shared.orchestrators import SharedOrchestrators
from .platform.shared.redis import SharedRedis
from .platform.shared.stream_limits import SharedStreamLimits
from .platform.store import Store
from .platform.store_auth import StoreStreamAuth
from .platform.stream_auth import (
    OpenAuth,
    StaticKeyAuth,
    StreamAuthorizer,
    WebhookAuth,
)
from .platform.stream_quota import StreamQuotas
from .platform.streams import StreamService
from .platform.throttle import FailureThrottle
from .platform.webhook_delivery import WebhookDispatcher
from .platform.webhooks import WebhookService
from .publish.hls import HLSPublisher
from .publish.multistream import Multistream
from .publish.recorder import Recorder
from .request import Ladder
from .stack import TranscodeStack, build_transcoder, default_ladder
from .stream.health import StreamHealth
from .stream.hub import StreamHub
from .threads import media_workers, start_all
from .usage import StreamUsage, UsageQueue

log = logging.getLogger("mediagw.gateway")

__all__ = ["Gateway", "make_authorizer"]


def make_authorizer(settings: Settings, metrics: Metrics = NULL_METRICS) -> StreamAuthorizer | None:
    """The authorizer asked after the store's stream keys; None: nobody else (the open mode
    when keys are required: ``-requireStreamKey``, or exposed and paying, ``mediagw.exposure``)."""
    mode = settings.auth_mode
    if mode == "webhook":
        return WebhookAuth(settings.auth_webhook_url, metrics=metrics)
    if mode == "keys":
        return StaticKeyAuth(settings.stream_keys)
    return None if ingest_policy(settings).keys_required else OpenAuth()


class Gateway(GatewayHttp, GatewayPlatform):
    def __init__(
        self,
        settings: Settings,
        *,
        authorizer: StreamAuthorizer | None = None,
        clock: Clock = SYSTEM,
        store: Store | None = None,
        plans: PlanLookup | None = None,
        owner_lookup: OwnerLookup | None = None,
    ) -> None:
        self.settings = settings
        self.playback_access: PlaybackAccess | None = None
        self.clock = clock  # the one clock, passed to everything that reads the time
        # this node's name among the gateway nodes sharing a store and a Redis
        self.node_id = settings.node_id or f"{socket.gethostname()}-{os.getpid()}"
        self.executor = ThreadPoolExecutor(media_workers(), thread_name_prefix="media")
        self.hub = StreamHub(
            max_sessions=settings.max_sessions,
            segment_duration=settings.segment_duration,
            ended_ttl=settings.ended_stream_ttl,
            clock=clock.wall,
        )
        self.hls = HLSPublisher(settings.segment_duration, settings.hls_window)
        # GET /metrics: this gateway's own registry; its parts report to it (metrics.py)
        self.metrics = GatewayMetrics(
            self.hub, per_stream=settings.metrics_per_stream, recording=bool(settings.record_dir)
        )
        self.auth_throttle = FailureThrottle()  # the API's failed-auth throttle (its refusals)
        # usage events (transcoding, live AI, payments) -> per-stream totals for /streams
        self.stream_usage = StreamUsage()
        # -metering=false (benchmarks only) leaves out the usage ledger and its meters, plan
        # limits and quotas: what they cost is measured against that (mediagw bench ingest)
        metering = settings.metering
        self.usage = UsageQueue([self.stream_usage, self.metrics])
        # the gateway's own work (ingest, delivery, recording) as usage; the ledger: start()
        self.delivery = DeliveryMeter(self.usage, self.hub)
        if metering:
            self.hub.add_listener(SourceMeter(self.usage))
        self.ledger: UsageLedger | None = None
        self.billing: BillingPush | None = None
        self.hub.add_listener(self.hls)
        self.hub.add_listener(self.metrics)
        self.stream_health = StreamHealth(clock=clock.wall)  # the dashboard's ingest health
        self.hub.add_listener(self.stream_health)
        self.store_auth = StoreStreamAuth(
            None, authorizer or make_authorizer(settings, self.metrics)
        )
        # plans' limits: /api requests, a key's live streams and its stream / live-AI minutes
        self.plans = PlanCache(plans or self._stored_plan, clock=clock)
        granted = self.store_auth.granted
        self.quotas = StreamQuotas(self.plans, granted, self._terminate, clock=clock)
        if metering:
            self.store_auth.admit = self.quotas.admit
            self.hub.add_listener(self.quotas)
            self.usage.consumers.append(self.quotas)
        # pushes the source to a stream's RTMP outputs; their transitions become Studio events
        self.multistream = Multistream(
            self.store_auth.targets, self._multistream_event,
            allow_private=settings.webhook_allow_private,
        )  # fmt: skip
        self.hub.add_listener(self.multistream)
        self.recorder: Recorder | None = None
        if settings.record_dir:
            self.recorder = Recorder(
                settings.record_dir,
                settings.segment_duration,
                self.executor,
                on_written=self.delivery.recorded,
            )
            self.hub.add_listener(self.recorder)
        # the platform: its store is given (and then not closed here) or opened by start()
        # from -storeUrl / -dataDir; stored stream keys are checked first
        self.store: Store | None = store
        self._own_store = store is None
        # what several nodes share (-redisUrl): None keeps it all in this process
        self.redis = SharedRedis(settings.redis_url) if settings.redis_url else None
        self.invalidations = Invalidations(self.redis) if self.redis is not None else None
        if self.redis is not None and metering:  # a key's streams and minutes on every node
            self.quotas.attach(SharedStreamLimits(self.redis))
        self.webhooks: WebhookService | None = None
        self.webhook_dispatcher: WebhookDispatcher | None = None
        self.api: Api | None = None
        self.streams: StreamService | None = None
        self.lifecycle: StreamLifecycle | None = None
        self.events: EventSink | None = None  # Studio events: the webhook service unless set
        self.recordings_dir = Path(settings.data_dir) / "recordings"
        self.session_recorder = Recorder(
            str(self.recordings_dir),
            settings.segment_duration,
            self.executor,
            folder=self._recording_folder,
            on_written=self.delivery.recorded,
        )
        self.authorizer: StreamAuthorizer = self.store_auth
        self.live_auth: LiveAIAuthorizer | None = None
        if settings.live_ai_auth_webhook_url:
            webhook = LiveAIAuthWebhook(
                settings.live_ai_auth_webhook_url, settings.live_ai_auth_api_key
            )
            self.live_auth = LiveAIAuthorizer(self.authorizer, webhook, self.public_url)
            self.authorizer = self.live_auth
        # every publish (RTMP, WHIP, HTTP push) and /start is admitted here
        self.admission = Admission(self.authorizer, self.live_auth)
        # several nodes: a stream is owned by the node its publisher is on (a Redis lease)
        self.leases: StreamLeases | None = None
        if self.redis is not None:
            self.leases = StreamLeases(
                self.redis, self.node_id, self.node_url, cursor_ttl=settings.ended_stream_ttl,
                discontinuity=self._discontinuity, clock=clock,
            )  # fmt: skip
            self.admission.claims = self.leases
            self.hub.add_listener(self.leases)
        self.heartbeat: LiveHeartbeat | None = None
        rtmp_host, rtmp_port = Settings.split_addr(settings.rtmp_addr)
        self.ingest = RTMPIngest(
            self.hub, self.admission, self.executor, settings.rtmp_addr, clock=clock
        )
        self.rtmp = RTMPServer(
            self.ingest,
            host=rtmp_host,
            port=rtmp_port,
            limits=RTMPLimits(
                max_connections=settings.max_conns,
                max_connections_per_ip=settings.max_conns_per_ip,
                read_hold=settings.rtmp_read_hold,
            ),
            reuse_port=settings.reuse_port,
        )
        self.ladder: list[Profile] = default_ladder(settings)
        self.stack: TranscodeStack | None = None
        self.transcodes: TranscodeManager | None = None
        self.orchestrators: SharedOrchestrators | None = None  # pins, penalties, latency
        self.live_ai: LiveAIManager | None = None
        http_host, _ = Settings.split_addr(settings.http_addr)
        self.push = PushIngest(
            self.hub,
            self.hls,
            self.admission,
            None,
            self._push_ladder,
            enabled=settings.http_ingest
            or settings.auth_mode == "webhook"
            or http_host in ("127.0.0.1", "localhost", "::1"),
            clock=clock,
        )
        self._http_front(settings, http_host, owner_lookup)  # gateway_http.py
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def rtmp_port(self) -> int:
        return self.rtmp.port

    def _live_ai(self, stack: TranscodeStack) -> LiveAIManager:
        assert stack.pins is not None and stack.requests is not None

        def payments() -> LivePaymentSource | None:
            if stack.remote_signer is not None:
                return stack.remote_signer
            if isinstance(stack.signer, LocalSigner):
                return LocalLivePayments(PaymentSender(stack.signer))
            return None  # off-chain

        shared = None  # several nodes: a stream's last params and stops, for the next node
        if self.redis is not None:
            shared = SharedLiveState(
                self.redis,
                params_ttl=self.settings.ended_stream_ttl,
                node=self.node_id,
                stopped_ttl=stopped_ttl(self.settings.live_ai_heartbeat_interval),
            )
        return LiveAIManager(
            self.hls,
            stack.rpc,
            stack.pins,
            stack.sources,
            stack.requests,
            payments=payments,
            caps=stack.caps,
            blocklist=stack.blocklist,
            executor=self.executor,
            whep=self.whep,
            config=LiveConfig(segment_duration=self.settings.live_ai_segment_duration),
            usage=self.usage,
            metrics=self.metrics,
            clock=self.clock,
            memory=shared,
            stopped=shared,
            notes=stack.notes,
        )

    def _push_ladder(self, ladder: Ladder) -> tuple[Profile, ...]:
        return ladder_for(ladder, self.ladder)

    async def start(self) -> None:
        await start_all(self.executor, media_workers())  # a fixed thread count from now on
        await self._open_platform()
        self.usage.start()
        self.stack = await build_transcoder(
            self.settings, self.executor, self.usage, self.clock, self.metrics,
            shared=self.redis is not None,
        )  # fmt: skip
        if self.stack is not None and self.redis is not None:
            self.orchestrators = SharedOrchestrators(
                self.redis, self.node_id, wall=self.clock.wall, pins=self.stack.pins,
                notes=self.stack.notes,
            )  # fmt: skip
            await self.orchestrators.start()
        self._metric_readings()
        if self.stack is not None:
            self.transcodes = TranscodeManager(
                self.hls,
                self.stack.transcoder,
                self.ladder,
                regions=self.settings.preferred_regions,
                usage=self.usage,
                metrics=self.metrics,
                clock=self.clock,
            )
            self.push.transcoder = self.stack.transcoder
        if self.stack is not None:
            self.live_ai = self._live_ai(self.stack)
            self.live_ai.llhls = self.llhls  # the AI output's LL-HLS, beside its HLS
            self.live_ai.outputs_allow_private = self.settings.webhook_allow_private
            self.hub.add_listener(self.live_ai)  # before the transcoder: it claims its streams
            keys_required = ingest_policy(self.settings).keys_required
            start_key = None  # with keys required: an API key, unless the live AI webhook decides
            if keys_required and not self.settings.live_ai_auth_webhook_url:
                start_key = start_key_check(lambda: self.store, self.auth_throttle, self.clock)
            add_live_routes(
                self.http_app, self.live_ai, self.hub, self.admission, self._configured_url,
                start_key,
            )  # fmt: skip
            if self.settings.live_ai_heartbeat_url:
                self.heartbeat = LiveHeartbeat(
                    self.settings.live_ai_heartbeat_url,
                    self.live_ai.stream_ids,
                    self.live_ai.terminate,
                    headers=self.settings.live_ai_heartbeat_headers,
                    interval=self.settings.live_ai_heartbeat_interval,
                )
                self.heartbeat.start()
        if self.transcodes is not None:
            self.hub.add_listener(self.transcodes)
        await self.push.start()
        if self.node_proxy is not None:
            await self.node_proxy.start()
        await self._serve_http()
        await self.rtmp.start()
        if self.leases is not None:
            self.leases.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="hub-sweeper")
        log.info(
            "gateway started",
            extra={
                "rtmp": f"rtmp://{http_host_for(self.settings.rtmp_addr)}:{self.rtmp_port}/live/NAME",
                "hls": f"http://{http_host_for(self.settings.http_addr)}:{self.http_port}"
                "/stream/NAME.m3u8",
                "auth": self.settings.auth_mode,
                "transcoding": ",".join(p.name for p in self.ladder) if self.stack else "off",
            },
        )
        log_exposure(self.settings, log)
        if self.webrtc_loopback_only:
            log.warning(
                "no network interface but loopback: WebRTC (WHIP/WHEP) offers 127.0.0.1 only, so"
                " only clients on this host connect; for remote clients set -webrtcHostAddresses"
                " to an address they reach (and -webrtcNatIps to the public IP behind 1:1 NAT)"
            )

    def _metric_readings(self) -> None:
        """What /metrics reads at scrape time from the counters the parts keep anyway."""
        r = self.metrics.readings
        r.rtmp_conns = lambda: self.rtmp.connections
        r.rtmp_inbound_bytes = lambda: self.rtmp.bytes_in
        r.http_conns_refused = lambda: self.http_conns.refused
        r.rtmp_conns_refused = lambda: self.rtmp.refused
        r.webrtc_sessions = lambda: len(self.whip.ingest) + len(self.whep)
        r.live_pipelines = lambda: self.live_ai.live_counts() if self.live_ai else {}
        r.usage_dropped = lambda: self.usage.dropped
        r.auth_throttled = lambda: self.auth_throttle.refused
        if self.redis is not None:
            redis = self.redis
            r.redis_failures = lambda: redis.failures
            r.redis_commands = lambda: redis.commands
        if hasattr(self.store, "statements"):  # SqlStore counts what it sends
            store = self.store
            r.store_statements = lambda: int(getattr(store, "statements", 0))
        if self.stack is not None:
            transcoder, address = self.stack.transcoder, self.stack.signer.address
            r.deposit_wei = lambda: transcoder.sender_balances()[0]
            r.reserve_wei = lambda: transcoder.sender_balances()[1]
            r.sender = lambda: "0x" + address.hex()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, max(1.0, self.hub.ended_ttl / 4)))
            for stream_id in self.hub.sweep():  # gone from /streams: its totals go too
                self.stream_usage.forget(stream_id)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.rtmp.close()
        await self.whip.close()
        await self.source_whep.close()
        await self.whep.aclose()
        await self.push.stop()
        self.hub.close()
        if self.leases is not None:
            await self.leases.close()  # after the hub: the leases of the streams it ended
        if self.transcodes is not None:
            await self.transcodes.close()
        if self.heartbeat is not None:
            await self.heartbeat.close()
        if self.live_ai is not None:
            await self.live_ai.close()
        if self.stack is not None:
            await self.stack.close()
        if self.recorder is not None:
            await self.recorder.close()
        await self.session_recorder.close()
        await self.multistream.close()
        await self.quotas.close()
        if self.lifecycle is not None:
            await self.lifecycle.close()  # the sessions the hub just ended, then the store
        self.delivery.flush()
        await self.usage.close()
        if self.ledger is not None:
            await self.ledger.stop()  # the last interval's usage, before the store closes
        if self.billing is not None:
            await self.billing.close()
        await self.admission.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.node_proxy is not None:
            await self.node_proxy.stop()
        if self.webhook_dispatcher is not None:
            await self.webhook_dispatcher.close()  # in-flight calls get a grace, then resume
        if self.webhooks is not None:  # after a restart from their lease
            await self.webhooks.close()
        if self.store is not None and self._own_store:
            await self.store.close()
        await self._close_shared()
        self.executor.shutdown(wait=True, cancel_futures=False)
        log.info("gateway stopped")
