"""Stored streams on an in-process ``Gateway``: make one for a key, its RTMP URL, whether it is
live (the stream-limit tests, on one node and across nodes). ``GatewayFactory``: the type of the
``gateways`` fixture of tests/platform/conftest.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mediagw.gateway import Gateway
from mediagw.platform.store import Stream
from mediagw.platform.tenancy import Tenant

GatewayFactory = Callable[..., Awaitable[Gateway]]  # await factory(**settings) -> a started one


async def stored_stream(gw: Gateway, name: str, tenant: Tenant) -> Stream:
    assert gw.streams is not None
    return await gw.streams.create({"name": name, "profiles": []}, tenant=tenant)


def rtmp_url(gw: Gateway, stream: Stream) -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream.stream_key}"


def is_live(gw: Gateway, stream: Stream) -> bool:
    hub = gw.hub.get(stream.playback_id)
    return hub is not None and hub.live
