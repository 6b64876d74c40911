"""The operator dashboard's data (``/dashboard`` draws it): scope ``admin``.

    GET /api/admin/streams/live               live streams with their ingest health
    GET /api/admin/orchestrators              the orchestrator scoreboard
    GET /api/admin/webhook-deliveries?limit=  recent deliveries across every webhook, newest first

Everything is read from what the gateway keeps anyway (the hub, ``stream/health``, the
transcoder's ``pool/scoreboard``, the store's delivery log): no route does work per packet or
per segment. The gateway puts a ``DashboardSources`` in ``services["dashboard"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ...stream.health import StreamHealth
from ...stream.hub import StreamHub
from ...usage import StreamUsage
from .base import Api, Call

__all__ = ["DashboardSources", "add_dashboard_routes"]

MAX_WEBHOOKS = 100  # webhooks whose logs one listing reads


@dataclass
class DashboardSources:
    hub: StreamHub
    health: StreamHealth
    usage: StreamUsage
    # the transcoder's scoreboard rows (``LivepeerTranscoder.scoreboard_rows``); [] without one
    scoreboard: Callable[[], list[dict[str, Any]]] = list


class LiveStreamOut(BaseModel):
    id: str
    state: str
    createdAt: float
    playbackUrl: str
    segments: int
    bytes: int
    mediaSeconds: float
    lastError: str | None
    transcodePixels: int
    ticketsSent: int
    evSentWei: str
    health: dict[str, Any]


class OrchestratorOut(BaseModel):
    orchestrator: str
    url: str
    address: str
    region: str
    price_wei_per_pixel: str | None
    attempts: int
    successes: int
    success_rate: float | None
    latency_p50_s: float | None
    latency_p99_s: float | None
    window: int
    swaps: int
    suspensions: int
    pools: int
    suspended_in: int
    suspended_by_node: str | None = None  # another node suspended it (-redisUrl)
    last_attempt_ago_s: float | None
    last_error: str | None


class DeliveryOut(BaseModel):
    id: str
    webhookId: str
    webhookName: str
    url: str
    event: str
    createdAt: int
    success: bool
    attempts: int
    deliveredAt: int | None
    nextAttemptAt: int | None
    statusCode: int | None
    error: str | None


def _sources(call: Call) -> DashboardSources:
    sources: DashboardSources = call.ctx.services["dashboard"]
    return sources


def add_dashboard_routes(api: Api) -> None:
    @api.route(
        "GET", "/admin/streams/live", scope="admin", response=LiveStreamOut, tag="dashboard",
        summary="Live streams with their ingest health (bitrate, fps, keyframes, segments)",
    )  # fmt: skip
    async def live_streams(call: Call) -> list[dict[str, Any]]:
        src = _sources(call)
        out = []
        for stream in src.hub.streams():
            if not stream.live:
                continue
            totals = src.usage.of(stream.id)
            out.append(
                {
                    "id": stream.id,
                    "state": stream.state,
                    "createdAt": round(stream.created_at, 3),
                    "playbackUrl": f"/stream/{stream.id}.m3u8",
                    "segments": stream.stats.segments,
                    "bytes": stream.stats.bytes,
                    "mediaSeconds": round(stream.stats.media_seconds, 3),
                    "lastError": stream.last_error,
                    "transcodePixels": totals.transcode_pixels,
                    "ticketsSent": totals.tickets_sent,
                    "evSentWei": str(round(totals.ev_sent_wei)),
                    "health": src.health.of(stream),
                }
            )
        return out

    @api.route(
        "GET", "/admin/orchestrators", scope="admin", response=OrchestratorOut, tag="dashboard",
        summary="The orchestrator scoreboard: latency p50/p99, success rate, price, swaps,"
        " suspensions, region",
    )  # fmt: skip
    async def orchestrators(call: Call) -> list[dict[str, Any]]:
        return _sources(call).scoreboard()

    @api.route(
        "GET", "/admin/webhook-deliveries", scope="admin", response=DeliveryOut,
        tag="dashboard", summary="Recent webhook deliveries across every webhook, newest first",
        query=(("limit", "at most this many deliveries, 1..500"),),
    )  # fmt: skip
    async def webhook_deliveries(call: Call) -> list[dict[str, Any]]:
        limit = call.limit(50, 500)
        store = call.ctx.store
        rows = []
        for hook in await store.list_webhooks(limit=MAX_WEBHOOKS):
            for d in await store.list_deliveries(hook.id, limit=limit):
                rows.append(
                    {
                        "id": d.id,
                        "webhookId": hook.id,
                        "webhookName": hook.name,
                        "url": hook.url,
                        "event": d.event,
                        "createdAt": d.created_at,
                        "success": d.delivered_at is not None,
                        "attempts": d.attempts,
                        "deliveredAt": d.delivered_at,
                        "nextAttemptAt": d.next_attempt_at,
                        "statusCode": d.status_code,
                        "error": d.error,
                    }
                )
        rows.sort(key=lambda r: (r["createdAt"], r["id"]), reverse=True)
        return rows[:limit]
