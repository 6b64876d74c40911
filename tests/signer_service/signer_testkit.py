"""Helpers of the remote signer tests: clocks, keys, GetOrchestrator with the signer's
credentials, POST /payment to a reference orchestrator, and state decoding."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import aiohttp

from mediagw.eth.crypto import keccak256
from mediagw.livepeer.capabilities import Capability, bitstring
from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import OrchestratorRPC, orchestrator_request
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.payments.live import LivePayment
from mediagw.payments.tickets import expected_value

SIGNER_KEY = keccak256(b"mediagw remote signer test key")
GATEWAY_KEY = keccak256(b"mediagw gateway local key (signer tests)")
START = 1_750_000_000
NS = 10**9
PPS = 1280 * 720 * 30  # 27,648,000 pixels per second


class NsClock:
    """Unix nanoseconds, moved by hand."""

    def __init__(self, seconds: int = START) -> None:
        self.now = seconds * NS

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float = 0.0, *, ns: int = 0) -> None:
        self.now += round(seconds * NS) + ns


def job_caps() -> net.Capabilities:
    """AuthToken only: what the reference orchestrator (no AI capabilities) accepts."""
    caps = net.Capabilities(bitstring=bitstring([Capability.AUTH_TOKEN]))
    caps.constraints.SetInParent()
    return caps


def ticket_ev(info: net.OrchestratorInfo) -> Fraction:
    tp = info.ticket_params
    return expected_value(int.from_bytes(tp.face_value, "big"), int.from_bytes(tp.win_prob, "big"))


async def get_info(
    rpc: OrchestratorRPC, orch: ReferenceOrchestrator, address: bytes, sig: bytes
) -> net.OrchestratorInfo:
    return await rpc.get_orchestrator(orch.url, orchestrator_request(address, sig, None))


@dataclass
class PayReply:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def result(self) -> net.PaymentResult:
        assert self.status == 200, (self.status, self.text)
        return net.PaymentResult.FromString(self.body)


async def post_payment(
    http: aiohttp.ClientSession, orch: ReferenceOrchestrator, pay: LivePayment
) -> PayReply:
    """POST {transcoder}/payment with no body, as a live gateway does (§9.1)."""
    headers = {"Livepeer-Payment": pay.payment_header, "Livepeer-Segment": pay.segment_header}
    async with http.post(orch.url + "/payment", headers=headers, ssl=False) as resp:
        return PayReply(resp.status, await resp.read())


def decode_payment(pay: LivePayment) -> net.Payment:
    return net.Payment.FromString(base64.b64decode(pay.payment_header))


def decode_segdata(pay: LivePayment) -> net.SegData:
    return net.SegData.FromString(base64.b64decode(pay.segment_header))


def state_doc(pay: LivePayment) -> dict[str, Any]:
    assert pay.state is not None
    doc = json.loads(base64.b64decode(pay.state["State"]))
    assert isinstance(doc, dict)
    return doc


def balance(pay: LivePayment) -> Fraction:
    return Fraction(state_doc(pay)["Balance"])
