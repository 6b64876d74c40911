"""Reports from the usage ledger's hourly rows: Studio's usage query rows (with mediagw's cost,
charge and margin), their CSV, and NaaP's usage push for one closed window.

Studio's fields: ``UserID`` (the API key), ``CreatorID`` (the stream, when broken down by
``creatorId`` or ``streamId``), ``TotalUsageMins`` (ingested minutes), ``DeliveryUsageMins``
(viewer minutes, HLS and WHEP), ``StorageUsageMins`` (recorded minutes). Cost is wei x the rate
each row recorded; charge is what the key's plan priced when the row was flushed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..usage import DELIVERY_HLS, DELIVERY_WHEP, LIVE_AI, PAYMENT, RECORDING, SOURCE, TRANSCODE
from .store import UsageRow

__all__ = ["BREAKDOWNS", "CSV_FIELDS", "report", "to_csv", "usage_push"]

WEI_PER_ETH = Decimal(10**18)
MINUTE_MS = 60_000
DAY_MS = 86_400_000
BREAKDOWNS = ("userId", "creatorId", "streamId", "orchestrator")
_MONEY = Decimal("0.000001")


@dataclass(slots=True)
class _Group:
    user: str
    creator: str
    orchestrator: str
    at: int | None
    ms: dict[str, int] = field(default_factory=dict)
    pixels: dict[str, int] = field(default_factory=dict)
    hls_bytes: int = 0
    tickets: int = 0
    wei: int = 0
    cost: Decimal = Decimal(0)
    charge_micros: int = 0
    currency: str = "USD"
    rate: str = "0"

    def add(self, row: UsageRow) -> None:
        self.ms[row.kind] = self.ms.get(row.kind, 0) + row.ms
        self.pixels[row.kind] = self.pixels.get(row.kind, 0) + row.pixels
        if row.kind == DELIVERY_HLS:
            self.hls_bytes += row.quantity
        if row.kind == PAYMENT:
            self.tickets += row.quantity
        self.wei += row.wei
        self.cost += Decimal(row.wei) * Decimal(row.wei_rate) / WEI_PER_ETH
        self.charge_micros += row.charge_micros
        self.currency, self.rate = row.currency, row.wei_rate

    def mins(self, *kinds: str) -> float:
        return round(sum(self.ms.get(k, 0) for k in kinds) / MINUTE_MS, 3)

    def out(self) -> dict[str, Any]:
        charge = Decimal(self.charge_micros) / 1_000_000
        cost = self.cost.quantize(_MONEY)
        doc: dict[str, Any] = {
            "UserID": self.user,
            "CreatorID": self.creator,
            "DeliveryUsageMins": self.mins(DELIVERY_HLS, DELIVERY_WHEP),
            "TotalUsageMins": self.mins(SOURCE),
            "StorageUsageMins": self.mins(RECORDING),
        }
        if self.at is not None:
            doc["TimeStamp"] = self.at
        if self.orchestrator:
            doc["orchestrator"] = self.orchestrator
        doc.update(
            transcodedMins=self.mins(TRANSCODE),
            liveAiMins=self.mins(LIVE_AI),
            transcodedPixels=self.pixels.get(TRANSCODE, 0),
            liveAiPixels=self.pixels.get(LIVE_AI, 0),
            pixels=self.pixels.get(TRANSCODE, 0) + self.pixels.get(LIVE_AI, 0),
            hlsBytes=self.hls_bytes,
            tickets=self.tickets,
            costWei=str(self.wei),
            cost=str(cost),
            charge=str(charge.quantize(_MONEY)),
            margin=str((charge - cost).quantize(_MONEY)),
            currency=self.currency,
            weiRate=self.rate,
        )
        return doc


def report(
    rows: Iterable[UsageRow], *, step_ms: int | None, breakdown: Sequence[str]
) -> list[dict[str, Any]]:
    """Studio's usage rows: one per time step (None: one for the whole range) and breakdown."""
    groups: dict[tuple[str, str, str, int | None], _Group] = {}
    by_stream = "creatorId" in breakdown or "streamId" in breakdown
    by_orch = "orchestrator" in breakdown
    by_user = "userId" in breakdown
    for row in rows:
        at = row.hour // step_ms * step_ms if step_ms else None
        key = (
            row.key_id if by_user else "",
            row.stream_id if by_stream else "",
            row.orchestrator if by_orch else "",
            at,
        )
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(*key)
        group.add(row)
    ordered = sorted(groups.values(), key=lambda g: (g.at or 0, g.user, g.creator, g.orchestrator))
    return [g.out() for g in ordered]


CSV_FIELDS = (
    "TimeStamp", "UserID", "CreatorID", "orchestrator", "TotalUsageMins", "DeliveryUsageMins",
    "StorageUsageMins", "transcodedMins", "liveAiMins", "transcodedPixels", "liveAiPixels",
    "pixels", "hlsBytes", "tickets", "costWei", "cost", "charge", "margin", "currency", "weiRate",
)  # fmt: skip


def to_csv(docs: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV with a header line (every column, empty when a row lacks it)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, restval="", lineterminator="\r\n")
    writer.writeheader()
    for doc in docs:
        writer.writerow(doc)
    return out.getvalue()


def usage_push(rows: Iterable[UsageRow], start: int, end: int, *, rate: Decimal) -> dict[str, Any]:
    """NaaP's usage push for the window [start, end): sessions, tickets, fee in wei (and in
    micro-USD at ``rate``), and the same per ``pipeline:model`` (live AI) or rendition."""
    sessions: set[tuple[str, int]] = set()
    tickets = wei = 0
    by_cap: dict[str, dict[str, int]] = {}
    for row in rows:
        if row.kind in (SOURCE, TRANSCODE, LIVE_AI):
            sessions.add((row.stream_id, row.session))
        if row.kind == PAYMENT:
            tickets += row.quantity
            wei += row.wei
        if row.kind in (TRANSCODE, LIVE_AI):
            cap = row.detail if row.kind == LIVE_AI else f"transcode:{row.detail or 'all'}"
            entry = by_cap.setdefault(cap, {"seconds": 0, "pixels": 0})
            entry["seconds"] += row.ms // 1000
            entry["pixels"] += row.pixels
    fee_usd_micros = int(Decimal(wei) * rate * 1_000_000 / WEI_PER_ETH)
    return {
        "window": {"from": start, "to": end},
        "sessions": len(sessions),
        "tickets": tickets,
        "feeWei": str(wei),
        "networkFeeUsdMicros": fee_usd_micros,
        "byCapability": by_cap,
    }
