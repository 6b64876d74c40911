"""Studio's JSON for streams, sessions and multistream targets.

Times (``createdAt``, ``lastSeen``) are unix milliseconds, numbers always (0: never seen);
segment durations are seconds, as Studio gives them. ``streamKey`` is in the owner's API answer
only (``with_key=True``): webhook bodies, logs and the audit log get ``with_key=False``. A
multistream target's ``url`` carries the destination's stream key: it is write-only, as in
Studio, and never rendered. ``ingestRate`` and ``outgoingRate`` are not measured yet (0).
"""

from __future__ import annotations

from typing import Any

from .store import MultistreamTarget, Session, Stream
from .store.rows import Counters

__all__ = ["session_to_studio", "target_to_studio", "to_studio"]


def _counters(row: Counters) -> dict[str, Any]:
    return {
        "sourceSegments": row.source_segments,
        "sourceSegmentsDuration": row.source_segments_duration,
        "transcodedSegments": row.transcoded_segments,
        "transcodedSegmentsDuration": row.transcoded_segments_duration,
        "sourceBytes": row.source_bytes,
        "transcodedBytes": row.transcoded_bytes,
        "ingestRate": 0,
        "outgoingRate": 0,
    }


def to_studio(stream: Stream, *, with_key: bool) -> dict[str, Any]:
    """A stream as Studio renders it; the stream key only ``with_key`` (the owner's answer)."""
    targets = (stream.multistream or {}).get("targets", [])
    doc: dict[str, Any] = {
        "id": stream.id,
        "kind": "stream",
        "name": stream.name,
        "playbackId": stream.playback_id,
        "profiles": [dict(p) for p in stream.profiles],
        "record": stream.record,
        "multistream": {"targets": [dict(t) for t in targets]},
        "playbackPolicy": dict(stream.playback_policy or {"type": "public"}),
        "isActive": stream.is_active,
        "isHealthy": stream.is_active,
        "lastSeen": stream.last_seen or 0,
        "createdAt": stream.created_at,
        **_counters(stream),
        "suspended": stream.suspended,
    }
    if with_key:
        doc["streamKey"] = stream.stream_key
    if stream.user_tags is not None:
        doc["userTags"] = dict(stream.user_tags)
    if stream.pipeline:
        doc["pipeline"] = stream.pipeline
        doc["pipelineParams"] = dict(stream.pipeline_params or {})
    return doc


def _recording_status(session: Session) -> str:
    if session.ended_at is None:
        return "waiting"
    return "ready" if session.recording_url else "failed"


def session_to_studio(session: Session, stream: Stream | None = None) -> dict[str, Any]:
    """A session as Studio renders it; ``stream`` (its parent) adds the fields it inherits."""
    doc: dict[str, Any] = {
        "id": session.id,
        "kind": "stream",
        "parentId": session.stream_id,
        "createdAt": session.created_at,
        "lastSeen": session.last_seen or session.created_at,
        "isActive": session.ended_at is None,
        "isHealthy": session.ended_at is None,
        "record": session.record,
        **_counters(session),
    }
    if session.ended_at is not None:
        doc["endedAt"] = session.ended_at
    if session.record:
        doc["recordingStatus"] = _recording_status(session)
        if session.recording_url:
            doc["recordingUrl"] = session.recording_url
    if stream is not None:
        doc["name"] = stream.name
        doc["playbackId"] = stream.playback_id
        doc["profiles"] = [dict(p) for p in stream.profiles]
    return doc


def target_to_studio(target: MultistreamTarget) -> dict[str, Any]:
    """A multistream target; its ``url`` is write-only (it holds a secret key)."""
    return {
        "id": target.id,
        "name": target.name,
        "disabled": target.disabled,
        "createdAt": target.created_at,
    }
