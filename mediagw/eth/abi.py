"""The few Ethereum ABI pieces the gateway's contract reads need (payments spec §12).

Static types only: a call is ``selector || 32-byte words``, an answer a run of 32-byte words.
"""

from __future__ import annotations

from .crypto import keccak256

__all__ = [
    "ARBITRUM_CONTRACTS",
    "ARBITRUM_CONTROLLER",
    "SELECTORS",
    "AbiError",
    "call_data",
    "contract_id",
    "decode_address",
    "decode_bool",
    "decode_words",
    "encode_address",
    "encode_uint",
    "selector",
]

ARBITRUM_CONTROLLER = bytes.fromhex("D8E8328501E9645d16Cf49539efC04f734606ee4")

# livepeer/protocol deployments/arbitrumMainnet: a cross-check for Controller lookups.
ARBITRUM_CONTRACTS: dict[str, bytes] = {
    "TicketBroker": bytes.fromhex("a8bB618B1520E284046F3dFc448851A1Ff26e41B"),
    "RoundsManager": bytes.fromhex("dd6f56DcC28D3F5f27084381fE8Df634985cc39f"),
    "BondingManager": bytes.fromhex("35Bcf3c30594191d53231E4FF333E8A770453e40"),
}


class AbiError(ValueError):
    """An answer that does not decode as the expected static ABI types."""


def selector(signature: str) -> bytes:
    """First 4 bytes of keccak256 of a canonical function signature."""
    return keccak256(signature.encode("ascii"))[:4]


SELECTORS: dict[str, bytes] = {
    sig: selector(sig)
    for sig in (
        "getContract(bytes32)",
        "getSenderInfo(address)",
        "currentRound()",
        "lastInitializedRound()",
        "blockHashForRound(uint256)",
        "currentRoundInitialized()",
        "transcoderTotalStake(address)",
        "isActiveTranscoder(address)",
    )
}


def contract_id(name: str) -> bytes:
    """Controller.getContract key: keccak256 of the contract name (go-livepeer eth/client.go)."""
    return keccak256(name.encode("ascii"))


def encode_uint(value: int) -> bytes:
    if not 0 <= value < 1 << 256:
        raise AbiError("uint256 out of range")
    return value.to_bytes(32, "big")


def encode_address(address: bytes) -> bytes:
    if len(address) != 20:
        raise AbiError("address must be 20 bytes")
    return address.rjust(32, b"\x00")


def call_data(signature: str, *words: bytes) -> bytes:
    for w in words:
        if len(w) != 32:
            raise AbiError("call arguments are 32-byte words")
    return (SELECTORS.get(signature) or selector(signature)) + b"".join(words)


def decode_words(data: bytes, count: int) -> list[bytes]:
    """The first ``count`` 32-byte words of an answer (extra bytes are ignored, as Go does)."""
    if len(data) < 32 * count:
        raise AbiError(f"answer has {len(data)} bytes, expected at least {32 * count}")
    return [data[32 * i : 32 * (i + 1)] for i in range(count)]


def decode_address(word: bytes) -> bytes:
    if len(word) != 32 or any(word[:12]):
        raise AbiError("not an address word")
    return word[12:]


def decode_bool(word: bytes) -> bool:
    value = int.from_bytes(word, "big")
    if value > 1:
        raise AbiError("not a bool word")
    return value == 1
