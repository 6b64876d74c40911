"""The faults of ``mediagw bench faults``: how each is set up, injected, healed and recognised.

A case says how many reference orchestrators it runs (2 = another orchestrator exists), what the
orchestrators and the gateway need (``orchestrator``, ``prepare``), how the fault is injected
on the running stream (``inject``; the "victim" is the orchestrator serving the stream), and
which words in the gateway's status and logs name its cause (``status_needles``,
``log_needles``). ``how`` says in a few words how the fault is made, for the table.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..gateway import Gateway
    from ..orchestrator import ReferenceOrchestrator

__all__ = ["CASES", "LADDER", "FaultCase", "Rig", "Skipped"]

LADDER = "P144p30fps16x9"  # the -transcodingOptions of every gateway here: one rendition
STORED_PROFILE = {"name": "144p", "width": 256, "height": 144, "bitrate": 200_000, "fps": 30}

BLOCK_TIME = 12.0  # the reference orchestrator's dev chain: seconds per L1 block
PARAMS_LIFETIME_BLOCKS = 40  # ticket params expire this many blocks after they are issued
DB_DOWN = 5.0  # seconds the database is away


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Rig:
    """What one fault runs on: the gateway, its orchestrators, the stream."""

    work: Path
    postgres: str = ""
    orchs: list[ReferenceOrchestrator] = field(default_factory=list)
    gw: Gateway | None = None
    stream: str = ""
    stream_key: str = ""  # publish with this key instead of the stream name
    rendition: str = LADDER  # the transcoded rendition watched
    output_suffix: str = ""  # the output is another stream: the stream's id + this (live AI)
    publish_query: str = ""  # appended to the RTMP publish URL
    skew: float = 0.0  # added to the orchestrators' clock
    state: dict[str, Any] = field(default_factory=dict)

    def clock(self) -> float:
        return time.time() + self.skew

    def victim(self) -> ReferenceOrchestrator:
        """The orchestrator that has transcoded the most of the stream."""
        return max(self.orchs, key=lambda o: o.stats.segments_transcoded)

    async def stop(self, orch: ReferenceOrchestrator) -> None:
        """Stop ``orch`` (once)."""
        if id(orch) not in self.state.setdefault("stopped", set()):
            self.state["stopped"].add(id(orch))
            await orch.stop()

    async def stop_all(self) -> None:
        for orch in self.orchs:
            await self.stop(orch)

    def scoreboard(self) -> list[str]:
        """Each orchestrator's scoreboard row that records a failure, as JSON."""
        assert self.gw is not None and self.gw.stack is not None
        rows = self.gw.stack.transcoder.scoreboard_rows()
        return [json.dumps(r) for r in rows if r.get("last_error") or r.get("suspended_in")]

    async def api_streams(self) -> list[str]:
        """The API's stream status (``GET /streams``), as text."""
        import aiohttp

        assert self.gw is not None
        url = f"http://127.0.0.1:{self.gw.http_port}/streams"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            return [await resp.text()]


class Skipped(Exception):
    """The fault cannot run here (what it needs is missing): the text says what."""


class FaultCase:
    name = ""
    orchestrators = 2
    how = ""
    status_needles: tuple[str, ...] = ()
    log_needles: tuple[str, ...] = ()

    def orchestrator(self, rig: Rig) -> dict[str, Any]:
        """Extra ``OrchestratorConfig`` fields."""
        return {}

    async def prepare(self, rig: Rig, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        """Set up what the gateway needs; extra ``Settings`` fields."""
        return {}

    async def ready(self, rig: Rig) -> None:
        """After the gateway started, before the push."""
        return None

    async def inject(self, rig: Rig) -> None:
        raise NotImplementedError

    async def heal(self, rig: Rig) -> None:
        return None

    def counted(self, rig: Rig) -> tuple[int, int] | None:
        """(segments lost, segments in) when the case counts them itself; None: the bench
        compares the source's seqs with the rendition's."""
        return None

    async def status(self, rig: Rig) -> list[str]:
        """The status texts that may name the cause."""
        return [*rig.scoreboard(), *await rig.api_streams()]


class Killed(FaultCase):
    name, how = "orchestrator-killed", "stop(): connections reset, port closed"
    status_needles = log_needles = ("refused", "connect", "reset", "lost", "closed")

    async def inject(self, rig: Rig) -> None:
        await rig.stop(rig.victim())


class _Switch(FaultCase):
    """One of the reference orchestrator's fault switches, turned on on the victim."""

    switch: tuple[str, Any] = ("", None)

    async def inject(self, rig: Rig) -> None:
        setattr(rig.victim().faults, *self.switch)


class Stalled(_Switch):
    name, how = "orchestrator-stalled", "faults.stall: accepts, never answers"
    switch = ("stall", True)
    status_needles = log_needles = ("no response", "timed out", "timeout")


class Http500(_Switch):
    name, how, switch = "orchestrator-5xx", "faults.http_500", ("http_500", True)
    status_needles = log_needles = ("500",)


class Garbage(_Switch):
    name, how, switch = "orchestrator-garbage", "faults.garbage: not a protobuf", ("garbage", True)
    status_needles = log_needles = ("not a TranscodeResult", "protobuf", "wire format")


class _Priced(FaultCase):
    """Priced orchestrators (1 wei/pixel) and a gateway paying with its own key, capped."""

    def orchestrator(self, rig: Rig) -> dict[str, Any]:
        return {"priced": True, "price_per_unit": 1, "pixels_per_unit": 1, "clock": rig.clock}

    async def prepare(self, rig: Rig, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        from ..eth.account import account_api

        account = account_api()
        doc = account.encrypt(account.create().key, "pw", kdf="scrypt", iterations=2)
        path = rig.work / "key.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
        return {"eth_keystore_path": str(path), "eth_password": "pw", "max_price_per_unit": "10"}


class PriceHike(_Switch, _Priced):
    name, how = "price-above-cap", "faults.price_factor 100 (cap 10, price 1)"
    switch = ("price_factor", 100.0)
    status_needles = log_needles = ("price",)


class TicketParamsExpired(_Priced):
    name, how = "ticket-params-expired", f"Os' clock +{PARAMS_LIFETIME_BLOCKS + 1} blocks"
    status_needles = log_needles = ("expired",)

    async def inject(self, rig: Rig) -> None:
        rig.skew += BLOCK_TIME * (PARAMS_LIFETIME_BLOCKS + 1)


class CertificateChange(FaultCase):
    name, how = "certificate-change", "O restarted on its port: new self-signed cert"
    status_needles = log_needles = ("certificate", "tls", "ssl")

    def orchestrator(self, rig: Rig) -> dict[str, Any]:
        return {"port": _free_port()}

    async def inject(self, rig: Rig) -> None:
        from ..orchestrator import ReferenceOrchestrator

        old = rig.victim()
        await rig.stop(old)
        new = ReferenceOrchestrator(replace(old.config))
        await new.start()
        rig.orchs[rig.orchs.index(old)] = new


class DiskFull(FaultCase):
    name, how = "disk-full-recording", "ENOSPC at the recorder's write seam"
    status_needles = log_needles = ("no space", "ENOSPC", "recording write failed")

    async def prepare(self, rig: Rig, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        return {"record_dir": str(rig.work / "recordings")}

    async def inject(self, rig: Rig) -> None:
        from ..publish import recorder

        def full(directory: Path, seq: int, data: bytes, playlist: str) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(directory))

        rig.state["write"] = recorder._write_segment
        recorder._write_segment = full

    async def heal(self, rig: Rig) -> None:
        from ..publish import recorder

        if "write" in rig.state:
            recorder._write_segment = rig.state.pop("write")


class _Receiver:
    """A local HTTP endpoint answering 204 to every POST, which can go down."""

    def __init__(self) -> None:
        self.url = ""
        self.received = 0
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            await request.read()
            self.received += 1
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/{tail:.*}", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


class _Stored(FaultCase):
    """A stored stream (a customer's key, one 144p profile) on the gateway's store, with a
    Studio webhook for its lifecycle events on a local receiver."""

    async def prepare(self, rig: Rig, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        receiver = _Receiver()
        await receiver.start()
        stack.push_async_callback(receiver.stop)
        rig.state["receiver"] = receiver
        return {"webhook_allow_private": True}

    async def ready(self, rig: Rig) -> None:
        from ..platform import keys
        from ..platform.tenancy import Tenant

        gw = rig.gw
        assert gw is not None and gw.streams is not None and gw.webhooks is not None
        assert gw.store is not None
        hook = f"{rig.state['receiver'].url}/hook"
        await gw.webhooks.create("ops", hook, ["stream.started", "stream.idle"])
        owner, _ = await keys.create_key(gw.store, "customer", ["streams"])
        body = {"name": "faults", "profiles": [STORED_PROFILE]}
        stream = await gw.streams.create(body, tenant=Tenant(owner.id, admin=False))
        rig.stream, rig.stream_key = stream.playback_id, stream.stream_key
        rig.rendition = str(STORED_PROFILE["name"])

    async def status(self, rig: Rig) -> list[str]:
        from ..platform.webhooks import webhook_json

        assert rig.gw is not None and rig.gw.webhooks is not None
        hooks = [json.dumps(webhook_json(h)) for h in await rig.gw.webhooks.list()]
        return [*await super().status(rig), *hooks]


class WebhookDown(_Stored):
    name, how = "webhook-down", "Studio webhook receiver stopped"
    status_needles = log_needles = ("webhook", "refused", "connect")

    async def inject(self, rig: Rig) -> None:
        await rig.state["receiver"].stop()


class DatabaseRestart(_Stored):
    name, how = "database-restart", f"PostgreSQL behind a TCP proxy cut for {DB_DOWN:g} s"
    status_needles = log_needles = ("database", "store", "postgres", "connection")

    async def prepare(self, rig: Rig, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        from sqlalchemy.engine import make_url

        from .stored import database
        from .tcp_proxy import TcpProxy

        if not rig.postgres:
            raise Skipped("needs --postgres postgresql://USER@HOST/DB")
        url = make_url(await stack.enter_async_context(database(rig.postgres)))
        proxy = await stack.enter_async_context(TcpProxy(url.host or "127.0.0.1", url.port or 5432))
        rig.state["proxy"] = proxy
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        return {**await super().prepare(rig, stack), "store_url": proxied}

    async def inject(self, rig: Rig) -> None:
        import asyncio

        proxy = rig.state["proxy"]
        await proxy.cut()

        async def back() -> None:
            await asyncio.sleep(DB_DOWN)
            await proxy.restore()

        rig.state["restore"] = asyncio.create_task(back())

    async def heal(self, rig: Rig) -> None:
        task = rig.state.pop("restore", None)
        if task is not None:
            await task


class SignerDown(FaultCase):
    """Live AI (``noop``) paid through a remote signer (go-livepeer's remote signer pays for
    live AI only): two priced orchestrators, one signer."""

    name, how = "signer-down", "live AI noop; the remote signer (mediagw signer) stopped"
    status_needles = log_needles = ("signer unavailable",)

    def orchestrator(self, rig: Rig) -> dict[str, Any]:
        from ..orchestrator import DEFAULT_LIVE_MODELS

        return {"priced": True, "price_per_unit": 1, "pixels_per_unit": 1,
                "ticket_ev": 27_648_000, "live_models": DEFAULT_LIVE_MODELS,
                "live_status_interval": 1.0}  # fmt: skip

    async def prepare(self, rig: Rig, stack: contextlib.AsyncExitStack) -> dict[str, Any]:
        import os

        from ..signer_service.app import SignerServer
        from ..signer_service.config import SignerConfig

        signer = SignerServer(SignerConfig(private_key=os.urandom(32), port=0))
        await signer.start()
        rig.state["signer_up"] = True

        async def stop() -> None:
            if rig.state.pop("signer_up", False):
                await signer.stop()

        rig.state["signer_stop"] = stop
        stack.push_async_callback(stop)
        rig.output_suffix, rig.rendition, rig.publish_query = "-out", "source", "?pipeline=noop"
        return {"remote_signer_url": signer.url, "transcoding_options": ""}

    async def inject(self, rig: Rig) -> None:
        await rig.state["signer_stop"]()

    def counted(self, rig: Rig) -> tuple[int, int] | None:
        manager = rig.gw.live_ai if rig.gw is not None else None
        assert manager is not None
        doc = manager.finished.get(rig.stream) or manager.status(rig.stream) or {}
        seg = doc.get("gateway_status", {}).get("segments", {})
        # input segments that never reached an orchestrator's input channel
        return sum(seg.get(k, 0) for k in ("dropped", "failed", "skipped")), seg.get("in", 0)

    async def status(self, rig: Rig) -> list[str]:
        manager = rig.gw.live_ai if rig.gw is not None else None
        assert manager is not None
        doc = manager.finished.get(rig.stream) or manager.status(rig.stream) or {}
        return [json.dumps(doc, default=str), *await rig.api_streams()]


CASES: dict[str, FaultCase] = {
    c.name: c
    for c in (
        Killed(), Stalled(), Http500(), Garbage(), PriceHike(), TicketParamsExpired(),
        CertificateChange(), SignerDown(), WebhookDown(), DatabaseRestart(), DiskFull(),
    )
}  # fmt: skip
