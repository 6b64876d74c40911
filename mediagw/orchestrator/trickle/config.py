"""Limits, settings and counters of a trickle server."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["TrickleLimits", "TrickleServerConfig", "TrickleStats", "WriteResult"]


@dataclass(frozen=True, slots=True)
class TrickleLimits:
    """Hard limits of a trickle server."""

    max_segment_bytes: int = 64 << 20  # one segment; more is refused with 413
    max_channels: int = 4096  # channels held at once
    max_subscribers_per_segment: int = 64  # GETs inside one segment at once; more get 503


@dataclass(slots=True)
class TrickleStats:
    """Counters of a trickle server (monotonic, never reset)."""

    channels_created: int = 0
    channels_closed: int = 0
    channels_swept: int = 0
    segments_started: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    keepalives_sent: int = 0
    subscribers_cut: int = 0  # readers cut because their segment left the window or broke
    rejected_oversize: int = 0
    rejected_subscribers: int = 0
    publishers_lost: int = 0  # publishers that went away mid-body


class WriteResult(Enum):
    OK = "ok"
    DISCARDED = "discarded"  # the segment was closed under its publisher: bytes dropped
    TOO_LARGE = "too_large"  # over the limit: the segment is broken off


@dataclass(frozen=True, slots=True)
class TrickleServerConfig:
    """Settings of a ``TrickleServer`` (go-livepeer defaults)."""

    autocreate: bool = False  # create channels on a first POST (an O pre-creates them: False)
    idle_timeout: float = 300.0  # close channels without a write for this long (5 min)
    sweep_interval: float = 60.0  # how often the sweep runs (1 min)
    keepalive_interval: float = 10.0  # 1xx to a publisher whose first byte is awaited
    limits: TrickleLimits = field(default_factory=TrickleLimits)
