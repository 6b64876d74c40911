"""Credit per (sender, key) and the price fixed at a session's first payment (payments §8.4).

Keys: ``auth_token.session_id`` for ``/segment``, ``SegData.manifestId`` for ``/payment``.
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["Balances"]

Key = tuple[bytes, str]


class Balances:
    def __init__(self) -> None:
        self._credit: dict[Key, Fraction] = {}
        self._price: dict[Key, Fraction] = {}

    def credit(self, sender: bytes, key: str, amount: Fraction) -> None:
        self._credit[sender, key] = self._credit.get((sender, key), Fraction(0)) + amount

    def debit(self, sender: bytes, key: str, amount: Fraction) -> None:
        self._credit[sender, key] = self._credit.get((sender, key), Fraction(0)) - amount

    def balance(self, sender: bytes, key: str) -> Fraction | None:
        return self._credit.get((sender, key))

    def fixed_price(self, sender: bytes, key: str) -> Fraction | None:
        return self._price.get((sender, key))

    def fix_price(self, sender: bytes, key: str, price: Fraction) -> None:
        """Set the session price unless a payment already set it."""
        self._price.setdefault((sender, key), price)

    def drop_key(self, key: str) -> None:
        for k in [k for k in self._credit if k[1] == key]:
            del self._credit[k]
        for k in [k for k in self._price if k[1] == key]:
            del self._price[k]
