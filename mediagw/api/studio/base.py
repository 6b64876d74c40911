"""The frame of the Studio-compatible ``/api``: routes declared once, checked and documented.

Every route is a ``Route``: its method and path, the scope an API key needs, the pydantic model
of its JSON body, and its answer's status. ``Api.mount`` adds them to an aiohttp app behind
one wrapper, and ``openapi.py`` documents the same list, so what is validated and what is
documented cannot drift apart.

The wrapper, in order:
1. a client address blocked for failed authentications gets 429 with ``Retry-After``
   (``platform/throttle``), before its key is looked at;
2. ``Authorization: Bearer KEY`` is checked (``platform/keys``): missing, malformed, unknown,
   revoked or expired -> 401; a failure counts against the address;
3. the key's scopes (``admin`` covers every route; ``streams`` covers ``playback``) -> 403;
   a key with CORS origins is accepted only from those origins, and a key without them not
   from a browser page of another origin (Studio's CORS keys) -> 403;
4. the body: at most ``MAX_BODY`` bytes (413), JSON (400 naming the line and column), an
   object matching the route's model, unknown fields refused (422 naming each field).
   A route without a body ignores what comes (Studio's SDK sends ``GET`` with
   ``Content-Type: application/octet-stream`` and no body);
5. the key's plan (``platform/plan_limits``): over its rate limit or a request quota -> 429 with
   NaaP's ``X-RateLimit-*``, ``X-Quota-*`` and ``Retry-After`` headers (a refused request counts
   against nothing); every answer after that carries the ``X-RateLimit-*`` headers. Admin keys
   are exempt;
6. the handler, which sees only the objects of the key's tenant (``Call.tenant``: a key's own, an
   admin's all; another's object is 404, ``platform/tenancy``); its errors map once:
   ``InvalidInput`` 422, ``StoreConflict`` 409, ``StoreBadInput`` 400, ``StoreNotFound`` 404,
   ``StoreError`` 503.
Every error answers Studio's shape, ``{"errors": ["..."]}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from ...clock import SYSTEM, Clock
from ...errors import (
    AuthError,
    InvalidInput,
    StoreBadInput,
    StoreConflict,
    StoreError,
    StoreNotFound,
)
from ...httpbody import read_prefix
from ...platform import keys
from ...platform.limits import Decision
from ...platform.plan_limits import RequestLimits
from ...platform.store import ApiKey, AuditEntry, Store
from ...platform.tenancy import Tenant, tenant_of
from ...platform.throttle import FailureThrottle
from .ratelimit import limit_headers, refusal

log = logging.getLogger("mediagw.api")

__all__ = [
    "MAX_BODY",
    "Api",
    "ApiContext",
    "Body",
    "Call",
    "Route",
    "errors",
    "not_found",
]

PREFIX = "/api"
MAX_BODY = 64 * 1024  # bytes of JSON one request may carry
SCOPES_COVERING = {"admin": {"admin", "streams", "playback"}, "streams": {"streams", "playback"}}


class Body(BaseModel):
    """Base of every request body: camelCase on the wire (Studio's names), unknown fields
    refused, strict types (``"yes"`` is not a boolean, ``"3"`` not a number), strings kept as
    given."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        strict=True,
    )


def not_found(kind: str, ident: str) -> StoreNotFound:
    """The 404 of a route whose object (or another tenant's) does not exist."""
    return StoreNotFound(f"no {kind} with id {ident[:100]!r}")


def errors(status: int, *messages: str, headers: dict[str, str] | None = None) -> web.Response:
    """Studio's error answer: ``{"errors": [...]}``."""
    return web.json_response({"errors": list(messages)}, status=status, headers=headers)


@dataclass
class ApiContext:
    """What the routes work with; built by the gateway once its store is open. Services are
    added by the modules that need them (``services["streams"]``...)."""

    store: Store
    clock: Clock = SYSTEM
    throttle: FailureThrottle = field(default_factory=FailureThrottle)
    limits: RequestLimits | None = None  # None: no rate limits nor quotas
    public_url: Callable[[], str] = lambda: ""
    services: dict[str, Any] = field(default_factory=dict)

    def now_ms(self) -> int:
        return int(self.clock.wall() * 1000)


CONTEXT = web.AppKey("studio_api", ApiContext)


@dataclass
class Call:
    """One authenticated request, as a handler sees it."""

    request: web.Request
    ctx: ApiContext
    key: ApiKey | None
    body: Any = None  # the route's Body model, validated

    @property
    def tenant(self) -> Tenant:
        """Whose objects this request sees (``platform/tenancy``): the key's own; all for an
        admin key."""
        return tenant_of(self.key)

    def param(self, name: str) -> str:
        return self.request.match_info[name]

    def limit(self, default: int = 100, maximum: int = 1000) -> int:
        """The ``?limit=`` of a listing: a whole number from 1 to ``maximum`` (422 if not)."""
        text = self.query.get("limit", str(default))
        if not text.isdigit() or not 1 <= int(text) <= maximum:
            raise InvalidInput("limit", f"give a whole number from 1 to {maximum}")
        return int(text)

    @property
    def query(self) -> Any:
        return self.request.query

    @property
    def ip(self) -> str:
        return self.request.remote or ""

    async def audit(
        self,
        action: str,
        target_type: str,
        target_id: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record an admin action: who (key id, address), when, what, on which object.
        ``details`` must never hold a secret (stream keys, shared secrets, private keys)."""
        await self.ctx.store.append_audit(
            AuditEntry(
                at=self.ctx.now_ms(),
                action=action,
                actor_key_id=self.key.id if self.key else None,
                ip=self.ip or None,
                target_type=target_type,
                target_id=target_id,
                details=details,
            )
        )


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under /api, e.g. "/stream/{id}"
    handler: Handler
    scope: str | None  # None: no key needed
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    status: int = 200
    response: type[BaseModel] | None = None  # documented answer (OpenAPI)
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of query parameters


class Api:
    """A list of routes; ``route`` declares one with a decorator."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        scope: str | None,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        status: int = 200,
        response: type[BaseModel] | None = None,
        query: tuple[tuple[str, str], ...] = (),
    ) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            self.routes.append(
                Route(method, path, handler, scope, summary, tag, body, status, response, query)
            )
            return handler

        return add

    def mount(self, app: web.Application, ctx: ApiContext) -> None:
        app[CONTEXT] = ctx
        for route in self.routes:
            app.router.add_route(route.method, PREFIX + route.path, _wrap(route))


def _wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CONTEXT]
        try:
            key = await _authenticate(request, ctx, route)
        except _Refused as exc:
            return exc.response
        decision = await _limit(ctx, key)
        if decision is not None and not decision.allowed:
            return refusal(decision)
        response = await _answer(request, ctx, route, key)
        if decision is not None and not response.prepared:
            response.headers.update(limit_headers(decision))
        return response

    return handle


async def _limit(ctx: ApiContext, key: ApiKey | None) -> Decision | None:
    if key is None or ctx.limits is None:
        return None
    try:
        return await ctx.limits.check(key)
    except StoreError as exc:  # the plan cannot be read: the request goes on (fail open)
        log.error("plan limits not checked", extra={"key": key.id, "error": str(exc)})
        return None


async def _answer(
    request: web.Request, ctx: ApiContext, route: Route, key: ApiKey | None
) -> web.StreamResponse:
    try:
        body = await _body(request, route) if route.body is not None else None
        result = await route.handler(Call(request, ctx, key, body))
    except _Refused as exc:
        return exc.response
    except InvalidInput as exc:
        return errors(422, str(exc))
    except StoreConflict as exc:
        return errors(409, str(exc))
    except StoreBadInput as exc:
        return errors(400, str(exc))
    except StoreNotFound as exc:
        return errors(404, str(exc))
    except StoreError as exc:
        log.error("store failed", extra={"path": route.path, "error": str(exc)})
        return errors(503, "the gateway's database failed: retry later")
    if isinstance(result, web.StreamResponse):
        return result
    if result is None and route.status == 204:
        return web.Response(status=204)
    return web.json_response(result, status=route.status)


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


async def _authenticate(request: web.Request, ctx: ApiContext, route: Route) -> ApiKey | None:
    if route.scope is None:
        return None
    ip = request.remote or ""
    now = ctx.clock.monotonic()
    wait = ctx.throttle.retry_after(ip, now)
    if wait > 0:
        raise _Refused(
            errors(
                429,
                "too many failed authentications from this address: retry later",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        )
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    try:
        if not header:
            raise AuthError("missing")
        if scheme.lower() != "bearer":
            raise AuthError("malformed")
        key = await keys.authenticate(ctx.store, presented.strip(), now=ctx.now_ms())
    except AuthError as exc:
        ctx.throttle.failed(ip, now)
        raise _Refused(
            errors(401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="mediagw"'})
        ) from None
    covered: set[str] = set()
    for scope in key.scopes:
        covered |= SCOPES_COVERING.get(scope, {scope})
    if route.scope not in covered:
        raise _Refused(
            errors(403, f"this API key lacks the {route.scope!r} scope: use a key that has it")
        )
    origin = request.headers.get("Origin")
    if origin is not None and not _origin_allowed(origin, key, request):
        raise _Refused(
            errors(
                403,
                f"this API key may not be used from {origin[:200]}: add the origin to the"
                " key's CORS origins, or call the API from a server",
            )
        )
    return key


def _origin_allowed(origin: str, key: ApiKey, request: web.Request) -> bool:
    if key.cors_origins:
        return "*" in key.cors_origins or origin in key.cors_origins
    # no CORS origins: a server-side key, usable from the gateway's own pages only
    return origin == f"{request.scheme}://{request.host}"


async def _body(request: web.Request, route: Route) -> Any:
    assert route.body is not None
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _Refused(errors(413, f"the request body is larger than {MAX_BODY} bytes"))
    raw = await read_prefix(request.content, MAX_BODY + 1)  # all of it, not what has arrived
    return parse_body(raw, request.content_type, route.body)


def parse_body(raw: bytes, ctype: str, model: type[BaseModel]) -> Any:
    """A request body -> ``model``; ``_Refused`` (413, 415, 400, 422) says what is wrong."""
    if len(raw) > MAX_BODY:
        raise _Refused(errors(413, f"the request body is larger than {MAX_BODY} bytes"))
    if ctype not in ("application/json", "application/octet-stream", "") and not ctype.endswith(
        "+json"
    ):
        raise _Refused(errors(415, f"send JSON (Content-Type: application/json), not {ctype}"))
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:  # also a number of more than 4,300 digits, or not UTF-8
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise _Refused(errors(400, f"the request body is not valid JSON{where}")) from None
    except RecursionError:
        raise _Refused(errors(400, "the request body is JSON nested too deeply")) from None
    if not isinstance(doc, dict):
        raise _Refused(errors(422, "the request body must be a JSON object"))
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise _Refused(errors(422, *describe(exc))) from None


def describe(exc: ValidationError, limit: int = 20) -> list[str]:
    """One line per invalid field: its JSON path, then what is wrong (input values are not
    echoed: they may be secrets or huge)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        path = ".".join(str(p) for p in err["loc"]) or "body"
        lines.append(f"{path}: {err['msg']}")
    return lines
