"""Errors of the trickle protocol, hung under ``LivepeerError`` of the one ``MediaGWError`` tree.

    MediaGWError
    +-- LivepeerError                      (mediagw.livepeer.errors)
        +-- TrickleError                   a trickle exchange failed; ``url`` and ``seq`` name it
            +-- TrickleChannelGone         404: the channel does not exist (never created,
            |   |                          deleted, swept, closed by O). Terminal.
            |   +-- TrickleChannelClosed   ``Lp-Trickle-Closed``: the channel ended. Terminal.
            +-- TrickleSegmentDropped      one published segment was given up (bytes already sent,
            |                              or the one retry failed); the publisher goes on
            +-- TrickleSegmentBroken       a received segment ended abnormally (connection lost,
            |                              cut for being too far behind); the subscriber goes on
            +-- TrickleSegmentTooLarge     a segment went over the size limit (``limit``), locally
            |                              or answered 413 by the server
            +-- TrickleUnavailable         the subscriber gave up after too many errors in a row
            +-- TrickleLimitError          a server limit (channels, subscribers) was reached
            +-- TrickleUsageError          local misuse: bad URL, a second open segment, writing
                                           to a closed publisher

Terminal errors stop a publisher or subscriber for good; the others concern one segment.
"""

from __future__ import annotations

from mediagw.livepeer.errors import LivepeerError

__all__ = [
    "TrickleChannelClosed",
    "TrickleChannelGone",
    "TrickleError",
    "TrickleLimitError",
    "TrickleSegmentBroken",
    "TrickleSegmentDropped",
    "TrickleSegmentTooLarge",
    "TrickleUnavailable",
    "TrickleUsageError",
]


class TrickleError(LivepeerError):
    """A trickle exchange failed. ``seq`` is the segment concerned (-1 when none)."""

    def __init__(self, message: str, url: str = "", seq: int = -1) -> None:
        super().__init__(message, url)
        self.seq = seq


class TrickleChannelGone(TrickleError):
    """The channel does not exist (HTTP 404). Publishers stop, subscribers end."""


class TrickleChannelClosed(TrickleChannelGone):
    """The server marked the channel closed (``Lp-Trickle-Closed: terminated``)."""


class TrickleSegmentDropped(TrickleError):
    """A segment could not be published and was dropped (closed on the server); the next one
    can still be written."""


class TrickleSegmentBroken(TrickleError):
    """A segment being received ended abnormally; its bytes are incomplete."""


class TrickleSegmentTooLarge(TrickleError):
    """A segment went over ``limit`` bytes."""

    def __init__(self, limit: int, url: str = "", seq: int = -1) -> None:
        super().__init__(f"segment exceeds the {limit} byte limit", url, seq)
        self.limit = limit


class TrickleUnavailable(TrickleError):
    """The subscriber gave up: too many consecutive request errors."""


class TrickleLimitError(TrickleError):
    """A configured server limit was reached (channel count, subscribers per segment)."""


class TrickleUsageError(TrickleError):
    """The caller misused the API (not a peer's fault)."""
