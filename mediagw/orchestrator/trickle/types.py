"""The seams inside the trickle server: what in-process readers and writers (``local``) and the
HTTP handlers and front ends (``handlers``, ``asgi``, ``aiohttp_app``) need of a channel and of
the server.

``Channel`` and ``TrickleServer`` implement them. Both also build those users
(``Channel.subscribe``, ``TrickleServer.asgi_app``), so the users see these protocols, which sit
below all of them, and no import points back up.
"""

from __future__ import annotations

from typing import Protocol

from .config import TrickleLimits, TrickleServerConfig, TrickleStats, WriteResult
from .rules import GetPlan, PostPlan
from .segment import Segment

__all__ = ["ChannelHost", "ChannelPort"]


class ChannelPort(Protocol):
    """One channel's publishing and subscribing steps (``channel.Channel``)."""

    name: str
    mime: str
    limits: TrickleLimits

    @property
    def closed(self) -> bool: ...

    @property
    def next_write(self) -> int: ...

    def open_post(self, seq: int, *, reset: bool = False) -> PostPlan[Segment]: ...

    def write(self, seg: Segment, data: bytes) -> WriteResult: ...

    def end_post(self, seg: Segment) -> None: ...

    def abandon_post(self, seg: Segment) -> None: ...

    def release_post(self, seg: Segment) -> None: ...

    def open_get(self, seq: int) -> GetPlan[Segment]: ...

    def enter(self, seg: Segment) -> bool: ...

    def leave(self, seg: Segment, *, cut: bool = False) -> None: ...

    def drop(self, seq: int) -> bool: ...


class ChannelHost(Protocol):
    """The channels of one trickle endpoint (``server.TrickleServer``)."""

    config: TrickleServerConfig
    stats: TrickleStats

    @property
    def limits(self) -> TrickleLimits: ...

    def create_channel(self, name: str, mime: str = "video/MP2T") -> ChannelPort: ...

    def get_channel(self, name: str) -> ChannelPort | None: ...

    def channel_names(self) -> list[str]: ...

    def close_channel(self, name: str, *, linger: float = 0.0) -> bool: ...
