"""Trickle: live segments over HTTP between a gateway and an orchestrator (spec §4).

Sans-IO cores (no asyncio):
- ``rules``: a server channel's sequencing rules (5-slot window, next_write, -1/-2, reset)
- ``positions``: a subscriber's position (200/470/404/errors) and the publisher retry policy
- ``wire``: header names, seq and route parsing

asyncio adapters:
- ``segment``: a held segment's bytes and the cursors reading them (bounded memory)
- ``channel`` / ``local``: one server channel, in-process readers and writers
- ``server``: ``TrickleServer`` (channels, limits, idle sweep); ``handlers`` the HTTP semantics;
  ``asgi`` (hypercorn) and ``aiohttp_app`` the two HTTP front ends
- ``publisher`` / ``subscriber`` (re-exported by ``client``): the aiohttp clients
- ``errors``: this package's branch of the ``MediaGWError`` tree
"""

from .channel import Channel, ChannelInfo, SegmentInfo
from .config import TrickleLimits, TrickleServerConfig, TrickleStats
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
from .local import LocalSegment, LocalSegmentWriter, LocalSubscription
from .publisher import PublisherStats, SegmentUpload, TricklePublisher
from .server import TrickleServer
from .subscriber import SubscriberStats, TrickleSegment, TrickleSubscriber

__all__ = [
    "Channel",
    "ChannelInfo",
    "LocalSegment",
    "LocalSegmentWriter",
    "LocalSubscription",
    "PublisherStats",
    "SegmentInfo",
    "SegmentUpload",
    "SubscriberStats",
    "TrickleChannelClosed",
    "TrickleChannelGone",
    "TrickleError",
    "TrickleLimitError",
    "TrickleLimits",
    "TricklePublisher",
    "TrickleSegment",
    "TrickleSegmentBroken",
    "TrickleSegmentDropped",
    "TrickleSegmentTooLarge",
    "TrickleServer",
    "TrickleServerConfig",
    "TrickleStats",
    "TrickleSubscriber",
    "TrickleUnavailable",
    "TrickleUsageError",
]
