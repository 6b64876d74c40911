"""WebRTC on aiortc: WHIP ingest and WHEP egress of encoded H.264/Opus, ICE settings.

Knows nothing about Livepeer or the gateway (never imports ``mediagw`` or ``segmenter``).

- :class:`WhipIngest` answers publishers' offers; iterate a :class:`WhipSession` for
  :class:`VideoAccessUnit` (Annex B, 90 kHz) and :class:`AudioPacket` (Opus, 48 kHz).
- :class:`WhepEgress` plays an :class:`EncodedSource` (fed with the same types) to viewers.
- :func:`add_whip_routes` / :func:`add_whep_routes` mount the HTTP side on aiohttp.
"""

from .config import (
    IceConfig,
    IceServer,
    detect_host_addresses,
    gathering_scope,
    loopback_fallback,
)
from .errors import (
    CapacityError,
    IncompatibleAiortcError,
    NotFoundError,
    OfferError,
    UnsupportedMediaError,
    WebRTCError,
)
from .media import AudioPacket, MediaUnit, VideoAccessUnit
from .pacing import Pacer
from .routes import add_whep_routes, add_whip_routes
from .source import EncodedSource, Subscription
from .whep import WhepConfig, WhepEgress, WhepSession
from .whip import WhipConfig, WhipIngest, WhipSession, WhipStats

__all__ = [
    "AudioPacket",
    "CapacityError",
    "EncodedSource",
    "IceConfig",
    "IceServer",
    "IncompatibleAiortcError",
    "MediaUnit",
    "NotFoundError",
    "OfferError",
    "Pacer",
    "Subscription",
    "UnsupportedMediaError",
    "VideoAccessUnit",
    "WebRTCError",
    "WhepConfig",
    "WhepEgress",
    "WhepSession",
    "WhipConfig",
    "WhipIngest",
    "WhipSession",
    "WhipStats",
    "add_whep_routes",
    "add_whip_routes",
    "detect_host_addresses",
    "gathering_scope",
    "loopback_fallback",
]
