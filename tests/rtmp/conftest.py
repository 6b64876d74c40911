"""Fixtures shared by the RTMP server tests; a module sets its limits with a ``limits`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from rtmp.rtmp_testkit import RecordingHandler

from mediagw.ingest.rtmp.server import RTMPLimits, RTMPServer


@pytest.fixture
def limits() -> RTMPLimits:
    return RTMPLimits()


@pytest.fixture
async def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def server(handler: RecordingHandler, limits: RTMPLimits) -> AsyncIterator[RTMPServer]:
    srv = RTMPServer(handler, limits=limits, host="127.0.0.1", port=0)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()
