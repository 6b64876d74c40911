"""Playback access control: Livepeer Studio's signed playback tokens (ES256 JWTs).

A stream whose playback policy is ``{"type": "jwt"}`` plays only for a token signed with one of
the platform's signing keys (EC P-256)::

    header  {"alg": "ES256", "typ": "JWT"}
    claims  {"sub": <playbackId>, "pub": <the key's public key: base64 of its PEM>,
             "action": "pull", "exp": <unix s>, "iat", "iss", "video", "custom": tolerated}

Verification finds the key by ``pub``, checks the signature with it (ES256 only: ``none``, HS256
signed with the public key as secret and every other algorithm are refused before any key is used),
then ``exp`` (``LEEWAY`` seconds of clock skew), ``action`` and ``sub``, that the key is not
disabled, and that it is the stream owner's (``platform/tenancy``: the signing key and the stream
belong to the same API key, or the signing key is the operator's: an admin key's or ownerless, or
the stream has no owner). Refusals are ``AccessDenied``: 401 when no valid token came (none,
oversized, malformed, unknown key, bad signature, expired), 403 when a valid token is not for this
stream (another playback id, not ``pull``) or its key is disabled. The message never quotes the
token.

Per request nothing touches the store nor verifies a signature once warm (``PlaybackAccess``): the
playback id -> (policy, owner) lookup is cached ``policy_ttl`` seconds (misses too: a stream that is
not in the store is public), a public key -> signing key lookup and the set of admin keys
``key_ttl`` seconds (so disabling or deleting a key takes effect within that), and a verified token
(keyed by its SHA-256) until it expires; a refused token is remembered ``key_ttl`` seconds. All
caches are bounded LRUs with single-flight loads. The ES256 work runs in a worker thread. While
the store is unreachable (a database restart) a lookup answers with what it last knew, for up to
``STALE_IF_ERROR`` seconds past its expiry: viewers of a stream keep playing through the outage;
with nothing known, ``check`` raises the store's error (the edge answers 503).

Signing keys: ``create_signing_key`` makes one (the private key is returned once, never
stored); ``sign_token`` makes a token as Studio's SDK does (for tests, tools and apps).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..clock import SYSTEM, Clock
from ..errors import AccessDenied
from .store import SigningKey, Store
from .tenancy import operators_own
from .ttl_cache import TtlCache

__all__ = [
    "ALGORITHM",
    "LEEWAY",
    "MAX_TOKEN_BYTES",
    "AccessDenied",
    "Grant",
    "NewSigningKey",
    "PlaybackAccess",
    "create_signing_key",
    "public_key_object",
    "sign_token",
]

ALGORITHM = "ES256"
MAX_TOKEN_BYTES = 4096  # Studio's tokens are ~700 bytes; anything larger is refused unparsed
MAX_PUBLIC_KEY_CHARS = 1024  # a P-256 key is 240 characters as base64 of its PEM
LEEWAY = 30.0  # seconds of clock skew tolerated on exp
STALE_IF_ERROR = 600.0  # seconds an expired lookup still answers while the store fails
PUBLIC = "public"
JWT = "jwt"


@dataclass(frozen=True)
class Grant:
    """What a verified token allows: playing ``playback_id`` until ``expires_at`` (unix s)."""

    playback_id: str
    public_key: str
    expires_at: float


@dataclass(frozen=True)
class NewSigningKey:
    """A signing key just created: its stored row, and its private key (base64 of its PKCS#8
    PEM, Studio's ``privateKey``) which exists only here: hand it to the user once."""

    key: SigningKey
    private_key: str

    @property
    def public_key(self) -> str:
        """Base64 of the public key's PEM (Studio's ``publicKey``; the ``pub`` claim)."""
        return self.key.public_key


def _b64_pem(pem: bytes) -> str:
    return base64.b64encode(pem).decode("ascii")


def _generate() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _b64_pem(private_pem), _b64_pem(public_pem)


async def create_signing_key(
    store: Store,
    name: str,
    *,
    clock: Clock = SYSTEM,
    key_id: str | None = None,
    owner_key_id: str | None = None,
) -> NewSigningKey:
    """Create an EC P-256 signing key of ``owner_key_id`` (the API key that asked; None: the
    operator's) and store its public half (``disabled`` false)."""
    private_key, public_key = await asyncio.to_thread(_generate)
    row = SigningKey(
        id=key_id or str(uuid.uuid4()),
        name=name,
        public_key=public_key,
        created_at=int(clock.wall() * 1000),
        owner_key_id=owner_key_id,
    )
    return NewSigningKey(await store.create_signing_key(row), private_key)


def public_key_object(public_key: str) -> ec.EllipticCurvePublicKey:
    """The key from base64 of its PEM; ValueError unless it is an EC P-256 public key."""
    try:
        pem = base64.b64decode(public_key, validate=True)
        key = serialization.load_pem_public_key(pem)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError(f"not base64 of a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an EC P-256 public key: ES256 needs one")
    return key


def sign_token(
    private_key: str,
    public_key: str,
    playback_id: str,
    *,
    expires_at: float,
    issued_at: float | None = None,
    issuer: str = "mediagw",
    custom: dict[str, Any] | None = None,
) -> str:
    """A playback token as Studio's SDK signs it (``private_key``/``public_key``: base64 of
    their PEM, as ``create_signing_key`` gives them). Blocking: a few hundred microseconds."""
    claims: dict[str, Any] = {
        "action": "pull",
        "iss": issuer,
        "pub": public_key,
        "sub": playback_id,
        "video": "none",
        "exp": int(expires_at),
    }
    if issued_at is not None:
        claims["iat"] = int(issued_at)
    if custom is not None:
        claims["custom"] = custom
    pem = base64.b64decode(private_key)
    return jwt.encode(claims, pem, algorithm=ALGORITHM, headers={"typ": "JWT"})


def _unverified(token: str) -> str:
    """The ``pub`` claim of a well-formed ES256 token, read before any key is used."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AccessDenied(401, "malformed playback token: expected a signed JWT") from None
    alg = header.get("alg")
    if alg != ALGORITHM:
        raise AccessDenied(401, f"playback token algorithm {str(alg)[:16]!r} refused: sign ES256")
    pub = claims.get("pub")
    if not isinstance(pub, str) or not pub or len(pub) > MAX_PUBLIC_KEY_CHARS:
        raise AccessDenied(401, "playback token has no 'pub' claim naming its signing key")
    return pub


def _verify(token: str, public_key: str) -> Grant:
    """Check the signature and the claims' shape (blocking: run it in a thread)."""
    try:
        key = public_key_object(public_key)
    except ValueError:
        raise AccessDenied(401, "the token's signing key is unusable: create a new one") from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            # exp is checked against the gateway's clock (PlaybackAccess), not PyJWT's
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError:
        raise AccessDenied(401, "playback token signature is invalid") from None
    exp, sub, action = claims.get("exp"), claims.get("sub"), claims.get("action")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise AccessDenied(401, "playback token has no 'exp' claim: give it an expiry")
    if not isinstance(sub, str) or not sub:
        raise AccessDenied(401, "playback token has no 'sub' claim naming the playback id")
    if action != "pull":
        raise AccessDenied(403, "playback token is not for playback (its action is not 'pull')")
    return Grant(sub, public_key, float(exp))


class PlaybackAccess:
    """Decides, per request, whether a playback id may be played with the token presented.

    ``check`` is what the HTTP edge calls (HLS, WHEP); it returns None for a public stream,
    the ``Grant`` of an accepted token, and raises ``AccessDenied`` otherwise. After the
    streams API changes a policy or a key, ``forget`` makes this gateway see it at once."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = SYSTEM,
        policy_ttl: float = 5.0,
        key_ttl: float = 5.0,
        max_entries: int = 10_000,
        leeway: float = LEEWAY,
    ) -> None:
        self._store = store
        self._clock = clock
        self.policy_ttl = policy_ttl
        self.key_ttl = key_ttl
        self.leeway = leeway
        mono = clock.monotonic
        # playback id -> (policy, owner key id) of its stream
        stale = STALE_IF_ERROR
        self._policies = TtlCache[str, tuple[dict[str, Any] | None, str | None]](
            max_entries=max_entries, clock=mono, stale=stale
        )
        self._admins = TtlCache[str, frozenset[str]](max_entries=1, clock=mono, stale=stale)
        self._keys = TtlCache[str, SigningKey | None](
            max_entries=max_entries, clock=mono, stale=stale
        )
        self._tokens = TtlCache[bytes, Grant | AccessDenied](max_entries=max_entries, clock=mono)
        # tells the other nodes what ``forget`` dropped (None: one node, nobody to tell)
        self.announce: Callable[[str | None, str | None], None] | None = None

    async def policy(self, playback_id: str) -> dict[str, Any] | None:
        """The playback policy of the store stream with this playback id (None: no policy, or
        no such stream), cached ``policy_ttl`` seconds."""

        return (await self._stream(playback_id))[0]

    async def _stream(self, playback_id: str) -> tuple[dict[str, Any] | None, str | None]:
        async def load() -> tuple[dict[str, Any] | None, str | None]:
            stream = await self._store.stream_by_playback_id(playback_id)
            return (None, None) if stream is None else (stream.playback_policy, stream.owner_key_id)

        return await self._policies.get(playback_id, load, self.policy_ttl)

    async def check(self, playback_id: str, token: str | None) -> Grant | None:
        """None if the stream is public; the grant of ``token`` if it may play it; else
        ``AccessDenied`` (401 or 403, see the module)."""
        policy, owner = await self._stream(playback_id)
        kind = PUBLIC if policy is None else policy.get("type", PUBLIC)
        if kind == PUBLIC:
            return None
        if kind != JWT:
            raise AccessDenied(
                403, f"playback policy {str(kind)[:32]!r} is not served here: use 'jwt' or 'public'"
            )
        if not token:
            raise AccessDenied(
                401,
                "this stream needs a playback token: send it as the Livepeer-Jwt header or ?jwt=",
            )
        grant = await self._grant(token)
        if grant.expires_at + self.leeway < self._clock.wall():
            raise AccessDenied(401, "playback token expired: get a new one")
        key = await self._key(grant.public_key)
        if key is None:
            raise AccessDenied(401, "the token's signing key no longer exists: get a new token")
        if key.disabled:
            raise AccessDenied(403, "the token's signing key is disabled")
        if grant.playback_id != playback_id:
            raise AccessDenied(403, "playback token is for another stream")
        if not await self._may_sign(key, owner):
            raise AccessDenied(
                403,
                "the token's signing key belongs to another account than the stream: sign"
                " with a signing key made by the stream owner's API key",
            )
        return grant

    async def _may_sign(self, key: SigningKey, stream_owner: str | None) -> bool:
        if stream_owner is None or key.owner_key_id == stream_owner:
            return True
        admins = await self._admins.get("", self._store.admin_key_ids, self.key_ttl)
        return operators_own(key.owner_key_id, admins)

    def forget(self, *, playback_id: str | None = None, public_key: str | None = None) -> None:
        """Drop the cached policy of a playback id and/or the cached state of a signing key,
        here and (``announce``: with ``-redisUrl``) on every other node."""
        self.forget_here(playback_id=playback_id, public_key=public_key)
        if self.announce is not None:
            self.announce(playback_id, public_key)

    def forget_here(self, *, playback_id: str | None = None, public_key: str | None = None) -> None:
        """``forget`` on this node only (what another node's change is applied with); with
        neither given, everything cached."""
        if playback_id is None and public_key is None:
            self._policies.forget()
            self._keys.forget()
            self._admins.forget()
        if playback_id is not None:
            self._policies.forget(playback_id)
        if public_key is not None:
            self._keys.forget(public_key)

    async def _key(self, public_key: str) -> SigningKey | None:
        load = lambda: self._store.signing_key_by_public_key(public_key)  # noqa: E731
        return await self._keys.get(public_key, load, self.key_ttl)

    async def _grant(self, token: str) -> Grant:
        if len(token) > MAX_TOKEN_BYTES:
            raise AccessDenied(401, f"playback token longer than {MAX_TOKEN_BYTES} bytes")
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        outcome = await self._tokens.get(digest, lambda: self._verified(token), self._ttl)
        if isinstance(outcome, AccessDenied):
            raise AccessDenied(outcome.status, str(outcome))
        return outcome

    async def _verified(self, token: str) -> Grant | AccessDenied:
        try:
            pub = _unverified(token)
            if await self._key(pub) is None:
                raise AccessDenied(401, "the token's signing key is unknown here")
            return await asyncio.to_thread(_verify, token, pub)
        except AccessDenied as exc:
            return exc

    def _ttl(self, outcome: Grant | AccessDenied) -> float:
        if isinstance(outcome, AccessDenied):
            return self.key_ttl  # an unknown key may be created meanwhile
        return outcome.expires_at + self.leeway - self._clock.wall()
