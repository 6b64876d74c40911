"""The quote check before a live prepayment (``pipelines/live_ai/quote.py``): an orchestrator
quoting above the cap or above the model's listed price is dropped for the stream, with a log
line naming it, the quoted and the expected price; the next one is tried and nothing is paid
to the refused one. Unit tier: the in-test orchestrators of test_live_fakes."""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

import pytest
from live_ai.test_live_fakes import rig

from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import segment_header
from mediagw.payments.errors import NeedsRefresh
from mediagw.payments.live import LivePayment, empty_segdata
from mediagw.pipelines.live_ai.caps import lv2v_capabilities
from mediagw.pipelines.live_ai.quote import quote_refusal
from mediagw.pool.prices import PriceCaps


def info(price: tuple[int, int] | None, listed: dict[str, tuple[int, int]]) -> net.OrchestratorInfo:
    out = net.OrchestratorInfo(transcoder="https://o:1")
    if price is not None:
        out.price_info.pricePerUnit, out.price_info.pixelsPerUnit = price
    for model, (per_unit, pixels) in listed.items():
        out.capabilities_prices.add(
            pricePerUnit=per_unit, pixelsPerUnit=pixels, capability=35, constraint=model
        )
    return out


def test_quote_against_the_cap_and_the_listed_model_price() -> None:
    def refused(i: net.OrchestratorInfo, cap: Fraction | None = None) -> str | None:
        r = quote_refusal(i, model="noop", max_price=cap)
        return None if r is None else r.basis

    assert refused(info((1200, 1), {})) is None  # nothing to compare with
    assert refused(info((1200, 1), {}), Fraction(1000)) == "max price"
    assert refused(info((1000, 1), {}), Fraction(1000)) is None
    # the transcoding price quoted for a live job: far above the model's listed price
    assert refused(info((1200, 1), {"noop": (10, 1)})) == "listed model price"
    assert refused(info((1200, 1), {"tint": (10, 1)})) is None  # another model's price
    # go-livepeer: price_info x (1 + 1/100) auto-adjust, the listing rounded down to whole wei
    assert refused(info((101, 10), {"noop": (10, 1)})) is None  # 10.1
    assert refused(info((105, 10), {"noop": (10, 1)})) is None  # 10.5 listed as 10
    assert refused(info((1111, 100), {"noop": (10, 1)})) is None  # (10 + 1) x 1.01
    assert refused(info((1112, 100), {"noop": (10, 1)})) == "listed model price"
    # an exact fractional listing (not go-livepeer's form): 1 % only
    assert refused(info((101, 30), {"noop": (10, 3)})) is None
    assert refused(info((102, 30), {"noop": (10, 3)})) == "listed model price"
    assert refused(info((2, 1), {"noop": (0, 1)})) == "listed model price"
    assert refused(info(None, {"noop": (10, 1)})) is None  # off-chain: nothing is paid
    r = quote_refusal(info((1200, 1), {"noop": (10, 1)}), model="noop", max_price=None)
    assert r is not None and str(r) == (
        "quoted 1200 wei per pixel, expected 10 (listed model price; up to 11.110 accepted)"
    )


class Payments:
    """Records which orchestrators were paid; ``on_first`` runs at the first prepayment."""

    def __init__(self, on_first: Any = None) -> None:
        self.paid: list[str] = []
        self.on_first = on_first

    async def generate_live_payment(
        self, info: net.OrchestratorInfo, *, state: Any, manifest_id: str, **_: Any
    ) -> LivePayment:
        if self.on_first is not None:
            hook, self.on_first = self.on_first, None
            hook()
            raise NeedsRefresh("ticket params expired")
        self.paid.append(info.transcoder)
        seg = await empty_segdata(
            manifest_id=manifest_id, auth_token=info.auth_token, capabilities=None, sign=None
        )
        return LivePayment("pay", segment_header(seg), {"n": len(self.paid)})


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [vars(r) for r in caplog.records if r.getMessage() == "live orchestrator quote refused"]


async def test_orchestrator_quoting_above_its_listed_price_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "mediagw.live_ai.connect")
    async with rig(2) as r:
        dear, fair = r.orchs
        dear.price, fair.price = 1200, 10
        fair.fetch_delay = 0.05  # discovery order: the dear one first
        for o in r.orchs:
            o.listed = {"noop": 10}
        pay = Payments()
        session = r.session(payments=pay)
        await session.start()
        assert session.current is not None and session.current.session.url == fair.url
        assert pay.paid == [fair.url] and dear.starts == [] and len(fair.starts) == 1
        [line] = refusals(caplog)
        assert (line["orch"], line["quoted"], line["expected"]) == (dear.url, "1200", "10")
        assert line["basis"] == "listed model price" and line["model"] == "noop"
        assert dear.url not in [s.url for s in session.selector.candidates]
        status = session.status()["gateway_status"]
        assert any("quoted 1200 wei per pixel" in str(e) for e in status["errors"]), status
        await session.close()


async def test_a_refetched_quote_above_the_cap_is_refused_before_paying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Discovery saw 5 wei per pixel (cap 10); the refetch after expired ticket params quotes
    50: nothing is paid to that orchestrator, the other one is used."""
    caplog.set_level(logging.WARNING, "mediagw.live_ai.connect")
    async with rig(2, price=5) as r:
        first, second = r.orchs
        second.fetch_delay = 0.05

        def raise_price() -> None:
            first.price = 50

        pay = Payments(on_first=raise_price)
        caps = PriceCaps(per_capability={("live-video-to-video", "noop"): Fraction(10)})
        r.selector_kw["caps"] = caps
        session = r.session(payments=pay)
        await session.start()
        assert session.current is not None and session.current.session.url == second.url
        assert pay.paid == [second.url] and first.starts == []
        [line] = refusals(caplog)
        assert (line["orch"], line["quoted"], line["expected"]) == (first.url, "50", "10")
        assert line["basis"] == "max price"
        await session.close()


def test_the_job_capabilities_carry_capacities() -> None:
    caps = lv2v_capabilities("noop")
    assert dict(caps.capacities) == {35: 1} and list(caps.constraints.PerCapability) == [35]
