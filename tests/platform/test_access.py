"""Playback access control (``mediagw.platform.access``) over the real store, SQLite and
PostgreSQL: each refusal with its status, the algorithms refused, and the caches that keep the
store and ES256 off the per-segment path (store calls counted through a wrapper)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from mediagw.clock import ManualClock
from mediagw.errors import AccessDenied
from mediagw.platform.access import (
    LEEWAY,
    MAX_TOKEN_BYTES,
    NewSigningKey,
    PlaybackAccess,
    create_signing_key,
    public_key_object,
    sign_token,
)
from mediagw.platform.store import SqlStore, Stream

NOW = 1_700_000_000.0
Setup = tuple[Any, PlaybackAccess, NewSigningKey]  # (the counting store, access, a key)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


async def _stream(store: SqlStore, playback_id: str, policy: dict[str, Any] | None) -> None:
    await store.create_stream(
        Stream(
            id=f"id-{playback_id}",
            name=playback_id,
            stream_key=f"key-{playback_id}",
            playback_id=playback_id,
            created_at=1,
            playback_policy=policy,
        )
    )


@pytest.fixture
async def setup(store: SqlStore, counting_store: Any, clock: ManualClock) -> Setup:
    await _stream(store, "gated", {"type": "jwt"})
    await _stream(store, "other", {"type": "jwt"})
    await _stream(store, "open", {"type": "public"})
    await _stream(store, "nopolicy", None)
    await _stream(store, "hooked", {"type": "webhook", "webhookId": "w1"})
    key = await create_signing_key(store, "main", clock=clock)
    return counting_store, PlaybackAccess(counting_store, clock=clock), key


def _token(key: NewSigningKey, playback_id: str = "gated", ttl: float = 300.0) -> str:
    return sign_token(key.private_key, key.public_key, playback_id, expires_at=NOW + ttl)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token built by hand: HMAC-SHA256 with ``secret``, or no signature at all."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


def _claims(key: NewSigningKey, **changes: Any) -> dict[str, Any]:
    claims = {"action": "pull", "pub": key.public_key, "sub": "gated", "exp": int(NOW + 300)}
    return {**claims, **changes}


async def _denied(access: PlaybackAccess, playback_id: str, token: str | None) -> AccessDenied:
    with pytest.raises(AccessDenied) as caught:
        await access.check(playback_id, token)
    assert not token or token not in str(caught.value)  # never quotes the token
    return caught.value


async def test_a_good_token_plays_its_stream(setup: Setup) -> None:
    _, access, key = setup
    grant = await access.check("gated", _token(key))
    assert grant is not None
    assert grant.playback_id == "gated" and grant.expires_at == NOW + 300


async def test_studio_tokens_with_iat_iss_video_and_custom_claims_are_accepted(
    setup: Setup,
) -> None:
    _, access, key = setup
    token = sign_token(
        key.private_key, key.public_key, "gated", expires_at=NOW + 60, issued_at=NOW,
        issuer="https://docs.livepeer.org", custom={"user": 7},
    )  # fmt: skip
    assert await access.check("gated", token) is not None


async def test_public_streams_need_no_token(setup: Setup) -> None:
    _, access, _ = setup
    for playback_id in ("open", "nopolicy", "not-in-the-store"):
        assert await access.check(playback_id, None) is None


async def test_no_token_is_401(setup: Setup) -> None:
    _, access, _ = setup
    for token in (None, ""):
        denied = await _denied(access, "gated", token)
        assert denied.status == 401 and "Livepeer-Jwt" in str(denied)


async def test_an_expired_token_is_401_after_the_leeway(setup: Setup, clock: ManualClock) -> None:
    _, access, key = setup
    token = _token(key, ttl=10)
    assert await access.check("gated", token) is not None
    clock.advance(10 + LEEWAY - 1)  # within the leeway: still good (and cached)
    assert await access.check("gated", token) is not None
    clock.advance(2)
    denied = await _denied(access, "gated", token)
    assert denied.status == 401 and "expired" in str(denied)
    # a token that was expired when first seen is refused too (nothing cached it)
    denied = await _denied(access, "gated", _token(key, ttl=-LEEWAY - 60))
    assert denied.status == 401 and "expired" in str(denied)


async def test_a_token_for_another_playback_id_is_403(setup: Setup) -> None:
    _, access, key = setup
    denied = await _denied(access, "gated", _token(key, playback_id="other"))
    assert denied.status == 403 and "another stream" in str(denied)


async def test_a_disabled_key_is_403_within_the_key_ttl(setup: Setup, clock: ManualClock) -> None:
    counting, access, key = setup
    token = _token(key)
    assert await access.check("gated", token) is not None
    await counting.store.update_signing_key(key.key.id, disabled=True)
    clock.advance(access.key_ttl + 0.1)
    denied = await _denied(access, "gated", token)
    assert denied.status == 403 and "disabled" in str(denied)
    access.forget(public_key=key.public_key)  # what the API calls after enabling it again
    await counting.store.update_signing_key(key.key.id, disabled=False)
    assert await access.check("gated", token) is not None
    await counting.store.delete_signing_key(key.key.id)
    access.forget(public_key=key.public_key)
    assert (await _denied(access, "gated", token)).status == 401


@pytest.mark.parametrize("secret", ["public key text", "public key pem"])
async def test_hs256_signed_with_the_public_key_is_refused(setup: Setup, secret: str) -> None:
    """Key confusion: HMAC keyed with what is public (the pub claim, or its PEM)."""
    _, access, key = setup
    material = key.public_key.encode()
    if secret == "public key pem":
        material = base64.b64decode(key.public_key)
    token = _forge({"alg": "HS256", "typ": "JWT"}, _claims(key), material)
    denied = await _denied(access, "gated", token)
    assert denied.status == 401 and "ES256" in str(denied)


@pytest.mark.parametrize("alg", ["none", "None", "ES256"])
async def test_unsigned_tokens_are_refused(setup: Setup, alg: str) -> None:
    _, access, key = setup
    token = _forge({"alg": alg, "typ": "JWT"}, _claims(key), None)
    assert (await _denied(access, "gated", token)).status == 401


async def test_a_token_signed_by_another_key_than_its_pub_is_401(
    setup: Setup, store: SqlStore
) -> None:
    _, access, key = setup
    other = await create_signing_key(store, "other")
    token = sign_token(other.private_key, key.public_key, "gated", expires_at=NOW + 60)
    denied = await _denied(access, "gated", token)
    assert denied.status == 401 and "signature" in str(denied)


async def test_a_key_not_in_the_store_is_401(setup: Setup, store: SqlStore) -> None:
    _, access, _ = setup
    stranger = await create_signing_key(store, "stranger")
    await store.delete_signing_key(stranger.key.id)
    denied = await _denied(access, "gated", _token(stranger))
    assert denied.status == 401 and "unknown" in str(denied)


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9.e30.", "é.é.é", "x" * 100],
)
async def test_garbage_is_401(setup: Setup, token: str) -> None:
    _, access, _ = setup
    assert (await _denied(access, "gated", token)).status == 401


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"action": "push"}, 403),
        ({"action": None}, 403),
        ({"exp": None}, 401),
        ({"exp": "tomorrow"}, 401),
        ({"sub": None}, 401),
        ({"pub": None}, 401),
        ({"pub": "x" * 2000}, 401),
    ],
)
async def test_claims_of_the_wrong_shape(
    setup: Setup, changes: dict[str, Any], status: int
) -> None:
    import jwt

    _, access, key = setup
    claims = {k: v for k, v in _claims(key, **changes).items() if v is not None}
    pem = base64.b64decode(key.private_key)
    token = jwt.encode(claims, pem, algorithm="ES256")
    assert (await _denied(access, "gated", token)).status == status


async def test_an_oversized_token_is_refused_unparsed(setup: Setup) -> None:
    counting, access, key = setup
    await access.policy("gated")
    calls = sum(counting.calls.values())
    token = _token(key) + "A" * MAX_TOKEN_BYTES
    denied = await _denied(access, "gated", token)
    assert denied.status == 401 and str(MAX_TOKEN_BYTES) in str(denied)
    assert sum(counting.calls.values()) == calls


async def test_an_unsupported_policy_type_is_refused(setup: Setup) -> None:
    _, access, key = setup
    denied = await _denied(access, "hooked", _token(key, playback_id="hooked"))
    assert denied.status == 403 and "webhook" in str(denied)


async def test_a_token_is_verified_once_then_served_from_the_caches(setup: Setup) -> None:
    counting, access, key = setup
    token = _token(key)
    await access.check("gated", token)
    assert counting.calls == {"stream_by_playback_id": 1, "signing_key_by_public_key": 1}
    for _ in range(50):
        assert await access.check("gated", token) is not None
    assert counting.calls == {"stream_by_playback_id": 1, "signing_key_by_public_key": 1}


async def test_store_misses_and_refusals_are_cached_too(setup: Setup) -> None:
    counting, access, _ = setup
    for _ in range(5):
        assert await access.check("not-in-the-store", None) is None
        assert (await _denied(access, "gated", "garbage")).status == 401
    assert counting.calls == {"stream_by_playback_id": 2}


async def test_the_caches_expire(setup: Setup, clock: ManualClock) -> None:
    counting, access, key = setup
    token = _token(key)
    await access.check("gated", token)
    clock.advance(max(access.policy_ttl, access.key_ttl) + 0.1)
    await access.check("gated", token)
    assert counting.calls == {"stream_by_playback_id": 2, "signing_key_by_public_key": 2}
    await counting.store.update_stream("id-gated", playback_policy=None)
    access.forget(playback_id="gated")  # what the streams API calls after a PATCH
    assert await access.check("gated", None) is None


async def test_concurrent_first_checks_share_one_lookup(setup: Setup) -> None:
    counting, access, key = setup
    token = _token(key)
    grants = await asyncio.gather(*(access.check("gated", token) for _ in range(20)))
    assert all(grants)
    assert counting.calls == {"stream_by_playback_id": 1, "signing_key_by_public_key": 1}


async def test_a_new_signing_key_is_studio_shaped(store: SqlStore, clock: ManualClock) -> None:
    new = await create_signing_key(store, "main", clock=clock, key_id="sk1")
    assert new.key == await store.get_signing_key("sk1")
    assert new.key.name == "main" and new.key.created_at == int(NOW * 1000)
    assert not new.key.disabled
    public_pem = base64.b64decode(new.public_key, validate=True)
    private_pem = base64.b64decode(new.private_key, validate=True)
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    private = serialization.load_pem_private_key(private_pem, None)
    assert (
        private.public_key().public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == public_pem
    )
    public_key_object(new.public_key)  # an EC P-256 key
    assert new.private_key not in repr(await store.list_signing_keys())
