"""Trickle clients: live segments over HTTP between a gateway and an orchestrator (spec §4).

The server side (channels, sequencing rules, HTTP front ends) is the reference orchestrator's,
in ``mediagw.orchestrator.trickle``; the gateway never imports it.

Sans-IO cores (no asyncio):
- ``positions``: a subscriber's position (200/470/404/errors) and the publisher retry policy
- ``wire``: header names, statuses, seq parsing (shared with the server)

asyncio adapters:
- ``publisher`` / ``subscriber`` (re-exported by ``client``): the aiohttp clients
- ``pipe``: the bounded hand-off of a segment's bytes to the POST body
- ``aio``: small asyncio helpers (also used by the server)
- ``errors``: this package's branch of the ``MediaGWError`` tree (shared with the server)
"""

from .errors import (
    TrickleChannelClosed,
    TrickleChannelGone,
    TrickleError,
    TrickleLimitError,
    TrickleSegmentBroken,
    TrickleSegmentDropped,
    TrickleSegmentTooLarge,
    TrickleUnavailable,
    TrickleUsageError,
)
from .publisher import PublisherStats, SegmentUpload, TricklePublisher
from .subscriber import SubscriberStats, TrickleSegment, TrickleSubscriber

__all__ = [
    "PublisherStats",
    "SegmentUpload",
    "SubscriberStats",
    "TrickleChannelClosed",
    "TrickleChannelGone",
    "TrickleError",
    "TrickleLimitError",
    "TricklePublisher",
    "TrickleSegment",
    "TrickleSegmentBroken",
    "TrickleSegmentDropped",
    "TrickleSegmentTooLarge",
    "TrickleSubscriber",
    "TrickleUnavailable",
    "TrickleUsageError",
]
