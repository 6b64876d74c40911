"""Chain reads a paying gateway needs (payments spec §12.2), behind a small Protocol.

``JsonRpcChain`` speaks Ethereum JSON-RPC over HTTP (aiohttp): ``eth_call`` with ABI-encoded
calls, contract addresses resolved once through ``Controller.getContract(keccak256(name))``
(go-livepeer eth/client.go) and cross-checked against the Arbitrum One deployment table, and the
last L1 block from ``eth_getBlockByNumber("latest", false)``'s ``l1BlockNumber`` (Arbitrum),
cached and refreshed every ``poll_interval`` seconds (``start()`` runs a background poller; a
stale cache is refreshed inline). Answers are size-limited; every failure is a ``ChainError``
whose text never contains the endpoint URL (it often carries an API key).

``StaticChain`` returns fixed values: tests and off-chain setups.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp

from mediagw.eth.abi import (
    ARBITRUM_CONTRACTS,
    ARBITRUM_CONTROLLER,
    AbiError,
    call_data,
    contract_id,
    decode_address,
    decode_bool,
    decode_words,
    encode_address,
    encode_uint,
)
from mediagw.eth.crypto import checksum

from ..httpbody import BodyTooLarge, read_limited
from .errors import ChainError
from .params import SenderInfo

__all__ = ["ChainReader", "JsonRpcChain", "SenderInfo", "StaticChain"]

log = logging.getLogger("mediagw.chain")

MAX_RESPONSE_BYTES = 1 << 20
_T = TypeVar("_T")


class ChainReader(Protocol):
    async def last_l1_block(self) -> int: ...
    async def sender_info(self, address: bytes) -> SenderInfo: ...
    async def last_initialized_round(self) -> int: ...
    async def block_hash_for_round(self, round_: int) -> bytes: ...
    async def current_round(self) -> int: ...


@dataclass
class StaticChain:
    """Fixed answers; mutate the fields to move time forward in tests."""

    l1_block: int = 0
    round: int = 0
    initialized_round: int = 0
    block_hashes: dict[int, bytes] = field(default_factory=dict)
    senders: dict[bytes, SenderInfo] = field(default_factory=dict)

    async def last_l1_block(self) -> int:
        return self.l1_block

    async def sender_info(self, address: bytes) -> SenderInfo:
        return self.senders.get(address, SenderInfo(0, 0, 0, 0))

    async def last_initialized_round(self) -> int:
        return self.initialized_round

    async def block_hash_for_round(self, round_: int) -> bytes:
        return self.block_hashes.get(round_, bytes(32))

    async def current_round(self) -> int:
        return self.round


class JsonRpcChain:
    def __init__(
        self,
        url: str,
        *,
        controller: bytes = ARBITRUM_CONTROLLER,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = 5.0,
        timeout: float = 10.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        block_field: str = "l1BlockNumber",
    ) -> None:
        if len(controller) != 20:
            raise ValueError("controller must be a 20-byte address")
        self.url = url
        self.controller = controller
        self.block_field = block_field
        self._session = session
        self._own_session = session is None
        self._clock = clock
        self._poll_interval = poll_interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_bytes = max_response_bytes
        self._ids = itertools.count(1)
        self._contracts: dict[str, bytes] = {}
        self._contract_lock = asyncio.Lock()
        self._block: tuple[int, float] | None = None
        self._block_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> JsonRpcChain:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        """Poll the L1 block in the background every ``poll_interval`` seconds."""
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _poll(self) -> None:
        while True:
            try:
                await self._refresh_block()
            except ChainError as exc:
                log.warning("L1 block poll failed", extra={"error": str(exc)})
            await asyncio.sleep(self._poll_interval)

    # --- JSON-RPC ------------------------------------------------------------------------

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with self._session.post(self.url, json=body, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise ChainError(f"{method}: JSON-RPC endpoint answered HTTP {resp.status}")
                if (resp.content_length or 0) > self._max_bytes:
                    raise ChainError(f"{method}: answer larger than {self._max_bytes} bytes")
                try:
                    raw = await read_limited(resp, self._max_bytes)
                except BodyTooLarge:
                    raise ChainError(
                        f"{method}: answer larger than {self._max_bytes} bytes"
                    ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChainError(
                f"{method}: JSON-RPC endpoint unreachable ({type(exc).__name__})"
            ) from None
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise ChainError(f"{method}: answer is not JSON") from None
        if not isinstance(doc, dict):
            raise ChainError(f"{method}: answer is not a JSON-RPC object")
        err = doc.get("error")
        if err is not None:
            code = err.get("code") if isinstance(err, dict) else None
            msg = err.get("message") if isinstance(err, dict) else err
            raise ChainError(f"{method}: JSON-RPC error {code}: {str(msg)[:200]}")
        if "result" not in doc:
            raise ChainError(f"{method}: answer has no result")
        return doc["result"]

    async def eth_call(self, to: bytes, data: bytes, what: str = "eth_call") -> bytes:
        result = await self._rpc(
            "eth_call", [{"to": "0x" + to.hex(), "data": "0x" + data.hex()}, "latest"]
        )
        return _hex_bytes(result, what)

    # --- contracts -----------------------------------------------------------------------

    async def contract(self, name: str) -> bytes:
        """Address of a Livepeer contract from the Controller (cached)."""
        if name in self._contracts:
            return self._contracts[name]
        async with self._contract_lock:
            if name not in self._contracts:
                data = call_data("getContract(bytes32)", contract_id(name))
                answer = await self.eth_call(
                    self.controller, data, f"Controller.getContract({name})"
                )
                address = _decode(lambda: decode_address(decode_words(answer, 1)[0]), name)
                if not any(address):
                    raise ChainError(f"contract {name} is not registered in the Controller")
                known = ARBITRUM_CONTRACTS.get(name)
                if self.controller == ARBITRUM_CONTROLLER and known and known != address:
                    log.warning(
                        "Controller returned an unexpected contract address",
                        extra={
                            "contract": name,
                            "got": checksum(address),
                            "table": checksum(known),
                        },
                    )
                self._contracts[name] = address
        return self._contracts[name]

    async def _call(
        self, contract: str, signature: str, *words: bytes, count: int = 1
    ) -> list[bytes]:
        address = await self.contract(contract)
        what = f"{contract}.{signature}"
        answer = await self.eth_call(address, call_data(signature, *words), what)
        return _decode(lambda: decode_words(answer, count), what)

    # --- ChainReader ---------------------------------------------------------------------

    async def _refresh_block(self) -> int:
        async with self._block_lock:
            if self._block is not None and self._clock() - self._block[1] < self._poll_interval:
                return self._block[0]
            block = await self._rpc("eth_getBlockByNumber", ["latest", False])
            if not isinstance(block, dict):
                raise ChainError("eth_getBlockByNumber: no latest block")
            if self.block_field not in block:
                raise ChainError(
                    f"latest block has no {self.block_field!r}"
                    " (not an Arbitrum node? use block_field='number' on an L1 chain)"
                )
            number = _hex_int(block[self.block_field], self.block_field)
            self._block = (number, self._clock())
            return number

    async def last_l1_block(self) -> int:
        if self._block is not None and self._clock() - self._block[1] < self._poll_interval:
            return self._block[0]
        return await self._refresh_block()

    async def sender_info(self, address: bytes) -> SenderInfo:
        words = await self._call(
            "TicketBroker", "getSenderInfo(address)", encode_address(address), count=4
        )
        d, w, f, c = (int.from_bytes(x, "big") for x in words)
        return SenderInfo(
            deposit=d,
            withdraw_round=w,
            reserve_funds_remaining=f,
            reserve_claimed_in_current_round=c,
        )

    async def last_initialized_round(self) -> int:
        (word,) = await self._call("RoundsManager", "lastInitializedRound()")
        return int.from_bytes(word, "big")

    async def current_round(self) -> int:
        (word,) = await self._call("RoundsManager", "currentRound()")
        return int.from_bytes(word, "big")

    async def block_hash_for_round(self, round_: int) -> bytes:
        (word,) = await self._call(
            "RoundsManager", "blockHashForRound(uint256)", encode_uint(round_)
        )
        return word

    async def transcoder_total_stake(self, address: bytes) -> int:
        (word,) = await self._call(
            "BondingManager", "transcoderTotalStake(address)", encode_address(address)
        )
        return int.from_bytes(word, "big")

    async def is_active_transcoder(self, address: bytes) -> bool:
        (word,) = await self._call(
            "BondingManager", "isActiveTranscoder(address)", encode_address(address)
        )
        return _decode(lambda: decode_bool(word), "isActiveTranscoder")


def _decode(fn: Callable[[], _T], what: str) -> _T:
    try:
        return fn()
    except AbiError as exc:
        raise ChainError(f"{what}: {exc}") from None


def _hex_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise ChainError(f"{what}: result is not 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ChainError(f"{what}: result is not 0x-prefixed hex") from None


def _hex_int(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x") or not 2 < len(value) <= 66:
        raise ChainError(f"{what}: not a hex quantity")
    try:
        return int(value[2:], 16)
    except ValueError:
        raise ChainError(f"{what}: not a hex quantity") from None
