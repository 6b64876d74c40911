"""The gateway's mirror of its credit at each orchestrator (payments spec §8.4).

Keyed by (ticket recipient address, O's ``auth_token.session_id``). One request's lifecycle:

    existing = reserve(key)              credit taken out (balance 0 while the request is in flight)
    ... send the payment and the work ...
    restore(key, existing)               no response headers: the existing credit comes back
                                         (the new credit is forgotten, GL; counted in metrics)
    spend(key)                           response received but failed: credit considered spent
    settle(key, existing, new, debit)    success: balance += existing + new - debit (may go < 0)

A new ``session_id`` after a refresh is a new key; ``reset(old_key)`` drops the old balance.
Entries idle longer than ``ttl`` seconds are pruned, and at most ``max_entries`` are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["BalanceKey", "BalanceMetrics", "Balances"]

BalanceKey = tuple[bytes, str]
ZERO = Fraction(0)


@dataclass(slots=True)
class BalanceMetrics:
    restored: int = 0  # requests that got no response headers
    spent_on_failure: int = 0  # requests answered with a failure
    settled: int = 0
    forgotten_credit: Fraction = ZERO  # new credit O may hold but we stopped counting (wei)


class Balances:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        ttl: float = 3600.0,
        max_entries: int = 100_000,
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[BalanceKey, tuple[Fraction, float]] = OrderedDict()
        self.metrics = BalanceMetrics()

    def __len__(self) -> int:
        return len(self._entries)

    def balance(self, key: BalanceKey) -> Fraction:
        entry = self._entries.get(key)
        return entry[0] if entry else ZERO

    def _add(self, key: BalanceKey, amount: Fraction) -> None:
        now = self._clock()
        self._entries[key] = (self.balance(key) + amount, now)
        self._entries.move_to_end(key)
        self._prune(now)

    def _prune(self, now: float) -> None:
        while self._entries:
            key, (_, updated) = next(iter(self._entries.items()))
            if len(self._entries) <= self._max and now - updated <= self._ttl:
                break
            del self._entries[key]

    def credit(self, key: BalanceKey, amount: Fraction) -> None:
        """Add (or, negative, subtract) credit."""
        self._add(key, amount)

    def reserve(self, key: BalanceKey) -> Fraction:
        """Take the existing credit out for one request; the balance is 0 while it is in flight."""
        existing = self.balance(key)
        if key in self._entries:
            self._entries[key] = (ZERO, self._clock())
            self._entries.move_to_end(key)
        return existing

    def restore(self, key: BalanceKey, amount: Fraction, *, new_credit: Fraction = ZERO) -> None:
        """No response headers: give the reserved credit back; ``new_credit`` is only counted."""
        self.metrics.restored += 1
        self.metrics.forgotten_credit += new_credit
        self._add(key, amount)

    def spend(self, key: BalanceKey, *, new_credit: Fraction = ZERO) -> None:
        """Response received, request failed: reserved and new credit are considered spent."""
        self.metrics.spent_on_failure += 1
        self.metrics.forgotten_credit += new_credit

    def settle(
        self, key: BalanceKey, existing: Fraction, new_credit: Fraction, debit: Fraction
    ) -> None:
        """Success: balance += existing + new_credit - debit (negative change = a debit)."""
        self.metrics.settled += 1
        self._add(key, existing + new_credit - debit)

    def reset(self, key: BalanceKey) -> None:
        self._entries.pop(key, None)
