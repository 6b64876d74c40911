"""JsonRpcChain against a fake JSON-RPC server on 127.0.0.1 (payments spec §12), StaticChain."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from mediatools import serve_app
from payments.pay_testkit import hx, section

from mediagw.clock import ManualClock
from mediagw.eth.abi import (
    ARBITRUM_CONTRACTS,
    ARBITRUM_CONTROLLER,
    SELECTORS,
    contract_id,
    selector,
)
from mediagw.payments.chain import ChainReader, JsonRpcChain, StaticChain
from mediagw.payments.errors import ChainError
from mediagw.payments.params import SenderInfo

SEL = {c["function"]: hx(c["expected_selector"]) for c in section("abi_selectors")}
IDS = {c["name"]: hx(c["expected_id"]) for c in section("controller_ids")}
SENDER = b"\x5e" * 20
ORCH = b"\x0a" * 20
BLOCK_HASH = b"\xab" * 32


def word(value: int) -> str:
    return value.to_bytes(32, "big").hex()


def addr_word(address: bytes) -> str:
    return address.rjust(32, b"\x00").hex()


def test_selectors_and_ids_match_vectors() -> None:
    for function, sel in SEL.items():
        assert selector(function) == sel == SELECTORS[function]
    for name, cid in IDS.items():
        assert contract_id(name) == cid


class FakeNode:
    """Answers only the exact ABI-encoded calls the vectors define."""

    def __init__(self) -> None:
        broker, rounds, bonding = (
            ARBITRUM_CONTRACTS[n] for n in ("TicketBroker", "RoundsManager", "BondingManager")
        )
        self.calls: dict[tuple[bytes, bytes], str] = {
            (ARBITRUM_CONTROLLER, SEL["getContract(bytes32)"] + IDS["TicketBroker"]): addr_word(
                broker
            ),
            (ARBITRUM_CONTROLLER, SEL["getContract(bytes32)"] + IDS["RoundsManager"]): addr_word(
                rounds
            ),
            (ARBITRUM_CONTROLLER, SEL["getContract(bytes32)"] + IDS["BondingManager"]): addr_word(
                bonding
            ),
            (broker, SEL["getSenderInfo(address)"] + SENDER.rjust(32, b"\x00")): word(10**18)
            + word(0)
            + word(5 * 10**17)
            + word(7),
            (rounds, SEL["lastInitializedRound()"]): word(3500),
            (rounds, SEL["currentRound()"]): word(3501),
            (
                rounds,
                SEL["blockHashForRound(uint256)"] + (3500).to_bytes(32, "big"),
            ): BLOCK_HASH.hex(),
            (bonding, SEL["transcoderTotalStake(address)"] + ORCH.rjust(32, b"\x00")): word(12345),
            (bonding, SEL["isActiveTranscoder(address)"] + ORCH.rjust(32, b"\x00")): word(1),
        }
        self.l1_block = 0x1234
        self.block_requests = 0
        self.requests: list[dict[str, Any]] = []
        self.override: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.override is not None:
            return await self.override(request)
        body = await request.json()
        self.requests.append(body)
        assert body["jsonrpc"] == "2.0"
        method, params = body["method"], body["params"]
        if method == "eth_getBlockByNumber":
            assert params == ["latest", False]
            self.block_requests += 1
            result: Any = {
                "number": "0x99999",
                "l1BlockNumber": hex(self.l1_block),
                "transactions": [],
            }
        elif method == "eth_call":
            call, tag = params
            assert tag == "latest"
            key = (hx(call["to"]), hx(call["data"]))
            if key not in self.calls:
                return web.json_response(
                    {
                        "jsonrpc": "2.0",
                        "id": body["id"],
                        "error": {"code": -32000, "message": "execution reverted"},
                    }
                )
            result = "0x" + self.calls[key]
        else:
            return web.json_response(
                {
                    "jsonrpc": "2.0",
                    "id": body["id"],
                    "error": {"code": -32601, "message": "method not found"},
                }
            )
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})


@pytest.fixture
async def node() -> AsyncIterator[tuple[FakeNode, str]]:
    fake = FakeNode()
    app = web.Application()
    app.router.add_post("/rpc/secret-key", fake.handle)
    async with serve_app(app) as base:
        yield fake, f"{base}/rpc/secret-key"


async def test_reads(node: tuple[FakeNode, str]) -> None:
    fake, url = node
    async with JsonRpcChain(url) as chain:
        reader: ChainReader = chain
        assert await reader.sender_info(SENDER) == SenderInfo(10**18, 0, 5 * 10**17, 7)
        assert await reader.last_initialized_round() == 3500
        assert await reader.current_round() == 3501
        assert await reader.block_hash_for_round(3500) == BLOCK_HASH
        assert await chain.transcoder_total_stake(ORCH) == 12345
        assert await chain.is_active_transcoder(ORCH) is True
        assert await reader.last_l1_block() == 0x1234
        lookups = [
            r
            for r in fake.requests
            if r["method"] == "eth_call" and hx(r["params"][0]["to"]) == ARBITRUM_CONTROLLER
        ]
        assert len(lookups) == 3  # each contract resolved once, then cached
        with pytest.raises(ChainError, match="execution reverted"):
            await chain.sender_info(b"\x01" * 20)


async def test_l1_block_is_cached_and_polled(node: tuple[FakeNode, str]) -> None:
    fake, url = node
    clock = ManualClock(100.0)
    async with JsonRpcChain(url, clock=clock, poll_interval=5.0) as chain:
        assert await chain.last_l1_block() == 0x1234
        fake.l1_block = 0x1235
        clock.now += 4.9
        assert await chain.last_l1_block() == 0x1234  # cached
        assert fake.block_requests == 1
        clock.now += 0.2
        assert await chain.last_l1_block() == 0x1235
        assert fake.block_requests == 2


async def test_background_poller(node: tuple[FakeNode, str]) -> None:
    import asyncio

    fake, url = node
    chain = JsonRpcChain(url, poll_interval=0.01)
    chain.start()
    for _ in range(200):
        if fake.block_requests >= 3:
            break
        await asyncio.sleep(0.01)
    await chain.aclose()
    assert fake.block_requests >= 3


def reply(
    status: int = 200, body: bytes | None = None, doc: Any = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def make(_: web.Request) -> web.StreamResponse:
        data = body if body is not None else json.dumps(doc).encode()
        return web.Response(status=status, body=data, content_type="application/json")

    return make


async def chunked_flood(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        for _ in range(64):
            await resp.write(b" " * 65536)
    except ConnectionError:
        pass
    return resp


@pytest.mark.parametrize(
    ("override", "match"),
    [
        (reply(status=500, body=b"oops"), "HTTP 500"),
        (reply(body=b"not json"), "not JSON"),
        (reply(body=b"[" * 100_000), "not JSON"),  # RecursionError escaped (bench fuzz)
        (reply(doc=[1, 2]), "not a JSON-RPC object"),
        (reply(doc={"jsonrpc": "2.0", "id": 1}), "no result"),
        (reply(doc={"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "boom"}}), "boom"),
        (reply(doc={"jsonrpc": "2.0", "id": 1, "result": "0xzz"}), "hex"),
        (reply(doc={"jsonrpc": "2.0", "id": 1, "result": "0x" + "00" * 31}), "at least 32"),
        (reply(doc={"jsonrpc": "2.0", "id": 1, "result": "0x" + "00" * 32}), "not registered"),
        (reply(doc={"jsonrpc": "2.0", "id": 1, "result": "0x" + "ff" * 32}), "not an address"),
        (reply(body=b"[" + b" " * (2 << 20) + b"]"), "larger than"),
        (chunked_flood, "larger than"),
    ],
)
async def test_contract_read_errors(node: tuple[FakeNode, str], override: Any, match: str) -> None:
    fake, url = node
    fake.override = override
    async with JsonRpcChain(url) as chain:
        with pytest.raises(ChainError, match=match) as info:
            await chain.current_round()
        assert "secret-key" not in str(info.value)


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ({"number": "0x10"}, "no 'l1BlockNumber'"),
        ({"l1BlockNumber": 5}, "hex quantity"),
        ({"l1BlockNumber": "0x"}, "hex quantity"),
        (None, "no latest block"),
    ],
)
async def test_block_errors(node: tuple[FakeNode, str], result: Any, match: str) -> None:
    fake, url = node
    fake.override = reply(doc={"jsonrpc": "2.0", "id": 1, "result": result})
    async with JsonRpcChain(url) as chain:
        with pytest.raises(ChainError, match=match):
            await chain.last_l1_block()


async def test_l1_chain_block_field(node: tuple[FakeNode, str]) -> None:
    _, url = node
    async with JsonRpcChain(url, block_field="number") as chain:
        assert await chain.last_l1_block() == 0x99999


async def test_unreachable() -> None:
    async with JsonRpcChain("http://127.0.0.1:9/rpc/secret-key", timeout=2.0) as chain:
        with pytest.raises(ChainError, match="unreachable") as info:
            await chain.last_l1_block()
        assert "secret-key" not in str(info.value)


async def test_static_chain() -> None:
    chain = StaticChain(l1_block=7, round=3, initialized_round=3, block_hashes={3: BLOCK_HASH})
    chain.senders[SENDER] = SenderInfo(1, 0, 1, 0)
    reader: ChainReader = chain
    assert await reader.last_l1_block() == 7
    assert await reader.current_round() == 3
    assert await reader.last_initialized_round() == 3
    assert await reader.block_hash_for_round(3) == BLOCK_HASH
    assert await reader.block_hash_for_round(4) == bytes(32)
    assert await reader.sender_info(SENDER) == SenderInfo(1, 0, 1, 0)
    assert await reader.sender_info(b"\x00" * 20) == SenderInfo(0, 0, 0, 0)
