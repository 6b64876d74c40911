"""The trickle server of the reference orchestrator (spec §4): channels, limits, HTTP front ends.

The wire facts, errors and the clients it shares with the gateway are in
``mediagw.livepeer.trickle``; this package is never imported by the gateway.

Sans-IO cores (no asyncio):
- ``rules``: a channel's sequencing rules (5-slot window, next_write, -1/-2, reset)
- ``routes``: channel names and request path parsing

asyncio adapters:
- ``types``: the seams the in-process users and the HTTP handlers see of a channel and a server
- ``segment``: a held segment's bytes and the cursors reading them (bounded memory)
- ``channel`` / ``local``: one channel, in-process readers and writers
- ``server``: ``TrickleServer`` (channels, limits, idle sweep); ``handlers`` the HTTP semantics;
  ``asgi`` (hypercorn) and ``aiohttp_app`` the two HTTP front ends
- ``config``: limits, settings and counters
"""

from .channel import Channel, ChannelInfo, SegmentInfo
from .config import TrickleLimits, TrickleServerConfig, TrickleStats
from .local import LocalSegment, LocalSegmentWriter, LocalSubscription
from .server import TrickleServer

__all__ = [
    "Channel",
    "ChannelInfo",
    "LocalSegment",
    "LocalSegmentWriter",
    "LocalSubscription",
    "SegmentInfo",
    "TrickleLimits",
    "TrickleServer",
    "TrickleServerConfig",
    "TrickleStats",
]
