"""Live payment accounting on the orchestrator (live-AI spec §9.2; go-livepeer
``LivePaymentProcessor`` + ``livePaymentReceiver.AccountPayment``). Sans-IO.

Per input segment, at most once per ``interval`` seconds: bill 27,648,000 pixels (720p30) per
second elapsed since the last bill (the first bill counts from the session start), the clock
advancing only by the whole pixels billed so remainders carry over; the fee is units x the
session's fixed price (the start payment's ``expected_price``). The credit lives in the shared
``Balances`` under (sender, mid); ``/payment`` adds to it. A balance that is missing or below the
fee is the end of the session: ``insufficient balance, mid=...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from mediagw.payments.fees import LIVE_PIXELS_PER_SECOND, live_fee, live_units

from ..balances import Balances

__all__ = ["Bill", "LiveAccounting"]


@dataclass(frozen=True, slots=True)
class Bill:
    units: int
    fee: Fraction
    balance: Fraction | None  # after the debit; before it when ``paid`` is False
    paid: bool

    def error(self, mid: str) -> str:
        shown = "nil" if self.balance is None else str(round(self.balance))
        return f"insufficient balance, mid={mid}, fee={round(self.fee)}, balance={shown}"


class LiveAccounting:
    def __init__(
        self,
        *,
        balances: Balances,
        sender: bytes,
        mid: str,
        price: Fraction,
        interval: float,
        start: float,
    ) -> None:
        self._balances = balances
        self.sender = sender
        self.mid = mid
        self.price = price
        self.interval = interval
        self.last = Fraction(start)
        self.debits = 0
        self.fees = Fraction(0)

    def due(self, now: float) -> bool:
        return self.last + Fraction(self.interval) <= Fraction(now)

    def on_segment(self, now: float) -> Bill | None:
        """An input segment began at ``now``: None if no bill is due, else the bill (check
        ``paid``; an unpaid bill debits nothing)."""
        if not self.due(now):
            return None
        units = live_units(Fraction(now) - self.last)
        fee = live_fee(units, self.price)
        balance = self._balances.balance(self.sender, self.mid)
        if balance is None or balance < fee:
            return Bill(units, fee, balance, paid=False)
        self._balances.debit(self.sender, self.mid, fee)
        self.last += Fraction(units, LIVE_PIXELS_PER_SECOND)
        self.debits += 1
        self.fees += fee
        return Bill(units, fee, balance - fee, paid=True)
