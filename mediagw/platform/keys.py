"""API keys: create, authenticate, revoke, rotate and list them over the platform store.

A key, as shown once to its owner::

    mgw_<lookup id: 16 hex digits>_<secret: 43 base64url characters = 32 random bytes>
    mgw_3f9a0c1d2e4b5a69_q1Jx...

``mgw_`` makes a leaked key recognisable (secret scanners, logs); the lookup id is public and
finds the row in one indexed query; the secret is never stored, only ``sha256(secret bytes)`` in
hex. The secret is 256 random bits, so nobody can guess it from its hash and a slow KDF (bcrypt,
argon2) would only cost CPU on every request: one SHA-256 is enough. The comparison is
constant-time (``hmac.compare_digest``), and an unknown lookup id is compared against a dummy
hash too, so the time taken does not tell whether a lookup id exists.

Rotating a key creates a new key (new id, lookup id and secret; the same name, scopes, CORS
origins and expiry), hands everything the old key owned (streams, targets, webhooks, signing
keys: ``platform/tenancy``) to the new one, and revokes the old one: every key ever issued keeps
its own row and id in the audit trail, and the store never rewrites a secret hash in place.

Sans-IO except the store calls: the time and the randomness are passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable

from ..clock import SYSTEM
from ..errors import AuthError, ConfigError
from .store import ApiKey, Store

__all__ = [
    "PREFIX",
    "SCOPES",
    "TOUCH_INTERVAL_MS",
    "AuthError",
    "authenticate",
    "create_key",
    "hash_secret",
    "list_keys",
    "revoke",
    "rotate",
    "validate_origins",
    "validate_scopes",
]

PREFIX = "mgw_"
SCOPES = ("admin", "streams", "playback")
TOUCH_INTERVAL_MS = 60_000  # last_used_at is written at most once a minute per key
_LOOKUP_BYTES = 8  # 16 hex digits
_SECRET_BYTES = 32  # 43 base64url characters, no padding
_KEY_LENGTH = len(PREFIX) + 2 * _LOOKUP_BYTES + 1 + 43
_KEY_RE = re.compile(r"mgw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_DUMMY_HASH = hashlib.sha256(b"mediagw: no key has this lookup id").hexdigest()

Rand = Callable[[int], bytes]
WallClock = Callable[[], float]


def _now_ms(clock: WallClock) -> int:
    return int(clock() * 1000)


def hash_secret(secret: bytes) -> str:
    """What the store keeps of a secret: its SHA-256, in hex."""
    return hashlib.sha256(secret).hexdigest()


def _encode(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).rstrip(b"=").decode("ascii")


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes, deduplicated in the order given; ConfigError on an unknown or no scope."""
    out: list[str] = []
    for scope in scopes:
        if scope not in SCOPES:
            raise ConfigError(f"unknown API key scope {scope!r}: use one of {', '.join(SCOPES)}")
        if scope not in out:
            out.append(scope)
    if not out:
        raise ConfigError(f"an API key needs at least one scope: {', '.join(SCOPES)}")
    return tuple(out)


_ORIGIN_RE = re.compile(r"\*|https?://[A-Za-z0-9.\-\[\]:]{1,253}")


def validate_origins(origins: Iterable[str]) -> tuple[str, ...]:
    """Browser origins a key may be used from: ``*`` or ``scheme://host[:port]``; ConfigError
    naming the first that is not one."""
    out: list[str] = []
    for origin in origins:
        if not _ORIGIN_RE.fullmatch(origin):
            raise ConfigError(
                f"not a browser origin: {origin[:100]!r}: give scheme://host[:port], e.g."
                " https://app.example (no path), or *"
            )
        if origin not in out:
            out.append(origin)
    if len(out) > 50:
        raise ConfigError("at most 50 CORS origins per API key")
    return tuple(out)


async def create_key(
    store: Store,
    name: str,
    scopes: Iterable[str],
    *,
    expires_at: int | None = None,
    cors_origins: Iterable[str] = (),
    clock: WallClock = SYSTEM.wall,
    rand: Rand = os.urandom,
) -> tuple[ApiKey, str]:
    """Create a key; the stored row and the full key text, which is shown once and never again.
    ``expires_at`` is unix milliseconds."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ConfigError("an API key needs a name of 1 to 200 characters (--name)")
    checked = validate_scopes(scopes)
    now = _now_ms(clock)
    if expires_at is not None and expires_at <= now:
        raise ConfigError("an API key must expire in the future: give a positive --expires-in")
    lookup_id = rand(_LOOKUP_BYTES).hex()
    secret = rand(_SECRET_BYTES)
    row = ApiKey(
        id=f"key_{rand(8).hex()}",
        name=name,
        lookup_id=lookup_id,
        secret_hash=hash_secret(secret),
        created_at=now,
        scopes=checked,
        cors_origins=validate_origins(cors_origins),
        expires_at=expires_at,
    )
    stored = await store.create_api_key(row)
    return stored, f"{PREFIX}{lookup_id}_{_encode(secret)}"


def _parse(presented: str) -> tuple[str, bytes]:
    """The lookup id and the secret bytes of a presented key; AuthError if it is not one."""
    if len(presented) != _KEY_LENGTH:  # checked first: no regex over arbitrary input
        raise AuthError("malformed")
    match = _KEY_RE.fullmatch(presented)
    if match is None:
        raise AuthError("malformed")
    lookup_id, text = match.groups()
    try:
        secret = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise AuthError("malformed") from None
    if _encode(secret) != text:  # the last character carries 2 unused bits: only one spelling
        raise AuthError("malformed")
    return lookup_id, secret


async def authenticate(store: Store, presented: str | None, *, now: int) -> ApiKey:
    """The key ``presented`` (the full key text) stands for, at ``now`` (unix ms); AuthError
    with its ``reason`` if it is refused. Records its use at most every TOUCH_INTERVAL_MS."""
    if not presented:
        raise AuthError("missing")
    lookup_id, secret = _parse(presented.strip())
    row = await store.api_key_by_lookup(lookup_id)
    # the same hash and compare_digest whether or not the lookup id exists
    expected = row.secret_hash if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(hash_secret(secret), expected)
    if row is None:
        raise AuthError("unknown")
    if not matches:
        raise AuthError("wrong")
    if row.revoked_at is not None:  # revoked is final, whatever the clocks say
        raise AuthError("revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthError("expired")
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL_MS:
        await store.touch_api_key(row.id, now)
    return row


async def revoke(store: Store, key_id: str, *, clock: WallClock = SYSTEM.wall) -> bool:
    """Revoke the key with this id (not its secret); False if there is none."""
    return await store.revoke_api_key(key_id, _now_ms(clock))


async def rotate(
    store: Store, key_id: str, *, clock: WallClock = SYSTEM.wall, rand: Rand = os.urandom
) -> tuple[ApiKey, str]:
    """Replace a key: a new key with the old one's name, scopes, origins and expiry, that owns
    what the old one owned, then the old one revoked. ConfigError if there is no live key with
    this id."""
    old = await store.get_api_key(key_id)
    if old is None or old.revoked_at is not None:
        raise ConfigError(f"no live API key with id {key_id!r}: see 'mediagw keys list'")
    new = await create_key(
        store,
        old.name,
        old.scopes,
        expires_at=old.expires_at,
        cors_origins=old.cors_origins,
        clock=clock,
        rand=rand,
    )
    await store.transfer_ownership(old.id, new[0].id)
    await store.revoke_api_key(old.id, _now_ms(clock))
    return new


async def list_keys(store: Store, *, limit: int = 1000) -> tuple[ApiKey, ...]:
    """The keys, newest first (rows: their hashes, never their secrets)."""
    return await store.list_api_keys(limit=limit)
