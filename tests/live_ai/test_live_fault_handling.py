"""Unit tier, against the in-test orchestrator of test_live_fakes: a remote signer that stops
answering is not the orchestrator's fault (no swap, no suspension, no drop; payments resume),
and the last outputs of a stream are delivered when its input ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from live_ai.test_live_fakes import rig, wait_for

from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import segment_header
from mediagw.payments.live import LivePayment, empty_segdata
from mediagw.payments.remote import SignerError, SignerUnavailable
from mediagw.pipelines.live_ai.errors import NoOrchestrator
from mediagw.pipelines.live_ai.payer import signer_failed
from mediagw.pipelines.live_ai.state import SessionState


def seg(i: int) -> bytes:
    return f"segment-{i:03d}|".encode() * 200


class FlakySigner:
    """A payment source standing in for a remote signer that can be down."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def generate_live_payment(
        self, info: net.OrchestratorInfo, *, state: Any, manifest_id: str, **_: Any
    ) -> LivePayment:
        self.calls += 1
        if self.down:
            raise SignerUnavailable("http://signer.invalid/generate-live-payment unreachable")
        seg_ = await empty_segdata(manifest_id=manifest_id, auth_token=info.auth_token,
                                   capabilities=None, sign=None)  # fmt: skip
        return LivePayment(f"pay{self.calls}", segment_header(seg_), {"n": self.calls})


def test_signer_failed_tells_the_signer_from_the_orchestrator() -> None:
    from mediagw.payments.remote import (
        SignerNoPaymentNeeded,
        SignerPriceRejected,
        SignerRefreshNeeded,
    )

    assert signer_failed(SignerUnavailable("x")) and signer_failed(SignerError(500, "x"))
    assert signer_failed(SignerError(402, "webhook: no credit"))
    for about_the_o in (SignerRefreshNeeded("x", ""), SignerPriceRejected("x"),
                        SignerNoPaymentNeeded("x"), ValueError("x")):  # fmt: skip
        assert not signer_failed(about_the_o)


async def test_signer_outage_keeps_the_orchestrator_and_payments_resume() -> None:
    async with rig(2, price=5) as r:
        signer = FlakySigner()
        session = r.session(payments=signer)
        await session.start()
        first = session.current
        assert first is not None
        for i in range(4):  # 4 x 0.35 s: past the payment interval (0.3 s)
            session.push(seg(i))
            await r.wait_outputs(i + 1)
            await asyncio.sleep(0.35)
        assert session.payments.ok >= 1
        signer.down = True
        calls = signer.calls
        for i in range(4, 10):  # 6 x 0.35 s: more failures than max_payment_failures (3)
            session.push(seg(i))
            await r.wait_outputs(i + 1)
            await asyncio.sleep(0.35)
        pay = session.payments
        assert pay.failing >= 4 and pay.signer_failed == pay.failing, pay
        assert signer.calls - calls <= 8  # once per payment interval at most, no busy loop
        status = session.status()["gateway_status"]
        assert status["state"] == "running" and status["swaps"] == 0
        assert session.current is first and not session.selector.suspensions.penalty(first.url)
        assert any("signer.invalid" in w for w in status["warnings"]), status["warnings"]
        assert status["errors"][-1]["error"].startswith("payment: remote signer unavailable")
        signer.down = False
        for i in range(10, 13):
            session.push(seg(i))
            await r.wait_outputs(i + 1)
            await asyncio.sleep(0.35)
        await wait_for(lambda: session.payments.failing == 0)
        assert session.status()["gateway_status"]["warnings"] == []
        await session.end()


async def test_signer_down_at_start_drops_no_orchestrator() -> None:
    async with rig(2, price=5) as r:
        signer = FlakySigner()
        signer.down = True
        session = r.session(payments=signer)
        try:
            await session.start()
        except NoOrchestrator:
            pass
        assert session.state is SessionState.FAILED
        assert signer.calls == 1  # the other orchestrator would need the same signer
        assert not any(o.starts for o in r.orchs)
        assert len(session.selector.candidates) == 1  # only the one taken; none dropped
        errors = session.status()["gateway_status"]["errors"]
        assert "remote signer unavailable" in errors[-1]["error"]
        await session.close()


class _SlowWrites:
    """A channel whose segments take ``delay`` s to be written (a slow runner)."""

    def __init__(self, channel: Any, delay: float) -> None:
        self.channel, self.delay = channel, delay

    def __getattr__(self, name: str) -> Any:  # the rest as the channel does it
        return getattr(self.channel, name)

    async def write_segment(self, data: bytes) -> int:
        await asyncio.sleep(self.delay)
        seq: int = await self.channel.write_segment(data)
        return seq


async def test_the_last_outputs_are_delivered_when_the_input_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with rig(1) as r:
        server = r.orchs[0].server
        get_channel = server.get_channel

        def slow_output(name: str) -> Any:
            channel = get_channel(name)
            return _SlowWrites(channel, 0.2) if channel and name.endswith("-out") else channel

        monkeypatch.setattr(server, "get_channel", slow_output)
        session = r.session()
        await session.start()
        for i in range(3):
            session.push(seg(i))
        await session.end()  # at once: the outputs are still on their way
        assert [s for s, _ in r.outputs] == [0, 1, 2]
        assert session.counters.late_outputs == 0
        assert session.state is SessionState.ENDED
