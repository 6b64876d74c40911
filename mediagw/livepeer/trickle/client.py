"""Trickle clients (aiohttp): ``TricklePublisher`` writes a channel, ``TrickleSubscriber`` reads
one. See publisher.py and subscriber.py for the rules they follow."""

from __future__ import annotations

from .publisher import PublisherStats, SegmentUpload, TricklePublisher
from .subscriber import SubscriberStats, TrickleSegment, TrickleSubscriber

__all__ = [
    "PublisherStats",
    "SegmentUpload",
    "SubscriberStats",
    "TricklePublisher",
    "TrickleSegment",
    "TrickleSubscriber",
]
