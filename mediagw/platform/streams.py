"""The streams service: Studio's streams, sessions and multistream targets over the ``Store``.

    streams = StreamService(store, terminate=kick)    # kick(playback_id) -> a publisher stopped?
    stream = await streams.create({"name": "show", "record": True})
    to_studio(stream, with_key=True)                  # the owner's answer; with_key=False elsewhere

Bodies are Studio's JSON (camelCase), checked field by field (``stream_input``): a bad value is
``InvalidInput`` naming the field, an unknown field too. The HTTP routes are thin wrappers; this
module knows nothing of HTTP. Generated values: the stream id is a uuid4 (Studio's shape), the
stream key ``xxxx-xxxx-xxxx-xxxx`` (16 base36 characters from ``secrets``: 82 bits), the
playback id 16 base36 characters; a taken one is drawn again.

Every method takes the ``tenant`` acting (``platform/tenancy``; default: the operator, who sees
everything): another tenant's stream, session or target is None / not listed, a stream may
name only the tenant's own multistream targets, and what it creates is its own.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from ..clock import SYSTEM, Clock
from ..errors import InvalidInput, StoreConflict
from .store import MultistreamTarget, Page, Session, Store, Stream
from .stream_input import (
    DEFAULT_PROFILES,
    check_bool,
    check_multistream,
    check_name,
    check_pipeline_field,
    check_pipeline_params,
    check_playback_policy,
    check_profiles,
    check_target_spec,
    check_user_tags,
    reject_unknown,
)
from .studio_json import session_to_studio, target_to_studio, to_studio
from .tenancy import OPERATOR, Tenant

__all__ = [
    "StreamService",
    "Terminate",
    "new_playback_id",
    "new_stream_key",
    "session_to_studio",
    "target_to_studio",
    "to_studio",
]

log = logging.getLogger("mediagw.platform.streams")

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ATTEMPTS = 5  # draws of a unique value before giving up (a clash is ~2^-80 per draw)
CREATE_FIELDS = (
    "name",
    "profiles",
    "record",
    "multistream",
    "playbackPolicy",
    "suspended",
    "userTags",
    "pipeline",
    "pipelineParams",
)
UPDATE_FIELDS = CREATE_FIELDS
FILTER_FIELDS = ("name", "isActive")

Terminate = Callable[[str], bool]  # playback id -> True if a live publisher was stopped
T = TypeVar("T")


def _base36(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def new_stream_key() -> str:
    """``xxxx-xxxx-xxxx-xxxx``, base36."""
    return "-".join(_base36(4) for _ in range(4))


def new_playback_id() -> str:
    return _base36(16)


def _no_terminate(_playback_id: str) -> bool:
    return False


async def _unique(make: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(ATTEMPTS):
        try:
            return await make()
        except StoreConflict:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class StreamService:
    """Create, read, change and end streams; their sessions; multistream targets."""

    def __init__(
        self, store: Store, *, terminate: Terminate | None = None, clock: Clock = SYSTEM
    ) -> None:
        self.store = store
        self.terminate_publisher = terminate or _no_terminate
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock.wall() * 1000)

    # streams

    async def create(self, body: Mapping[str, Any], *, tenant: Tenant = OPERATOR) -> Stream:
        """A new stream of ``tenant`` from Studio's ``POST /stream`` body; ``InvalidInput`` for
        a bad one."""
        reject_unknown(body, CREATE_FIELDS)
        if "name" not in body:
            raise InvalidInput("name", "is required")
        owner_key_id = tenant.key_id
        fields = await self._fields(body, None, tenant, owner_key_id)
        fields.setdefault("profiles", [dict(p) for p in DEFAULT_PROFILES])
        created_at = self._now()

        async def insert() -> Stream:
            stream = Stream(
                id=str(uuid.uuid4()),
                stream_key=new_stream_key(),
                playback_id=new_playback_id(),
                created_at=created_at,
                owner_key_id=owner_key_id,
                **fields,
            )
            return await self.store.create_stream(stream)

        return await _unique(insert)

    async def get(self, stream_id: str, *, tenant: Tenant = OPERATOR) -> Stream | None:
        """The stream, if ``tenant`` sees it."""
        stream = await self.store.get_stream(stream_id)
        return stream if stream is not None and tenant.sees(stream.owner_key_id) else None

    async def list(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        limit: int = 100,
        cursor: str | None = None,
        tenant: Tenant = OPERATOR,
    ) -> Page[Stream]:
        """``tenant``'s streams, newest first. ``filters``: ``name`` (exact) and ``isActive``
        (Studio's filter ids, as the route decoded them from
        ``?filters=[{"id":..,"value":..}]``)."""
        filters = filters or {}
        reject_unknown(filters, FILTER_FIELDS, "filters")
        name = filters.get("name")
        if name is not None:
            check_name(name, "filters.name")
        active = filters.get("isActive")
        if active is not None:
            check_bool(active, "filters.isActive")
        return await self.store.list_streams(
            name=name, is_active=active, limit=limit, cursor=cursor, owner_key_id=tenant.only
        )

    async def update(
        self, stream_id: str, changes: Mapping[str, Any], *, tenant: Tenant = OPERATOR
    ) -> Stream | None:
        """PATCH: only the fields given change (``null`` clears an optional one); None if there
        is no such stream (of ``tenant``). Suspending a live stream ends its session."""
        reject_unknown(changes, UPDATE_FIELDS)
        current = await self.get(stream_id, tenant=tenant)
        if current is None:
            return None
        fields = await self._fields(changes, current, tenant, current.owner_key_id)
        stream = await self.store.update_stream(stream_id, **fields)
        if stream is not None and fields.get("suspended") and stream.is_active:
            self.terminate_publisher(stream.playback_id)
        return stream

    async def delete(self, stream_id: str, *, tenant: Tenant = OPERATOR) -> bool:
        """Delete a stream with its sessions (a live publisher is stopped); False if none."""
        stream = await self.get(stream_id, tenant=tenant)
        if stream is None:
            return False
        self.terminate_publisher(stream.playback_id)
        return await self.store.delete_stream(stream_id)

    async def terminate(self, stream_id: str, *, tenant: Tenant = OPERATOR) -> bool | None:
        """End the live session (the publisher is disconnected; it may publish again). None if
        there is no such stream, else whether a publisher was live."""
        stream = await self.get(stream_id, tenant=tenant)
        if stream is None:
            return None
        return self.terminate_publisher(stream.playback_id)

    async def _fields(
        self,
        body: Mapping[str, Any],
        current: Stream | None,
        tenant: Tenant,
        owner_key_id: str | None,
    ) -> dict[str, Any]:
        """The stored fields of a body; multistream targets named must be ``tenant``'s, those
        given inline become ``owner_key_id``'s (the stream's owner)."""
        out: dict[str, Any] = {}
        if "name" in body:
            out["name"] = check_name(body["name"])
        for key in ("record", "suspended"):
            if key in body:
                out[key] = check_bool(body[key], key)
        if body.get("profiles") is not None:
            out["profiles"] = check_profiles(body["profiles"])
        elif "profiles" in body and current is None:
            pass  # null on create: the default ladder
        elif "profiles" in body:
            out["profiles"] = [dict(p) for p in DEFAULT_PROFILES]
        if "playbackPolicy" in body:
            policy = body["playbackPolicy"]
            out["playback_policy"] = None if policy is None else check_playback_policy(policy)
        if "userTags" in body:
            tags = body["userTags"]
            out["user_tags"] = None if tags is None else check_user_tags(tags)
        if "pipeline" in body:
            out["pipeline"] = check_pipeline_field(body["pipeline"])
        if "pipelineParams" in body:
            out["pipeline_params"] = check_pipeline_params(body["pipelineParams"])
        pipeline = out.get("pipeline", current.pipeline if current else None)
        params = out.get("pipeline_params", current.pipeline_params if current else None)
        if params and not pipeline:
            raise InvalidInput("pipelineParams", "needs a pipeline (the live AI model)")
        if body.get("multistream") is not None:
            profiles = out.get("profiles", current.profiles if current else DEFAULT_PROFILES)
            multistream = check_multistream(body["multistream"], profiles)
            out["multistream"] = await self._targets(multistream, tenant, owner_key_id)
        elif "multistream" in body:
            out["multistream"] = None
        return out

    async def _targets(
        self, multistream: dict[str, Any], tenant: Tenant, owner_key_id: str | None
    ) -> dict[str, Any]:
        """Inline ``spec`` entries become stored targets; ``id`` entries must exist."""
        targets = []
        for n, entry in enumerate(multistream["targets"]):
            spec = entry.pop("spec", None)
            if spec is None:
                if await self.get_target(entry["id"], tenant=tenant) is None:
                    raise InvalidInput(
                        f"multistream.targets.{n}.id",
                        "no such multistream target: create it first, or give a spec",
                    )
            else:
                entry["id"] = (await self._create_target(spec, owner_key_id)).id
            targets.append(entry)
        return {"targets": targets}

    # sessions

    async def list_sessions(self, stream_id: str, *, limit: int = 100) -> tuple[Session, ...]:
        """A stream's sessions, newest first."""
        return await self.store.list_sessions(stream_id, limit=limit)

    async def get_session(self, session_id: str, *, tenant: Tenant = OPERATOR) -> Session | None:
        """The session, if ``tenant`` sees its stream."""
        session = await self.store.get_session(session_id)
        if session is None or await self.get(session.stream_id, tenant=tenant) is None:
            return None
        return session

    # multistream targets

    async def create_target(
        self, body: Mapping[str, Any], *, tenant: Tenant = OPERATOR
    ) -> MultistreamTarget:
        """``tenant``'s new target from Studio's ``POST /multistream/target`` body
        ``{name?, url, disabled?}``."""
        return await self._create_target(check_target_spec(body, ""), tenant.key_id)

    async def _create_target(
        self, spec: Mapping[str, Any], owner_key_id: str | None
    ) -> MultistreamTarget:
        created_at = self._now()

        async def insert() -> MultistreamTarget:
            target = MultistreamTarget(
                id=str(uuid.uuid4()),
                name=spec.get("name") or "",
                url=spec["url"],
                created_at=created_at,
                disabled=bool(spec.get("disabled", False)),
                owner_key_id=owner_key_id,
            )
            return await self.store.create_multistream_target(target)

        return await _unique(insert)

    async def get_target(
        self, target_id: str, *, tenant: Tenant = OPERATOR
    ) -> MultistreamTarget | None:
        """The target, if ``tenant`` sees it."""
        target = await self.store.get_multistream_target(target_id)
        return target if target is not None and tenant.sees(target.owner_key_id) else None

    async def list_targets(
        self, *, limit: int = 100, tenant: Tenant = OPERATOR
    ) -> tuple[MultistreamTarget, ...]:
        return await self.store.list_multistream_targets(limit=limit, owner_key_id=tenant.only)

    async def delete_target(self, target_id: str, *, tenant: Tenant = OPERATOR) -> bool:
        """Delete a target; streams that name it skip it from their next session on."""
        if await self.get_target(target_id, tenant=tenant) is None:
            return False
        return await self.store.delete_multistream_target(target_id)
