"""RTMP ingest: a sans-IO protocol core and a thin asyncio server around it.

Core (no asyncio): :mod:`.handshake`, :mod:`.chunk`, :mod:`.control`, :mod:`.amf0`,
:mod:`.commands`, :mod:`.aggregate`, :mod:`.url`, :mod:`.timestamps`, :mod:`.events`,
:mod:`.connection` (the state machine). Adapter: :mod:`.conn` (one socket), :mod:`.server`.
"""

from .connection import ConnectionConfig, ServerConnection
from .server import RTMPServer
from .types import PublishHandler, PublishRequest, PublishSink, RTMPLimits

__all__ = [
    "ConnectionConfig",
    "PublishHandler",
    "PublishRequest",
    "PublishSink",
    "RTMPLimits",
    "RTMPServer",
    "ServerConnection",
]
