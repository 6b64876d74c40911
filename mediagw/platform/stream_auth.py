"""Stream-key checks for publishers: open, a static key list, or a go-livepeer-style webhook.

Every check answers with a ``StreamGrant`` whose ``manifest_id`` is the PUBLIC id used in playback
URLs; a secret stream key is never used as a manifest id unless the operator's webhook says so.

URL shapes (RTMP):
- ``rtmp://HOST/live/NAME`` (or app ``stream``): NAME is the stream name; with static keys NAME
  is the secret key, or ``live/NAME?key=SECRET`` keeps a public name and a secret key apart.
- ``rtmp://HOST/MANIFEST/KEY`` (go-livepeer's shape): MANIFEST is the name, KEY the key.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import PublishRejected, WebhookUnreachable
from ..metrics import NULL_METRICS, Metrics
from ..request import INGEST_RTMP
from ..webhook import JsonPoster, redact_url

log = logging.getLogger("mediagw.auth")

__all__ = [
    "OpenAuth",
    "PublishAttempt",
    "StaticKeyAuth",
    "StreamAuthorizer",
    "StreamGrant",
    "WebhookAuth",
    "valid_manifest_id",
]

_MANIFEST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
UNAUTHORIZED = "NetStream.Publish.Unauthorized"


def valid_manifest_id(text: str) -> bool:
    """Safe as one URL path segment and as a directory name."""
    return bool(_MANIFEST_RE.match(text)) and ".." not in text


@dataclass(frozen=True, slots=True)
class PublishAttempt:
    url: str  # the incoming URL, e.g. rtmp://host:1935/live/name?k=v (sent to webhooks)
    app: str
    name: str  # stream name without query string
    query: Mapping[str, str] = field(default_factory=dict)
    peer: str = ""
    ingest: str = INGEST_RTMP  # or INGEST_WHIP, INGEST_LIVE_WHIP, INGEST_HTTP_PUSH (request.py)

    @property
    def stream_name(self) -> str:
        """The public name: NAME for ``live/NAME``, MANIFEST for ``MANIFEST/KEY``."""
        if self.app in ("live", "stream", "") or "/" in self.app:
            return self.name
        return self.app

    @property
    def key(self) -> str:
        """The secret part: ``?key=``, KEY for ``MANIFEST/KEY``, else NAME itself."""
        if self.query.get("key"):
            return self.query["key"]
        return self.name


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What an authorizer decided about a publish. Admission (``admission.py``) turns it and
    the publisher's URL query into the stream's ``StreamRequest``."""

    manifest_id: str  # the public stream id
    principal: str = ""  # who authorized it ("" when nobody in particular: open mode)
    profiles: list[dict[str, Any]] | None = None  # the auth webhook's ladder
    presets: list[str] = field(default_factory=list)
    # live AI, when the live AI auth webhook chose them (live_auth.py); else the URL's query
    pipeline: str | None = None
    params: dict[str, Any] | None = None
    # the operator webhooks' ids: they win over the URL's ``streamId`` / ``rtmpOutput``
    stream_id: str = ""
    session_id: str = ""
    pipeline_id: str = ""
    rtmp_output: str = ""


class StreamAuthorizer(Protocol):
    async def authorize(self, attempt: PublishAttempt) -> StreamGrant: ...


def _require_id(manifest_id: str, what: str) -> str:
    if not valid_manifest_id(manifest_id):
        raise PublishRejected(
            f"{what} {manifest_id[:64]!r} is not a valid stream id: use 1-128 of A-Z a-z 0-9 _ . -",
            "NetStream.Publish.BadName",
        )
    return manifest_id


class OpenAuth:
    """Development default: anybody may publish; the stream name is the playback id."""

    async def authorize(self, attempt: PublishAttempt) -> StreamGrant:
        return StreamGrant(_require_id(attempt.stream_name, "stream name"))


class StaticKeyAuth:
    """A configured map of secret stream key -> public playback id."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        for playback in keys.values():
            _require_id(playback, "configured playback id")
        self._keys = dict(keys)

    async def authorize(self, attempt: PublishAttempt) -> StreamGrant:
        playback = self._keys.get(attempt.key)
        if playback is None:
            raise PublishRejected("unknown stream key", UNAUTHORIZED)
        return StreamGrant(playback, principal=f"static-key:{playback}")


class WebhookAuth:
    """POST ``{"url": ...}``; any status other than 200 refuses; a JSON body configures."""

    MAX_BODY = 64 * 1024

    def __init__(self, url: str, *, timeout: float = 5.0, metrics: Metrics = NULL_METRICS) -> None:
        self.url = url
        self.metrics = metrics  # each call's round trip
        self._poster = JsonPoster(url, timeout=timeout, max_body=self.MAX_BODY)

    async def close(self) -> None:
        await self._poster.close()

    async def authorize(self, attempt: PublishAttempt) -> StreamGrant:
        try:
            status, body = await self._poster.post({"url": attempt.url})
            self.metrics.auth_webhook_time(self._poster.last_ms)
        except WebhookUnreachable as exc:
            extra = {"webhook": redact_url(self.url), "error": str(exc)}
            log.warning("auth webhook unreachable", extra=extra)
            raise PublishRejected("auth webhook unreachable", UNAUTHORIZED) from None
        if status != 200:
            raise PublishRejected(f"auth webhook refused the stream ({status})", UNAUTHORIZED)
        if len(body) > self.MAX_BODY:
            raise PublishRejected("auth webhook answer too large", UNAUTHORIZED)
        if not body.strip():
            return StreamGrant(_require_id(attempt.stream_name, "stream name"))
        return self._parse(body)

    @staticmethod
    def _parse(body: bytes) -> StreamGrant:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise PublishRejected("auth webhook answer is not JSON", UNAUTHORIZED) from None
        if not isinstance(data, dict):
            raise PublishRejected("auth webhook answer is not a JSON object", UNAUTHORIZED)
        manifest = data.get("manifestID")
        if not isinstance(manifest, str) or not manifest:
            raise PublishRejected("auth webhook answer has no manifestID", UNAUTHORIZED)
        profiles = data.get("profiles")
        if profiles is not None and not (
            isinstance(profiles, list) and all(isinstance(p, dict) for p in profiles)
        ):
            raise PublishRejected("auth webhook profiles must be a list of objects", UNAUTHORIZED)
        presets = data.get("presets") or []
        if not isinstance(presets, list) or not all(isinstance(p, str) for p in presets):
            raise PublishRejected("auth webhook presets must be a list of names", UNAUTHORIZED)
        return StreamGrant(
            _require_id(manifest, "manifestID"),
            profiles=profiles,
            presets=presets,
            stream_id=str(data.get("streamID") or ""),
            session_id=str(data.get("sessionID") or ""),
        )
