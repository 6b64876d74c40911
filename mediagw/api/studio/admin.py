"""Admin routes: API keys (create, list, revoke, rotate) and the audit log. Scope ``admin``.

    POST   /api/admin/keys               {name, scopes, expiresAt?, corsOrigins?} -> 201, the
                                         key's text once (``key``), never again
    GET    /api/admin/keys               the keys (their hashes stay inside)
    DELETE /api/admin/keys/{id}          revoke (204; a revoked key stays listed)
    POST   /api/admin/keys/{id}/rotate   a new key with the same name, scopes and origins; the
                                         old one revoked -> 201
    GET    /api/audit?limit=&before=     the audit log, newest first

Studio's ``/api-token`` stores the key itself as the row's id; mediagw keeps only a hash
(``platform/keys``), so its key routes have their own shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ...errors import ConfigError, InvalidInput
from ...platform import keys
from ...platform.store import ApiKey, AuditEntry
from .base import Api, Body, Call, not_found

__all__ = ["add_admin_routes"]

Scope = Literal["admin", "streams", "playback"]
Origin = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^(\*|https?://[^/\s]+)$")]


class KeyCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(default=["streams"], min_length=1, max_length=3)
    expires_at: int | None = Field(default=None, gt=0, description="unix milliseconds")
    cors_origins: list[Origin] = Field(default=[], max_length=50)


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the key's public start, mgw_<lookup id>, to recognise it")
    scopes: list[str]
    corsOrigins: list[str]
    createdAt: int
    expiresAt: int | None
    revokedAt: int | None
    lastUsedAt: int | None


class NewKeyOut(KeyOut):
    key: str = Field(description="the whole key: shown once, store it now")


class AuditOut(BaseModel):
    id: int
    at: int
    action: str
    actorKeyId: str | None
    ip: str | None
    targetType: str | None
    targetId: str | None
    details: dict[str, Any] | None


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": f"{keys.PREFIX}{key.lookup_id}",
        "scopes": list(key.scopes),
        "corsOrigins": list(key.cors_origins),
        "createdAt": key.created_at,
        "expiresAt": key.expires_at,
        "revokedAt": key.revoked_at,
        "lastUsedAt": key.last_used_at,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "action": entry.action,
        "actorKeyId": entry.actor_key_id,
        "ip": entry.ip,
        "targetType": entry.target_type,
        "targetId": entry.target_id,
        "details": entry.details,
    }


def add_admin_routes(api: Api) -> None:
    @api.route(
        "POST", "/admin/keys", scope="admin", body=KeyCreate, status=201, response=NewKeyOut,
        summary="Create an API key (its text is shown once)", tag="keys",
    )  # fmt: skip
    async def create_api_key(call: Call) -> dict[str, Any]:
        body: KeyCreate = call.body
        try:
            row, text = await keys.create_key(
                call.ctx.store,
                body.name,
                body.scopes,
                expires_at=body.expires_at,
                cors_origins=body.cors_origins,
                clock=call.ctx.clock.wall,
            )
        except ConfigError as exc:
            raise InvalidInput("", str(exc)) from None
        await call.audit(
            "key.create", "api_key", row.id, {"name": row.name, "scopes": list(row.scopes)}
        )
        return {**key_json(row), "key": text}

    @api.route(
        "GET", "/admin/keys", scope="admin", response=KeyOut, summary="List API keys", tag="keys",
        query=(("limit", "at most this many keys, 1..1000"),),
    )  # fmt: skip
    async def list_api_keys(call: Call) -> list[dict[str, Any]]:
        return [key_json(k) for k in await keys.list_keys(call.ctx.store, limit=call.limit())]

    @api.route(
        "DELETE", "/admin/keys/{id}", scope="admin", status=204, summary="Revoke an API key",
        tag="keys",
    )  # fmt: skip
    async def revoke_api_key(call: Call) -> None:
        key_id = call.param("id")
        if not await keys.revoke(call.ctx.store, key_id, clock=call.ctx.clock.wall):
            raise not_found("API key", key_id)
        await call.audit("key.revoke", "api_key", key_id)

    @api.route(
        "POST", "/admin/keys/{id}/rotate", scope="admin", status=201, response=NewKeyOut,
        summary="Replace an API key by a new one and revoke it", tag="keys",
    )  # fmt: skip
    async def rotate_api_key(call: Call) -> dict[str, Any]:
        key_id = call.param("id")
        try:
            row, text = await keys.rotate(call.ctx.store, key_id, clock=call.ctx.clock.wall)
        except ConfigError:
            raise not_found("live API key", key_id) from None
        await call.audit("key.rotate", "api_key", key_id, {"newKeyId": row.id})
        return {**key_json(row), "key": text}

    @api.route(
        "GET", "/audit", scope="admin", response=AuditOut, tag="audit",
        summary="The audit log of admin actions, newest first",
        query=(("limit", "at most this many entries, 1..1000"),
               ("before", "only entries with an id below this one (paging)")),
    )  # fmt: skip
    async def list_audit(call: Call) -> list[dict[str, Any]]:
        before = call.query.get("before")
        if before is not None and not before.isdigit():
            raise InvalidInput("before", "give an audit entry id (a whole number)")
        entries = await call.ctx.store.list_audit(
            limit=call.limit(), before=int(before) if before is not None else None
        )
        return [audit_json(e) for e in entries]
