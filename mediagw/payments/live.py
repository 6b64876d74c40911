"""Live payments (live-AI spec §3.3, §9.1, §10): one seam, two makers.

``LivePaymentSource`` is what a live pipeline needs: given the orchestrator's latest
``OrchestratorInfo`` and the opaque state from the previous call, produce the
``Livepeer-Payment`` and ``Livepeer-Segment`` header values for the next ``/live-video-to-video``
start or ``/payment`` call. Two implementations:

- ``mediagw.payments.remote.RemoteSigner``: a remote signer service holds the key (§10.3);
- ``LocalLivePayments``: the gateway's own key through a ``PaymentSender`` (§3.3, §9.1):
  the first call (no state) prepays 60 s of 720p30 at O's price with a cleared balance, and the
  credit is then considered spent (O holds it, payments §8.4); each later call bills
  27,648,000 pixels per second since the last call, the clock advancing only by the whole pixels
  billed (remainders carry over), at the session's initial price, with
  balance = existing + new credit - fee.

Both raise ``NeedsRefresh`` (fetch a fresh OrchestratorInfo and retry), ``PriceRejected`` (swap
the orchestrator) and ``NoPaymentNeeded`` (the balance covers this cycle: send nothing).

``empty_segdata`` builds the SegData both sides sign for an empty segment (§3.1): ``manifestId``,
seq 0, hash keccak256(""), no profiles, duration 0, the job capabilities and O's auth token.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from mediagw.eth.crypto import keccak256
from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import flatten, segment_header

from .chain import ChainReader
from .errors import NeedsRefresh, PaymentError
from .fees import LIVE_PIXELS_PER_SECOND, LIVE_PREPAY_PIXELS, live_fee, live_units
from .params import check_price_info, price_of
from .sender import PaymentSender
from .tickets import expected_value

__all__ = [
    "AUTH_TOKEN_REFRESH_MARGIN",
    "EMPTY_SEGMENT_HASH",
    "LivePayment",
    "LivePaymentSource",
    "LiveState",
    "LocalLivePayments",
    "NoPaymentNeeded",
    "auth_token_needs_refresh",
    "empty_segdata",
    "payment_value",
]

EMPTY_SEGMENT_HASH = keccak256(b"")
AUTH_TOKEN_VALIDITY = 30 * 60  # seconds (transcode spec §4.4)
AUTH_TOKEN_REFRESH_MARGIN = AUTH_TOKEN_VALIDITY // 10  # refresh in the last 10 % (§4.5)
MAX_MANIFEST_ID_BYTES = 256

LiveState = dict[str, Any]
Sign = Callable[[bytes], Awaitable[bytes]]


class NoPaymentNeeded(PaymentError):
    """The credit already covers this cycle's fee: send nothing to the orchestrator now."""


@dataclass(frozen=True, slots=True)
class LivePayment:
    payment_header: str  # Livepeer-Payment
    segment_header: str  # Livepeer-Segment
    state: LiveState | None  # pass back unchanged on the next call

    def value(self) -> tuple[int, Fraction]:
        """(tickets, their expected value in wei) of ``payment_header``."""
        return payment_value(self.payment_header)


def payment_value(header: str) -> tuple[int, Fraction]:
    """(tickets, expected value in wei) of a ``Livepeer-Payment`` header, however it was made
    (our key or a remote signer); (0, 0) for an empty (off-chain) or unreadable one."""
    if not header:
        return 0, Fraction(0)
    payment = net.Payment()
    try:
        payment.ParseFromString(base64.b64decode(header, validate=True))
    except (ValueError, DecodeError):
        return 0, Fraction(0)
    tickets = len(payment.ticket_sender_params)
    params = payment.ticket_params
    face = int.from_bytes(params.face_value, "big")
    win = int.from_bytes(params.win_prob, "big")
    return tickets, tickets * expected_value(face, win)


class LivePaymentSource(Protocol):
    async def generate_live_payment(
        self,
        info: net.OrchestratorInfo,
        *,
        state: LiveState | None,
        manifest_id: str,
        type: str = "lv2v",
        capabilities: net.Capabilities | None = None,
        max_price: Fraction | int | None = None,
    ) -> LivePayment: ...


def auth_token_needs_refresh(info: net.OrchestratorInfo, now: float) -> bool:
    """go-livepeer shouldRefreshSession: now > expiration - 10 % of 30 min."""
    return now > info.auth_token.expiration - AUTH_TOKEN_REFRESH_MARGIN


async def empty_segdata(
    *,
    manifest_id: str,
    auth_token: net.AuthToken | None,
    capabilities: net.Capabilities | None,
    sign: Sign | None,
) -> net.SegData:
    """SegData for an empty segment; ``sign`` None (off-chain) leaves ``sig`` empty."""
    mid = manifest_id.encode()
    if len(mid) > MAX_MANIFEST_ID_BYTES:
        raise ValueError(f"manifest ID longer than {MAX_MANIFEST_ID_BYTES} bytes")
    seg = net.SegData(manifestId=mid, seq=0, hash=EMPTY_SEGMENT_HASH, profiles=b"invalid")
    if capabilities is not None:
        seg.capabilities.CopyFrom(capabilities)
    if auth_token is not None:
        seg.auth_token.CopyFrom(auth_token)
    if sign is not None:
        seg.sig = await sign(keccak256(flatten(manifest_id, 0, EMPTY_SEGMENT_HASH, [])))
    return seg


# --- the gateway's own key -------------------------------------------------------------------


def _rat(value: Any, what: str) -> Fraction:
    if not isinstance(value, str) or len(value) > 400:
        raise ValueError(f"local live state: {what} is not a rational string")
    try:
        return Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"local live state: {what} is not a rational string") from None


@dataclass(frozen=True, slots=True)
class _LocalState:
    last: Fraction  # seconds on the clock up to which usage is paid
    price: Fraction  # wei per pixel, fixed at the first call
    balance: Fraction  # our credit at O after the last payment

    def to_json(self) -> LiveState:
        return {
            "kind": "local",
            "last": str(self.last),
            "price": str(self.price),
            "balance": str(self.balance),
        }

    @classmethod
    def parse(cls, state: LiveState) -> _LocalState:
        if state.get("kind") != "local":
            raise ValueError("not a LocalLivePayments state (a remote signer's state?)")
        return cls(
            _rat(state.get("last"), "last"),
            _rat(state.get("price"), "price"),
            _rat(state.get("balance"), "balance"),
        )


class LocalLivePayments:
    """Live payments signed with the gateway's own key (``sender.signer``).

    ``clock``: unix seconds (auth-token expiry and billing). ``chain``: optional, for the ticket
    params expiry check (payments §7). ``max_price``: the cap in wei per pixel.
    """

    def __init__(
        self,
        sender: PaymentSender,
        *,
        clock: Callable[[], float] = time.time,
        chain: ChainReader | None = None,
        max_price: Fraction | int | None = None,
    ) -> None:
        self.sender = sender
        self._clock = clock
        self._chain = chain
        self.max_price = None if max_price is None else Fraction(max_price)

    async def generate_live_payment(
        self,
        info: net.OrchestratorInfo,
        *,
        state: LiveState | None,
        manifest_id: str,
        type: str = "lv2v",
        capabilities: net.Capabilities | None = None,
        max_price: Fraction | int | None = None,
    ) -> LivePayment:
        if type != "lv2v":
            raise ValueError(f"LocalLivePayments bills lv2v only, not {type!r}")
        now = Fraction(self._clock())
        previous = _LocalState.parse(state) if state is not None else None
        has_price = info.HasField("price_info")
        price = price_of(info.price_info) if has_price else None
        if previous is not None and not price:
            raise NoPaymentNeeded("orchestrator price is 0 or absent: no live payments")
        if info.HasField("auth_token") and auth_token_needs_refresh(info, float(now)):
            raise NeedsRefresh(
                f"auth token of session {info.auth_token.session_id} is about to expire"
            )
        caps = [c for c in (self.max_price, max_price) if c is not None]
        if has_price:
            check_price_info(
                info.price_info,
                initial=previous.price if previous else None,
                cap=min(Fraction(c) for c in caps) if caps else None,
            )
        if previous is None:
            units, last = LIVE_PREPAY_PIXELS, now
            initial, existing = price or Fraction(0), Fraction(0)
        else:
            units = live_units(now - previous.last)
            last = previous.last + Fraction(units, LIVE_PIXELS_PER_SECOND)
            initial, existing = previous.price, previous.balance
        fee = live_fee(units, initial)
        bundle = await self.sender.build_payment(
            info,
            fee,
            (info.ticket_params.recipient, manifest_id),
            existing,
            stream=manifest_id,
            last_l1_block=await self._chain.last_l1_block() if self._chain else None,
        )
        if previous is not None and bundle.num_tickets == 0:
            raise NoPaymentNeeded(f"credit {float(existing):.0f} wei covers the fee")
        # the start request's credit is considered spent (O holds it under its new request ID)
        balance = Fraction(0) if previous is None else existing + bundle.new_credit - fee
        signer = self.sender.signer
        seg = await empty_segdata(
            manifest_id=manifest_id,
            auth_token=info.auth_token if info.HasField("auth_token") else None,
            capabilities=capabilities,
            sign=None if signer.offchain else signer.sign,
        )
        new_state = _LocalState(last, initial, balance)
        return LivePayment(bundle.header, segment_header(seg), new_state.to_json())
