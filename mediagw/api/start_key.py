"""The live AI ``/start`` (and ``/update``) behind an API key, on a gateway whose ingest needs keys
(``mediagw.exposure``): ``Authorization: Bearer KEY`` with a key of the ``streams`` scope (or
``admin``), checked like the Studio API's (``platform/keys``), failures counted against the
address by the same throttle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..clock import Clock
from ..errors import AuthError, StoreError
from ..platform import keys
from ..platform.store import Store
from ..platform.throttle import FailureThrottle

__all__ = ["StartKey", "start_key_check"]

# the request -> None (let in) or (status, message) of the refusal
StartKey = Callable[[web.Request], Awaitable[tuple[int, str] | None]]
_SCOPES = ("streams", "admin")


def start_key_check(
    store: Callable[[], Store | None],
    throttle: FailureThrottle,
    clock: Clock,
    scopes: tuple[str, ...] = _SCOPES,
) -> StartKey:
    """The check of a key with one of ``scopes`` (``GET /streams`` on an exposed address asks
    for ``admin``: it lists every tenant's streams)."""

    async def check(request: web.Request) -> tuple[int, str] | None:
        current = store()
        if current is None:
            return 503, "the gateway is starting: retry shortly"
        ip, now = request.remote or "", clock.monotonic()
        if throttle.retry_after(ip, now) > 0:
            return 429, "too many failed authentications from this address: retry later"
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise AuthError("malformed" if scheme else "missing")
            key = await keys.authenticate(current, presented.strip(), now=int(clock.wall() * 1000))
        except AuthError as exc:
            throttle.failed(ip, now)
            return 401, f"this needs Authorization: Bearer <API key> on this gateway: {exc}"
        except StoreError:
            return 503, "API keys cannot be checked now: retry later"
        if not any(scope in scopes for scope in key.scopes):
            return 403, f"this API key lacks the '{scopes[0]}' scope: use a key that has it"
        return None

    return check
