"""The trickle server's routes (spec §4.1): channel names and request path parsing. Sans-IO."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mediagw.livepeer.trickle.wire import parse_int

__all__ = [
    "MAX_NAME_LEN",
    "Route",
    "RouteError",
    "RouteKind",
    "parse_route",
    "valid_channel_name",
]

MAX_NAME_LEN = 256


def valid_channel_name(name: str) -> bool:
    """A channel name is one non-empty path part, printable, at most ``MAX_NAME_LEN`` long."""
    return (
        0 < len(name) <= MAX_NAME_LEN
        and "/" not in name
        and name.isprintable()
        and name not in (".", "..")
    )


class RouteKind(Enum):
    CREATE = "POST /{ch}"
    PUBLISH = "POST /{ch}/{seq}"
    SUBSCRIBE = "GET /{ch}/{seq}"
    NEXT = "GET /{ch}/next"
    DROP = "DELETE /{ch}/{seq}"
    DELETE = "DELETE /{ch}"


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    channel: str
    seq: int | None = None  # None: the seq part was not an integer (400 "Invalid idx")


@dataclass(frozen=True, slots=True)
class RouteError:
    status: int
    text: str


_BY_SHAPE = {
    ("POST", 1): RouteKind.CREATE,
    ("DELETE", 1): RouteKind.DELETE,
    ("POST", 2): RouteKind.PUBLISH,
    ("GET", 2): RouteKind.SUBSCRIBE,
    ("DELETE", 2): RouteKind.DROP,
}


def parse_route(method: str, tail: str) -> Route | RouteError:
    """``tail`` is the request path after the base path (no leading slash)."""
    parts = tail.split("/")
    if len(parts) not in (1, 2) or not valid_channel_name(parts[0]):
        return RouteError(404, "404 page not found")
    kind = _BY_SHAPE.get((method, len(parts)))
    if kind is None:
        return RouteError(405, "Method Not Allowed")
    if len(parts) == 1:
        return Route(kind, parts[0])
    if kind is RouteKind.SUBSCRIBE and parts[1] == "next":
        return Route(RouteKind.NEXT, parts[0])
    return Route(kind, parts[0], parse_int(parts[1]))
