"""RTMP ingest: a sans-IO protocol core and a thin asyncio server around it.

Core (no asyncio): :mod:`.handshake`, :mod:`.chunk`, :mod:`.control`, :mod:`.amf0`,
:mod:`.commands`, :mod:`.aggregate`, :mod:`.url`, :mod:`.timestamps`, :mod:`.events`,
:mod:`.statemachine` (``ServerConnection``, the state machine). Adapter (asyncio):
:mod:`.aioconn` (``RTMPConnection``, one socket), :mod:`.server`.
"""

from .server import RTMPServer
from .statemachine import ConnectionConfig, ServerConnection
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
