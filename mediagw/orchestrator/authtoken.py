"""Session auth tokens (transcode spec §4.4): issued by GetOrchestrator, checked on every request.

``token = HMAC-SHA256(secret, session_id || minimal big-endian expiration)``; the session ID is
8 hex chars from 4 random bytes and the token lives 30 minutes.
"""

from __future__ import annotations

import hashlib
import hmac

from mediagw.livepeer.proto import net
from mediagw.payments.tickets import int_to_bytes

from .config import Clock, RandomBytes
from .errors import RequestRejected

__all__ = ["AUTH_TOKEN_VALIDITY", "AuthTokens"]

AUTH_TOKEN_VALIDITY = 30 * 60  # seconds


class AuthTokens:
    def __init__(self, secret: bytes, clock: Clock, rand: RandomBytes) -> None:
        self._secret = secret
        self._clock = clock
        self._rand = rand

    def mac(self, session_id: str, expiration: int) -> bytes:
        msg = session_id.encode() + int_to_bytes(abs(expiration))
        return hmac.new(self._secret, msg, hashlib.sha256).digest()

    def issue(self) -> net.AuthToken:
        session_id = self._rand(4).hex()
        expiration = int(self._clock()) + AUTH_TOKEN_VALIDITY
        return net.AuthToken(
            token=self.mac(session_id, expiration), session_id=session_id, expiration=expiration
        )

    def authentic(self, token: net.AuthToken) -> bool:
        expected = self.mac(token.session_id, token.expiration)
        return hmac.compare_digest(expected, token.token)

    def check(self, segdata: net.SegData) -> net.AuthToken:
        """The SegData token checks of ServeSegment, in order, with 403 and go-livepeer's text."""
        if not segdata.HasField("auth_token"):
            raise RequestRejected(403, "missing auth token")
        token = segdata.auth_token
        if not self.authentic(token):
            raise RequestRejected(403, "invalid auth token")
        if self._clock() > token.expiration:
            raise RequestRejected(403, "expired auth token")
        return token
