"""Signing keys for token-gated playback, Studio's routes and answers (scope ``streams``).

    POST   /api/access-control/signing-key        {name?} -> 200 with ``privateKey`` (once)
    GET    /api/access-control/signing-key        the keys (public parts)
    GET    /api/access-control/signing-key/{id}
    PATCH  /api/access-control/signing-key/{id}   {name?, disabled?} -> 204
    DELETE /api/access-control/signing-key/{id}   -> 204

A key acts on its own signing keys only (an admin key: on all; another's is 404), and a token plays
only streams of the signing key's owner (an admin key's signing key: every stream;
``PlaybackAccess``). Studio's SDK accepts 200 (not 201) for a new key and 204 for PATCH and DELETE.
A disabled or deleted key stops verifying tokens on this gateway at once
(``PlaybackAccess.forget``), and on other gateway nodes within the access cache's lifetime.
"""

from __future__ import annotations

from typing import Any

from ...platform.access import PlaybackAccess, create_signing_key
from ...platform.store import SigningKey
from .base import Api, Call, not_found
from .models import SigningKeyCreate, SigningKeyOut, SigningKeyPatch

__all__ = ["add_signing_key_routes"]

PATH = "/access-control/signing-key"


def signing_key_json(key: SigningKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "publicKey": key.public_key,
        "createdAt": key.created_at,
        "disabled": key.disabled,
    }


def _forget(call: Call, key: SigningKey) -> None:
    access: PlaybackAccess | None = call.ctx.services.get("access")
    if access is not None:
        access.forget(public_key=key.public_key)


async def _existing(call: Call) -> SigningKey:
    key_id = call.param("id")
    key = await call.ctx.store.get_signing_key(key_id)
    if key is None or not call.tenant.sees(key.owner_key_id):
        raise not_found("signing key", key_id)
    return key


def add_signing_key_routes(api: Api) -> None:
    @api.route(
        "POST", PATH, scope="streams", body=SigningKeyCreate, response=SigningKeyOut,
        summary="Create a signing key; its private key is returned once", tag="access-control",
    )  # fmt: skip
    async def create_signing_key_route(call: Call) -> dict[str, Any]:
        body: SigningKeyCreate = call.body
        made = await create_signing_key(
            call.ctx.store,
            body.name or "signing key",
            clock=call.ctx.clock,
            owner_key_id=call.tenant.key_id,
        )
        await call.audit("signing_key.create", "signing_key", made.key.id, {"name": made.key.name})
        return {**signing_key_json(made.key), "privateKey": made.private_key}

    @api.route(
        "GET", PATH, scope="streams", response=SigningKeyOut, summary="List signing keys",
        tag="access-control",
    )  # fmt: skip
    async def list_signing_keys(call: Call) -> list[dict[str, Any]]:
        found = await call.ctx.store.list_signing_keys(limit=1000, owner_key_id=call.tenant.only)
        return [signing_key_json(k) for k in found]

    @api.route(
        "GET", PATH + "/{id}", scope="streams", response=SigningKeyOut,
        summary="Get a signing key", tag="access-control",
    )  # fmt: skip
    async def get_signing_key(call: Call) -> dict[str, Any]:
        return signing_key_json(await _existing(call))

    @api.route(
        "PATCH", PATH + "/{id}", scope="streams", body=SigningKeyPatch, status=204,
        summary="Rename or disable a signing key", tag="access-control",
    )  # fmt: skip
    async def update_signing_key(call: Call) -> None:
        key = await _existing(call)
        body: SigningKeyPatch = call.body
        await call.ctx.store.update_signing_key(key.id, name=body.name, disabled=body.disabled)
        _forget(call, key)
        changes = body.model_dump(by_alias=True, exclude_none=True)
        await call.audit("signing_key.update", "signing_key", key.id, changes)

    @api.route(
        "DELETE", PATH + "/{id}", scope="streams", status=204, summary="Delete a signing key",
        tag="access-control",
    )  # fmt: skip
    async def delete_signing_key(call: Call) -> None:
        key = await _existing(call)
        await call.ctx.store.delete_signing_key(key.id)
        _forget(call, key)
        await call.audit("signing_key.delete", "signing_key", key.id)
