"""Unit tier of the live AI gateway session, against the in-test orchestrator of
test_live_fakes (plain HTTP, echo runner)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest
from live_ai.test_live_fakes import FAST, rig, wait_for

from mediagw.livepeer.capabilities import bits_of
from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import segment_header
from mediagw.payments.live import EMPTY_SEGMENT_HASH, LivePayment, empty_segdata
from mediagw.payments.remote import (
    SignerNoPaymentNeeded,
    SignerPriceRejected,
    SignerRefreshNeeded,
)
from mediagw.pipelines.live_ai.caps import lv2v_capabilities
from mediagw.pipelines.live_ai.errors import NoOrchestrator, StartAction, StartRejected
from mediagw.pipelines.live_ai.start import AUTHORIZATION, start_live_video
from mediagw.pipelines.live_ai.state import SessionState
from mediagw.pipelines.live_ai.transport import with_host_of


def seg(i: int) -> bytes:
    return f"segment-{i:03d}|".encode() * 200


def test_capabilities_bit_35_and_model_constraint() -> None:
    caps = lv2v_capabilities("noop", warm=True, runner_version="0.14.1", min_version="0.9.0")
    assert bits_of(caps.bitstring) == {35} and list(caps.bitstring) == [34359738368]
    model = caps.constraints.PerCapability[35].models["noop"]
    assert model.warm and model.runnerVersion == "0.14.1"
    assert caps.constraints.minVersion == "0.9.0"
    assert not lv2v_capabilities("x", warm=False).constraints.PerCapability[35].models["x"].warm


def test_host_rewrite() -> None:
    got = with_host_of("https://10.0.0.1:9999/ai/trickle/abc-out", "https://o.example:8935")
    assert got == "https://o.example:8935/ai/trickle/abc-out"
    assert with_host_of("/ai/trickle/x", "http://h:1") == "http://h:1/ai/trickle/x"


@pytest.mark.parametrize(
    ("status", "text", "action"),
    [
        (400, "TicketParams expired", StartAction.RETRY_SAME),
        (503, "insufficient capacity", StartAction.NEXT),
        (400, "invalid ticket senderNonce", StartAction.NEXT),
        (402, "bad payment", StartAction.REMOVE),
        (0, "connection refused", StartAction.REMOVE),
    ],
)
def test_start_error_actions(status: int, text: str, action: StartAction) -> None:
    assert StartRejected(text, status).action is action


async def test_start_request_wire_form() -> None:
    async with rig(1) as r:
        o = r.orchs[0]
        caps = lv2v_capabilities("noop")
        out = await start_live_video(
            r.http, o.info(), model="noop", params={"width": 512}, stream_id="stream1",
            request_id="req1", capabilities=caps, payments=None,
        )  # fmt: skip
        ch = out.channels
        assert ch.publish_url == f"{o.url}/ai/trickle/{ch.manifest_id}"
        assert ch.subscribe_url.endswith("-out") and ch.control_url.startswith(o.url)
        sent = o.starts[0]
        headers = sent["headers"]
        assert headers["Authorization"] == AUTHORIZATION
        assert headers["Content-Type"] == "application/json"
        assert headers["Livepeer-Payment"] == ""
        segdata = net.SegData.FromString(base64.b64decode(headers["Livepeer-Segment"]))
        assert segdata.manifestId == b"stream1" and segdata.hash == EMPTY_SEGMENT_HASH
        assert segdata.auth_token.session_id == "o0" and bits_of(segdata.capabilities.bitstring)
        body = json.loads(sent["body"])
        assert body == {"model_id": "noop", "params": {"width": 512},
                        "gateway_request_id": "req1", "stream_id": "stream1",
                        "publish_url": "", "subscribe_url": ""}  # fmt: skip
        o.empty_reply = True
        with pytest.raises(StartRejected) as err:
            await start_live_video(
                r.http, o.info(), model="noop", params={}, stream_id="s", request_id="r",
                capabilities=caps, payments=None,
            )  # fmt: skip
        assert err.value.status == 200 and err.value.action is StartAction.REMOVE


async def test_five_segments_in_five_out_and_status() -> None:
    async with rig(1) as r:
        session = r.session(params={"prompt": "a"})
        await session.start()
        for i in range(5):  # at the pace of the output: a burst would be a "slow O"
            session.push(seg(i))
            await r.wait_outputs(i + 1)
        assert [s for s, _ in r.outputs] == [0, 1, 2, 3, 4]
        assert [d for _, d in r.outputs] == [b"OUT:" + seg(i) for i in range(5)]
        await wait_for(lambda: session.events.status.get("state") == "ONLINE")
        st = session.status()
        gw = st["gateway_status"]
        assert gw["state"] == "running" and gw["orchestrator"] == r.orchs[0].url
        assert gw["segments"]["in"] == 5 and gw["segments"]["published"] == 5
        assert gw["segments"]["out"] == 5
        assert st["status"]["orchestrator_info"]["url"] == r.orchs[0].url
        assert st["timings"]["input_first_byte"]["count"] == 5
        assert st["timings"]["output_handoff"]["count"] == 5
        await session.end()
        assert session.state is SessionState.ENDED
        assert r.orchs[0].server.get_channel(r.orchs[0].mids[0]) is None  # input closed


async def test_update_goes_on_control_and_keepalives_are_sent() -> None:
    async with rig(1) as r:
        session = r.session(config=replace(FAST, keepalive_interval=0.1))
        await session.start()
        await session.update({"prompt": "b"})
        await wait_for(lambda: r.orchs[0].control == [{"prompt": "b"}])
        att = session.current
        assert att is not None
        await wait_for(lambda: att.control.keepalives >= 2)
        await session.close()


async def test_killed_orchestrator_swaps_and_no_input_is_lost() -> None:
    async with rig(2) as r:
        session = r.session()
        await session.start()
        first = session.current
        assert first is not None
        await session.update({"prompt": "keep me"})
        for i in range(3):
            session.push(seg(i))
            await r.wait_outputs(i + 1)
        dead = next(o for o in r.orchs if o.url == first.url)
        alive = next(o for o in r.orchs if o is not dead)
        await dead.kill()
        for i in range(3, 8):
            session.push(seg(i))
            await _sleep(0.2)
        await r.wait_outputs(5)
        await wait_for(lambda: session.counters.segments_published == 8)
        assert session.current is not None and session.current.url == alive.url
        assert dead.inputs + alive.inputs == [seg(i) for i in range(8)]
        await wait_for(lambda: alive.control == [{"prompt": "keep me"}])  # replayed
        st = session.status()["gateway_status"]
        assert st["swaps"] == 1 and st["orchestrators"][0]["reason"] == "CHANNEL_GONE"
        await session.end()
        assert len(r.outputs) == 8


async def test_events_heartbeat_swaps() -> None:
    async with rig(2) as r:
        for o in r.orchs:
            o.no_events = True
        session = r.session(config=replace(FAST, events_timeout=0.5))
        await session.start()
        await wait_for(lambda: session.counters.swaps >= 1)
        assert session.history[0]["reason"] == "NO_EVENTS"
        await session.close()


async def test_swap_limit_ends_the_stream() -> None:
    async with rig(3) as r:
        for o in r.orchs:
            o.close_after = 1  # every O closes its channels after one input segment
        session = r.session()
        await session.start()
        for i in range(3):
            session.push(seg(i))
            await wait_for(lambda n=i: session.counters.swaps > n or session.finished)
        await session.wait()
        assert session.state is SessionState.FAILED
        assert "too many orchestrator swaps" in session.end_reason
        assert session.status()["gateway_status"]["state"] == "failed"
        await session.close()


async def test_start_rejections_pick_the_next_orchestrator() -> None:
    async with rig(2) as r:
        r.orchs[0].reject = (503, "insufficient capacity")
        r.orchs[1].fetch_delay = 0.05  # discovery puts o0 first
        session = r.session()
        selector = session.selector
        await session.start()
        assert session.current is not None and session.current.url == r.orchs[1].url
        assert len(r.orchs[0].starts) == 1
        assert r.orchs[0].url not in [s.url for s in selector.candidates]
        assert "insufficient capacity" in session.status()["gateway_status"]["errors"][0]["error"]
        await session.close()


async def test_no_orchestrator() -> None:
    async with rig(1) as r:
        r.orchs[0].empty_reply = True
        session = r.session()
        with pytest.raises(NoOrchestrator):
            await session.start()
        assert session.state is SessionState.FAILED
        await session.close()


class FakePayments:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []
        self.mode = "ok"

    async def generate_live_payment(
        self, info: net.OrchestratorInfo, *, state: Any, manifest_id: str, **_: Any
    ) -> LivePayment:
        self.calls.append((state, manifest_id))
        if state is not None and self.mode == "481":
            raise SignerPriceRejected("price above the ceiling")
        if state is not None and self.mode == "482":
            raise SignerNoPaymentNeeded("covered")
        if state is not None and self.mode == "480":
            self.mode = "ok"
            raise SignerRefreshNeeded("refresh", info.transcoder)
        seg_ = await empty_segdata(manifest_id=manifest_id, auth_token=info.auth_token,
                                   capabilities=None, sign=None)  # fmt: skip
        n = len(self.calls)
        return LivePayment(f"pay{n}", segment_header(seg_), {"n": n})


@pytest.mark.parametrize("mode", ["ok", "480"])
async def test_payments_every_interval_with_the_manifest_id(mode: str) -> None:
    async with rig(1, price=5) as r:
        pay = FakePayments()
        pay.mode = mode
        session = r.session(payments=pay)
        await session.start()
        o = r.orchs[0]
        assert o.starts[0]["headers"]["Livepeer-Payment"] == "pay1"
        for i in range(6):
            session.push(seg(i))
            await r.wait_outputs(i + 1)
            await _sleep(0.12)
        await wait_for(lambda: len(o.payments) >= 1)
        mid = o.mids[0]
        assert all(m == mid for _, m in pay.calls[1:])  # later payments: O's manifest id
        assert pay.calls[0] == (None, "stream1")  # prepayment: no state, our stream id
        assert pay.calls[1][0] == {"n": 1}  # the state is echoed
        sd = net.SegData.FromString(base64.b64decode(o.payments[0]["segment"]))
        assert sd.manifestId == mid.encode()
        assert session.payments.ok >= 1 and session.payments.failed == 0
        if mode == "480":
            assert session.payments.refreshes == 1 and o.url in r.fetches
        assert session.counters.swaps == 0
        await session.close()


async def test_payment_481_swaps_and_482_skips() -> None:
    async with rig(2, price=5) as r:
        pay = FakePayments()
        pay.mode = "482"
        session = r.session(payments=pay)
        await session.start()
        first = session.current
        assert first is not None
        for i in range(4):
            session.push(seg(i))
            await r.wait_outputs(i + 1)
            await _sleep(0.12)
        assert session.payments.skipped >= 1
        assert not any(o.payments for o in r.orchs)  # 482: nothing sent
        pay.mode = "481"
        for i in range(4, 8):
            session.push(seg(i))
            await _sleep(0.12)
        await wait_for(lambda: session.counters.swaps >= 1)
        assert session.history[0]["reason"] == "PAYMENT_FAILED"
        assert first.session.url not in [s.url for s in session.selector.candidates]
        assert session.selector.suspensions.penalty(first.session.url) >= 4  # 5 refreshes
        await session.close()


async def test_orchestrator_refusing_payments_is_left() -> None:
    async with rig(2, price=5) as r:
        for o in r.orchs:
            o.payment_status = 400
        session = r.session(payments=FakePayments())
        await session.start()
        for i in range(5):
            session.push(seg(i))
            await _sleep(0.12)
        await wait_for(lambda: session.counters.swaps >= 1)
        assert session.payments.failed >= 1
        await session.close()


async def _sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


async def test_ticketparams_expired_retries_the_same_orchestrator() -> None:
    async with rig(1) as r:
        o = r.orchs[0]
        o.reject, o.reject_times = (400, "TicketParams expired"), 2
        session = r.session()
        await session.start()
        assert len(o.starts) == 3 and r.fetches.count(o.url) == 3  # discovery + 2 refetches
        assert session.current is not None and session.current.url == o.url
        await session.close()


async def test_selection_price_cap_filter_and_cold_pool() -> None:
    from mediagw.pool.prices import PriceCaps

    async with rig(3) as r:
        cheap, dear, cold = r.orchs
        cheap.price, dear.price, cold.price = 5, 50, 1
        cold.warm = False
        caps = PriceCaps(per_capability={("live-video-to-video", "noop"): Fraction(10)})
        selector = r.selector(caps=caps)
        assert await selector.refresh() == 1  # warm pool: the cold O and the dear O are out
        assert [s.url for s in selector.candidates] == [cheap.url]
        assert (
            selector.caps_for(selector.candidates[0])
            .constraints.PerCapability[35]
            .models["noop"]
            .warm
        )
        cheap.warm = False  # nobody warm now: the cold pool is used
        assert await selector.refresh() == 2
        assert {s.url for s in selector.candidates} == {cheap.url, cold.url}
        assert (
            not selector.caps_for(selector.candidates[0])
            .constraints.PerCapability[35]
            .models["noop"]
            .warm
        )
        only = r.selector(caps=caps, orchestrator_filter=cold.url)
        assert await only.refresh() == 1 and only.candidates[0].url == cold.url
        await selector.close()
        await only.close()


async def test_selection_takes_an_o_penalised_on_a_node_last() -> None:
    import time

    from mediagw.pool.notes import OrchNotes

    async with rig(2) as r:
        fast, slow = r.orchs
        slow.fetch_delay = 0.1  # discovery order: fast first
        notes = OrchNotes(time.time)  # node-wide (shared with other nodes through Redis)
        first = r.selector(notes=notes)
        taken = await first.next()
        assert taken is not None and taken.url == fast.url
        first.suspend(fast.url)  # this stream's O failed: noted for ~30 min on every node
        assert notes.penalized(fast.url)
        assert notes.take_penalties()[fast.url] > time.time() + 29 * 60
        other = r.selector(notes=notes)  # another stream, here or on another node
        taken = await other.next()
        assert taken is not None and taken.url == slow.url
        taken = await other.next(exclude={slow.url})  # nothing else left: used anyway
        assert taken is not None and taken.url == fast.url
        await first.close()
        await other.close()


async def test_input_queues_while_swapping_and_the_queue_is_bounded() -> None:
    async with rig(2) as r:
        session = r.session(config=replace(FAST, max_queue=3, max_in_flight=100))
        await session.start()
        first = session.current
        assert first is not None
        dead = next(o for o in r.orchs if o.url == first.url)
        other = next(o for o in r.orchs if o is not dead)
        other.start_delay = 1.0
        await dead.kill()
        await wait_for(lambda: session.state is SessionState.SWAPPING)
        for i in range(6):
            session.push(seg(i))
        assert session.queued == 3 and session.counters.segments_dropped == 3
        await r.wait_outputs(3)
        assert other.inputs == [seg(i) for i in (3, 4, 5)]  # the newest three, in order
        await session.close()


async def test_a_failing_output_callback_does_not_stop_the_stream() -> None:
    async with rig(1) as r:
        calls: list[int] = []

        async def flaky(seq: int, data: bytes) -> None:
            calls.append(seq)
            if seq == 0:
                raise RuntimeError("consumer bug")

        session = r.session()
        session.on_output = flaky
        await session.start()
        for i in range(3):
            session.push(seg(i))
            await wait_for(lambda n=i: len(calls) > n)
        assert calls == [0, 1, 2] and session.counters.callback_errors == 1
        await session.close()


async def test_output_watchdog_swaps_a_stalled_runner() -> None:
    async with rig(2) as r:
        for o in r.orchs:
            o.fetch_delay = 0.05 if o is r.orchs[1] else 0.0
        r.orchs[0].stall_output = True
        session = r.session(config=replace(FAST, output_timeout=0.8))
        await session.start()
        for i in range(30):
            session.push(seg(i))
            await _sleep(0.1)
            if session.counters.swaps:
                break
        assert session.history[0]["reason"] == "NO_OUTPUT"
        assert session.selector.suspensions.penalty(r.orchs[0].url) >= 4
        await wait_for(lambda: session.state is SessionState.RUNNING)
        session.push(seg(99))
        await wait_for(lambda: any(d == b"OUT:" + seg(99) for _, d in r.outputs))
        await session.close()
