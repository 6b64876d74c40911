"""Fault switches, as a gateway's failover logic will meet them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from google.protobuf.message import DecodeError
from orchestrator.orch_h2 import h2_post
from orchestrator.orch_testkit import (
    GATEWAY_KEY,
    ORCH_KEY,
    P144,
    get_orchestrator,
    headers,
    payment,
    post,
    request_for,
    segdata,
)

from mediagw.livepeer.proto import net
from mediagw.orchestrator import Faults, OrchestratorConfig, ReferenceOrchestrator


@pytest.fixture
async def orch(tmp_path: Path) -> AsyncIterator[ReferenceOrchestrator]:
    config = OrchestratorConfig(
        priced=True, private_key=ORCH_KEY, price_per_unit=2, work_dir=tmp_path,
        x264_preset="ultrafast",
    )  # fmt: skip
    async with ReferenceOrchestrator(config) as o:
        yield o


class Gateway:
    """Pays and sends segments the way a gateway does, adopting every new info."""

    def __init__(self, orch: ReferenceOrchestrator, http: aiohttp.ClientSession, data: bytes):
        self.orch, self.http, self.data = orch, http, data
        self.info = net.OrchestratorInfo()
        self.seq = 0
        self.nonce = 0  # per ticket params; never reused, even after a failed request

    async def start(self) -> None:
        self.info = await get_orchestrator(self.orch, request_for(GATEWAY_KEY))

    def request(self) -> tuple[dict[str, str], bytes]:
        sd = segdata(self.info, self.data, seq=self.seq, key=GATEWAY_KEY, profiles=(P144,))
        self.seq += 1
        self.nonce += 1
        return headers(sd, payment(self.info, nonces=[self.nonce])), self.data

    async def send(self) -> net.TranscodeResult:
        hdrs, body = self.request()
        reply = await post(self.http, self.orch, "/segment", hdrs, body)
        result = reply.result
        self.info, self.nonce = result.info, 0
        return result


async def test_fail_after_n_segments(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    orch.config.faults.fail_segments = True
    orch.config.faults.after_segments = 2
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    kinds = [(await gw.send()).WhichOneof("result") for _ in range(3)]
    assert kinds == ["data", "data", "error"]
    assert orch.stats.segments_failed == 1 and orch.stats.faults_injected == 1


async def test_error_result_text(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    orch.config.faults.fail_segments = True
    orch.config.faults.error_text = "OrchestratorBusy"
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    result = await gw.send()
    assert result.error == "OrchestratorBusy" and result.info.auth_token == gw.info.auth_token


async def test_http_500(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    orch.config.faults.http_500 = True
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    hdrs, body = gw.request()
    reply = await post(http, orch, "/segment", hdrs, body)
    assert (reply.status, reply.text) == (500, "Internal Server Error\n")


async def test_stall_never_answers(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    orch.config.faults.stall = True
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    hdrs, body = gw.request()
    timeout = aiohttp.ClientTimeout(total=0.8)
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(orch.url + "/segment", data=body, headers=hdrs, ssl=False,
                             timeout=timeout):  # fmt: skip
            pass
    # the orchestrator is still fine for others
    orch.config.faults.stall = False
    assert (await gw.send()).WhichOneof("result") == "data"


async def test_delays(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    orch.config.faults.delay_headers = 0.5
    orch.config.faults.delay_result = 0.5
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    hdrs, body = gw.request()
    started = time.perf_counter()
    async with http.post(orch.url + "/segment", data=body, headers=hdrs, ssl=False) as resp:
        headers_at = time.perf_counter() - started
        assert resp.status == 200
        result = net.TranscodeResult.FromString(await resp.read())
        total = time.perf_counter() - started
    assert headers_at >= 0.5 and total >= 1.0
    assert result.WhichOneof("result") == "data"


@pytest.mark.parametrize("http_version", ["1.1", "2"])
async def test_drop_connection_mid_response(
    orch: ReferenceOrchestrator,
    http: aiohttp.ClientSession,
    segment_small: bytes,
    http_version: str,
) -> None:
    orch.config.faults.drop_connection = True
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    hdrs, body = gw.request()
    if http_version == "1.1":
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.post(orch.url + "/segment", data=body, headers=hdrs,
                                 ssl=False) as resp:  # fmt: skip
                assert resp.status == 200
                await resp.read()
    else:
        reply = await h2_post(orch, "/segment", hdrs, body)
        assert reply.status == 200  # the early 200 came, then the connection died
        assert not reply.complete and reply.error is not None
    assert orch.stats.faults_injected == 1


async def test_garbage_body(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    orch.config.faults.garbage = True
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    hdrs, body = gw.request()
    reply = await post(http, orch, "/segment", hdrs, body)
    assert reply.status == 200
    with pytest.raises(DecodeError):
        net.TranscodeResult.FromString(reply.body)


async def test_price_raised_after_n_segments(
    orch: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    orch.config.faults.price_factor = 3.0
    orch.config.faults.after_segments = 2
    gw = Gateway(orch, http, segment_small)
    await gw.start()
    prices = [gw.info.price_info.pricePerUnit]
    for _ in range(3):
        result = await gw.send()
        assert result.WhichOneof("result") == "data"
        prices.append(result.info.price_info.pricePerUnit)
    # once 2 segments have arrived every new info (here: the 2nd result's) quotes 3x the price,
    # with ticket params bound to it
    assert prices == [2, 2, 6, 6]
    assert (await get_orchestrator(orch, request_for(GATEWAY_KEY))).price_info.pricePerUnit == 6
    assert (await gw.send()).WhichOneof("result") == "data"  # paying at the new price works


def test_faults_default_inactive() -> None:
    faults = Faults()
    assert faults.active(0)
    assert not any([faults.fail_segments, faults.http_500, faults.stall, faults.garbage])
    assert not Faults(after_segments=3).active(2) and Faults(after_segments=3).active(3)
