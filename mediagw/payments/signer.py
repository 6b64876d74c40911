"""Who signs tickets and requests: a local secp256k1 key, or nobody (off-chain).

Both implement the ``Signer`` seam of ``mediagw.eth.signer``: ``address`` (20 bytes, all zero
off-chain), ``offchain`` and ``async sign(digest)`` = personal-sign of a 32-byte digest (payments
spec §2). ``LocalSigner`` never signs on the event loop: every signature runs in an executor, and
``sign_many`` signs a whole ticket batch in one executor call.

``load_keystore`` decrypts a go-ethereum V3 keystore with eth-account. The password argument has
go-livepeer's ``-ethPassword`` meaning: if it names a readable non-empty file, the file's content
(whitespace-trimmed) is the password, else the string itself is. Scrypt is slow by design, so
async code uses ``load_keystore_async``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

from coincurve import PrivateKey

from mediagw.eth.account import account_api
from mediagw.eth.crypto import SECP256K1_N, address_of, checksum, sign_digest_with

from .errors import BadKeystore, KeystoreNotFound, SigningError, WrongPassword

__all__ = [
    "ZERO_ADDRESS",
    "LocalSigner",
    "OffchainSigner",
    "load_keystore",
    "load_keystore_async",
    "read_password",
]

ZERO_ADDRESS = bytes(20)
MAX_KEYSTORE_BYTES = 64 * 1024
MAX_PASSWORD_FILE_BYTES = 64 * 1024
MAX_KEYSTORE_DIR_ENTRIES = 1000
MAX_SCRYPT_MEMORY = (
    512 * 1024 * 1024
)  # 128 * n * r bytes; go-ethereum's standard n=2^18 uses 256 MiB
MAX_PBKDF2_ROUNDS = 10_000_000


class OffchainSigner:
    """No key: zero address, empty signatures (payments spec §11)."""

    offchain = True

    def __init__(self) -> None:
        self.address = ZERO_ADDRESS

    async def sign(self, digest: bytes) -> bytes:
        return b""

    async def sign_many(self, digests: Sequence[bytes]) -> list[bytes]:
        return [b"" for _ in digests]

    def __repr__(self) -> str:
        return "OffchainSigner()"


class LocalSigner:
    """A secp256k1 key held in memory; signs in ``executor`` (None: the loop's default pool)."""

    offchain = False

    def __init__(self, private_key: bytes, executor: Executor | None = None) -> None:
        if len(private_key) != 32 or not 0 < int.from_bytes(private_key, "big") < SECP256K1_N:
            raise BadKeystore("private key must be 32 bytes in 1..n-1")
        self._key = bytes(private_key)
        # Built once: a PrivateKey derives its public key when made, about half the cost of a
        # signature were it made per signature. Like ``_key``, it is never in a repr or a log.
        self._signing_key = PrivateKey(self._key)
        self._executor = executor
        self.address: bytes = address_of(self._signing_key.public_key)

    async def sign(self, digest: bytes) -> bytes:
        return (await self.sign_many([digest]))[0]

    async def sign_many(self, digests: Sequence[bytes]) -> list[bytes]:
        batch = [bytes(d) for d in digests]
        for d in batch:
            if len(d) != 32:
                raise SigningError("only 32-byte digests are signed")
        if not batch:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._sign_batch, batch)

    def _sign_batch(self, digests: list[bytes]) -> list[bytes]:
        key = self._signing_key
        return [sign_digest_with(key, d) for d in digests]

    def __repr__(self) -> str:  # never the key
        return f"LocalSigner({checksum(self.address)})"


# --- keystore ---------------------------------------------------------------------------------


def read_password(password: str) -> str:
    """go-livepeer ``common.ReadFromFile``: a readable non-empty file's trimmed text, else as is."""
    if not password or not os.path.isfile(password):
        return password
    try:
        with open(password, "rb") as f:
            raw = f.read(MAX_PASSWORD_FILE_BYTES + 1)
    except OSError:
        return password
    if len(raw) > MAX_PASSWORD_FILE_BYTES:
        raise BadKeystore(f"password file {password!r} is larger than {MAX_PASSWORD_FILE_BYTES}")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadKeystore(f"password file {password!r} is not UTF-8 text") from None
    return text or password


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEYSTORE_BYTES + 1)
    except FileNotFoundError:
        raise KeystoreNotFound(f"keystore file {path!r} does not exist") from None
    except OSError as exc:
        raise BadKeystore(f"cannot read keystore {path!r}: {exc.strerror}") from None
    if len(raw) > MAX_KEYSTORE_BYTES:
        raise BadKeystore(f"keystore {path!r} is larger than {MAX_KEYSTORE_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadKeystore(f"keystore {path!r} is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("crypto", doc.get("Crypto")), dict):
        raise BadKeystore(f"keystore {path!r} has no 'crypto' object (not a V3 keystore)")
    return doc


def _check_kdf(path: str, doc: dict[str, Any]) -> None:
    crypto = doc.get("crypto", doc.get("Crypto"))
    assert isinstance(crypto, dict)
    kdf = crypto.get("kdf")
    params = crypto.get("kdfparams")
    if not isinstance(params, dict):
        raise BadKeystore(f"keystore {path!r} has no kdfparams")
    try:
        if kdf == "scrypt":
            n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
            if n < 2 or n & (n - 1) or r < 1 or not 1 <= p <= 16 or 128 * n * r > MAX_SCRYPT_MEMORY:
                raise BadKeystore(f"keystore {path!r}: scrypt n={n} r={r} p={p} out of range")
        elif kdf == "pbkdf2":
            if not 1 <= int(params["c"]) <= MAX_PBKDF2_ROUNDS:
                raise BadKeystore(f"keystore {path!r}: pbkdf2 c out of range")
        else:
            raise BadKeystore(f"keystore {path!r}: unsupported kdf {kdf!r}")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BadKeystore):
            raise
        raise BadKeystore(f"keystore {path!r}: bad kdfparams") from None


def _keystore_address(doc: dict[str, Any]) -> bytes | None:
    raw = doc.get("address")
    if not isinstance(raw, str):
        return None
    try:
        value = bytes.fromhex(raw.removeprefix("0x").removeprefix("0X"))
    except ValueError:
        return None
    return value if len(value) == 20 else None


def _pick_in_directory(path: str, address: bytes | None) -> tuple[str, dict[str, Any]]:
    names = sorted(os.listdir(path))
    if len(names) > MAX_KEYSTORE_DIR_ENTRIES:
        raise BadKeystore(f"keystore directory {path!r} has more than {MAX_KEYSTORE_DIR_ENTRIES}")
    found: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        full = os.path.join(path, name)
        if name.startswith(".") or not os.path.isfile(full):
            continue
        try:
            doc = _read_json(full)
        except BadKeystore:
            continue
        if address is None or _keystore_address(doc) == address:
            found.append((full, doc))
    want = checksum(address) if address is not None else "any account"
    if not found:
        raise KeystoreNotFound(f"no keystore for {want} in directory {path!r}")
    if len(found) > 1:
        raise BadKeystore(
            f"{len(found)} keystores in {path!r}: pass the account address to choose one"
        )
    return found[0]


def load_keystore(
    path: str,
    password: str,
    *,
    address: bytes | None = None,
    executor: Executor | None = None,
) -> LocalSigner:
    """Decrypt a V3 keystore file (or the single/matching one in a directory). Blocking."""
    Account = account_api()

    if os.path.isdir(path):
        path, doc = _pick_in_directory(path, address)
    else:
        doc = _read_json(path)
    _check_kdf(path, doc)
    secret = read_password(password)
    try:
        key = bytes(Account.decrypt(doc, secret))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassword(f"wrong password for keystore {path!r}") from None
        raise BadKeystore(f"keystore {path!r} cannot be decrypted: {exc}") from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise BadKeystore(f"keystore {path!r} is malformed: {exc!r}") from None
    signer = LocalSigner(key, executor)
    stated = _keystore_address(doc)
    if stated is not None and stated != signer.address:
        raise BadKeystore(
            f"keystore {path!r} decrypts to {checksum(signer.address)}, not its address"
        )
    if address is not None and signer.address != address:
        raise BadKeystore(
            f"keystore {path!r} holds {checksum(signer.address)}, not the requested one"
        )
    return signer


async def load_keystore_async(
    path: str,
    password: str,
    *,
    address: bytes | None = None,
    executor: Executor | None = None,
) -> LocalSigner:
    """``load_keystore`` in a worker thread (file I/O and scrypt stay off the event loop)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor,
        lambda: load_keystore(path, password, address=address, executor=executor),
    )
