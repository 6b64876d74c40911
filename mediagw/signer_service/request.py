"""``POST /generate-live-payment``: the request body and the billing rules (live-AI spec §10.3).

Sans-IO. The body is decoded as Go's ``encoding/json`` decodes ``RemotePaymentRequest``: keys
match case-insensitively, ``[]byte`` fields are standard base64 strings, ``inPixels`` is an int64.
Every problem is ``RequestFailed(400, ...)``.

Billing per call (``billable``): ``lv2v`` int(27,648,000 x seconds since ``LastUpdate``), the
first call (or a non-positive interval) 60 s; ``live`` ceil(seconds), first call 10 s; ``fixed``
1; no type: ``inPixels``. For ``lv2v`` the state's clock advances by the time the whole pixels
billed stand for (to the nanosecond), so sub-pixel remainders carry over to the next call
(go-livepeer drops them by setting ``LastUpdate = now``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from google.protobuf.message import DecodeError

from mediagw.livepeer.proto import net
from mediagw.payments.fees import LIVE_PIXELS_PER_SECOND, LIVE_PREPAY_SECONDS

from .errors import RequestFailed
from .state import MAX_STATE_BYTES

__all__ = [
    "LIVE_FIRST_SECONDS",
    "MAX_PRICE_UNITS",
    "PaymentRequest",
    "billable",
    "parse_max_price",
    "parse_payment_request",
]

MAX_ORCHESTRATOR_BYTES = 256 * 1024
MAX_CAPABILITIES_BYTES = 64 * 1024
MAX_MANIFEST_ID = 256
MAX_APP = 256
LIVE_FIRST_SECONDS = 10
INT64_MAX = 2**63 - 1
NS = 10**9
MAX_PRICE_UNITS = {"live": "seconds", "lv2v": "720p-pixel-seconds", "fixed": "fixed"}
PROTO_DECODE_ERROR = "proto: cannot parse invalid wire-format data"


def _bad(message: str) -> RequestFailed:
    return RequestFailed(400, message)


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    info: net.OrchestratorInfo
    state_blob: bytes
    state_sig: bytes
    manifest_id: str
    app: str
    type: str
    in_pixels: int
    max_price: Any  # the raw ``maxPrice`` object, checked once the type is known
    capabilities: net.Capabilities | None

    @property
    def has_state(self) -> bool:
        return bool(self.state_blob or self.state_sig)


def _get(doc: dict[str, Any], name: str) -> Any:
    if name in doc:
        return doc[name]
    lower = name.lower()
    found = None
    for key, value in doc.items():
        if key.lower() == lower:
            found = value
    return found


def _string(doc: dict[str, Any], name: str, limit: int) -> str:
    value = _get(doc, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(
            f"json: cannot unmarshal {type(value).__name__} into field {name} of type string"
        )
    if len(value.encode()) > limit:
        raise _bad(f"{name} longer than {limit} bytes")
    return value


def _bytes(doc: dict[str, Any], name: str, limit: int) -> bytes:
    text = _string(doc, name, limit * 4 // 3 + 4)
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"illegal base64 data in field {name}") from None


def parse_payment_request(body: bytes) -> PaymentRequest:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _bad(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _bad("json: cannot unmarshal into Go value of type server.RemotePaymentRequest")
    orchestrator = _bytes(doc, "orchestrator", MAX_ORCHESTRATOR_BYTES)
    state = _get(doc, "state")
    blob = sig = b""
    if state is not None:
        if not isinstance(state, dict):
            raise _bad("json: cannot unmarshal state: not an object")
        blob = _bytes(state, "State", MAX_STATE_BYTES)
        sig = _bytes(state, "Sig", 1024)
    in_pixels = _get(doc, "inPixels")
    if in_pixels is None:
        in_pixels = 0
    if isinstance(in_pixels, bool) or not isinstance(in_pixels, int):
        raise _bad("json: cannot unmarshal inPixels into an int64")
    if not -(2**63) <= in_pixels <= INT64_MAX:
        raise _bad("json: inPixels overflows int64")
    caps_raw = _bytes(doc, "capabilities", MAX_CAPABILITIES_BYTES)
    manifest_id = _string(doc, "ManifestID", MAX_MANIFEST_ID)
    app = _string(doc, "app", MAX_APP)
    job_type = _string(doc, "type", 64)
    max_price = _get(doc, "maxPrice")
    if not orchestrator:
        raise _bad("missing orchestrator")
    info = net.OrchestratorInfo()
    try:
        info.ParseFromString(orchestrator)
    except DecodeError:
        raise _bad(PROTO_DECODE_ERROR) from None
    capabilities = None
    if caps_raw:
        capabilities = net.Capabilities()
        try:
            capabilities.ParseFromString(caps_raw)
        except DecodeError:
            raise _bad(PROTO_DECODE_ERROR) from None
    return PaymentRequest(
        info, blob, sig, manifest_id, app, job_type, in_pixels, max_price, capabilities
    )


def parse_max_price(raw: Any, payment_type: str) -> Fraction | None:
    """``maxPrice`` {price, currency, unit} -> wei per unit; ValueError with Go's texts."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("maxPrice must be an object")
    value = _get(raw, "price")
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        text = value if isinstance(value, str) else repr(value)
        if len(text) > 100:
            raise InvalidOperation
        decimal = Decimal(text.strip())
        if not decimal.is_finite():
            raise InvalidOperation
        price = Fraction(decimal)
    except (InvalidOperation, ValueError):
        raise ValueError("maxPrice.price must be a positive decimal") from None
    if price <= 0:
        raise ValueError("maxPrice.price must be a positive decimal")
    currency = _get(raw, "currency")
    if not isinstance(currency, str) or currency.strip().lower() != "wei":
        raise ValueError("maxPrice.currency must be wei")
    expected = MAX_PRICE_UNITS.get(payment_type)
    if expected is None:
        raise ValueError("maxPrice requires payment type live, lv2v, or fixed")
    unit = _get(raw, "unit")
    if not isinstance(unit, str) or unit.strip().lower() != expected:
        raise ValueError(f"maxPrice.unit must be {expected} for payment type {payment_type}")
    return price


def billable(
    payment_type: str, last_ns: int | None, now_ns: int, in_pixels: int
) -> tuple[int, int]:
    """(units to bill, the state's new ``LastUpdate``); RequestFailed(400) for a bad type."""
    elapsed = now_ns - last_ns if last_ns is not None else 0
    if payment_type == "lv2v":
        if elapsed <= 0:
            return LIVE_PIXELS_PER_SECOND * LIVE_PREPAY_SECONDS, now_ns
        units = elapsed * LIVE_PIXELS_PER_SECOND // NS
        assert last_ns is not None
        return units, last_ns + units * NS // LIVE_PIXELS_PER_SECOND
    if payment_type == "live":
        seconds = LIVE_FIRST_SECONDS if elapsed <= 0 else math.ceil(Fraction(elapsed, NS))
        return seconds, now_ns
    if payment_type == "fixed":
        return 1, now_ns
    if payment_type:
        raise _bad("invalid job type")
    return in_pixels, now_ns
