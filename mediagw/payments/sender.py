"""Builds ``Livepeer-Payment`` headers: tickets, nonces, balances, usage (payments spec §5-§9).

Echo rules (§5, MUST): every field O binds into recipientRand comes from ONE OrchestratorInfo,
the one passed to ``build_payment``: TicketParams fields 1-6 copied byte for byte (field 7 left
unset, as go-livepeer does), Payment.expiration_params from that TicketParams' expiration params
(present whenever tickets are), ``expected_price`` = that info's ``price_info`` verbatim, and
``sender`` = our address. Nothing is cached across infos except the nonce counter, which is keyed
by recipient_rand_hash (§6): first nonce 1, consecutive, never reused (a failed request still
burns its nonces), at most 600 per recipientRandHash (``NeedsRefresh`` before that).

Off-chain (signer without key, §11) the header is the empty string; so it is for an off-chain O
(neither ticket params nor a price). An on-chain gateway always sends ``sender`` and
``expected_price``, even with zero tickets (an on-chain O otherwise checks the SegData signature
against the zero address, §11 "Mixed").
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from mediagw.eth.signer import BatchSigner, Signer
from mediagw.livepeer.proto import net

from .balances import BalanceKey, Balances
from .errors import NeedsRefresh, SigningError
from .fees import ticket_count
from .params import (
    DEFAULT_MAX_TICKET_EV,
    DEFAULT_MAX_TOTAL_EV,
    ParsedTicketParams,
    check_price_info,
    parse_ticket_params,
    validate_ticket_params,
)
from .tickets import Ticket

__all__ = [
    "MAX_SENDER_NONCES",
    "BalanceKey",
    "PaymentBundle",
    "PaymentSender",
    "Usage",
    "balance_key",
]

MAX_SENDER_NONCES = 600  # pm/recipient.go maxSenderNonces: O's limit per recipientRand
ZERO = Fraction(0)


def balance_key(info: net.OrchestratorInfo) -> BalanceKey:
    """(ticket recipient, auth_token.session_id): where G keeps its credit at this O (§8.4)."""
    return (info.ticket_params.recipient, info.auth_token.session_id)


@dataclass(frozen=True, slots=True)
class PaymentBundle:
    header: str  # Livepeer-Payment value; "" off-chain
    num_tickets: int
    new_credit: Fraction  # num_tickets x ticket EV
    total_ev: Fraction  # EV actually sent (== new_credit)
    existing: Fraction  # credit reserved from the balance; hand back via restore/settle
    balance_key: BalanceKey | None  # the key passed in, else the one reserved (None: untouched)
    nonces: tuple[int, ...] = ()
    payment: net.Payment | None = None  # the message behind ``header``


@dataclass(slots=True)
class Usage:
    payments: int = 0
    tickets: int = 0
    ev: Fraction = ZERO  # wei, exact


@dataclass(slots=True)
class _PMSession:
    nonce: int = 0  # last nonce used; the next ticket gets nonce + 1
    expiration_block: int = 0
    last_used: float = field(default=0.0)


class PaymentSender:
    def __init__(
        self,
        signer: Signer,
        *,
        max_ticket_ev: Fraction | int = DEFAULT_MAX_TICKET_EV,
        max_total_ev: Fraction | int = DEFAULT_MAX_TOTAL_EV,
        deposit_multiplier: int = 1,
        clock: Callable[[], float] = time.time,
        max_sessions: int = 10_000,
        max_streams: int = 100_000,
    ) -> None:
        if deposit_multiplier < 1:
            raise ValueError("deposit_multiplier must be >= 1")
        self.signer = signer
        self.max_ticket_ev = max_ticket_ev
        self.max_total_ev = max_total_ev
        self.deposit_multiplier = deposit_multiplier
        self._clock = clock
        self._sessions: OrderedDict[bytes, _PMSession] = OrderedDict()
        self._max_sessions = max_sessions
        self._usage: OrderedDict[str, Usage] = OrderedDict()
        self._max_streams = max_streams
        self.balances = Balances(clock)

    # --- PM sessions and nonces (§6) -----------------------------------------------------

    def nonce(self, recipient_rand_hash: bytes) -> int:
        """Last nonce used under this recipientRandHash (0: none yet)."""
        session = self._sessions.get(recipient_rand_hash)
        return session.nonce if session else 0

    def _take_nonces(self, params: ParsedTicketParams, count: int) -> tuple[int, ...]:
        rrh = params.recipient_rand_hash
        session = self._sessions.get(rrh)
        if session is None:
            session = _PMSession(expiration_block=params.expiration_block)
            self._sessions[rrh] = session
        if session.nonce + count > MAX_SENDER_NONCES:
            raise NeedsRefresh(
                f"{count} more tickets would exceed {MAX_SENDER_NONCES} nonces for"
                f" recipientRandHash 0x{rrh.hex()}: refresh the orchestrator info"
            )
        first = session.nonce + 1
        session.nonce += count
        session.last_used = self._clock()
        self._sessions.move_to_end(rrh)
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)
        return tuple(range(first, first + count))

    def forget_expired(self, last_l1_block: int) -> int:
        """Drop PM sessions whose params O no longer accepts (expiration_block <= L1 block)."""
        dead = [k for k, s in self._sessions.items() if s.expiration_block <= last_l1_block]
        for key in dead:
            del self._sessions[key]
        return len(dead)

    # --- balances (§8.4), see balances.py --------------------------------------------------

    def reserve(self, key: BalanceKey) -> Fraction:
        return self.balances.reserve(key)

    def restore(self, key: BalanceKey, amount: Fraction, *, new_credit: Fraction = ZERO) -> None:
        self.balances.restore(key, amount, new_credit=new_credit)

    def spend(self, key: BalanceKey, *, new_credit: Fraction = ZERO) -> None:
        self.balances.spend(key, new_credit=new_credit)

    def settle(
        self, key: BalanceKey, existing: Fraction, new_credit: Fraction, debit: Fraction
    ) -> None:
        self.balances.settle(key, existing, new_credit, debit)

    def reset(self, key: BalanceKey) -> None:
        self.balances.reset(key)

    def balance(self, key: BalanceKey) -> Fraction:
        return self.balances.balance(key)

    # --- usage ---------------------------------------------------------------------------

    def usage(self, stream: str) -> Usage:
        u = self._usage.get(stream)
        return Usage(u.payments, u.tickets, u.ev) if u else Usage()

    def take_usage(self, stream: str) -> Usage:
        """Usage of ``stream`` since the last take (for the usage ledger); resets it."""
        return self._usage.pop(stream, None) or Usage()

    def _record(self, stream: str | None, tickets: int, ev: Fraction) -> None:
        if stream is None:
            return
        u = self._usage.get(stream)
        if u is None:
            u = self._usage[stream] = Usage()
            while len(self._usage) > self._max_streams:
                self._usage.popitem(last=False)
        u.payments += 1
        u.tickets += tickets
        u.ev += ev

    # --- building the payment (§9) -------------------------------------------------------

    async def build_payment(
        self,
        info: net.OrchestratorInfo,
        fee: Fraction,
        key: BalanceKey | None = None,
        existing: Fraction | None = None,
        *,
        stream: str | None = None,
        last_l1_block: int | None = None,
        deposit: int | None = None,
        initial_price: Fraction | None = None,
        price_cap: Fraction | None = None,
        fallback_expiration: tuple[int, bytes] | None = None,
    ) -> PaymentBundle:
        """Reserve the balance at ``key`` (default ``balance_key(info)``), add tickets until it
        covers max(fee, ticket EV), sign them and encode the Payment.

        ``existing``: the caller already called ``reserve(key)`` and passes what it returned;
        then the caller also owns restoring it when this raises. Otherwise this method reserves,
        and restores the reserved credit itself before raising.

        ``last_l1_block``/``deposit`` enable the §8.1 expiry and faceValue-vs-deposit checks;
        ``initial_price``/``price_cap`` the §8.5 guards; ``fallback_expiration`` = our
        (lastInitializedRound, its block hash), used only when O's expiration params are missing
        or zero (§7).
        """
        has_params = info.HasField("ticket_params")
        has_price = info.HasField("price_info")
        if self.signer.offchain or not (has_params or has_price):
            return PaymentBundle("", 0, ZERO, ZERO, existing or ZERO, key)
        check_price_info(
            info.price_info if has_price else None, initial=initial_price, cap=price_cap
        )
        payment = net.Payment(sender=self.signer.address)
        payment.expected_price.CopyFrom(info.price_info)
        if not has_params:
            self._record(stream, 0, ZERO)
            return PaymentBundle(
                _encode(payment), 0, ZERO, ZERO, existing or ZERO, key, payment=payment
            )

        params = parse_ticket_params(info.ticket_params)
        key = balance_key(info) if key is None else key
        owned = existing is None
        if existing is None:
            existing = self.balances.reserve(key)
        try:
            ev = params.ev
            num, new_credit = ticket_count(fee, ev, existing)
            nonces: tuple[int, ...] = ()
            if num > 0:
                validate_ticket_params(
                    params,
                    last_l1_block=last_l1_block,
                    max_ticket_ev=self.max_ticket_ev,
                    deposit=deposit,
                    deposit_multiplier=self.deposit_multiplier,
                    num_tickets=num,
                    max_total_ev=self.max_total_ev,
                )
                nonces = self._take_nonces(params, num)
                await self.sign_tickets(
                    payment, info.ticket_params, params, nonces, fallback_expiration
                )
        except BaseException:
            if owned:  # roll back our own reservation (not a "no response" restore)
                self.balances.credit(key, existing)
            raise
        self._record(stream, num, new_credit)
        return PaymentBundle(
            _encode(payment), num, new_credit, new_credit, existing, key, nonces, payment
        )

    async def sign_tickets(
        self,
        payment: net.Payment,
        raw: net.TicketParams,
        params: ParsedTicketParams,
        nonces: tuple[int, ...],
        fallback: tuple[int, bytes] | None,
    ) -> None:
        creation_round, block_hash = params.creation_round, params.creation_round_block_hash
        if fallback is not None and (creation_round == 0 or not any(block_hash)):
            if fallback[0] < 0 or len(fallback[1]) > 32:
                raise ValueError("fallback expiration: round >= 0 and a block hash of 32 bytes")
            creation_round, block_hash = fallback[0], fallback[1].rjust(32, b"\x00")
        tickets = [
            Ticket(
                recipient=params.recipient,
                sender=self.signer.address,
                face_value=params.face_value,
                win_prob=params.win_prob,
                sender_nonce=n,
                recipient_rand_hash=params.recipient_rand_hash,
                creation_round=creation_round,
                creation_round_block_hash=block_hash,
            )
            for n in nonces
        ]
        digests = [t.hash for t in tickets]
        if isinstance(self.signer, BatchSigner):
            sigs = await self.signer.sign_many(digests)
        else:
            sigs = [await self.signer.sign(d) for d in digests]
        if len(sigs) != len(nonces) or any(len(s) != 65 for s in sigs):
            raise SigningError("signer returned malformed ticket signatures")
        tp = payment.ticket_params
        tp.recipient = raw.recipient
        tp.face_value = raw.face_value
        tp.win_prob = raw.win_prob
        tp.recipient_rand_hash = raw.recipient_rand_hash
        tp.seed = raw.seed
        tp.expiration_block = raw.expiration_block
        payment.expiration_params.creation_round = creation_round
        payment.expiration_params.creation_round_block_hash = block_hash
        for n, sig in zip(nonces, sigs, strict=True):
            payment.ticket_sender_params.add(sender_nonce=n, sig=sig)


def _encode(payment: net.Payment) -> str:
    return base64.b64encode(payment.SerializeToString()).decode("ascii")
