"""Fixtures for whole-gateway tests: a running Gateway on ephemeral loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mediagw.config import Settings
from mediagw.gateway import Gateway

GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway_factory(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    started: list[Gateway] = []

    async def start(**overrides: Any) -> Gateway:
        values: dict[str, Any] = {
            "rtmp_addr": "127.0.0.1:0",
            "http_addr": "127.0.0.1:0",
            "hls_window": 200,
            "data_dir": str(tmp_path / "mediagw-data"),
        }
        values.update(overrides)
        gw = Gateway(Settings(**values))
        await gw.start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.stop()


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> Gateway:
    return await gateway_factory()
