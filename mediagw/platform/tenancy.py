"""Who owns what: each API key is a tenant of the gateway.

Every stream, multistream target, webhook and signing key records the API key that created it
(``owner_key_id``). A key without the ``admin`` scope sees and acts only on what it owns;
another key's object is "not found" (its existence is not revealed). An ``admin`` key is the
operator: it sees and acts on everything, and what it creates is its own. An object without an
owner (made by a tool, or before owners were recorded) is the operator's too.

    tenant = tenant_of(key)
    await store.list_streams(owner_key_id=tenant.only)     # None for an admin: all
    if not tenant.sees(stream.owner_key_id): raise StoreNotFound(...)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .store import ApiKey

__all__ = ["OPERATOR", "Tenant", "operators_own", "tenant_of"]


@dataclass(frozen=True)
class Tenant:
    """The key a request acts as (None: the gateway itself) and whether it is an admin."""

    key_id: str | None
    admin: bool

    @property
    def only(self) -> str | None:
        """The owner to filter listings by; None (an admin): everyone's."""
        return None if self.admin else self.key_id

    def sees(self, owner_key_id: str | None) -> bool:
        """Whether an object owned by ``owner_key_id`` is visible to (and changeable by) it."""
        return self.admin or (owner_key_id is not None and owner_key_id == self.key_id)


OPERATOR = Tenant(None, admin=True)  # internal callers: everything, owning nothing


def tenant_of(key: ApiKey | None) -> Tenant:
    return OPERATOR if key is None else Tenant(key.id, admin="admin" in key.scopes)


def operators_own(owner_key_id: str | None, admin_ids: Collection[str]) -> bool:
    """Whether an object with this owner is the operator's (no owner, or an admin key's): the
    operator's global webhooks fire for, and its signing keys sign for, every stream."""
    return owner_key_id is None or owner_key_id in admin_ids
