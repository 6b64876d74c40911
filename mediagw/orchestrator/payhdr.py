"""The ``Livepeer-Payment`` header as an orchestrator reads it (go-livepeer getPayment /
getPaymentSender), shared by ``/segment``, ``/payment`` and ``/live-video-to-video``."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from mediagw.livepeer.proto import net

from .errors import RequestRejected
from .recipient import ZERO_ADDRESS, to_address
from .segcreds import PROTO_DECODE_ERROR, decode_b64

__all__ = ["decode_payment", "payment_sender"]


def decode_payment(header: str) -> net.Payment:
    """getPayment: 402 with go-livepeer's wrapped error text."""
    try:
        raw = decode_b64(header)
    except ValueError as exc:
        raise RequestRejected(402, f"base64 decode error: {exc}") from None
    payment = net.Payment()
    try:
        payment.ParseFromString(raw)
    except DecodeError:
        raise RequestRejected(402, f"protobuf unmarshal error: {PROTO_DECODE_ERROR}") from None
    return payment


def payment_sender(payment: net.Payment) -> bytes:
    """The ticket sender, or the zero address when the payment names none."""
    return to_address(payment.sender) if payment.sender else ZERO_ADDRESS
