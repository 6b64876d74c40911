"""``api/node_proxy.py`` alone, over real sockets: an entry node's HTTP app (``http.build_app``
with the proxy) in front of a small owner app that records what reaches it. The whole path with
two gateways and real media is tests/e2e/test_nodes_playback.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from mediatools import serve_app

from mediagw.api.http import build_app
from mediagw.api.node_proxy import PROXIED_HEADER, NodeProxy
from mediagw.publish.hls import HLSPublisher
from mediagw.stream.hub import StreamHub

WHEP = "/live/video-to-video/{stream}/whep"
UPDATE = "/live/video-to-video/{stream}/update"


def _owner(seen: list[dict[str, Any]], release: asyncio.Event) -> web.Application:
    """An owner node: answers a WHEP offer with an absolute Location; a playlist not before
    ``release``."""

    async def offer(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path_qs, "headers": dict(request.headers)})
        seen[-1]["body"] = await request.read()
        location = f"{request.url.origin()}{request.path}/sess1"
        return web.Response(status=201, text="v=0\r\n", headers={"Location": location})

    async def playlist(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path_qs})
        await release.wait()  # accepted, not answered
        return web.Response()

    async def update(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path_qs, "body": await request.read()})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post(WHEP, offer)
    app.router.add_post(UPDATE, update)
    app.router.add_get("/stream/{id}.m3u8", playlist)
    return app


async def _chunks(n: int, size: int) -> AsyncIterator[bytes]:
    """A chunked body arriving in pieces."""
    for _ in range(n):
        yield b"a" * size
        await asyncio.sleep(0.01)


@asynccontextmanager
async def _entry(owner: str, *, broken: bool = False) -> AsyncIterator[tuple[str, NodeProxy]]:
    hub = StreamHub()
    app = build_app(hub, HLSPublisher())

    async def local_whep(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404, text="not live here")

    app.router.add_route("*", WHEP, local_whep)
    app.router.add_route("*", UPDATE, local_whep)

    async def lookup(stream_id: str) -> str | None:
        if broken:
            raise ConnectionError("Redis is down")
        return owner if stream_id == "s1" else None

    proxy = NodeProxy(
        hub, "entry", whep_prefixes=[WHEP], stream_routes=[UPDATE], owner_lookup=lookup,
        read_timeout=0.5,
    )  # fmt: skip
    proxy.install(app)
    await proxy.start()
    try:
        async with serve_app(app) as url:
            yield url, proxy
    finally:
        await proxy.stop()


async def test_a_whep_offer_goes_to_the_owner_and_its_location_stays_on_this_node() -> None:
    seen: list[dict[str, Any]] = []
    owner_app = _owner(seen, asyncio.Event())
    whep = "/live/video-to-video/{}/whep"
    async with serve_app(owner_app) as owner, _entry(owner) as (entry, proxy):
        headers = {"Content-Type": "application/sdp", "Authorization": "Bearer t"}
        async with aiohttp.ClientSession(headers=headers) as http:
            url = entry + whep.format("s1")
            async with http.post(f"{url}?x=1", data=b"offer") as resp:
                assert resp.status == 201, await resp.text()
                assert resp.headers["Location"] == "/live/video-to-video/s1/whep/sess1"
            async with http.post(url, data=b"a" * (64 * 1024 + 1)) as resp:
                assert resp.status == 413
            async with http.post(url, data=_chunks(17, 4096)) as resp:  # no Content-Length
                assert resp.status == 413
            async with http.post(f"{entry}/live/video-to-video/s2/whep", data=b"o") as resp:
                assert resp.status == 404  # nobody else owns s2: served here
    assert len(seen) == 1 and seen[0]["path"] == "/live/video-to-video/s1/whep?x=1"
    assert seen[0]["body"] == b"offer"
    got = seen[0]["headers"]
    assert got["Authorization"] == "Bearer t" and got[PROXIED_HEADER] == "entry"
    assert proxy.proxied == 1


async def test_an_owner_that_never_answers_gets_a_504_and_the_ai_output_goes_to_its_stream() -> (
    None
):
    seen: list[dict[str, Any]] = []
    release = asyncio.Event()
    async with (
        serve_app(_owner(seen, release)) as owner,
        _entry(owner) as (entry, proxy),
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"{entry}/stream/s1-out.m3u8") as resp:
            body = await resp.json()
        release.set()
    assert resp.status == 504 and resp.headers["Retry-After"] == "1"
    assert "did not answer in time" in body["error"] and "retry" in body["error"]
    assert seen == [{"path": "/stream/s1-out.m3u8"}]  # the live AI output: on s1's node
    assert proxy.failed == 1


async def test_a_lookup_that_fails_leaves_the_request_to_this_node() -> None:
    async with (
        _entry("http://127.0.0.1:9", broken=True) as (entry, proxy),
        aiohttp.ClientSession() as http,
        http.get(f"{entry}/stream/s1/source.m3u8") as resp,
    ):
        assert resp.status == 404, await resp.text()  # served here: not live here
    assert proxy.proxied == 0


async def test_a_live_ai_update_goes_to_the_node_running_the_session() -> None:
    seen: list[dict[str, Any]] = []
    async with (
        serve_app(_owner(seen, asyncio.Event())) as owner,
        _entry(owner) as (entry, proxy),
        aiohttp.ClientSession() as http,
    ):
        params = b'{"params": {"strength": 0.5}}'
        async with http.post(f"{entry}/live/video-to-video/s1/update", data=params) as resp:
            assert resp.status == 200 and await resp.json() == {"ok": True}
        async with http.post(f"{entry}/live/video-to-video/s2/update", data=params) as resp:
            assert resp.status == 404  # nobody else runs s2: answered here
    assert seen == [{"path": "/live/video-to-video/s1/update", "body": params}]
    assert proxy.proxied == 1
