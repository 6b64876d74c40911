"""Errors of the payments package, hung under the one tree of ``mediagw.errors``.

    MediaGWError
    +-- ConfigError
    |   +-- KeystoreError               the ETH keystore cannot be used
    |       +-- KeystoreNotFound        no file at the path (or no matching key in a directory)
    |       +-- WrongPassword           decryption failed: MAC mismatch
    |       +-- BadKeystore             not a usable V3 keystore (JSON, KDF, limits, address)
    +-- PaymentError                    a payment could not be made
        +-- NeedsRefresh                O's params cannot take more tickets: call GetOrchestrator
        |   +-- TicketParamsExpired     expiration_block - last L1 block <= 1 (payments spec §7)
        +-- TicketParamsRejected        O's ticket params are unacceptable; drop this O
        |   +-- InvalidTicketParams     malformed (sizes, zero expiration block, win prob range)
        |   +-- FaceValueTooLow         EV >= faceValue
        |   +-- TicketEVTooHigh         EV > max ticket EV
        |   +-- FaceValueTooHigh        faceValue > deposit / depositMultiplier
        +-- TotalEVTooHigh              numTickets x EV > max total EV
        +-- PriceRejected               O's price is unacceptable; drop this O
        |   +-- MissingPrice            no price_info, pixelsPerUnit <= 0, negative price
        |   +-- PriceJump               more than 2x the session's initial price
        |   +-- PriceAboveCap           above our configured maximum
        +-- SenderValidationError       our own deposit/reserve cannot back tickets (stop paying)
        +-- InsufficientSenderReserve   (orchestrator side) no face value fits the sender's reserve
        +-- SigningError                the signer failed
        +-- ChainError                  an Ethereum JSON-RPC read failed or answered nonsense

Texts follow go-livepeer (``pm/sender.go``, ``server/segment_rpc.go``) where it has one.
"""

from __future__ import annotations

from mediagw.errors import ConfigError, MediaGWError

__all__ = [
    "BadKeystore",
    "ChainError",
    "FaceValueTooHigh",
    "FaceValueTooLow",
    "InsufficientSenderReserve",
    "InvalidTicketParams",
    "KeystoreError",
    "KeystoreNotFound",
    "MissingPrice",
    "NeedsRefresh",
    "PaymentError",
    "PriceAboveCap",
    "PriceJump",
    "PriceRejected",
    "SenderValidationError",
    "SigningError",
    "TicketEVTooHigh",
    "TicketParamsExpired",
    "TicketParamsRejected",
    "TotalEVTooHigh",
    "WrongPassword",
]


class KeystoreError(ConfigError):
    """The ETH keystore or its password cannot be used."""


class KeystoreNotFound(KeystoreError):
    pass


class WrongPassword(KeystoreError):
    pass


class BadKeystore(KeystoreError):
    pass


class PaymentError(MediaGWError):
    """A payment to an orchestrator could not be built."""


class NeedsRefresh(PaymentError):
    """Not fatal: fetch a fresh OrchestratorInfo (GetOrchestrator) and pay with its params."""


class TicketParamsExpired(NeedsRefresh):
    def __init__(self) -> None:
        super().__init__("TicketParams expired")


class TicketParamsRejected(PaymentError):
    """The orchestrator's ticket params are unacceptable; suspend and drop that orchestrator."""


class InvalidTicketParams(TicketParamsRejected):
    pass


class FaceValueTooLow(TicketParamsRejected):
    pass


class TicketEVTooHigh(TicketParamsRejected):
    pass


class FaceValueTooHigh(TicketParamsRejected):
    pass


class TotalEVTooHigh(PaymentError):
    """Too many tickets for one payment (raise -maxTotalEV or shorten segments)."""


class PriceRejected(PaymentError):
    """The orchestrator's price is missing or unacceptable; drop that orchestrator."""


class MissingPrice(PriceRejected):
    pass


class PriceJump(PriceRejected):
    pass


class PriceAboveCap(PriceRejected):
    pass


class SenderValidationError(PaymentError):
    """Our deposit/reserve cannot back tickets (go-livepeer ErrSenderValidation): stop paying."""


class InsufficientSenderReserve(PaymentError):
    def __init__(self) -> None:
        super().__init__("insufficient sender reserve")


class SigningError(PaymentError):
    pass


class ChainError(PaymentError):
    """An Ethereum JSON-RPC read failed (transport, JSON-RPC error, malformed answer)."""
