"""Live AI faults through the whole gateway, on real sockets: RTMP publishers (the ffmpeg CLI) ->
``Gateway`` -> reference orchestrators (trickle over TLS) -> HLS, with the orchestrator's fault
switches (``Faults.live_output_470`` / ``live_output_404`` on ``<mid>-out``, narrowed to one
stream by ``live_stream``) and a remote signer that goes away mid-stream.

Each test runs a second stream on the same gateway and checks it never notices."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, push, wait_until

from mediagw.gateway import Gateway
from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator
from mediagw.orchestrator.live.session import LiveSession as OrchSession
from mediagw.pipelines.live_ai.session import LiveSession
from mediagw.pipelines.live_ai.state import SessionState
from mediagw.signer_service.app import SignerServer
from mediagw.signer_service.config import SignerConfig

pytestmark = pytest.mark.ffmpeg

OUTAGE = 8.0  # seconds the remote signer stays down


def live(**kw: Any) -> OrchestratorConfig:
    """A fresh config per orchestrator: each has its own ``Faults``."""
    return OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS, live_status_interval=1.0, **kw)


def outputs(gw: Gateway, name: str) -> int:
    """AI output segments of stream ``name`` listed in HLS."""
    rendition = gw.hls.rendition(f"{name}-out", "source")
    return len(rendition.segments) if rendition else 0


def sources(gw: Gateway, name: str) -> int:
    rendition = gw.hls.rendition(name, "source")
    return len(rendition.segments) if rendition else 0


def session_of(gw: Gateway, name: str) -> LiveSession:
    assert gw.live_ai is not None
    return gw.live_ai.runs[name].session


def orch_session(orch: ReferenceOrchestrator, stream: str) -> OrchSession:
    """The orchestrator's (runner's) session of ``stream``."""
    assert orch.node is not None
    running = orch.node.live.sessions.values()
    found = [s for s in running if s.stream_id == stream]
    assert len(found) == 1, [s.stream_id for s in running]
    return found[0]


async def status(gw: Gateway, name: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{gw.http_port}/live/video-to-video/{name}/status"
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        assert resp.status == 200, await resp.text()
        doc: dict[str, Any] = await resp.json()
        return doc


async def poll(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Until the async ``check`` holds (every 0.2 s), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def finished(gw: Gateway, *names: str) -> dict[str, dict[str, Any]]:
    """Wait until the live AI runs of ``names`` have ended; their final status documents."""
    manager = gw.live_ai
    assert manager is not None
    await wait_until(lambda: all(n in manager.finished for n in names), 30)
    return {n: manager.finished[n] for n in names}


@contextlib.asynccontextmanager
async def publishers(clip: Path, gw: Gateway, **queries: str) -> AsyncIterator[None]:
    """ffmpeg publishers of ``clip`` to the streams named by the keywords (value: the query),
    live-paced; on leaving, each must have ended cleanly."""
    base = f"rtmp://127.0.0.1:{gw.rtmp_port}/live"
    tasks = [asyncio.create_task(push(clip, f"{base}/{n}{q}")) for n, q in queries.items()]
    try:
        yield
        for task in tasks:
            code, err = await task
            assert code == 0, err
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def assert_untouched(gw_status: dict[str, Any]) -> None:
    """A stream that saw no fault: one orchestrator, every input segment came back."""
    segments = gw_status["segments"]
    assert gw_status["swaps"] == 0, gw_status
    assert gw_status["state"] == "ended", gw_status
    assert segments["dropped"] == 0 and segments["in"] == segments["published"], segments
    assert segments["out"] == segments["published"], segments


async def test_output_470_storm_is_paced_reported_and_isolated(
    gateway_factory: Any, make_clip: ClipMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with ReferenceOrchestrator(live()) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,), transcoding_options="")
        async with publishers(make_clip(seconds=22), gw, a="?pipeline=noop", b="?pipeline=noop"):
            await wait_until(lambda: outputs(gw, "a") >= 2 and outputs(gw, "b") >= 2, 30)
            victim = orch_session(orch, "a")
            assert orch_session(orch, "b") is not victim  # both streams on the one O

            orch.faults.live_stream = "a"
            orch.faults.live_output_470 = -1  # every GET of a's output: 470 until switched off
            started, b_before = time.monotonic(), outputs(gw, "b")
            await wait_until(lambda: victim.output_faults >= 5, 10)

            async def reported() -> bool:
                warnings = (await status(gw, "a"))["gateway_status"]["warnings"]
                return any("470" in w and orch.service_uri in w for w in warnings)

            await poll(reported, 5)  # the status API names the problem while it lasts
            doc = (await status(gw, "a"))["gateway_status"]
            assert (await status(gw, "b"))["gateway_status"]["warnings"] == []
            await asyncio.sleep(max(0.0, started + 5.0 - time.monotonic()))  # a 5 s storm
            orch.faults.live_output_470 = None
            storm = time.monotonic() - started
            answered, requests = victim.output_faults, victim.output_requests
            a_after, b_during = outputs(gw, "a"), outputs(gw, "b") - b_before
            await wait_until(lambda: outputs(gw, "a") >= a_after + 2, 15)  # output resumes
        docs = await finished(gw, "a", "b")
        final = {n: doc["gateway_status"] for n, doc in docs.items()}
        print(
            f"\n470 storm: {answered} answers in {storm:.2f} s ({answered / storm:.1f}/s; "
            f"{requests} output GETs of a in all), a's longest output gap "
            f"{docs['a']['timings']['output_gap']['max']:.2f} s, b got {b_during} outputs "
            f"meanwhile\nwarning: {doc['warnings'][0]}"
        )
        # no spin: after 3 quick jumps the subscriber asks at most 4 times a second
        assert 10 <= answered <= 3 + 4 * storm + 4, (answered, storm)
        assert b_during >= 1  # b's output kept flowing during the storm ...
        assert_untouched(final["b"])  # ... and b got every segment back
        assert final["a"]["swaps"] == 0 and final["a"]["state"] == "ended", final["a"]
        assert final["a"]["output_channel"]["unavailable"] >= answered - 1, final["a"]
        assert final["a"]["output_channel"]["longest_unavailable_run"] >= 10, final["a"]
        logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any("470" in text for text in logged)


async def test_output_404_swaps_to_the_other_orchestrator(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    async with ReferenceOrchestrator(live()) as o1, ReferenceOrchestrator(live()) as o2:
        gw = await gateway_factory(orch_addr=(o1.url, o2.url), transcoding_options="")
        async with publishers(make_clip(seconds=16), gw, a="?pipeline=noop", b="?pipeline=noop"):
            await wait_until(lambda: outputs(gw, "a") >= 2 and outputs(gw, "b") >= 2, 30)
            a = session_of(gw, "a")
            assert a.current is not None
            victim = o1 if a.current.url == o1.service_uri else o2
            survivor = o2 if victim is o1 else o1
            gone = orch_session(victim, "a")
            victim.faults.live_stream = "a"
            victim.faults.live_output_404 = -1  # a's output channel is gone for good
            failed_at, before = time.monotonic(), outputs(gw, "a")
            await wait_until(lambda: a.counters.swaps >= 1, 15)

            def on_survivor() -> bool:  # (an output counted before may be the victim's last)
                cur = a.current
                return cur is not None and cur.url == survivor.service_uri and cur.outputs >= 1

            await wait_until(on_survivor, 20)
            gap = time.monotonic() - failed_at
            assert outputs(gw, "a") >= before + 1
            left = (await status(gw, "a"))["gateway_status"]["orchestrators"][0]
            assert left["reason"] == "CHANNEL_GONE", left
            assert left["detail"] == "output channel ended: HTTP 404: the channel is gone", left
        final = {n: doc["gateway_status"] for n, doc in (await finished(gw, "a", "b")).items()}
        print(
            f"\n404: swapped, next output {gap:.2f} s after the fault; a: {final['a']['segments']}"
        )
        assert gone.output_faults <= 2, gone.output_faults  # a 404 is final: not asked again
        assert final["a"]["swaps"] == 1 and final["a"]["state"] == "ended", final["a"]
        assert_untouched(final["b"])


async def test_output_404_without_another_orchestrator_ends_that_stream_only(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    async with ReferenceOrchestrator(live()) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,), transcoding_options="")
        async with publishers(make_clip(seconds=14), gw, a="?pipeline=noop", b="?pipeline=noop"):
            await wait_until(lambda: outputs(gw, "a") >= 2 and outputs(gw, "b") >= 2, 30)
            a = session_of(gw, "a")
            gone = orch_session(orch, "a")
            orch.faults.live_stream = "a"
            orch.faults.live_output_404 = -1
            await asyncio.wait_for(a.wait(), 15)
            doc = (await status(gw, "a"))["gateway_status"]
            source_at_failure, starts = sources(gw, "a"), orch.stats.live_sessions_started
        final = {n: doc["gateway_status"] for n, doc in (await finished(gw, "a", "b")).items()}
        print(f"\n404, no other O: {doc['end_reason']}")
        assert doc["state"] == "failed", doc
        assert doc["end_reason"] == (
            "no orchestrator to swap to after: a trickle channel was closed by the orchestrator "
            "(output channel ended: HTTP 404: the channel is gone)"
        ), doc
        assert gone.output_faults <= 2, gone.output_faults
        assert orch.stats.live_sessions_started == starts  # no retry loop against the O
        assert final["a"]["state"] == "failed"
        assert sources(gw, "a") >= source_at_failure + 2  # a's own HLS went on
        assert_untouched(final["b"])


async def test_signer_down_mid_stream_payments_resume(
    gateway_factory: Any, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = os.urandom(32)
    priced = live(
        priced=True,
        price_per_unit=1,
        pixels_per_unit=1,
        ticket_ev=27_648_000,  # one ticket = 1 s of 720p30 at 1 wei per pixel
        live_payment_interval=1.0,
    )
    async with contextlib.AsyncExitStack() as stack:
        signer = await stack.enter_async_context(
            SignerServer(SignerConfig(private_key=key, port=0))
        )
        orch = await stack.enter_async_context(ReferenceOrchestrator(priced))
        gw = await gateway_factory(
            orch_addr=(orch.url,), remote_signer_url=signer.url, transcoding_options=""
        )
        assert gw.live_ai is not None and gw.stack is not None
        remote = gw.stack.remote_signer
        assert remote is not None
        gw.live_ai.config = replace(gw.live_ai.config, payment_interval=1.0)
        calls: list[float] = []  # when the gateway asked the signer for a live payment
        generate = remote.generate_live_payment

        async def counted(*args: Any, **kw: Any) -> Any:
            calls.append(time.monotonic())
            return await generate(*args, **kw)

        monkeypatch.setattr(remote, "generate_live_payment", counted)
        async with publishers(make_clip(seconds=26), gw, ai="?pipeline=noop", plain=""):
            await wait_until(lambda: outputs(gw, "ai") >= 2, 30)
            ai = session_of(gw, "ai")
            await wait_until(lambda: ai.payments.ok >= 1, 10)

            port = signer.port
            await signer.stop()  # the signer goes away mid-stream
            down_at = time.monotonic()
            plain_down, ai_down = sources(gw, "plain"), outputs(gw, "ai")

            async def told() -> bool:
                pay = (await status(gw, "ai"))["gateway_status"]["payments"]
                return pay["failing"] >= 3 and f"127.0.0.1:{port}" in pay["last_error"]

            await poll(told, 15)  # more failures in a row than used to trigger a swap
            doc = (await status(gw, "ai"))["gateway_status"]
            assert doc["state"] == "running" and doc["swaps"] == 0, doc
            assert any("remote signer unavailable" in w for w in doc["warnings"]), doc
            await asyncio.sleep(max(0.0, down_at + OUTAGE - time.monotonic()))
            assert session_of(gw, "ai").state is SessionState.RUNNING

            signer = await stack.enter_async_context(
                SignerServer(SignerConfig(private_key=key, port=port))  # back, same port
            )
            outage = time.monotonic() - down_at
            tried = len([t for t in calls if t > down_at])
            plain_up, ai_up, paid_up = sources(gw, "plain"), outputs(gw, "ai"), orch.stats.payments
            # from here: a payment signed just before the signer stopped may have landed since
            ok_up = ai.payments.ok
            await wait_until(lambda: ai.payments.ok >= ok_up + 2, 15)  # payments resume
            resumed = time.monotonic() - down_at - outage
            assert orch.stats.payments >= paid_up + 2
            back = (await status(gw, "ai"))["gateway_status"]
            assert back["payments"]["failing"] == 0 and back["warnings"] == [], back
        final = (await finished(gw, "ai"))["ai"]["gateway_status"]
        print(
            f"\nsigner down {outage:.1f} s: {tried} payment attempts meanwhile; payments "
            f"resumed {resumed:.1f} s after it came back\nwarning: {doc['warnings'][0]}\n"
            f"final payments {final['payments']}"
        )
        assert 3 <= tried <= outage / 1.0 + 2, (tried, outage)  # at most one per interval
        assert ai_up >= ai_down + 2  # the AI output went on while the signer was away
        assert plain_up >= plain_down + 2  # so did the plain stream's HLS ...
        plain = gw.hls.rendition("plain", "source")
        assert plain is not None and len(plain.segments) >= 12  # ... to its end (26 s / 2 s)
        assert final["swaps"] == 0 and final["state"] == "ended", final
        assert orch.stats.live_insufficient_balance == 0 and not orch.stats.ticket_errors
        assert not orch.stats.rejections, orch.stats.rejections
