"""Where a publisher wants to go: ``rtmp://HOST[:PORT]/APP/NAME?QUERY``.

Clients split that URL between two commands, and not all the same way:

- ffmpeg and OBS: connect ``app="live"``, ``tcUrl="rtmp://host:1935/live"``; publish ``"NAME?k=v"``;
- some encoders put the query on the app (``app="live?key=x"``, and on the tcUrl);
- the query may also be on both.

:func:`parse_target` merges them: query pairs from the tcUrl, then the app, then the stream name
(later wins). The tcUrl is returned without its query, so it can be logged and rebuilt.
Query values may hold secrets (stream keys): callers log ``sorted(query)`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_QUERY_FIELDS",
    "BadTarget",
    "PublishTarget",
    "parse_target",
    "split_query",
]

MAX_NAME_LENGTH = 1024  # app, name and tcUrl each, in characters
MAX_QUERY_FIELDS = 64


class BadTarget(ValueError):
    """The app / stream name / query is unusable (the publish gets ``BadName``)."""


@dataclass(frozen=True, slots=True)
class PublishTarget:
    app: str
    name: str
    query: dict[str, str]
    tc_url: str  # without query string


def split_query(text: str) -> tuple[str, dict[str, str]]:
    """``"name?a=1&b"`` -> ``("name", {"a": "1", "b": ""})``."""
    base, sep, qs = text.partition("?")
    if not sep:
        return base, {}
    try:
        pairs = parse_qsl(qs, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise BadTarget(f"more than {MAX_QUERY_FIELDS} query fields") from None
    return base, dict(pairs)


def parse_target(app: str, name: str, tc_url: str) -> PublishTarget:
    """Split app, stream name and tcUrl into a :class:`PublishTarget`. Raises ``BadTarget``."""
    for what, text in (("app", app), ("stream name", name), ("tcUrl", tc_url)):
        if len(text) > MAX_NAME_LENGTH:
            raise BadTarget(f"{what} longer than {MAX_NAME_LENGTH} characters")
        if any(ord(c) < 0x20 or c == "\x7f" for c in text):
            raise BadTarget(f"{what} contains control characters")
    tc_base, query = split_query(tc_url)
    app_base, app_query = split_query(app)
    name_base, name_query = split_query(name)
    query.update(app_query)
    query.update(name_query)
    app_base = app_base.strip("/")
    name_base = name_base.strip("/")
    if not name_base:
        raise BadTarget("empty stream name")
    return PublishTarget(app_base, name_base, query, tc_base)
