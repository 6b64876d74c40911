"""Prometheus ``/metrics``: go-livepeer's and MediaMTX's names, and mediagw's own.

``GatewayMetrics`` is three things at once, all cheap and synchronous:

- the ``Metrics`` seam (``mediagw.metrics``) the transcoder, discovery, live AI, the auth
  webhook and the webhook dispatcher report to (at most once per segment or request);
- a ``UsageSink`` consumer of the usage events (tickets, their value, pixels, live AI ms);
- a hub listener (streams created / started / ended, source segments appeared).

Everything the media path already counts (stream bytes, connections, sessions) is read at
scrape time by a collector (``Readings``), so ingest pays nothing per packet. Each gateway has
its own ``CollectorRegistry``: several gateways in one process never collide.

Names and types follow go-livepeer's ``monitor/census.go`` (prefix ``livepeer_``, labels
``node_id`` and ``node_type`` on every series, ``manifest_id`` only with ``per_stream``; its
counters whose names have no ``_total`` keep it that way) and MediaMTX's (no prefix).
"""

from __future__ import annotations

import asyncio
import hmac
import socket
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from segmenter import Segment

from ..exposure import is_loopback
from ..stream.hub import Stream, StreamHub
from ..usage import LIVE_AI, PAYMENT, TRANSCODE, UsageEvent
from .worker_metrics import Siblings

__all__ = ["GatewayMetrics", "Readings", "add_metrics_route"]

MetricT = TypeVar("MetricT", bound=MetricWrapperBase)

NODE_TYPE = "bctr"  # go-livepeer's name for a broadcaster (gateway)
AI_PIPELINE = "live-video-to-video"
GWEI = 10**9
SUCCESS_WINDOW = 100  # segments the success rate is taken over
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0)
MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
# go-livepeer's Count views named without "_total": exposed under exactly that name
PLAIN_COUNTERS = {
    "orchestrator_swaps": (),
    "tickets_sent": (),
    "ticket_value_sent": (),
    "payment_create_errors": (),
    "ai_live_attempt": ("model_name",),
    "ai_request_errors": ("error_code", "pipeline", "model_name"),
}


def _zero() -> int:
    return 0


def _none() -> int | None:
    return None


def _no_pipelines() -> Mapping[str, int]:
    return {}


@dataclass
class Readings:
    """What the collector reads at scrape time (the gateway fills these in)."""

    rtmp_conns: Callable[[], int] = _zero
    rtmp_inbound_bytes: Callable[[], int] = _zero
    webrtc_sessions: Callable[[], int] = _zero
    live_pipelines: Callable[[], Mapping[str, int]] = _no_pipelines  # model -> live runs
    usage_dropped: Callable[[], int] = _zero
    auth_throttled: Callable[[], int] = _zero
    http_conns_refused: Callable[[], int] = _zero
    rtmp_conns_refused: Callable[[], int] = _zero
    redis_failures: Callable[[], int] = _zero
    redis_commands: Callable[[], int] = _zero
    store_statements: Callable[[], int] = _zero
    deposit_wei: Callable[[], int | None] = _none
    reserve_wei: Callable[[], int | None] = _none
    sender: Callable[[], str] = lambda: ""
    hls_outbound: dict[str, int] = field(default_factory=dict)  # stream id -> bytes served


class GatewayMetrics:
    def __init__(
        self,
        hub: StreamHub,
        *,
        node_id: str = "",
        per_stream: bool = False,
        recording: bool = False,
    ) -> None:
        self.hub = hub
        self.node = (node_id or socket.gethostname(), NODE_TYPE)
        self.per_stream = per_stream
        self.seg_type = "recorded" if recording else "regular"
        self.readings = Readings()
        self.registry = CollectorRegistry(auto_describe=False)
        self._plain: dict[tuple[str, tuple[str, ...]], float] = {}
        # with per_stream: each stream's labelled series, dropped when the hub forgets it
        self._stream_series: dict[str, set[tuple[MetricWrapperBase, tuple[str, ...]]]] = {}
        self._results: deque[bool] = deque(maxlen=SUCCESS_WINDOW)
        self._awaiting_first: set[str] = set()  # live streams with no segment yet
        self.usage = {"transcode_pixels": 0, "live_ai_ms": 0, "tickets": 0, "wei": 0}
        self.hls_total = 0
        stream_label = ("manifest_id",) if per_stream else ()
        base = ("node_id", "node_type")

        def counter(name: str, doc: str, *labels: str, stream: bool = True) -> Counter:
            names = base + (stream_label if stream else ()) + labels
            return Counter(name, doc, names, registry=self.registry)

        def histogram(
            name: str, doc: str, buckets: Iterable[float], *labels: str, stream: bool = True
        ) -> Histogram:
            names = base + (stream_label if stream else ()) + labels
            return Histogram(name, doc, names, buckets=tuple(buckets), registry=self.registry)

        p = "livepeer_"
        self.created = counter(p + "stream_created_total", "Streams created", stream=False)
        self.started = counter(p + "stream_started_total", "Streams started", stream=False)
        self.ended = counter(p + "stream_ended_total", "Streams ended", stream=False)
        self.appeared = counter(
            p + "segment_source_appeared_total", "Source segments cut", "profile", "seg_type"
        )
        self.uploaded = counter(
            p + "segment_source_uploaded_total", "Segments sent to an orchestrator",
            "orchestrator_uri",
        )  # fmt: skip
        self.upload_failed = counter(
            p + "segment_source_upload_failed_total", "Segment uploads that failed",
            "error_code", "orchestrator_uri",
        )  # fmt: skip
        self.transcoded = counter(
            p + "segment_transcoded_all_appeared_total", "Segments with every rendition back",
            "profiles", "orchestrator_uri",
        )  # fmt: skip
        self.transcode_failed = counter(
            p + "segment_transcode_failed_total", "Segments not transcoded", "error_code"
        )
        self.overall_latency = histogram(
            p + "transcode_overall_latency_seconds", "Source segment cut -> every rendition in",
            LATENCY_BUCKETS, "profiles",
        )  # fmt: skip
        self.upload_time = histogram(
            p + "upload_time_seconds", "POST /segment to its answer", LATENCY_BUCKETS,
            "orchestrator_uri",
        )  # fmt: skip
        self.discovery_errors = counter(
            p + "discovery_errors_total", "Failed or refused GetOrchestrator replies",
            "error_code", "orchestrator_uri", stream=False,
        )  # fmt: skip
        self.auth_time = histogram(
            p + "auth_webhook_time_milliseconds", "Stream auth webhook round trip", MS_BUCKETS,
            stream=False,
        )  # fmt: skip
        self.first_segment = histogram(
            p + "ai_first_segment_delay_ms", "Live AI start -> its first output segment",
            MS_BUCKETS, "orchestrator",
        )  # fmt: skip
        self.rate_limited_total = counter(
            "mediagw_api_rate_limited_total", "API requests refused over a limit", "scope",
            stream=False,
        )  # fmt: skip
        self.webhooks = counter(
            "mediagw_webhook_deliveries_total", "Webhook delivery attempts", "outcome",
            stream=False,
        )  # fmt: skip
        self.registry.register(_Scraped(self))

    # -- labels --------------------------------------------------------------------------------
    def _labels(self, stream: str, *extra: str, per_stream: bool = True) -> tuple[str, ...]:
        if self.per_stream and per_stream:
            return (*self.node, stream, *extra)
        return (*self.node, *extra)

    def _series(self, metric: MetricT, stream: str, *extra: str) -> MetricT:
        """``metric``'s child for ``stream``; with per_stream, remembered until it is gone."""
        labels = self._labels(stream, *extra)
        if self.per_stream:
            self._stream_series.setdefault(stream, set()).add((metric, labels))
        return metric.labels(*labels)

    def _plain_inc(self, name: str, stream: str, labels: tuple[str, ...], by: float = 1) -> None:
        key = (name, self._labels(stream, *labels))
        self._plain[key] = self._plain.get(key, 0) + by

    # -- the Metrics seam ----------------------------------------------------------------------
    def segment_uploaded(self, stream: str, orchestrator: str, seconds: float) -> None:
        self._series(self.uploaded, stream, orchestrator).inc()
        self._series(self.upload_time, stream, orchestrator).observe(seconds)

    def segment_upload_failed(self, stream: str, orchestrator: str, code: str) -> None:
        self._series(self.upload_failed, stream, code, orchestrator).inc()

    def segment_transcoded(
        self, stream: str, orchestrator: str, profiles: str, seconds: float
    ) -> None:
        self._series(self.transcoded, stream, profiles, orchestrator).inc()
        self._series(self.overall_latency, stream, profiles).observe(seconds)
        self._results.append(True)

    def segment_transcode_failed(self, stream: str, code: str) -> None:
        self._series(self.transcode_failed, stream, code).inc()
        self._results.append(False)

    def orchestrator_swap(self, stream: str) -> None:
        self._plain_inc("orchestrator_swaps", stream, ())

    def discovery_error(self, orchestrator: str, code: str) -> None:
        self.discovery_errors.labels(*self.node, code, orchestrator).inc()

    def payment_create_error(self, stream: str) -> None:
        self._plain_inc("payment_create_errors", stream, ())

    def auth_webhook_time(self, milliseconds: float) -> None:
        self.auth_time.labels(*self.node).observe(milliseconds)

    def ai_live_attempt(self, stream: str, model: str) -> None:
        self._plain_inc("ai_live_attempt", stream, (model,))

    def ai_first_segment_delay(self, stream: str, orchestrator: str, ms: float) -> None:
        self._series(self.first_segment, stream, orchestrator).observe(ms)

    def ai_request_error(self, stream: str, code: str, pipeline: str, model: str) -> None:
        self._plain_inc("ai_request_errors", stream, (code, pipeline, model))

    def rate_limited(self, scope: str) -> None:
        self.rate_limited_total.labels(*self.node, scope).inc()

    def webhook_attempt(self, delivered: bool) -> None:
        self.webhooks.labels(*self.node, "delivered" if delivered else "failed").inc()

    # -- UsageSink -----------------------------------------------------------------------------
    def emit(self, event: UsageEvent) -> None:
        if event.kind == TRANSCODE:
            self.usage["transcode_pixels"] += event.quantity
        elif event.kind == LIVE_AI:
            self.usage["live_ai_ms"] += event.quantity
        elif event.kind == PAYMENT:
            self.usage["tickets"] += event.quantity
            self.usage["wei"] += round(event.wei)
            self._plain_inc("tickets_sent", event.stream, (), event.quantity)
            self._plain_inc("ticket_value_sent", event.stream, (), float(event.wei / GWEI))

    # -- hub listener --------------------------------------------------------------------------
    def on_stream_start(self, stream: Stream) -> None:
        self.created.labels(*self.node).inc()
        self._awaiting_first.add(stream.id)

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        if stream.id in self._awaiting_first:
            self._awaiting_first.discard(stream.id)
            self.started.labels(*self.node).inc()
        self._series(self.appeared, stream.id, "source", self.seg_type).inc()

    def on_stream_end(self, stream: Stream) -> None:
        self._awaiting_first.discard(stream.id)
        self.ended.labels(*self.node).inc()

    def on_stream_removed(self, stream: Stream) -> None:
        self.readings.hls_outbound.pop(stream.id, None)
        if self.per_stream:  # its manifest_id series go with it (a label set per name, else)
            for metric, labels in self._stream_series.pop(stream.id, ()):
                metric.remove(*labels)
            gone = [k for k in self._plain if k[1][len(self.node)] == stream.id]
            for key in gone:
                del self._plain[key]

    # -- HLS egress (per segment served) -------------------------------------------------------
    def hls_served(self, stream: str, size: int) -> None:
        self.hls_total += size
        if stream in self.readings.hls_outbound or self.hub.get(stream) is not None:
            self.readings.hls_outbound[stream] = self.readings.hls_outbound.get(stream, 0) + size

    def exposition(self) -> bytes:
        """The text format (0.0.4). prometheus-client names every counter family ``*_total``;
        go-livepeer's counters without that suffix get their own name back here."""
        text = generate_latest(self.registry)
        for name in PLAIN_COUNTERS:
            wrong, right = f"livepeer_{name}_total ".encode(), f"livepeer_{name} ".encode()
            text = text.replace(b"# HELP " + wrong, b"# HELP " + right, 1)
            text = text.replace(b"# TYPE " + wrong, b"# TYPE " + right, 1)
        return text


class _Scraped(Collector):
    """Values read at scrape time, and the counters kept as plain numbers."""

    def __init__(self, owner: GatewayMetrics) -> None:
        self.owner = owner

    def collect(self) -> Iterable[Metric]:
        m = self.owner
        r = m.readings
        node_names = ["node_id", "node_type"]
        stream_names = node_names + (["manifest_id"] if m.per_stream else [])
        for name, extra in PLAIN_COUNTERS.items():
            full = "livepeer_" + name
            family = Metric(full, f"go-livepeer's {name}", "counter")
            for (key, labels), value in m._plain.items():
                if key == name:
                    family.add_sample(
                        full, dict(zip(stream_names + list(extra), labels, strict=True)), value
                    )
            yield family

        def gauge(name: str, doc: str, value: float, labels: list[str] | None = None) -> Metric:
            family = GaugeMetricFamily(name, doc, labels=node_names + (labels or []))
            family.add_metric(list(m.node), value)
            return family

        hub = m.hub
        yield gauge("livepeer_current_sessions_total", "Live streams", hub.live_count())
        yield gauge("livepeer_max_sessions_total", "Max live streams", hub.max_sessions)
        if m._results:
            rate = sum(m._results) / len(m._results)
            yield gauge("livepeer_success_rate", "Transcoded share of recent segments", rate)
        sender = r.sender()
        for name, read in (("gateway_deposit", r.deposit_wei), ("gateway_reserve", r.reserve_wei)):
            family = GaugeMetricFamily("livepeer_" + name, f"{name} (gwei)",
                                       labels=[*node_names, "sender"])  # fmt: skip
            wei = read()
            if wei is not None:
                family.add_metric([*m.node, sender], wei / GWEI)
            yield family
        family = GaugeMetricFamily(
            "livepeer_ai_current_live_pipelines", "Live AI runs", labels=[*node_names, "pipeline"]
        )
        for model, count in sorted(r.live_pipelines().items()):
            family.add_metric([*m.node, model], count)
        yield family
        # MediaMTX's names: one path per live stream (bounded by -maxSessions)
        paths = GaugeMetricFamily("paths", "Live paths", labels=["name", "state"])
        inbound = GaugeMetricFamily("paths_inbound_bytes", "Bytes in", labels=["name"])
        outbound = GaugeMetricFamily("paths_outbound_bytes", "Bytes out (HLS)", labels=["name"])
        for stream in hub.streams():
            if not stream.live:
                continue
            paths.add_metric([stream.id, "ready"], 1)
            inbound.add_metric([stream.id], stream.stats.bytes)
            outbound.add_metric([stream.id], r.hls_outbound.get(stream.id, 0))
        yield from (paths, inbound, outbound)
        yield GaugeMetricFamily("rtmp_conns", "RTMP connections", value=r.rtmp_conns())
        yield GaugeMetricFamily(
            "rtmp_conns_inbound_bytes", "RTMP bytes in", value=r.rtmp_inbound_bytes()
        )
        yield GaugeMetricFamily(
            "webrtc_sessions", "WHIP + WHEP sessions", value=r.webrtc_sessions()
        )
        yield GaugeMetricFamily("hls_sessions_outbound_bytes", "HLS bytes out", value=m.hls_total)
        # mediagw's own
        for key, doc in (
            ("transcode_pixels", "Output pixels transcoded"),
            ("live_ai_ms", "Media ms handed to live AI"),
            ("tickets", "Tickets sent"),
            ("wei", "Expected value of tickets sent (wei)"),
        ):
            yield _counter(f"mediagw_usage_{key}_total", doc, m.usage[key])
        yield _counter("mediagw_usage_dropped_total", "Usage events dropped", r.usage_dropped())
        yield _counter(
            "mediagw_auth_throttled_total", "API requests refused by the failed-auth throttle",
            r.auth_throttled(),
        )  # fmt: skip
        yield _counter(
            "mediagw_http_conns_refused_total",
            "HTTP connections closed at once: over -httpMaxConnsPerIp",
            r.http_conns_refused(),
        )
        yield _counter(
            "mediagw_rtmp_conns_refused_total",
            "RTMP connections closed at once: over -maxConns or -maxConnsPerIp",
            r.rtmp_conns_refused(),
        )
        yield _counter(
            "mediagw_redis_failures_total",
            "Redis commands that failed (-redisUrl): each a request served without Redis",
            r.redis_failures(),
        )
        yield _counter(
            "mediagw_redis_commands_total", "Commands sent to Redis (-redisUrl)", r.redis_commands()
        )
        yield _counter(
            "mediagw_store_statements_total",
            "SQL statements sent to the store's database",
            r.store_statements(),
        )
        yield GaugeMetricFamily(
            "mediagw_asyncio_tasks", "asyncio tasks not done on the event loop", value=_tasks()
        )


def _tasks() -> int:
    """Tasks of the running loop (scrapes run on it); 0 off the loop."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


def _counter(name: str, doc: str, value: float) -> Metric:
    """A counter read at scrape time, exposed as ``NAME_total``."""
    family = Metric(name.removesuffix("_total"), doc, "counter")
    family.add_sample(family.name + "_total", {}, value)
    return family


def add_metrics_route(
    app: web.Application,
    metrics: GatewayMetrics,
    key: str = "",
    *,
    local_only: bool = False,
    siblings: Siblings | None = None,
) -> None:
    """``GET /metrics`` (Prometheus text); with ``key``: only with ``Authorization: Bearer KEY``;
    without one and ``local_only`` (an exposed ``-httpAddr``): only to clients on loopback.
    A worker of ``-workers N`` (``siblings``) answers a scrape on the shared port with every
    worker's series (``worker_metrics``), one at its own port with its own."""

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        if siblings is not None and siblings.is_sibling(request):
            return web.Response(body=metrics.exposition(), headers=headers)
        if not key and local_only and not is_loopback(request.remote or ""):
            return web.json_response(
                {"errors": ["/metrics is served to this host only: set -metricsKey to scrape it"
                            " from elsewhere (Authorization: Bearer KEY)"]},
                status=403,
            )  # fmt: skip
        given = request.headers.get("Authorization", "").encode()
        if key and not hmac.compare_digest(given, f"Bearer {key}".encode()):
            return web.json_response(
                {"errors": ["/metrics needs Authorization: Bearer <the -metricsKey value>"]},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        text = metrics.exposition()
        if siblings is not None and siblings.on_shared_port(request):
            text = await siblings.gather(text)
        return web.Response(body=text, headers=headers)

    app.router.add_get("/metrics", handler)
