"""Real-socket tier: the gateway's ``LiveSession`` against the reference orchestrator's live
video-to-video (TLS, TOFU-pinned, GetOrchestrator over gRPC, trickle channels, CPU runner).

Input: 2 s 320x240 H.264 MPEG-TS segments cut by the ffmpeg CLI's segment muxer."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import av
import pytest
from live_ai.test_live_fakes import Candidates, wait_for
from mediatools import need_tool
from orchestrator.orch_testkit import GATEWAY_KEY, ORCH_KEY

from mediagw.eth.signer import Signer
from mediagw.livepeer.rpc import OrchestratorRPC
from mediagw.livepeer.tls import PinStore
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.payments.live import LivePayment, LocalLivePayments
from mediagw.payments.remote import RemoteSigner, SignerNoPaymentNeeded, SignerPriceRejected
from mediagw.payments.sender import PaymentSender
from mediagw.payments.signer import LocalSigner
from mediagw.pipelines.live_ai.config import LiveConfig
from mediagw.pipelines.live_ai.selection import LiveSelector, OrchestratorRequests
from mediagw.pipelines.live_ai.session import LiveSession
from mediagw.pipelines.live_ai.state import SessionState
from mediagw.pipelines.live_ai.transport import LiveHTTP

pytestmark = pytest.mark.ffmpeg

MODELS = {"noop": True, "tint": True, "invert": True}
CONFIG = LiveConfig(
    check_interval=0.1,
    events_timeout=10.0,
    output_timeout=10.0,
    payment_interval=0.5,
    drain_timeout=3.0,
    retire_timeout=1.0,
)
SPEEDUP = 20  # priced tests: both sides' billing clocks run 20x faster than real time


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    ffmpeg = need_tool("ffmpeg")
    out = tmp_path_factory.mktemp("lv2v")
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
        "-t", "16", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0",
        "-f", "segment", "-segment_time", "2", "-segment_format", "mpegts",
        str(out / "seg%d.ts"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=120)
    return [(out / f"seg{i}.ts").read_bytes() for i in range(8)]


@dataclass(frozen=True)
class Picture:
    frames: int
    width: int
    height: int
    keyframe_first: bool
    red: float  # mean R, G, B of the first frame
    green: float
    blue: float


def decode(data: bytes) -> Picture:
    frames, first = 0, None
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for frame in container.decode(video=0):
            if first is None:
                first = frame
            frames += 1
    assert first is not None, "no video frame"
    plane = first.reformat(format="rgb24").planes[0]
    raw, stride, row = bytes(plane), plane.line_size, plane.width * 3
    pixels = b"".join(raw[i * stride : i * stride + row] for i in range(0, plane.height, 4))
    n = len(pixels) // 3
    return Picture(
        frames, first.width, first.height, bool(first.key_frame),
        sum(pixels[0::3]) / n, sum(pixels[1::3]) / n, sum(pixels[2::3]) / n,
    )  # fmt: skip


class Scaled:
    """A clock running ``SPEEDUP`` times faster than real time from ``base``."""

    def __init__(self, base: float) -> None:
        self.base, self.t0 = base, time.monotonic()

    def __call__(self) -> float:
        return self.base + (time.monotonic() - self.t0) * SPEEDUP


@dataclass
class Gateway:
    orchs: list[ReferenceOrchestrator]
    http: LiveHTTP
    rpc: OrchestratorRPC
    signer: Signer | None = None
    outputs: list[tuple[float, int, bytes]] = field(default_factory=list)
    sessions: list[LiveSession] = field(default_factory=list)

    def on_output(self, seq: int, data: bytes) -> None:
        self.outputs.append((time.monotonic(), seq, data))

    def session(self, model: str = "noop", **kw: Any) -> LiveSession:
        requests = OrchestratorRequests(self.rpc, signer=self.signer)
        selector = LiveSelector(
            [Candidates([o.url for o in self.orchs])], requests.fetch, model=model
        )
        kw.setdefault("config", CONFIG)
        session = LiveSession(
            stream_id="stream-1", selector=selector, http=self.http,
            on_output=self.on_output, model=model, **kw,
        )  # fmt: skip
        self.sessions.append(session)
        return session

    async def signer_session(self, remote: RemoteSigner) -> LiveSession:
        """A ``noop`` session paid through the remote signer, with its GetOrchestrator
        credentials (§10.6), on the first orchestrator."""
        credentials = await remote.sign_orchestrator_info()
        requests = OrchestratorRequests(self.rpc, credentials=credentials)
        selector = LiveSelector([Candidates([self.orchs[0].url])], requests.fetch, model="noop")
        session = LiveSession(
            stream_id="stream-1", selector=selector, http=self.http, on_output=self.on_output,
            model="noop", payments=remote, config=CONFIG,
        )  # fmt: skip
        self.sessions.append(session)
        return session

    def orch_of(self, session: LiveSession) -> ReferenceOrchestrator:
        assert session.current is not None
        return next(o for o in self.orchs if o.service_uri == session.current.url)

    async def wait_outputs(self, n: int, timeout: float = 15.0) -> None:
        await wait_for(lambda: len(self.outputs) >= n, timeout)


@contextlib.asynccontextmanager
async def gateway(
    tmp_path: Path, n: int = 2, *, priced: bool = False, **orch_kw: Any
) -> AsyncIterator[Gateway]:
    orchs = []
    for i in range(n):
        kw: dict[str, Any] = {"live_models": MODELS, "live_status_interval": 0.5, **orch_kw}
        if priced:
            defaults = dict(priced=True, private_key=ORCH_KEY, price_per_unit=1,
                            pixels_per_unit=1, ticket_ev=27_648_000, live_payment_interval=0.5,
                            monotonic=Scaled(1000.0))  # fmt: skip
            kw = {**defaults, **kw}
        work = tmp_path / f"o{i}"
        work.mkdir()
        orch = ReferenceOrchestrator(OrchestratorConfig(work_dir=work, **kw))
        await orch.start()
        orchs.append(orch)
    pins = PinStore()
    gw = Gateway(orchs, LiveHTTP(pins), OrchestratorRPC(pins))
    if priced:
        gw.signer = LocalSigner(GATEWAY_KEY)
    try:
        yield gw
    finally:
        for session in gw.sessions:
            await session.close()
        await gw.http.close()
        await gw.rpc.close()
        for orch in orchs:
            await orch.stop()


async def test_five_segments_in_five_out(tmp_path: Path, segments: list[bytes]) -> None:
    async with gateway(tmp_path, 1) as gw:
        session = gw.session("noop")
        await session.start()
        for i in range(5):
            session.push(segments[i])
            await gw.wait_outputs(i + 1)
        pictures = [decode(data) for _, _, data in gw.outputs]
        assert [seq for _, seq, _ in gw.outputs] == [0, 1, 2, 3, 4]
        assert all(p.frames == 60 and (p.width, p.height) == (320, 240) for p in pictures)
        assert all(p.keyframe_first for p in pictures)
        await wait_for(lambda: session.events.status.get("type") == "status")
        status = session.status()
        assert status["status"]["orchestrator_info"]["url"] == gw.orchs[0].service_uri
        assert status["gateway_status"]["segments"]["published"] == 5
        timings = status["timings"]
        assert timings["input_first_byte"]["count"] == 5
        assert timings["input_first_byte"]["max"] < 0.5
        await session.end()
        assert session.state is SessionState.ENDED
        assert gw.orchs[0].stats.live_sessions_ended == 1  # our DELETE ended the run


async def test_update_changes_the_effect(tmp_path: Path, segments: list[bytes]) -> None:
    async with gateway(tmp_path, 1) as gw:
        session = gw.session("tint", params={"color": [255, 0, 0], "strength": 0.9})
        await session.start()
        session.push(segments[0])
        await gw.wait_outputs(1)
        red = decode(gw.outputs[0][2])
        assert red.red > red.blue + 80
        await session.update({"color": [0, 0, 255], "strength": 0.9})
        await wait_for(lambda: gw.orchs[0].stats.live_control_updates == 1)
        session.push(segments[1])
        await gw.wait_outputs(2)
        blue = decode(gw.outputs[1][2])
        assert blue.blue > blue.red + 80
        await session.end()


async def test_killed_orchestrator_swap(tmp_path: Path, segments: list[bytes]) -> None:
    pace = 1.0  # input arrives every second (2 s segments, fed 2x faster than real time)
    async with gateway(tmp_path, 2) as gw:
        session = gw.session("tint", params={"color": [0, 255, 0], "strength": 0.5})
        await session.start()
        await session.update({"color": [255, 0, 0], "strength": 0.9})
        first = gw.orch_of(session)
        killed_at = 0.0
        for i, data in enumerate(segments):
            session.push(data)
            await asyncio.sleep(pace / 2)
            if i == 3:  # mid-interval, after the output of segment 3 came back
                killed_at = time.monotonic()
                await first.stop()
            await asyncio.sleep(pace / 2)
        await gw.wait_outputs(8, timeout=10)
        second = gw.orch_of(session)
        assert second is not first
        assert session.counters.segments_published == 8 and session.counters.segments_dropped == 0
        assert first.stats.live_segments_in + second.stats.live_segments_in >= 8
        assert [seq for _, seq, _ in gw.outputs] == list(range(8))
        assert decode(gw.outputs[-1][2]).red > 150  # the updated params were replayed
        gaps = [b[0] - a[0] for a, b in zip(gw.outputs, gw.outputs[1:], strict=False)]
        after = [t for t, _, _ in gw.outputs if t > killed_at]
        swap_gap = after[0] - max(t for t, _, _ in gw.outputs if t <= killed_at)
        print(f"\nswap output gap {swap_gap:.3f} s (pace {pace} s), gaps {gaps}")
        print(f"swap attach {session.swap_time.as_dict()}")
        assert swap_gap < 2 * pace + 0.5  # at most one segment of output
        assert session.status()["gateway_status"]["swaps"] == 1
        await session.end()


async def test_events_heartbeat_swap(tmp_path: Path, segments: list[bytes]) -> None:
    async with gateway(tmp_path, 2) as gw:
        session = gw.session("noop", config=replace(CONFIG, events_timeout=1.5))
        await session.start()
        silent = gw.orch_of(session)
        silent.faults.live_no_events = True
        for i in range(6):
            session.push(segments[i])
            await asyncio.sleep(0.5)
            if session.counters.swaps:
                break
        await wait_for(lambda: session.counters.swaps == 1)
        await wait_for(lambda: session.state is SessionState.RUNNING)
        assert session.history[0]["reason"] == "NO_EVENTS"
        assert gw.orch_of(session) is not silent
        n = len(gw.outputs)
        session.push(segments[7])
        await gw.wait_outputs(n + 1)
        await session.end()


async def test_swap_limit_ends_the_stream(tmp_path: Path, segments: list[bytes]) -> None:
    async with gateway(tmp_path, 2) as gw:
        for orch in gw.orchs:
            orch.faults.live_close_after = 1  # every run ends after one output
        session = gw.session("noop")
        await session.start()
        for i in range(4):
            if session.finished:
                break
            session.push(segments[i])
            await wait_for(lambda n=i: session.counters.swaps > n or session.finished)
        await asyncio.wait_for(session.wait(), 10)
        gw_status = session.status()["gateway_status"]
        assert gw_status["state"] == "failed"
        assert gw_status["end_reason"].startswith("too many orchestrator swaps: 3 within 180 s")
        assert gw_status["swaps"] == 3


def local_payments(signer: Signer) -> LocalLivePayments:
    return LocalLivePayments(PaymentSender(signer), clock=Scaled(time.time()))


async def test_priced_local_payments(tmp_path: Path, segments: list[bytes]) -> None:
    async with gateway(tmp_path, 1, priced=True) as gw:
        assert gw.signer is not None
        session = gw.session("noop", payments=local_payments(gw.signer))
        await session.start()
        for i in range(8):  # 8 x 0.5 s real = 80 s of billed time: the 60 s prepayment ends
            session.push(segments[i])
            await gw.wait_outputs(i + 1)
            await asyncio.sleep(0.5)
        stats = gw.orchs[0].stats
        assert session.payments.ok >= 3 and session.payments.failed == 0
        assert stats.live_debits >= 3 and stats.live_insufficient_balance == 0
        assert not stats.ticket_errors and not stats.rejections
        assert session.state is SessionState.RUNNING and session.counters.swaps == 0
        await session.end()


class Scripted:
    """LocalLivePayments, with 482 / 481 on demand for the later payments."""

    def __init__(self, inner: LocalLivePayments) -> None:
        self.inner = inner
        self.mode = "ok"
        self.calls: list[Any] = []

    async def generate_live_payment(self, info: Any, *, state: Any, **kw: Any) -> LivePayment:
        self.calls.append(state)
        if state is not None and self.mode == "482":
            raise SignerNoPaymentNeeded("balance covers the fee")
        if state is not None and self.mode == "481":
            raise SignerPriceRejected("price above the ceiling")
        return await self.inner.generate_live_payment(info, state=state, **kw)


async def test_priced_481_swaps_482_skips(tmp_path: Path, segments: list[bytes]) -> None:
    async with gateway(tmp_path, 2, priced=True) as gw:
        assert gw.signer is not None
        pay = Scripted(local_payments(gw.signer))
        pay.mode = "482"
        session = gw.session("noop", payments=pay)
        await session.start()
        first = gw.orch_of(session)
        for i in range(3):
            session.push(segments[i])
            await gw.wait_outputs(i + 1)
            await asyncio.sleep(0.6)
        assert session.payments.skipped >= 1 and session.payments.ok == 0
        pay.mode = "481"
        for i in range(3, 6):
            session.push(segments[i])
            with contextlib.suppress(TimeoutError):
                await wait_for(lambda: session.counters.swaps == 1, 0.6)
            if session.counters.swaps:
                pay.mode = "ok"
                break
        assert session.counters.swaps == 1
        await wait_for(lambda: session.state is SessionState.RUNNING)
        assert session.history[0]["reason"] == "PAYMENT_FAILED"
        assert gw.orch_of(session) is not first
        assert pay.calls.count(None) == 2  # a fresh payment state for the new orchestrator
        session.push(segments[7])
        await wait_for(lambda: gw.outputs[-1][1] >= i + 1)
        assert first.stats.live_insufficient_balance == 0
        await session.end()


async def test_remote_signer_payments(tmp_path: Path, segments: list[bytes]) -> None:
    """§10.6: credentials from /sign-orchestrator-info, prepayment and /payment headers from
    /generate-live-payment (state echoed, O's manifest id); the O never runs dry."""
    from signer_service.signer_testkit import SIGNER_KEY

    from mediagw.signer_service import SignerConfig, SignerServer

    wall = Scaled(time.time())
    config = SignerConfig(port=0, private_key=SIGNER_KEY, clock_ns=lambda: int(wall() * 1e9))
    async with (
        SignerServer(config) as server,
        RemoteSigner(server.url) as remote,
        gateway(tmp_path, 1, priced=True) as gw,
    ):
        session = await gw.signer_session(remote)
        await session.start()
        for i in range(8):  # 80 s of billed time: past the signer's 60 s prepayment
            session.push(segments[i])
            await gw.wait_outputs(i + 1)
            await asyncio.sleep(0.5)
        stats = gw.orchs[0].stats
        assert session.payments.ok >= 1 and session.payments.failed == 0
        assert stats.live_insufficient_balance == 0 and not stats.ticket_errors
        assert session.counters.swaps == 0
        await session.end()


async def test_remote_signer_sends_capacities_and_prepays_at_the_model_price(
    tmp_path: Path,
) -> None:
    """The remote-signer path: the job capabilities the gateway gives the signer carry
    ``capacities {35: 1}`` next to the model constraint, and the 60 s prepayment is billed at
    the live price (10 wei/pixel), not the transcoding price (1200)."""
    from signer_service.signer_testkit import SIGNER_KEY

    from mediagw.livepeer.proto import net
    from mediagw.signer_service import SignerConfig, SignerServer

    config = SignerConfig(port=0, private_key=SIGNER_KEY)
    orch_kw = dict(price_per_unit=1200, live_price_per_unit=10, ticket_ev=1_000_000_000)
    async with (
        SignerServer(config) as server,
        RemoteSigner(server.url) as remote,
        gateway(tmp_path, 1, priced=True, **orch_kw) as gw,
    ):
        sent: list[dict[str, Any]] = []
        generate = server.service.minter.generate

        async def recorded(body: bytes, headers: Any) -> Any:
            sent.append(json.loads(body))
            return await generate(body, headers)

        server.service.minter.generate = recorded  # type: ignore[method-assign]
        session = await gw.signer_session(remote)
        await session.start()
        stats = gw.orchs[0].stats
        expected = 60 * 30 * 1280 * 720 * 10  # 60 s of 720p30 at 10 wei per pixel
        ev, tickets = stats.ev_credited, stats.tickets_accepted
        print(f"\nremote signer prepayment: {tickets} tickets, EV {float(ev):,.0f} wei"
              f" (expected {expected:,})")  # fmt: skip
        assert tickets and expected <= ev < expected + ev / tickets
        [first] = sent
        caps = net.Capabilities.FromString(base64.b64decode(first["capabilities"]))
        assert dict(caps.capacities) == {35: 1}
        assert list(caps.constraints.PerCapability[35].models) == ["noop"]
        await session.end()
