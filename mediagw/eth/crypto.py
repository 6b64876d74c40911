"""Ethereum primitives the Livepeer protocol signs with (payments spec §2).

- ``keccak256``: legacy Keccak-256 (not SHA3-256).
- ``personal_hash(digest)``: keccak256("\\x19Ethereum Signed Message:\\n32" || digest).
- ``sign_digest(key, digest)``: personal-sign a 32-byte digest -> r || s || v, v in {27, 28},
  low-S, RFC 6979 nonces (libsecp256k1 through coincurve), so vectors reproduce byte for byte.
  ``sign_digest_with(private_key, digest)`` does the same with a ``coincurve.PrivateKey`` built
  once: building one derives the public key, about half the cost of a signature.
- ``recover_address(digest, sig)``: the verifier go-livepeer orchestrators run (crypto/verify.go):
  65 bytes, s <= n/2, v in {27, 28}, then recovery over the personal hash.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak

__all__ = [
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "SignatureError",
    "address_of",
    "checksum",
    "keccak256",
    "personal_hash",
    "recover_address",
    "sign_digest",
    "sign_digest_with",
]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
_PREFIX = b"\x19Ethereum Signed Message:\n32"


class SignatureError(ValueError):
    """A signature that go-livepeer's verifier would reject; the message is its error text."""


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def personal_hash(digest: bytes) -> bytes:
    if len(digest) != 32:
        raise ValueError("personal_hash signs 32-byte digests only")
    return keccak256(_PREFIX + digest)


def address_of(public_key: PublicKey) -> bytes:
    """20-byte Ethereum address of a public key."""
    return keccak256(public_key.format(compressed=False)[1:])[12:]


def checksum(address: bytes) -> str:
    """EIP-55 checksummed hex with 0x (what GetOrchestrator's signature covers)."""
    lower = address.hex()
    nibbles = keccak256(lower.encode()).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(n, 16) >= 8 else c
        for c, n in zip(lower, nibbles[:40], strict=True)
    )


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """Personal-sign a 32-byte digest: 65 bytes r || s || v with v in {27, 28}, low-S."""
    return sign_digest_with(PrivateKey(private_key), digest)


def sign_digest_with(private_key: PrivateKey, digest: bytes) -> bytes:
    """``sign_digest`` with a key object kept by the caller (a signer signs many digests)."""
    sig = private_key.sign_recoverable(personal_hash(digest), hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


def recover_address(digest: bytes, sig: bytes) -> bytes:
    """Recover the signer's address; raise SignatureError with go-livepeer's wording."""
    if len(sig) != 65:
        raise SignatureError("invalid signature length")
    if int.from_bytes(sig[32:64], "big") > SECP256K1_HALF_N:
        raise SignatureError("signature s value too high")
    v = sig[64]
    if v not in (27, 28):
        raise SignatureError("signature v value must be 27 or 28")
    try:
        public = PublicKey.from_signature_and_message(
            sig[:64] + bytes([v - 27]), personal_hash(digest), hasher=None
        )
    except Exception as exc:  # coincurve raises plain Exception on bad points
        raise SignatureError(f"invalid signature: {exc}") from None
    return address_of(public)
