"""Fixtures of the remote signer tests: a priced reference orchestrator, a signer service on an
ephemeral port with an injected clock, the gateway's client, and a GetOrchestrator client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from signer_service.signer_testkit import SIGNER_KEY, START, NsClock

from mediagw.clock import ManualClock
from mediagw.livepeer.rpc import OrchestratorRPC
from mediagw.livepeer.tls import PinStore
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.payments.remote import RemoteSigner
from mediagw.signer_service import SignerConfig, SignerServer

SignerFactory = Callable[..., AbstractAsyncContextManager[SignerServer]]


@pytest.fixture
def clock() -> NsClock:
    return NsClock()


@pytest.fixture
def orch_clock() -> ManualClock:
    return ManualClock(float(START))


@pytest.fixture
async def priced(tmp_path: Path, orch_clock: ManualClock) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        priced=True, price_per_unit=10, pixels_per_unit=1, work_dir=tmp_path, clock=orch_clock
    )
    async with ReferenceOrchestrator(config) as orch:
        yield orch


@pytest.fixture
def make_signer(clock: NsClock) -> SignerFactory:
    @asynccontextmanager
    async def make(**kwargs: Any) -> AsyncIterator[SignerServer]:
        kwargs.setdefault("private_key", SIGNER_KEY)
        kwargs.setdefault("clock_ns", clock)
        async with SignerServer(SignerConfig(port=0, **kwargs)) as server:
            yield server

    return make


@pytest.fixture
async def signer(make_signer: SignerFactory) -> AsyncIterator[SignerServer]:
    async with make_signer() as server:
        yield server


@pytest.fixture
async def client(signer: SignerServer) -> AsyncIterator[RemoteSigner]:
    async with RemoteSigner(signer.url) as remote:
        yield remote


@pytest.fixture
async def rpc() -> AsyncIterator[OrchestratorRPC]:
    client = OrchestratorRPC(PinStore())
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
