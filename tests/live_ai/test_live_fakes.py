"""An in-test live orchestrator (plain HTTP, aiohttp) for the unit tier of the live AI session:
``POST /live-video-to-video`` creating the four channels on a ``TrickleServer``, ``/payment``,
an echo "runner" (output = b"OUT:" + input), periodic status events, a control reader, and
switches for the failure paths. GetOrchestrator is not served: tests pass ``fetch`` to the
selector. Imported by the other test_live_* modules."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mediagw.livepeer.candidates import Candidate
from mediagw.livepeer.proto import net
from mediagw.livepeer.tls import PinStore
from mediagw.livepeer.trickle.errors import TrickleSegmentBroken
from mediagw.orchestrator.trickle import TrickleServer
from mediagw.pipelines.live_ai.caps import lv2v_capabilities
from mediagw.pipelines.live_ai.config import LiveConfig
from mediagw.pipelines.live_ai.selection import LiveSelector
from mediagw.pipelines.live_ai.session import LiveSession
from mediagw.pipelines.live_ai.transport import LiveHTTP

FAST = LiveConfig(
    check_interval=0.05,
    events_timeout=2.0,
    output_timeout=3.0,
    keepalive_interval=0.5,
    payment_interval=0.3,
    drain_timeout=2.0,
    retire_timeout=1.0,
    subscriber_retry_delay=0.05,
)


class FakeLiveO:
    def __init__(self, name: str = "o", *, price: int = 0) -> None:
        self.name = name
        self.price = price
        self.server = TrickleServer()
        self.url = ""
        self.starts: list[dict[str, Any]] = []
        self.payments: list[dict[str, str]] = []
        self.control: list[dict[str, Any]] = []
        self.inputs: list[bytes] = []
        self.broken = 0  # input segments cut off by their publisher
        self.mids: list[str] = []
        # switches
        self.reject: tuple[int, str] | None = None
        self.reject_times = 1 << 30
        self.empty_reply = False
        self.no_events = False
        self.stall_output = False
        self.close_after: int | None = None  # inputs, then all four channels are closed
        self.payment_status = 200
        self.event_interval = 0.1
        self.fetch_delay = 0.0  # GetOrchestrator latency (orders discovery)
        self.start_delay = 0.0  # before answering a start request
        self.warm = True  # how the model is advertised
        self.listed: dict[str, int] = {}  # capabilities_prices: model -> wei per pixel
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- server -------------------------------------------------------------------------------

    async def start(self) -> FakeLiveO:
        app = web.Application()
        app.router.add_post("/live-video-to-video", self._start)
        app.router.add_post("/payment", self._payment)
        app.add_subapp("/ai/trickle/", self.server.aiohttp_app())
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def kill(self) -> None:
        """Die abruptly: connections cut, port closed, nothing more answered."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        server = runner.server
        for site in list(runner.sites):
            await site.stop()
        if server is not None:
            for handler in list(server.connections):
                if handler.transport is not None:
                    handler.transport.abort()
        await self._cancel()
        await runner.cleanup()
        await self.server.close()

    stop = kill

    async def _cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def info(self) -> net.OrchestratorInfo:
        info = net.OrchestratorInfo(transcoder=self.url)
        info.capabilities.CopyFrom(lv2v_capabilities("noop", warm=self.warm))
        info.auth_token.token = b"t" * 32
        info.auth_token.session_id = self.name
        info.auth_token.expiration = 4_000_000_000
        if self.price:
            info.price_info.pricePerUnit = self.price
            info.price_info.pixelsPerUnit = 1
        for model, price in self.listed.items():
            info.capabilities_prices.add(
                pricePerUnit=price, pixelsPerUnit=1, capability=35, constraint=model
            )
        return info

    def close_channels(self, mid: str) -> None:
        for suffix in ("", "-out", "-control", "-events"):
            self.server.close_channel(mid + suffix)

    # -- handlers -----------------------------------------------------------------------------

    async def _start(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.starts.append({"headers": dict(request.headers), "body": body})
        await asyncio.sleep(self.start_delay)
        if self.reject is not None and self.reject_times > 0:
            self.reject_times -= 1
            status, text = self.reject
            return web.Response(status=status, text=text)
        if self.empty_reply:
            return web.Response(status=200)
        mid = f"{self.name}{len(self.mids):07x}"
        self.mids.append(mid)
        self.server.create_channel(mid, "video/MP2T")
        self.server.create_channel(mid + "-out", "video/MP2T")
        self.server.create_channel(mid + "-control", "application/json")
        self.server.create_channel(mid + "-events", "application/json")
        self._spawn(self._run(mid))
        self._spawn(self._events(mid))
        self._spawn(self._read_control(mid))
        base = "https://elsewhere.invalid:1/ai/trickle/"  # hosts are rewritten by the gateway
        return web.json_response(
            {
                "publish_url": base + mid,
                "subscribe_url": base + mid + "-out",
                "control_url": base + mid + "-control",
                "events_url": base + mid + "-events",
                "manifest_id": mid,
            }
        )

    async def _payment(self, request: web.Request) -> web.Response:
        self.payments.append(
            {
                "payment": request.headers.get("Livepeer-Payment", ""),
                "segment": request.headers.get("Livepeer-Segment", ""),
            }
        )
        if self.payment_status != 200:
            return web.Response(status=self.payment_status, text="refused")
        return web.Response(body=net.PaymentResult(info=self.info()).SerializeToString())

    # -- the "runner" -------------------------------------------------------------------------

    async def _run(self, mid: str) -> None:
        count = 0
        with contextlib.suppress(Exception):
            async for seg in self.server.subscribe(mid, 0):
                try:
                    data = await seg.read()
                except TrickleSegmentBroken:  # its publisher dropped it: skipped, as an O does
                    self.broken += 1
                    continue
                self.inputs.append(data)
                count += 1
                if self.close_after is not None and count >= self.close_after:
                    self.close_channels(mid)
                    return
                out = self.server.get_channel(mid + "-out")
                if out is not None and not self.stall_output:
                    await out.write_segment(b"OUT:" + data)
        self.close_channels(mid)

    async def _events(self, mid: str) -> None:
        n = 0
        while (channel := self.server.get_channel(mid + "-events")) is not None:
            if not self.no_events:
                n += 1
                last = self.control[-1] if self.control else None
                event = {"type": "status", "state": "ONLINE", "n": n,
                         "inference_status": {"last_params": last}}  # fmt: skip
                doc = {"event": event, "queue_event_type": "ai_stream_status"}
                with contextlib.suppress(Exception):
                    await channel.write_segment(json.dumps(doc).encode())
            await asyncio.sleep(self.event_interval)

    async def _read_control(self, mid: str) -> None:
        with contextlib.suppress(Exception):
            async for seg in self.server.subscribe(mid + "-control", 0):
                doc = json.loads(await seg.read())
                if doc != {"keep": "alive"}:
                    self.control.append(doc)


@dataclass
class Candidates:
    urls: list[str] = field(default_factory=list)

    async def candidates(self) -> list[Candidate]:
        return [Candidate(u, 1.0) for u in self.urls]


@dataclass
class Rig:
    """Orchestrators + a session's dependencies; ``outputs`` collects (seq, data)."""

    orchs: list[FakeLiveO]
    http: LiveHTTP
    outputs: list[tuple[int, bytes]] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    selector_kw: dict[str, Any] = field(default_factory=dict)
    sessions: list[LiveSession] = field(default_factory=list)

    async def fetch(self, url: str, caps: net.Capabilities, timeout: float) -> net.OrchestratorInfo:
        self.fetches.append(url)
        for o in self.orchs:
            if o.url == url and o._runner is not None:
                await asyncio.sleep(o.fetch_delay)
                return o.info()
        raise ConnectionError(f"{url}: unreachable")

    def selector(self, **kw: Any) -> LiveSelector:
        kw = {**self.selector_kw, **kw}
        return LiveSelector(
            [Candidates([o.url for o in self.orchs])], self.fetch, model="noop", **kw
        )

    def on_output(self, seq: int, data: bytes) -> None:
        self.outputs.append((seq, data))
        self.arrived.set()

    def session(self, **kw: Any) -> LiveSession:
        kw.setdefault("config", FAST)
        session = LiveSession(
            stream_id="stream1", selector=self.selector(), http=self.http,
            on_output=self.on_output, **kw,
        )  # fmt: skip
        self.sessions.append(session)
        return session

    async def wait_outputs(self, n: int, timeout: float = 10.0) -> None:
        async def until() -> None:
            while len(self.outputs) < n:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(until(), timeout)


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> None:
    async def loop() -> None:
        while not cond():
            await asyncio.sleep(step)

    await asyncio.wait_for(loop(), timeout)


@contextlib.asynccontextmanager
async def rig(n: int = 2, *, price: int = 0) -> Any:
    orchs = [await FakeLiveO(f"o{i}", price=price).start() for i in range(n)]
    http = LiveHTTP(PinStore())
    made = Rig(orchs, http)
    try:
        yield made
    finally:
        for session in made.sessions:
            await session.close()
        await http.close()
        for o in orchs:
            await o.kill()


def test_fake_info_has_the_transcoder() -> None:
    assert FakeLiveO("x").info().auth_token.session_id == "x"
