"""``POST /generate-live-payment`` (live-AI spec §10.3; go-livepeer ``GenerateLivePayment``).

The steps, in go-livepeer's order (each failure is a ``RequestFailed`` with its status):

1. decode the request; O's info needs a non-zero ``price_info`` and ``ticket_params`` (400);
2. the state: signature by our own key, JSON, same orchestrator address, app and type (400);
   a first call starts a new state at O's current price;
3. ``ManifestID`` required with a state (400), else a random one;
4. refresh check: auth token in its last 10 %, or ticket params expired -> 480 with
   ``Livepeer-Orchestrator-URL``; other unusable params -> 400;
5. units (``request.billable``), ceilings: configured, request ``maxPrice``, the state's initial
   price -> 481;
6. fee = units x the state's initial price; tickets per payments §8.3 against the state's
   balance: none needed -> 482, more than 100 -> 400; price more than doubled -> 481;
   more than 600 nonces in one PM session -> 480 (O would refuse them);
7. the state update (balance = existing + new credit - fee, nonce, PM session, LastUpdate);
8. the auth webhook (``authhook``), its ``maxPrice`` (502 malformed, 481 above) and auth ID;
9. sign the tickets, the empty-segment SegData (``manifestId`` = ManifestID) and the state, off
   the event loop, and answer ``{"payment", "segCreds", "state": {"State", "Sig"}}``.

Nonces restart at 1 when O's ``recipient_rand_hash`` differs from the state's PM session.
"""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import Executor
from fractions import Fraction
from typing import Any

from mediagw.eth.crypto import SignatureError, keccak256, recover_address
from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import flatten, segment_header
from mediagw.payments.errors import PaymentError, TicketParamsExpired
from mediagw.payments.fees import ticket_count
from mediagw.payments.live import (
    EMPTY_SEGMENT_HASH,
    auth_token_needs_refresh,
    empty_segdata,
)
from mediagw.payments.params import (
    PRICE_INCREASE_THRESHOLD,
    ParsedTicketParams,
    parse_ticket_params,
    validate_ticket_params,
)
from mediagw.payments.sender import MAX_SENDER_NONCES, PaymentSender
from mediagw.payments.signer import LocalSigner

from .authhook import AuthWebhook
from .config import SignerConfig
from .errors import RequestFailed
from .pricing import configured_ceiling, price_over_ceiling
from .request import PaymentRequest, billable, parse_max_price, parse_payment_request
from .state import RemoteState

__all__ = ["AUTH_ID_HEADER", "ORCHESTRATOR_URL_HEADER", "LivePaymentMinter"]

ORCHESTRATOR_URL_HEADER = "Livepeer-Orchestrator-URL"
AUTH_ID_HEADER = "Signer-Auth-Id"
STATUS_REFRESH, STATUS_PRICE, STATUS_NO_TICKETS = 480, 481, 482
NS = 10**9


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _to_address(raw: bytes) -> bytes:
    """go-ethereum BytesToAddress: the last 20 bytes, left-padded."""
    return raw[-20:].rjust(20, b"\x00")


def _bad(message: str) -> RequestFailed:
    return RequestFailed(400, message)


class LivePaymentMinter:
    def __init__(
        self,
        config: SignerConfig,
        signer: LocalSigner,
        executor: Executor,
        webhook: AuthWebhook | None,
    ) -> None:
        self.config = config
        self.signer = signer
        self._executor = executor
        self._webhook = webhook
        # used only to build and sign ticket batches; its nonce memory is never consulted
        self._tickets = PaymentSender(
            signer, max_ticket_ev=config.max_ticket_ev, max_total_ev=config.max_total_ev
        )

    def _refresh(self, info: net.OrchestratorInfo, why: str) -> RequestFailed:
        return RequestFailed(
            STATUS_REFRESH, f"refresh session for remote signer: {why}",
            {ORCHESTRATOR_URL_HEADER: info.transcoder},
        )  # fmt: skip

    async def _signed_by_us(self, blob: bytes, sig: bytes) -> bool:
        def check() -> bool:
            try:
                return recover_address(keccak256(blob), sig) == self.signer.address
            except SignatureError:
                return False

        return await asyncio.get_running_loop().run_in_executor(self._executor, check)

    async def _load_state(self, req: PaymentRequest, orch: bytes) -> RemoteState:
        info = req.info
        if not req.has_state:
            return RemoteState(
                state_id=self.config.rand(4).hex(),
                orchestrator_address=orch,
                initial_price_per_unit=info.price_info.pricePerUnit,
                initial_pixels_per_unit=info.price_info.pixelsPerUnit,
                app=req.app,
                type=req.type,
            )
        if not await self._signed_by_us(req.state_blob, req.state_sig):
            raise _bad("invalid sig")
        try:
            state = RemoteState.decode(req.state_blob)
        except ValueError:
            raise _bad("invalid state") from None
        if state.orchestrator_address != orch:
            raise _bad("orchestratorAddress mismatch")
        if state.app != req.app:
            raise _bad("app mismatch")
        if state.type and state.type != req.type:
            raise _bad("job type mismatch")
        state.type = req.type
        state.sequence_number = (state.sequence_number + 1) % 2**64
        return state

    async def _last_l1_block(self) -> int | None:
        chain = self.config.chain
        if chain is None:
            return None
        try:
            return await chain.last_l1_block()
        except PaymentError as exc:
            raise RequestFailed(500, f"cannot read the L1 block: {exc}") from None

    async def _check_refresh(
        self, info: net.OrchestratorInfo, params: ParsedTicketParams, now_ns: int
    ) -> int | None:
        """shouldRefreshSession; returns the L1 block used (None without a chain)."""
        prefix = "remote signer could not check whether to refresh session"
        if not info.HasField("auth_token"):
            raise _bad(f"{prefix}: missing auth token")
        if auth_token_needs_refresh(info, now_ns / NS):
            raise self._refresh(info, "auth token about to expire")
        l1 = await self._last_l1_block()
        try:
            validate_ticket_params(
                params, last_l1_block=l1, max_ticket_ev=self.config.max_ticket_ev, deposit=None
            )
        except TicketParamsExpired:
            raise self._refresh(info, "ticket params expired") from None
        except PaymentError as exc:
            raise _bad(f"{prefix}: {exc}") from None
        return l1

    async def generate(self, body: bytes, headers: dict[str, list[str]]) -> dict[str, Any]:
        req = parse_payment_request(body)
        info = req.info
        price_info = info.price_info
        if (
            not info.HasField("price_info")
            or price_info.pricePerUnit == 0
            or price_info.pixelsPerUnit == 0
        ):
            raise _bad("missing or zero priceInfo")
        if price_info.pricePerUnit < 0 or price_info.pixelsPerUnit < 0:
            raise _bad("negative priceInfo")
        if not info.HasField("ticket_params"):
            raise _bad("missing ticketParams in OrchestratorInfo")
        state = await self._load_state(req, _to_address(info.address))
        manifest_id = req.manifest_id
        if not manifest_id:
            if req.has_state:
                raise _bad("missing manifestID")
            manifest_id = self.config.rand(4).hex()
        try:
            params = parse_ticket_params(info.ticket_params)
        except PaymentError:
            raise _bad("failed to derive ticket params from OrchestratorInfo") from None
        existing = state.balance
        pm_session = "0x" + params.recipient_rand_hash.hex()
        nonce = state.sender_nonce if state.pm_session_id == pm_session else 0

        now_ns = self.config.clock_ns()
        l1 = await self._check_refresh(info, params, now_ns)
        units, last_update = billable(req.type, state.last_update_ns, now_ns, req.in_pixels)
        if units <= 0:
            raise _bad("missing billable unit or job type")
        price = Fraction(price_info.pricePerUnit, price_info.pixelsPerUnit)
        try:
            request_max = parse_max_price(req.max_price, req.type)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        initial_ceiling = None
        if req.has_state:
            if state.initial_price_per_unit <= 0 or state.initial_pixels_per_unit <= 0:
                raise _bad("invalid initial price in state")
            initial_ceiling = state.initial_price
        refusal = price_over_ceiling(
            price,
            [
                (
                    "configured maximum price",
                    configured_ceiling(self.config.caps, req.capabilities),
                ),
                ("request maxPrice", request_max),
                ("initial session price", initial_ceiling),
            ],
        )
        if refusal is not None:
            raise RequestFailed(STATUS_PRICE, refusal)

        initial = state.initial_price
        fee = units * initial
        num, new_credit = ticket_count(fee, params.ev, existing)
        if num <= 0:
            raise RequestFailed(STATUS_NO_TICKETS, "no tickets")
        if num > self.config.max_tickets:
            raise _bad(f"numTickets {num} exceeds maximum of {self.config.max_tickets}")
        if price > initial * PRICE_INCREASE_THRESHOLD:
            raise RequestFailed(
                STATUS_PRICE,
                "Orchestrator price has more than doubled, "
                f"Orchestrator price: {price}, Orchestrator initial price: {initial}",
            )
        try:
            validate_ticket_params(
                params,
                last_l1_block=l1,
                max_ticket_ev=self.config.max_ticket_ev,
                deposit=None,
                num_tickets=num,
                max_total_ev=self.config.max_total_ev,
            )
        except PaymentError as exc:
            raise RequestFailed(500, f"Could not create payment: {exc}") from None
        if nonce + num > MAX_SENDER_NONCES:
            raise self._refresh(info, f"{MAX_SENDER_NONCES} ticket nonces used")

        state.balance = existing + new_credit - fee
        state.last_update_ns = last_update
        state.pm_session_id = pm_session
        state.sender_nonce = nonce + num
        await self._authorize(state, headers, now_ns, req.type, price)
        return await self._sign(info, params, state, manifest_id, req.capabilities, nonce, num)

    async def _authorize(
        self,
        state: RemoteState,
        headers: dict[str, list[str]],
        now_ns: int,
        payment_type: str,
        price: Fraction,
    ) -> None:
        decision = None
        skip = state.auth_expiry != 0 and now_ns // NS <= state.auth_expiry
        if self._webhook is not None and not skip:
            decision = await self._webhook.ask(headers, state.to_json())
            if decision.status != 200:
                raise RequestFailed(decision.status, decision.reason)
            state.auth_expiry = decision.expiry
            if decision.max_price is not None:
                try:
                    ceiling = parse_max_price(decision.max_price, payment_type)
                except ValueError as exc:
                    raise RequestFailed(502, f"signer auth invalid maxPrice: {exc}") from None
                refusal = price_over_ceiling(price, [("auth webhook maxPrice", ceiling)])
                if refusal is not None:
                    raise RequestFailed(STATUS_PRICE, refusal)
        auth_id = (headers.get(AUTH_ID_HEADER) or [""])[0]
        if decision is not None and decision.auth_id:
            auth_id = decision.auth_id
        if auth_id and state.auth_id != auth_id:
            if state.auth_id:
                raise RequestFailed(500, "remote signer auth ID changed")
            state.auth_id = auth_id[:256]

    async def _sign(
        self,
        info: net.OrchestratorInfo,
        params: ParsedTicketParams,
        state: RemoteState,
        manifest_id: str,
        capabilities: net.Capabilities | None,
        nonce: int,
        num: int,
    ) -> dict[str, Any]:
        payment = net.Payment(sender=self.signer.address)
        payment.expected_price.CopyFrom(info.price_info)
        nonces = tuple(range(nonce + 1, nonce + num + 1))
        try:
            await self._tickets.sign_tickets(payment, info.ticket_params, params, nonces, None)
            seg = await empty_segdata(
                manifest_id=manifest_id,
                auth_token=info.auth_token,
                capabilities=capabilities,
                sign=None,
            )
            blob = state.encode()
            seg_digest = keccak256(flatten(manifest_id, 0, EMPTY_SEGMENT_HASH, []))
            seg.sig, state_sig = await self.signer.sign_many([seg_digest, keccak256(blob)])
        except (PaymentError, ValueError) as exc:
            raise RequestFailed(500, f"Could not create payment: {exc}") from None
        return {
            "payment": _b64(payment.SerializeToString()),
            "segCreds": segment_header(seg),
            "state": {"State": _b64(blob), "Sig": _b64(state_sig)},
        }
