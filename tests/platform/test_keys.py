"""API keys (``mediagw.platform.keys``) over the real store, SQLite and PostgreSQL (the fixtures
of ``conftest.py``), and ``mediagw keys`` as a real process against a real SQLite file."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import sys
from pathlib import Path

import pytest

import mediagw
from mediagw.clock import ManualClock
from mediagw.errors import AuthError, ConfigError
from mediagw.platform import keys
from mediagw.platform.store import SqlStore, open_store

KEY_RE = re.compile(r"mgw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def _text(key: str) -> str:
    """The secret part of a key (base64url may itself hold ``_``: cut by position)."""
    return key[len("mgw_") + 17 :]


def _ms(clock: ManualClock) -> int:
    return int(clock() * 1000)


async def _refused(store: SqlStore, presented: str | None, now: int) -> str:
    with pytest.raises(AuthError) as caught:
        await keys.authenticate(store, presented, now=now)
    if presented:
        assert presented not in str(caught.value)  # never echoes the key
    return caught.value.reason


async def test_create_and_authenticate_round_trip(store: SqlStore) -> None:
    clock = ManualClock(1_700_000_000.0)
    row, secret = await keys.create_key(
        store, "ci", ["streams", "playback"], cors_origins=["https://a.example"], clock=clock
    )
    assert KEY_RE.fullmatch(secret), secret
    assert secret.startswith(f"mgw_{row.lookup_id}_")
    assert row.scopes == ("streams", "playback")
    assert row.created_at == _ms(clock)
    found = await keys.authenticate(store, secret, now=_ms(clock))
    assert (found.id, found.scopes, found.cors_origins) == (
        row.id,
        row.scopes,
        ("https://a.example",),
    )
    assert [k.id for k in await keys.list_keys(store)] == [row.id]


async def test_only_the_hash_of_the_secret_is_stored(store: SqlStore) -> None:
    row, secret = await keys.create_key(store, "ci", ["admin"], clock=ManualClock())
    text = _text(secret)
    raw = base64.urlsafe_b64decode(text + "=")
    assert len(raw) == 32
    stored = await store.api_key_by_lookup(row.lookup_id)
    assert stored is not None
    assert stored.secret_hash == hashlib.sha256(raw).hexdigest()
    assert text not in repr(stored) and raw.hex() not in repr(stored)


async def test_each_refusal_has_its_reason(store: SqlStore) -> None:
    clock = ManualClock(1_700_000_000.0)
    row, secret = await keys.create_key(
        store, "ci", ["admin"], expires_at=_ms(clock) + 60_000, clock=clock
    )
    now = _ms(clock)
    lookup_part, text = secret[: len("mgw_") + 16], secret[len("mgw_") + 17 :]
    other = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()
    assert await _refused(store, None, now) == "missing"
    assert await _refused(store, "", now) == "missing"
    assert await _refused(store, "Bearer " + secret, now) == "malformed"
    assert await _refused(store, secret[:-1], now) == "malformed"
    assert await _refused(store, "sk_" + secret[3:], now) == "malformed"
    assert await _refused(store, "x" * 10_000, now) == "malformed"
    # the last character of 43 carries 2 unused bits: a second spelling is refused
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = text[:-1] + alphabet[alphabet.index(text[-1]) + 1]  # same 32 bytes decoded
    assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(text + "=")
    assert await _refused(store, f"{lookup_part}_{twin}", now) == "malformed"
    assert await _refused(store, f"mgw_{'0' * 16}_{text}", now) == "unknown"
    assert await _refused(store, f"{lookup_part}_{other}", now) == "wrong"
    assert (await keys.authenticate(store, secret, now=now)).id == row.id
    assert await _refused(store, secret, now + 60_000) == "expired"
    assert await keys.revoke(store, row.id, clock=clock)
    assert await _refused(store, secret, now) == "revoked"
    assert not await keys.revoke(store, "key_nope", clock=clock)


async def test_scopes_are_validated(store: SqlStore) -> None:
    with pytest.raises(ConfigError, match="admin, streams, playback") as caught:
        await keys.create_key(store, "ci", ["streams", "root"], clock=ManualClock())
    assert "'root'" in str(caught.value)
    with pytest.raises(ConfigError, match="at least one scope"):
        await keys.create_key(store, "ci", [], clock=ManualClock())
    assert keys.validate_scopes(["playback", "admin", "playback"]) == ("playback", "admin")
    assert await keys.list_keys(store) == ()


async def test_cors_origins_are_validated(store: SqlStore) -> None:
    for bad in ("app.example", "https://app.example/path", "javascript:x", "https://", ""):
        with pytest.raises(ConfigError, match="browser origin"):
            await keys.create_key(store, "web", ["streams"], cors_origins=[bad])
    row, _ = await keys.create_key(
        store, "web", ["streams"],
        cors_origins=["https://app.example", "http://127.0.0.1:8080", "https://app.example"],
    )  # fmt: skip
    assert row.cors_origins == ("https://app.example", "http://127.0.0.1:8080")


async def test_an_unknown_lookup_id_is_compared_in_constant_time_too(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    row, secret = await keys.create_key(store, "ci", ["admin"], clock=ManualClock())
    calls: list[tuple[str, str]] = []

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(keys, "hmac", type("H", (), {"compare_digest": staticmethod(spy)}))
    unknown = f"mgw_{'0' * 16}_{_text(secret)}"
    assert await _refused(store, unknown, 0) == "unknown"
    assert await keys.authenticate(store, secret, now=0) == row
    assert len(calls) == 2  # one comparison each, found or not
    (dummy_presented, dummy), (real_presented, real) = calls
    assert dummy_presented == real_presented  # the same secret hashed the same way
    assert len(dummy) == len(real) == 64 and dummy != real


async def test_last_used_is_written_at_most_once_a_minute(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(1_700_000_000.0)
    row, secret = await keys.create_key(store, "ci", ["admin"], clock=clock)
    touches: list[int] = []
    touch = store.touch_api_key

    async def counting(key_id: str, at: int) -> None:
        touches.append(at)
        await touch(key_id, at)

    monkeypatch.setattr(store, "touch_api_key", counting)
    first = _ms(clock)
    for _ in range(5):
        await keys.authenticate(store, secret, now=_ms(clock))
        clock.advance(10)
    assert touches == [first]  # 5 uses over 50 s: one write
    clock.advance(10)  # 60 s after the first use
    await keys.authenticate(store, secret, now=_ms(clock))
    assert touches == [first, first + 60_000]
    stored = await store.api_key_by_lookup(row.lookup_id)
    assert stored is not None and stored.last_used_at == first + 60_000


async def test_rotate_issues_a_new_key_and_revokes_the_old(store: SqlStore) -> None:
    clock = ManualClock(1_700_000_000.0)
    old, old_secret = await keys.create_key(store, "ci", ["streams"], clock=clock)
    clock.advance(1)
    new, new_secret = await keys.rotate(store, old.id, clock=clock)
    assert new.id != old.id and new.lookup_id != old.lookup_id
    assert (new.name, new.scopes) == (old.name, old.scopes)
    assert await _refused(store, old_secret, _ms(clock)) == "revoked"
    assert (await keys.authenticate(store, new_secret, now=_ms(clock))).id == new.id
    with pytest.raises(ConfigError, match="mediagw keys list"):
        await keys.rotate(store, old.id, clock=clock)


async def _mediagw(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediagw.cli",
        *args,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(mediagw.__file__).parent.parent)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, err = await _mediagw(
        "keys",
        "create",
        "--name",
        "ci bot",
        "--scope",
        "streams",
        "--cors-origin",
        "https://app.example",
        "-dataDir",
        str(data),
        cwd=tmp_path,
    )
    assert code == 0, err
    assert "will not be shown again" in err
    (secret,) = KEY_RE.findall(out)
    key_id = re.search(r"key_[0-9a-f]{16}", out)
    assert key_id is not None
    assert (data / "mediagw.db").is_file()

    code, out, err = await _mediagw("keys", "list", "--dataDir", str(data), cwd=tmp_path)
    assert code == 0, err
    assert key_id[0] in out and "ci bot" in out and "streams" in out
    assert secret not in out and _text(secret) not in out
    store = await open_store(data)
    try:
        (row,) = await keys.list_keys(store)
        assert row.secret_hash not in out
        assert row.cors_origins == ("https://app.example",)
        (created,) = await store.list_audit()  # the operator's action is in the audit log
        assert (created.action, created.target_id, created.actor_key_id) == (
            "key.create", row.id, None,
        )  # fmt: skip
        assert created.details == {"via": "cli", "name": "ci bot", "scopes": ["streams"]}
        assert (await keys.authenticate(store, secret, now=0)).id == key_id[0]
    finally:
        await store.close()

    code, out, err = await _mediagw(
        "keys", "revoke", key_id[0], "-dataDir", str(data), cwd=tmp_path
    )
    assert code == 0, err
    code, _, err = await _mediagw("keys", "revoke", "key_nope", "-dataDir", str(data), cwd=tmp_path)
    assert code == 2 and "mediagw keys list" in err
    store = await open_store(data)
    try:
        assert await _refused(store, secret, 2**62) == "revoked"
    finally:
        await store.close()

    # the default data directory is ./mediagw-data
    code, out, err = await _mediagw("keys", "create", "--name", "x", cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "mediagw-data" / "mediagw.db").is_file()
