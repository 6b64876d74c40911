"""Signers and keystore loading (payments spec §2; go-livepeer -ethPassword semantics)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from payments.pay_testkit import address_of_vectors, key_of_vectors

from mediagw.errors import ConfigError
from mediagw.eth.account import account_api
from mediagw.eth.crypto import recover_address, sign_digest, sign_digest_with
from mediagw.eth.signer import BatchSigner, Signer
from mediagw.payments.errors import BadKeystore, KeystoreNotFound, WrongPassword
from mediagw.payments.signer import (
    ZERO_ADDRESS,
    LocalSigner,
    OffchainSigner,
    load_keystore,
    load_keystore_async,
    read_password,
)

Account = account_api()
DIGEST = bytes(range(32))


class RecordingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0
        self.threads: set[int] = set()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1

        def run() -> Any:
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)

        return super().submit(run)


@pytest.fixture
def executor() -> Any:
    ex = RecordingExecutor()
    yield ex
    ex.shutdown()


def write_keystore(path: Path, password: str = "s3cret", n: int = 2) -> Path:
    doc = Account.encrypt(key_of_vectors(), password, kdf="scrypt", iterations=n)
    path.write_text(json.dumps(doc))
    return path


async def test_local_signer_signs_off_the_loop(executor: RecordingExecutor) -> None:
    signer = LocalSigner(key_of_vectors(), executor)
    assert isinstance(signer, Signer) and isinstance(signer, BatchSigner)
    assert not signer.offchain and signer.address == address_of_vectors()
    sig = await signer.sign(DIGEST)
    assert sig == sign_digest(key_of_vectors(), DIGEST)
    assert executor.calls == 1 and threading.get_ident() not in executor.threads
    digests = [bytes([i]) * 32 for i in range(50)]
    sigs = await signer.sign_many(digests)
    assert executor.calls == 2  # one executor call for the whole batch
    assert all(recover_address(d, s) == signer.address for d, s in zip(digests, sigs, strict=True))
    assert await signer.sign_many([]) == []


async def test_local_signer_builds_its_key_object_once(
    executor: RecordingExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mediagw.payments import signer as signer_module

    made: list[object] = []
    real = signer_module.PrivateKey

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(signer_module, "PrivateKey", counting)
    signer = LocalSigner(key_of_vectors(), executor)
    assert len(made) == 1  # the address and every signature come from that one object
    digests = [bytes([i]) * 32 for i in range(20)]
    sigs = await signer.sign_many(digests)
    assert len(made) == 1
    assert sigs == [sign_digest(key_of_vectors(), d) for d in digests]  # byte for byte
    assert sigs[0] == sign_digest_with(real(key_of_vectors()), digests[0])
    assert key_of_vectors().hex() not in repr(signer) and "PrivateKey" not in repr(signer)


async def test_local_signer_concurrent_use(executor: RecordingExecutor) -> None:
    signer = LocalSigner(key_of_vectors(), executor)
    sigs = await asyncio.gather(*(signer.sign(bytes([i]) * 32) for i in range(20)))
    assert len(set(sigs)) == 20


async def test_local_signer_rejects_bad_input() -> None:
    signer = LocalSigner(key_of_vectors())
    with pytest.raises(Exception, match="32-byte"):
        await signer.sign(b"short")
    for bad in (b"", b"\x00" * 32, b"\xff" * 32, b"\x01" * 31):
        with pytest.raises(ConfigError):
            LocalSigner(bad)
    assert key_of_vectors().hex() not in repr(signer)
    assert "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23" in repr(signer)


async def test_offchain_signer() -> None:
    signer = OffchainSigner()
    assert isinstance(signer, Signer)
    assert signer.offchain and signer.address == ZERO_ADDRESS
    assert await signer.sign(DIGEST) == b""


def test_load_keystore_with_password_string(tmp_path: Path) -> None:
    path = write_keystore(tmp_path / "key.json")
    signer = load_keystore(str(path), "s3cret")
    assert signer.address == address_of_vectors()


def test_load_keystore_with_password_file(tmp_path: Path) -> None:
    path = write_keystore(tmp_path / "key.json")
    pw = tmp_path / "pw.txt"
    pw.write_text("  s3cret\n")
    assert read_password(str(pw)) == "s3cret"
    assert load_keystore(str(path), str(pw)).address == address_of_vectors()
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n")
    assert read_password(str(empty)) == str(empty)  # empty file: the string itself (GL)
    assert read_password(str(tmp_path)) == str(tmp_path)  # a directory: the string itself
    assert read_password("not/a/file") == "not/a/file"


def test_load_keystore_from_directory(tmp_path: Path) -> None:
    write_keystore(tmp_path / "UTC--key")
    (tmp_path / "notes.txt").write_text("not a keystore")
    assert load_keystore(str(tmp_path), "s3cret").address == address_of_vectors()
    assert load_keystore(str(tmp_path), "s3cret", address=address_of_vectors())
    with pytest.raises(KeystoreNotFound):
        load_keystore(str(tmp_path), "s3cret", address=b"\x01" * 20)
    doc = Account.encrypt(b"\x02" * 32, "other", kdf="scrypt", iterations=2)
    (tmp_path / "UTC--other").write_text(json.dumps(doc))
    with pytest.raises(BadKeystore, match="pass the account address"):
        load_keystore(str(tmp_path), "s3cret")


def test_keystore_errors(tmp_path: Path) -> None:
    with pytest.raises(KeystoreNotFound, match="does not exist") as info:
        load_keystore(str(tmp_path / "missing.json"), "x")
    assert isinstance(info.value, ConfigError)
    path = write_keystore(tmp_path / "key.json")
    with pytest.raises(WrongPassword, match="wrong password") as wrong:
        load_keystore(str(path), "nope")
    assert isinstance(wrong.value, ConfigError)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadKeystore, match="not JSON"):
        load_keystore(str(tmp_path / "bad.json"), "x")
    (tmp_path / "nocrypto.json").write_text('{"version": 3}')
    with pytest.raises(BadKeystore, match="crypto"):
        load_keystore(str(tmp_path / "nocrypto.json"), "x")
    (tmp_path / "big.json").write_bytes(b" " * (65 * 1024))
    with pytest.raises(BadKeystore, match="larger"):
        load_keystore(str(tmp_path / "big.json"), "x")


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 2**30), ("n", 3), ("p", 100), ("kdf", "argon2")],
)
def test_keystore_kdf_limits(tmp_path: Path, field: str, value: object) -> None:
    doc = Account.encrypt(key_of_vectors(), "s3cret", kdf="scrypt", iterations=2)
    if field == "kdf":
        doc["crypto"]["kdf"] = value
    else:
        doc["crypto"]["kdfparams"][field] = value
    path = tmp_path / "k.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(BadKeystore):
        load_keystore(str(path), "s3cret")


def test_keystore_address_mismatch(tmp_path: Path) -> None:
    doc = Account.encrypt(key_of_vectors(), "s3cret", kdf="scrypt", iterations=2)
    doc["address"] = "11" * 20
    path = tmp_path / "k.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(BadKeystore, match="not its address"):
        load_keystore(str(path), "s3cret")


def test_keystore_pbkdf2(tmp_path: Path) -> None:
    doc = Account.encrypt(key_of_vectors(), "s3cret", kdf="pbkdf2", iterations=10)
    path = tmp_path / "k.json"
    path.write_text(json.dumps(doc))
    assert load_keystore(str(path), "s3cret").address == address_of_vectors()


async def test_load_keystore_async_runs_in_executor(
    tmp_path: Path, executor: RecordingExecutor
) -> None:
    path = write_keystore(tmp_path / "key.json")
    signer = await load_keystore_async(str(path), "s3cret", executor=executor)
    assert signer.address == address_of_vectors()
    assert executor.calls == 1 and threading.get_ident() not in executor.threads
    await signer.sign(DIGEST)  # the returned signer uses the same executor
    assert executor.calls == 2
    with pytest.raises(WrongPassword):
        await load_keystore_async(str(path), "bad", executor=executor)


def test_loading_a_keystore_leaves_the_recursion_limit_alone(tmp_path: Path) -> None:
    """eth-account's py_ecc raises the recursion limit to 100,000 on import; at that limit a
    99 KB body of '[' overflows json's C stack and kills the process (a DoS through any JSON
    we read from the network). In a fresh interpreter: load a keystore, then parse it."""
    import subprocess
    import sys

    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(bytes(range(1, 33)), "pw", iterations=2)))
    script = f"""
import json, sys
from mediagw.payments.signer import load_keystore
before = sys.getrecursionlimit()
load_keystore({str(keystore)!r}, "pw")
assert sys.getrecursionlimit() == before, sys.getrecursionlimit()
try:
    json.loads("[" * 99_000)
except RecursionError:
    print("refused")
"""
    run = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and run.stdout.strip() == "refused", (run.returncode, run.stderr)
