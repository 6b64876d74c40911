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

__all__ = ["CASES", "FaultCase", "Rig"]

BLOCK_TIME = 12.0  # the reference orchestrator's dev chain: seconds per L1 block
PARAMS_LIFETIME_BLOCKS = 40  # ticket params expire this many blocks after they are issued


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

    async def inject(self, rig: Rig) -> None:
        raise NotImplementedError

    async def heal(self, rig: Rig) -> None:
        return None

    async def status(self, rig: Rig) -> list[str]:
        """The status texts that may name the cause."""
        return [*rig.scoreboard(), *await rig.api_streams()]


class Killed(FaultCase):
    name, how = "orchestrator-killed", "stop(): connections reset, port closed"
    status_needles = log_needles = ("refused", "connect", "reset", "lost", "closed")

    async def inject(self, rig: Rig) -> None:
        await rig.stop(rig.victim())


class Stalled(FaultCase):
    name, how = "orchestrator-stalled", "faults.stall: accepts, never answers"
    status_needles = log_needles = ("no response", "timed out", "timeout")

    async def inject(self, rig: Rig) -> None:
        rig.victim().faults.stall = True


class Http500(FaultCase):
    name, how = "orchestrator-5xx", "faults.http_500"
    status_needles = log_needles = ("500",)

    async def inject(self, rig: Rig) -> None:
        rig.victim().faults.http_500 = True


class Garbage(FaultCase):
    name, how = "orchestrator-garbage", "faults.garbage: not a protobuf"
    status_needles = log_needles = ("not a TranscodeResult", "protobuf", "wire format")

    async def inject(self, rig: Rig) -> None:
        rig.victim().faults.garbage = True


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


class PriceHike(_Priced):
    name, how = "price-above-cap", "faults.price_factor 100 (cap 10, price 1)"
    status_needles = log_needles = ("price",)

    async def inject(self, rig: Rig) -> None:
        rig.victim().faults.price_factor = 100.0


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


CASES: dict[str, FaultCase] = {
    c.name: c
    for c in (
        Killed(), Stalled(), Http500(), Garbage(), PriceHike(), TicketParamsExpired(),
        CertificateChange(), DiskFull(),
    )
}  # fmt: skip
