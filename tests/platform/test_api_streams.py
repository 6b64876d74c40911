"""Studio's stream, session, playback-info and multistream-target routes over real sockets
(SQLite and PostgreSQL): status codes Studio's SDK insists on, field shapes, filters and paging,
bad bodies naming the field, and no stream key in the audit log."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest
from api_testkit import Server, api_server

from mediagw.platform import keys
from mediagw.platform.store import SqlStore
from mediagw.platform.streams import StreamService

PROFILE = {"name": "p", "width": 640, "height": 360, "bitrate": 800_000, "fps": 30}
NO_FPS = {k: v for k, v in PROFILE.items() if k != "fps"}
HTTP_TARGET = {"profile": "source", "spec": {"url": "http://x"}}
KEY_RE = re.compile(r"^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$")


class Kicks:
    def __init__(self) -> None:
        self.live: set[str] = set()
        self.kicked: list[str] = []

    def __call__(self, playback_id: str) -> bool:
        self.kicked.append(playback_id)
        return playback_id in self.live


@pytest.fixture
def kicks() -> Kicks:
    return Kicks()


@pytest.fixture
async def server(store: SqlStore, kicks: Kicks) -> AsyncIterator[Server]:
    service = StreamService(store, terminate=kicks)
    async with api_server(store, {"streams": service}) as running:
        yield running


@pytest.fixture
async def app_key(server: Server) -> str:
    _, key = await keys.create_key(server.store, "app", ["streams"])
    return key


async def test_create_read_change_and_delete_a_stream(
    server: Server, app_key: str, kicks: Kicks
) -> None:
    body = {
        "name": "my show",
        "profiles": [PROFILE | {"name": "720p", "width": 1280, "height": 720}],
        "record": True,
        "playbackPolicy": {"type": "jwt"},
        "userTags": {"team": "blue", "n": 3},
    }  # fmt: skip
    status, made, _ = await server.call("POST", "/api/stream", app_key, json=body)
    assert status == 201  # Studio's SDK accepts only 201 here
    assert KEY_RE.match(made["streamKey"]) and re.fullmatch(r"[0-9a-z]{16}", made["playbackId"])
    assert made["profiles"] == body["profiles"] and made["record"] is True
    assert made["playbackPolicy"] == {"type": "jwt"} and made["userTags"] == body["userTags"]
    assert made["isActive"] is False and isinstance(made["createdAt"], int)
    assert isinstance(made["lastSeen"], int) and made["sourceSegments"] == 0
    status, got, _ = await server.call(
        "GET", f"/api/stream/{made['id']}", app_key,
        headers={"Content-Type": "application/octet-stream"},  # as Studio's SDK sends GETs
    )  # fmt: skip
    assert status == 200 and got == made
    status, _, _ = await server.call(
        "PATCH", f"/api/stream/{made['id']}", app_key, json={"suspended": True, "record": False}
    )
    assert status == 204
    _, got, _ = await server.call("GET", f"/api/stream/{made['id']}", app_key)
    assert got["suspended"] is True and got["record"] is False and got["name"] == "my show"
    assert kicks.kicked == []  # it was not live: nobody to kick
    status, _, _ = await server.call("DELETE", f"/api/stream/{made['id']}/terminate", app_key)
    assert status == 204 and kicks.kicked == [made["playbackId"]]
    status, sessions, _ = await server.call("GET", f"/api/stream/{made['id']}/sessions", app_key)
    assert status == 200 and sessions == []
    status, _, _ = await server.call("DELETE", f"/api/stream/{made['id']}", app_key)
    assert status == 204
    for method, path in (
        ("GET", f"/api/stream/{made['id']}"),
        ("PATCH", f"/api/stream/{made['id']}"),
        ("DELETE", f"/api/stream/{made['id']}"),
        ("DELETE", f"/api/stream/{made['id']}/terminate"),
        ("GET", f"/api/stream/{made['id']}/sessions"),
        ("GET", "/api/session/nope"),
    ):
        kw = {"json": {"record": True}} if method == "PATCH" else {}
        status, answer, _ = await server.call(method, path, app_key, **kw)
        assert status == 404 and answer["errors"], (method, path)
    # the audit log names streams, never their keys
    _, log, _ = await server.call("GET", "/api/audit", server.admin)
    actions = [e["action"] for e in log]
    assert actions == ["stream.delete", "stream.terminate", "stream.update", "stream.create"]
    assert made["streamKey"] not in json.dumps(log)
    assert log[2]["details"] == {"fields": ["record", "suspended"]}


async def test_list_filters_and_pages_like_studio(server: Server, app_key: str) -> None:
    ids = []
    for n in range(5):
        _, made, _ = await server.call(
            "POST", "/api/stream", app_key, json={"name": "cam" if n % 2 else "other"}
        )
        ids.append(made["id"])
    status, page, headers = await server.call("GET", "/api/stream?limit=2", app_key)
    assert status == 200 and len(page) == 2
    seen = [s["id"] for s in page]
    while "Link" in headers:
        next_url = re.fullmatch(r'<([^>]+)>; rel="next"', headers["Link"])
        assert next_url is not None
        status, page, headers = await server.call("GET", next_url[1][len(server.url) :], app_key)
        seen += [s["id"] for s in page]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    filters = json.dumps([{"id": "name", "value": "cam"}])
    status, cams, _ = await server.call("GET", f"/api/stream?filters={filters}", app_key)
    assert status == 200 and {s["name"] for s in cams} == {"cam"} and len(cams) == 2
    active = json.dumps([{"id": "isActive", "value": True}])
    _, none, _ = await server.call("GET", f"/api/stream?filters={active}", app_key)
    assert none == []
    for bad, field in (
        ("filters=notjson", "filters"),
        ('filters=[{"id":"color","value":1}]', "color"),
        ("limit=0", "limit"),
        ("cursor=garbage", "cursor"),
    ):
        status, answer, _ = await server.call("GET", f"/api/stream?{bad}", app_key)
        assert status in (400, 422) and any(field in e for e in answer["errors"]), (bad, answer)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "x", "bogus": 1}, "bogus"),
        ({"name": "x", "profiles": [PROFILE | {"width": 641}]}, "profiles.0.width"),
        ({"name": "x", "profiles": [PROFILE | {"width": "640"}]}, "profiles.0.width"),
        ({"name": "x", "profiles": [NO_FPS]}, "profiles.0.fps"),
        ({"name": "x", "playbackPolicy": {"type": "secret"}}, "playbackPolicy.type"),
        ({"name": "x", "multistream": {"targets": [HTTP_TARGET]}}, "spec.url"),
        ({"name": "x", "multistream": {"targets": [{"profile": "4k", "id": "t1"}]}}, "profile"),
        ({"name": "x", "record": "yes"}, "record"),
        ({"name": "x" * 501}, "name"),
    ],
)  # fmt: skip
async def test_bad_stream_bodies_name_the_field(
    server: Server, app_key: str, body: dict[str, object], field: str
) -> None:
    status, answer, _ = await server.call("POST", "/api/stream", app_key, json=body)
    assert status == 422 and any(field in e for e in answer["errors"]), answer
    _, listed, _ = await server.call("GET", "/api/stream", app_key)
    assert listed == []  # nothing half-made


async def test_playback_info_has_studios_shape(server: Server, app_key: str) -> None:
    _, made, _ = await server.call("POST", "/api/stream", app_key, json={"name": "show"})
    _, viewer = await keys.create_key(server.store, "player", ["playback"])
    pid = made["playbackId"]
    status, info, _ = await server.call("GET", f"/api/playback/{pid}", viewer)
    assert status == 200
    assert info["type"] == "live" and info["meta"]["live"] == 0
    assert info["meta"]["playbackPolicy"] == {"type": "public"}
    hls, webrtc = info["meta"]["source"]
    assert hls == {
        "hrn": "HLS (TS)",
        "type": "html5/application/vnd.apple.mpegurl",
        "url": f"{server.url}/hls/{pid}/index.m3u8",
    }
    assert webrtc == {"hrn": "WebRTC (H264)", "type": "html5/video/h264",
                      "url": f"{server.url}/webrtc/{pid}"}  # fmt: skip
    assert made["streamKey"] not in json.dumps(info)
    assert (await server.call("GET", "/api/playback/nope", viewer))[0] == 404
    assert (await server.call("GET", "/api/stream", viewer))[0] == 403  # playback scope only
    # a live AI stream plays its output
    _, ai, _ = await server.call(
        "POST", "/api/stream", app_key, json={"name": "ai", "pipeline": "noop"}
    )
    _, info, _ = await server.call("GET", f"/api/playback/{ai['playbackId']}", viewer)
    urls = [s["url"] for s in info["meta"]["source"]]
    assert urls == [
        f"{server.url}/hls/{ai['playbackId']}-out/index.m3u8",
        f"{server.url}/live/video-to-video/{ai['playbackId']}/whep",
    ]


async def test_multistream_targets(server: Server, app_key: str) -> None:
    secret_url = "rtmp://a.rtmp.youtube.com/live2/abcd-secret"
    status, target, _ = await server.call(
        "POST", "/api/multistream/target", app_key, json={"name": "yt", "url": secret_url}
    )
    assert status == 201 and target["name"] == "yt" and "url" not in target
    status, listed, _ = await server.call("GET", "/api/multistream/target", app_key)
    assert status == 200 and [t["id"] for t in listed] == [target["id"]]
    status, one, _ = await server.call("GET", f"/api/multistream/target/{target['id']}", app_key)
    assert status == 200 and one == target
    body = {
        "name": "simulcast",
        "multistream": {"targets": [{"profile": "source", "id": target["id"]}]},
    }
    status, stream, _ = await server.call("POST", "/api/stream", app_key, json=body)
    assert status == 201 and stream["multistream"]["targets"][0]["id"] == target["id"]
    status, answer, _ = await server.call(
        "POST", "/api/multistream/target", app_key, json={"url": "ftp://x/y"}
    )
    assert status == 422 and "url" in answer["errors"][0]
    assert (await server.call("DELETE", f"/api/multistream/target/{target['id']}", app_key))[
        0
    ] == 204
    assert (await server.call("GET", f"/api/multistream/target/{target['id']}", app_key))[0] == 404
    _, log, _ = await server.call("GET", "/api/audit", server.admin)
    assert secret_url not in json.dumps(log) and "abcd-secret" not in json.dumps(log)


async def test_a_body_arriving_in_pieces_is_read_whole(server: Server, app_key: str) -> None:
    """A JSON body sent in two writes with a pause between them is parsed whole, not cut at
    what had arrived when the handler first read (a 400 naming an unterminated string)."""
    body = json.dumps({"name": "slow show", "profiles": [PROFILE]}).encode()
    host, port = server.url.split("://")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /api/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {app_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode() + body[:20])
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.write(body[20:])
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"201", answer[:400]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["name"] == "slow show"
