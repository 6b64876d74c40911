"""The streams service over a real store (both backends): generated values, Studio's JSON,
PATCH, terminate, multistream targets, and every field's validation (``InvalidInput`` naming
the field)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mediagw.errors import InvalidInput
from mediagw.platform.store import SqlStore
from mediagw.platform.stream_input import DEFAULT_PROFILES
from mediagw.platform.streams import (
    StreamService,
    session_to_studio,
    target_to_studio,
    to_studio,
)

P = {"name": "p1", "width": 640, "height": 360, "bitrate": 800_000, "fps": 30}


@pytest.fixture
def kicked() -> list[str]:
    return []


@pytest.fixture
def service(store: SqlStore, kicked: list[str]) -> StreamService:
    def terminate(playback_id: str) -> bool:
        kicked.append(playback_id)
        return True

    return StreamService(store, terminate=terminate)


async def test_create_generates_ids_and_studio_defaults(service: StreamService) -> None:
    stream = await service.create({"name": "a"})
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", stream.id)
    assert re.fullmatch(r"[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}", stream.stream_key)
    assert re.fullmatch(r"[0-9a-z]{16}", stream.playback_id)
    assert [p["name"] for p in stream.profiles] == ["240p0", "360p0", "480p0", "720p0"]
    assert stream.profiles == list(DEFAULT_PROFILES)
    other = await service.create({"name": "a"})
    assert len({stream.stream_key, other.stream_key, stream.playback_id, other.playback_id}) == 4
    assert await service.get(stream.id) == stream


async def test_studio_json_has_the_key_only_for_the_owner(service: StreamService) -> None:
    stream = await service.create({"name": "a", "record": True, "userTags": {"t": 1}})
    owner = to_studio(stream, with_key=True)
    assert owner["streamKey"] == stream.stream_key
    public = to_studio(stream, with_key=False)
    assert "streamKey" not in public and stream.stream_key not in repr(public)
    for key in ("id", "name", "playbackId", "profiles", "record", "multistream", "isActive",
                "lastSeen", "createdAt", "sourceSegments", "sourceSegmentsDuration",
                "transcodedSegments", "transcodedSegmentsDuration", "sourceBytes",
                "transcodedBytes", "suspended", "userTags", "playbackPolicy"):  # fmt: skip
        assert key in owner, key
    assert isinstance(owner["createdAt"], int) and owner["lastSeen"] == 0
    assert owner["playbackPolicy"] == {"type": "public"}
    assert owner["multistream"] == {"targets": []}


async def test_update_is_a_patch_and_suspending_kicks_the_publisher(
    service: StreamService, store: SqlStore, kicked: list[str]
) -> None:
    stream = await service.create({"name": "a", "profiles": [P], "userTags": {"x": 1}})
    changed = await service.update(stream.id, {"record": True})
    assert changed is not None and changed.record and changed.profiles == [P]
    assert changed.user_tags == {"x": 1} and changed.name == "a"
    cleared = await service.update(stream.id, {"userTags": None, "name": "b"})
    assert cleared is not None and cleared.user_tags is None and cleared.name == "b"
    assert await service.update("nope", {"record": True}) is None
    assert kicked == []
    await store.update_stream(stream.id, is_active=True)
    await service.update(stream.id, {"suspended": True})
    assert kicked == [stream.playback_id]
    assert await service.terminate(stream.id) is True
    assert await service.terminate("nope") is None
    assert await service.delete(stream.id)
    assert not await service.delete(stream.id)
    assert await service.get(stream.id) is None


async def test_list_filters(service: StreamService, store: SqlStore) -> None:
    a = await service.create({"name": "a"})
    await service.create({"name": "b"})
    await store.update_stream(a.id, is_active=True)
    assert [s.id for s in (await service.list({"isActive": True})).items] == [a.id]
    assert [s.name for s in (await service.list({"name": "b"})).items] == ["b"]
    assert len((await service.list()).items) == 2
    with pytest.raises(InvalidInput) as info:
        await service.list({"userId": "x"})
    assert info.value.field == "filters.userId"


async def test_multistream_targets_inline_and_by_id(service: StreamService) -> None:
    target = await service.create_target({"name": "yt", "url": "rtmp://a.example/live/secret"})
    assert target_to_studio(target) == {
        "id": target.id, "name": "yt", "disabled": False, "createdAt": target.created_at
    }  # fmt: skip
    stream = await service.create(
        {
            "name": "m",
            "multistream": {
                "targets": [
                    {"profile": "source", "id": target.id},
                    {"profile": "720p0", "videoOnly": True,
                     "spec": {"name": "tw", "url": "srt://b.example:9000"}},
                ]
            },
        }
    )  # fmt: skip
    assert stream.multistream is not None
    first, second = stream.multistream["targets"]
    assert first == {"profile": "source", "id": target.id}
    assert second["profile"] == "720p0" and second["videoOnly"] is True
    created = await service.get_target(second["id"])
    assert created is not None and created.url == "srt://b.example:9000"
    assert {t.id for t in await service.list_targets()} == {target.id, created.id}
    assert await service.delete_target(target.id)
    assert await service.get_target(target.id) is None
    with pytest.raises(InvalidInput) as info:
        await service.create(
            {"name": "x", "multistream": {"targets": [{"profile": "source", "id": target.id}]}}
        )
    assert info.value.field == "multistream.targets.0.id"


async def test_sessions_render_as_studio(service: StreamService, store: SqlStore) -> None:
    from mediagw.platform.store import Session

    stream = await service.create({"name": "a", "record": True})
    await store.start_session(Session(id="s", stream_id=stream.id, created_at=5, record=True))
    (session,) = await service.list_sessions(stream.id)
    doc = session_to_studio(session, stream)
    assert doc["parentId"] == stream.id and doc["isActive"] and doc["createdAt"] == 5
    assert doc["recordingStatus"] == "waiting" and "recordingUrl" not in doc
    assert doc["playbackId"] == stream.playback_id and "streamKey" not in doc
    assert await service.get_session("s") == session


BAD: list[tuple[dict[str, Any], str]] = [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 501}, "name"),
    ({"name": 5}, "name"),
    ({"name": "a", "colour": "red"}, "colour"),
    ({"name": "a", "record": "yes"}, "record"),
    ({"name": "a", "suspended": 1}, "suspended"),
    ({"name": "a", "profiles": {}}, "profiles"),
    ({"name": "a", "profiles": [P] * 11}, "profiles"),
    ({"name": "a", "profiles": ["x"]}, "profiles.0"),
    ({"name": "a", "profiles": [{**P, "width": 641}]}, "profiles.0.width"),
    ({"name": "a", "profiles": [{**P, "width": 7682}]}, "profiles.0.width"),
    ({"name": "a", "profiles": [{**P, "height": 0}]}, "profiles.0.height"),
    ({"name": "a", "profiles": [{**P, "height": 360.0}]}, "profiles.0.height"),
    ({"name": "a", "profiles": [{**P, "bitrate": 0}]}, "profiles.0.bitrate"),
    ({"name": "a", "profiles": [{**P, "fps": 500}]}, "profiles.0.fps"),
    ({"name": "a", "profiles": [{**P, "fpsDen": 0}]}, "profiles.0.fpsDen"),
    ({"name": "a", "profiles": [{**P, "gop": "soon"}]}, "profiles.0.gop"),
    ({"name": "a", "profiles": [{**P, "profile": "H265"}]}, "profiles.0.profile"),
    ({"name": "a", "profiles": [{**P, "name": "../x"}]}, "profiles.0.name"),
    ({"name": "a", "profiles": [{**P, "name": "source"}]}, "profiles.0.name"),
    ({"name": "a", "profiles": [{**P, "encoder": "nv"}]}, "profiles.0.encoder"),
    ({"name": "a", "profiles": [{k: v for k, v in P.items() if k != "fps"}]}, "profiles.0.fps"),
    ({"name": "a", "profiles": [P, P]}, "profiles.1.name"),
    ({"name": "a", "multistream": []}, "multistream"),
    ({"name": "a", "multistream": {"targets": [{"profile": "source"}]}}, "multistream.targets.0"),
    ({"name": "a", "multistream": {"targets": [{"profile": "9k", "id": "t"}]}},
     "multistream.targets.0.profile"),
    ({"name": "a", "multistream": {"targets": [
        {"profile": "source", "spec": {"url": "http://x/y"}}]}},
     "multistream.targets.0.spec.url"),
    ({"name": "a", "multistream": {"targets": [
        {"profile": "source", "spec": {"url": "rtmp://x/ y"}}]}},
     "multistream.targets.0.spec.url"),
    ({"name": "a", "multistream": {"targets": [
        {"profile": "source", "videoOnly": "no", "id": "t"}]}},
     "multistream.targets.0.videoOnly"),
    ({"name": "a", "multistream": {"targets": [{"profile": "source", "id": "t"}] * 11}},
     "multistream.targets"),
    ({"name": "a", "playbackPolicy": {"type": "secret"}}, "playbackPolicy.type"),
    ({"name": "a", "playbackPolicy": {"type": "webhook"}}, "playbackPolicy.webhookId"),
    ({"name": "a", "playbackPolicy": {"type": "jwt", "refreshInterval": 0}},
     "playbackPolicy.refreshInterval"),
    ({"name": "a", "playbackPolicy": {"type": "jwt", "allowedOrigins": "*"}},
     "playbackPolicy.allowedOrigins"),
    ({"name": "a", "playbackPolicy": {"type": "jwt", "x": 1}}, "playbackPolicy.x"),
    ({"name": "a", "userTags": []}, "userTags"),
    ({"name": "a", "userTags": {"k": "v" * 5000}}, "userTags"),
    ({"name": "a", "userTags": {str(n): n for n in range(33)}}, "userTags"),
    ({"name": "a", "pipeline": "bad name!"}, "pipeline"),
    ({"name": "a", "pipeline": 3}, "pipeline"),
    ({"name": "a", "pipeline": "noop", "pipelineParams": [1]}, "pipelineParams"),
    ({"name": "a", "pipelineParams": {"x": 1}}, "pipelineParams"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), BAD)
async def test_every_bad_field_is_invalid_input_naming_it(
    service: StreamService, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        await service.create(body)
    assert info.value.field == field, str(info.value)
    assert (await service.list()).items == ()  # nothing half-made


async def test_good_values_at_the_bounds(service: StreamService) -> None:
    stream = await service.create(
        {
            "name": "x" * 500,
            "profiles": [
                {**P, "name": "big", "width": 7680, "height": 4320, "fpsDen": 1001,
                 "gop": "2.5", "profile": "H264High"},
                {**P, "name": "intra", "width": 2, "height": 2, "fps": 0, "gop": "intra"},
            ],
            "playbackPolicy": {"type": "webhook", "webhookId": "w", "webhookContext": {"a": 1},
                               "refreshInterval": 600, "allowedOrigins": ["https://a"]},
            "pipeline": "org/model:v2",
            "pipelineParams": {"prompt": "x"},
            "userTags": {"k": "v"},
        }
    )  # fmt: skip
    assert stream.pipeline == "org/model:v2" and stream.playback_policy is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "url"), ({"url": "ftp://x"}, "url"), ({"url": "rtmp://x", "name": ""}, "name"),
     ({"url": "rtmp://x", "disabled": "no"}, "disabled"), ({"url": "rtmp://x", "k": 1}, "k")],
)  # fmt: skip
async def test_bad_multistream_targets(
    service: StreamService, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        await service.create_target(body)
    assert info.value.field == field
