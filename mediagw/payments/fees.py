"""What a request will cost, and how many tickets cover it (payments spec §8.2, §8.3).

Exact rational arithmetic throughout (``Fraction``), as go-livepeer does with ``big.Rat``:

- transcoding: ``pixels = sum(w * h * ceil(fps / fpsDen) * ceil(duration))`` with fpsDen 0 -> 1
  and fps 0 (pass-through) -> 60; ``fee = pixels * M * price`` with M the exact value of the
  IEEE-754 double 1.02 (go-livepeer ``server/segment_rpc.go`` estimateFee);
- live / AI: ``fee = units * price`` (no M);
- ``ticket_count``: tickets needed to lift ``existing`` credit to ``max(fee, ticketEV)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from typing import NamedTuple, Protocol, runtime_checkable

from mediagw.errors import ConfigError

__all__ = [
    "LIVE_PIXELS_PER_SECOND",
    "LIVE_PREPAY_PIXELS",
    "LIVE_PREPAY_SECONDS",
    "PASSTHROUGH_FPS",
    "PIXEL_ESTIMATE_MULTIPLIER",
    "FeeEstimate",
    "ProfileLike",
    "TicketCount",
    "estimate_fee",
    "live_fee",
    "live_units",
    "segment_pixels",
    "ticket_count",
    "transcode_fee",
]

PIXEL_ESTIMATE_MULTIPLIER = Fraction(2296835809958953, 2251799813685248)  # == Fraction(1.02)
PASSTHROUGH_FPS = 60  # go-livepeer code (doc/payments.md says 120; the code wins)
LIVE_PIXELS_PER_SECOND = 1280 * 720 * 30  # server/live_payment_processor.go: 720p30
LIVE_PREPAY_SECONDS = 60  # server/ai_process.go initPixelsToPay
LIVE_PREPAY_PIXELS = LIVE_PIXELS_PER_SECOND * LIVE_PREPAY_SECONDS

MAX_PROFILES = 64
MAX_DIMENSION = 1 << 16
MAX_FPS_VALUE = 1 << 31


@runtime_checkable
class ProfileLike(Protocol):
    """An output rendition: ``fps`` 0 means pass-through, ``fps_den`` 0 means 1."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def fps(self) -> int: ...
    @property
    def fps_den(self) -> int: ...


Profile = ProfileLike | tuple[int, int, int, int]


class FeeEstimate(NamedTuple):
    pixels: int
    fee: Fraction


class TicketCount(NamedTuple):
    num_tickets: int
    new_credit: Fraction


def _dims(profile: Profile) -> tuple[int, int, int, int]:
    if isinstance(profile, tuple):
        width, height, fps, fps_den = profile
    else:
        width, height, fps, fps_den = profile.width, profile.height, profile.fps, profile.fps_den
    for name, value, limit in (
        ("width", width, MAX_DIMENSION),
        ("height", height, MAX_DIMENSION),
        ("fps", fps, MAX_FPS_VALUE),
        ("fps_den", fps_den, MAX_FPS_VALUE),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise ConfigError(f"profile {name} must be an integer in 0..{limit}, got {value!r}")
    return width, height, fps, fps_den


def _ceil_seconds(duration_s: float | Fraction | int) -> int:
    if isinstance(duration_s, float) and not math.isfinite(duration_s):
        raise ConfigError(f"segment duration must be finite, got {duration_s!r}")
    if duration_s < 0:
        raise ConfigError(f"segment duration must not be negative, got {duration_s!r}")
    return math.ceil(duration_s)


def segment_pixels(profiles: Iterable[Profile], duration_s: float | Fraction | int) -> int:
    """Output pixels go-livepeer estimates for one segment of ``duration_s`` seconds."""
    seconds = _ceil_seconds(duration_s)
    total = 0
    for count, profile in enumerate(profiles, 1):
        if count > MAX_PROFILES:
            raise ConfigError(f"more than {MAX_PROFILES} output profiles")
        width, height, fps, fps_den = _dims(profile)
        rate = fps or PASSTHROUGH_FPS
        den = fps_den or 1
        total += width * height * -(-rate // den) * seconds
    return total


def transcode_fee(
    profiles: Iterable[Profile],
    duration_s: float | Fraction | int,
    price: Fraction = Fraction(1),
) -> FeeEstimate:
    """Fee estimate of a ``/segment`` request: pixels x 1.02 (exact double) x price per pixel.

    With the default price 1 the fee is the estimated pixels x 1.02, to multiply by a price later.
    """
    pixels = segment_pixels(profiles, duration_s)
    return FeeEstimate(pixels, pixels * PIXEL_ESTIMATE_MULTIPLIER * price)


estimate_fee = transcode_fee  # go-livepeer's name


def live_units(seconds: float | Fraction | int) -> int:
    """Whole 720p30 pixels billed for ``seconds`` of live video (remainders carry over)."""
    if seconds <= 0:
        return 0
    return math.floor(LIVE_PIXELS_PER_SECOND * Fraction(seconds))


def live_fee(units: int, price: Fraction) -> Fraction:
    """Live and AI requests: units x price, without the 1.02 factor."""
    if units < 0:
        raise ConfigError("fee units must not be negative")
    return units * price


def ticket_count(fee: Fraction, ticket_ev: Fraction, existing: Fraction) -> TicketCount:
    """Tickets to send so that existing + new credit >= max(fee, ticketEV) (§8.3).

    ticketEV 0 (price 0, or no ticket params) means no tickets.
    """
    min_credit = max(fee, ticket_ev)
    if existing >= min_credit or ticket_ev <= 0:
        return TicketCount(0, Fraction(0))
    n = math.ceil((min_credit - existing) / ticket_ev)
    return TicketCount(n, n * ticket_ev)
