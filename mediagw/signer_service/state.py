"""The signed payment state the gateway echoes back (live-AI spec §10.3 ``state``).

The signer keeps no per-stream memory: everything it needs between two calls travels in this
JSON blob, signed with the signer's own key (personal_sign over keccak256(blob), go-livepeer
``Eth.Sign``), so a gateway cannot change it and any signer sharing the key can continue it.
The encoding follows go-livepeer's ``RemotePaymentState`` as Go's ``encoding/json`` writes it:
field names as keys, ``LastUpdate`` in RFC 3339 with nanoseconds (the zero time
``0001-01-01T00:00:00Z`` meaning "never"), ``OrchestratorAddress`` as 0x-hex, ``Balance`` as a
rational string (``"7/3"``, or ``"5"``). Decoding matches key names case-insensitively, as Go does.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = [
    "MAX_STATE_BYTES",
    "RemoteState",
    "format_go_time",
    "parse_go_time",
    "rat_string",
]

MAX_STATE_BYTES = 8 * 1024
MAX_TEXT = 512  # StateID, PMSessionID, App, Type, AuthID
MAX_RAT_CHARS = 400  # EV fractions have a 78-digit denominator (2^256 - 1)
ZERO_TIME = "0001-01-01T00:00:00Z"
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)
_ZERO_SECONDS = calendar.timegm((1, 1, 1, 0, 0, 0))


def format_go_time(ns: int | None) -> str:
    """Go ``time.Time`` MarshalJSON in UTC (RFC 3339, fraction without trailing zeros)."""
    if ns is None:
        return ZERO_TIME
    seconds, frac = divmod(ns, 10**9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def parse_go_time(text: str) -> int | None:
    """RFC 3339 -> unix nanoseconds; the zero time -> None. ValueError when malformed."""
    m = _TIME_RE.match(text)
    if m is None:
        raise ValueError(f"bad time {text[:40]!r}")
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec < 60):
        raise ValueError(f"bad time {text!r}")
    seconds = calendar.timegm((year, month, day, hour, minute, sec))
    zone = m.group(8)
    if zone != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    frac = int((m.group(7) or "").ljust(9, "0"))
    if seconds == _ZERO_SECONDS and frac == 0:
        return None
    return seconds * 10**9 + frac


def rat_string(value: Fraction) -> str:
    """Go ``big.Rat.RatString``: ``a/b``, or ``a`` when the denominator is 1."""
    return str(value.numerator) if value.denominator == 1 else str(value)


def _get(doc: dict[str, Any], name: str) -> Any:
    if name in doc:
        return doc[name]
    lower = name.lower()
    for key, value in doc.items():
        if key.lower() == lower:
            return value
    return None


def _text(doc: dict[str, Any], name: str) -> str:
    value = _get(doc, name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(f"{name} is not a string")
    return value


def _int(doc: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = _get(doc, name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} is not an integer in range")
    return value


def _rat(text: str) -> Fraction:
    if not text:
        return Fraction(0)
    try:
        return Fraction(text)
    except ZeroDivisionError:
        raise ValueError("Balance has a zero denominator") from None


@dataclass(slots=True)
class RemoteState:
    state_id: str
    orchestrator_address: bytes  # 20
    initial_price_per_unit: int
    initial_pixels_per_unit: int
    pm_session_id: str = ""  # 0x-hex of the recipient_rand_hash the nonce belongs to
    last_update_ns: int | None = None
    app: str = ""
    auth_expiry: int = 0  # unix seconds; 0 = the auth webhook must be asked
    sender_nonce: int = 0  # last ticket nonce used in pm_session_id
    balance: Fraction = Fraction(0)  # credit at O after the last payment, wei
    type: str = ""
    sequence_number: int = 0
    auth_id: str = ""

    @property
    def initial_price(self) -> Fraction:
        return Fraction(self.initial_price_per_unit, self.initial_pixels_per_unit)

    def to_json(self) -> dict[str, Any]:
        return {
            "StateID": self.state_id,
            "PMSessionID": self.pm_session_id,
            "LastUpdate": format_go_time(self.last_update_ns),
            "OrchestratorAddress": "0x" + self.orchestrator_address.hex(),
            "App": self.app,
            "AuthExpiry": self.auth_expiry,
            "SenderNonce": self.sender_nonce,
            "Balance": rat_string(self.balance),
            "InitialPricePerUnit": self.initial_price_per_unit,
            "InitialPixelsPerUnit": self.initial_pixels_per_unit,
            "Type": self.type,
            "SequenceNumber": self.sequence_number,
            "AuthID": self.auth_id,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RemoteState:
        """Parse a blob (its signature already checked). ValueError when malformed."""
        if len(raw) > MAX_STATE_BYTES:
            raise ValueError("state too large")
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("state is not a JSON object")
        address_text = _text(doc, "OrchestratorAddress").removeprefix("0x").removeprefix("0X")
        address = bytes.fromhex(address_text) if address_text else bytes(20)
        if len(address) != 20:
            raise ValueError("OrchestratorAddress is not 20 bytes")
        balance_text = _text(doc, "Balance").strip()
        if len(balance_text) > MAX_RAT_CHARS:
            raise ValueError("Balance too long")
        last = _get(doc, "LastUpdate")
        if last is not None and not isinstance(last, str):
            raise ValueError("LastUpdate is not a string")
        return cls(
            state_id=_text(doc, "StateID"),
            pm_session_id=_text(doc, "PMSessionID"),
            last_update_ns=parse_go_time(last) if last else None,
            orchestrator_address=address,
            app=_text(doc, "App"),
            auth_expiry=_int(doc, "AuthExpiry", -(2**63), 2**63 - 1),
            sender_nonce=_int(doc, "SenderNonce", 0, 2**32 - 1),
            balance=_rat(balance_text),
            initial_price_per_unit=_int(doc, "InitialPricePerUnit", -(2**63), 2**63 - 1),
            initial_pixels_per_unit=_int(doc, "InitialPixelsPerUnit", -(2**63), 2**63 - 1),
            type=_text(doc, "Type"),
            sequence_number=_int(doc, "SequenceNumber", 0, 2**64 - 1),
            auth_id=_text(doc, "AuthID"),
        )
