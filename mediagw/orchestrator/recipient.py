"""The ticket recipient: params an orchestrator hands out, and ProcessPayment.

Payments spec §4.5 (faceValue / winProb), §5 (recipientRand binds the echoed params), §6 (nonces,
600 per recipientRand), §7 (expiry against the L1 block), §10 (check order, texts, fatal or
not, EV credited per valid ticket until the first error). Signatures are recovered beforehand,
off the event loop, by ``ticket_signers``; everything here is cheap and runs on the loop.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from fractions import Fraction

from google.protobuf import text_format

from mediagw.eth.crypto import SignatureError, checksum, recover_address
from mediagw.livepeer.proto import net
from mediagw.payments.tickets import (
    AVG_GAS_PRICE,
    Ticket,
    aux_data,
    face_value_and_win_prob,
    int_to_bytes,
    is_winning,
    recipient_rand_hash,
    tx_cost,
)

from .balances import Balances
from .chain import DevChain
from .config import RandomBytes
from .errors import AbortConnection, PaymentRejected
from .stats import OrchestratorStats, WinningTicket

__all__ = [
    "MAX_SENDER_NONCES",
    "ZERO_ADDRESS",
    "Recipient",
    "price_of",
    "ticket_signers",
    "to_address",
]

MAX_SENDER_NONCES = 600
ZERO_ADDRESS = bytes(20)


def to_address(raw: bytes) -> bytes:
    """go-ethereum BytesToAddress: the last 20 bytes, left-padded."""
    return raw[-20:].rjust(20, b"\x00")


def _to_hash(raw: bytes) -> bytes:
    return raw[-32:].rjust(32, b"\x00")


def price_of(info: net.PriceInfo) -> Fraction:
    """common.RatPriceInfo, with ProcessPayment's error texts."""
    if info.pixelsPerUnit == 0:
        raise PaymentRejected(
            'invalid expected price sent with payment err="pixels per unit is 0"', fatal=True
        )
    return Fraction(info.pricePerUnit, info.pixelsPerUnit)


@dataclass(frozen=True, slots=True)
class _Echo:
    """The fields of one TicketParams as a Payment echoes them back."""

    recipient: bytes
    sender: bytes
    face_value: int
    win_prob: int
    rr_hash: bytes
    seed: int
    expiration_block: int
    creation_round: int
    block_hash: bytes

    @classmethod
    def of(cls, payment: net.Payment) -> _Echo:
        tp = payment.ticket_params
        return cls(
            recipient=to_address(tp.recipient),
            sender=to_address(payment.sender),
            face_value=int.from_bytes(tp.face_value, "big"),
            win_prob=int.from_bytes(tp.win_prob, "big"),
            rr_hash=_to_hash(tp.recipient_rand_hash),
            seed=int.from_bytes(tp.seed, "big"),
            expiration_block=int.from_bytes(tp.expiration_block, "big"),
            creation_round=payment.expiration_params.creation_round,
            block_hash=_to_hash(payment.expiration_params.creation_round_block_hash),
        )

    def ticket(self, nonce: int) -> Ticket:
        return Ticket(
            recipient=self.recipient,
            sender=self.sender,
            face_value=self.face_value,
            win_prob=self.win_prob,
            sender_nonce=nonce,
            recipient_rand_hash=self.rr_hash,
            creation_round=abs(self.creation_round),
            creation_round_block_hash=self.block_hash,
        )


def ticket_signers(payment: net.Payment) -> list[bytes | None]:
    """Recover each ticket's signer (None: unusable signature). CPU work: run off the loop."""
    if not payment.HasField("ticket_params") or not payment.HasField("expiration_params"):
        return []
    echo = _Echo.of(payment)
    out: list[bytes | None] = []
    for tsp in payment.ticket_sender_params:
        try:
            out.append(recover_address(echo.ticket(tsp.sender_nonce).hash, tsp.sig))
        except SignatureError:
            out.append(None)
    return out


@dataclass
class _Nonces:
    seen: set[int]
    expiration_block: int


class Recipient:
    def __init__(
        self,
        *,
        address: bytes,
        secret: bytes,
        chain: DevChain,
        ticket_ev: int,
        redeem_gas: int,
        gas_price: int,
        rand: RandomBytes,
        balances: Balances,
        stats: OrchestratorStats,
    ) -> None:
        self.address = address
        self._secret = secret
        self._chain = chain
        self.ticket_ev = ticket_ev
        self._redeem_gas = redeem_gas
        self._gas_price = gas_price
        self._rand = rand
        self._balances = balances
        self._stats = stats
        self._nonces: dict[int, _Nonces] = {}
        self._swept_at_block = -1

    # --- params -----------------------------------------------------------------------------

    def recipient_rand(
        self,
        *,
        seed: int,
        sender: bytes,
        face_value: int,
        win_prob: int,
        expiration_block: int,
        price: Fraction,
        aux: bytes,
    ) -> int:
        msg = b"".join(
            (
                int_to_bytes(seed),
                sender,
                int_to_bytes(face_value),
                int_to_bytes(win_prob),
                int_to_bytes(expiration_block),
                int_to_bytes(abs(price.numerator)),
                int_to_bytes(price.denominator),
                aux,
            )
        )
        return int.from_bytes(hmac.new(self._secret, msg, hashlib.sha256).digest(), "big")

    def ticket_params(self, sender: bytes, price: Fraction) -> net.TicketParams:
        """Fresh params (new seed) for ``sender`` at ``price``.

        Raises InsufficientSenderReserve (from the face value rule).
        """
        seed = int.from_bytes(self._rand(32), "big")
        face_value = win_prob = 0
        if price > 0:
            face_value, win_prob = face_value_and_win_prob(
                ticket_ev=self.ticket_ev,
                tx_cost=tx_cost(self._redeem_gas, self._gas_price),
                max_float=None,
                avg_tx_cost=tx_cost(self._redeem_gas, AVG_GAS_PRICE),
            )
        expiration_block = self._chain.params_expiration_block()
        creation_round, block_hash = self._chain.expiration_params()
        rand = self.recipient_rand(
            seed=seed,
            sender=to_address(sender),
            face_value=face_value,
            win_prob=win_prob,
            expiration_block=expiration_block,
            price=price,
            aux=aux_data(creation_round, block_hash),
        )
        return net.TicketParams(
            recipient=self.address,
            face_value=int_to_bytes(face_value),
            win_prob=int_to_bytes(win_prob),
            recipient_rand_hash=recipient_rand_hash(rand),
            seed=int_to_bytes(seed),
            expiration_block=int_to_bytes(expiration_block),
            expiration_params=net.TicketExpirationParams(
                creation_round=creation_round, creation_round_block_hash=block_hash
            ),
        )

    # --- ProcessPayment ---------------------------------------------------------------------

    def process_payment(self, payment: net.Payment, key: str, signers: list[bytes | None]) -> None:
        """Credit the valid tickets to (sender, key); raise PaymentRejected as go-livepeer does."""
        if not payment.HasField("ticket_params"):
            self._balances.fix_price(to_address(payment.sender), key, Fraction(0))
            return
        if not payment.sender:
            shown = text_format.MessageToString(payment, as_one_line=True)
            raise PaymentRejected(f"Could not find Sender for payment: {shown}", fatal=True)
        if not payment.HasField("expected_price"):
            raise PaymentRejected(
                'invalid expected price sent with payment err="expected price is nil"', fatal=True
            )
        price = price_of(payment.expected_price)
        if not payment.HasField("expiration_params"):
            raise AbortConnection("payment without expiration params")  # Go: nil dereference
        echo = _Echo.of(payment)
        self._balances.fix_price(echo.sender, key, price)
        rand = self.recipient_rand(
            seed=echo.seed,
            sender=echo.sender,
            face_value=echo.face_value,
            win_prob=echo.win_prob,
            expiration_block=echo.expiration_block,
            price=price,
            aux=aux_data(abs(echo.creation_round), echo.block_hash),
        )
        self._sweep_nonces()
        error: str | None = None
        for tsp, signer in zip(payment.ticket_sender_params, signers, strict=True):
            ticket = echo.ticket(tsp.sender_nonce)
            self._stats.tickets_received += 1
            problem, won = self._receive(echo, ticket, tsp.sig, signer, rand)
            if problem is not None:
                self._stats.tickets_rejected += 1
                self._stats.ticket_errors[problem.split(":")[0]] += 1
                error = problem
            if error is None:
                self._balances.credit(echo.sender, key, ticket.ev)
                self._stats.tickets_accepted += 1
                self._stats.ev_credited += ticket.ev
            if won:
                self._stats.winner(
                    WinningTicket(echo.sender, ticket.sender_nonce, ticket.hash, ticket.face_value)
                )
        if error is not None:
            raise PaymentRejected(error, fatal=False)

    def _receive(
        self, echo: _Echo, ticket: Ticket, sig: bytes, signer: bytes | None, rand: int
    ) -> tuple[str | None, bool]:
        """One ticket: fatal problems raise, others come back as text. Returns (error, won)."""
        fatal = None
        if echo.recipient != self.address:
            fatal = "invalid ticket recipient"
        elif echo.sender == ZERO_ADDRESS:
            fatal = "invalid ticket sender"
        elif recipient_rand_hash(rand) != echo.rr_hash:
            fatal = "invalid recipientRand for ticket recipientRandHash"
        if fatal is not None:
            self._stats.tickets_rejected += 1
            self._stats.ticket_errors[fatal] += 1
            raise PaymentRejected(fatal, fatal=True)
        if signer != echo.sender:
            return "invalid ticket signature", False
        won = is_winning(sig, rand, echo.win_prob)
        problem = self._use_nonce(rand, ticket.sender_nonce, echo.expiration_block, echo.sender)
        if problem is None and echo.expiration_block <= self._chain.last_seen_l1_block():
            problem = "TicketParams expired"
        return problem, won

    def _use_nonce(self, rand: int, nonce: int, expiration_block: int, sender: bytes) -> str | None:
        entry = self._nonces.setdefault(rand, _Nonces(set(), expiration_block))
        if nonce in entry.seen:
            return (
                f"invalid ticket senderNonce: already seen sender={checksum(sender)} nonce={nonce}"
            )
        if len(entry.seen) >= MAX_SENDER_NONCES:
            return (
                f"invalid ticket senderNonce: too many values sender={checksum(sender)} "
                f"nonce={nonce}"
            )
        entry.seen.add(nonce)
        return None

    def _sweep_nonces(self) -> None:
        """Forget nonce records whose params expired (go-livepeer does it on every new block)."""
        block = self._chain.last_seen_l1_block()
        if block == self._swept_at_block:
            return
        self._swept_at_block = block
        for rand in [r for r, n in self._nonces.items() if n.expiration_block <= block]:
            del self._nonces[rand]
