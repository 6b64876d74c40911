"""The gateway's HTTP surface as a browser on another origin sees it: unknown paths are 404 for
every method, preflights on real routes are 204 and allow what WHIP/WHEP clients send."""

from __future__ import annotations

import aiohttp

from mediagw.gateway import Gateway

ORIGIN = "http://app.invalid"


def _items(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


async def _preflight(
    s: aiohttp.ClientSession, url: str, method: str, headers: str = ""
) -> aiohttp.ClientResponse:
    asked = {"Origin": ORIGIN, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    async with s.options(url, headers=asked) as resp:
        await resp.read()
        return resp


async def test_unknown_paths_are_404_for_every_method(gateway: Gateway) -> None:
    base = f"http://127.0.0.1:{gateway.http_port}"
    async with aiohttp.ClientSession() as s:
        for path in ("/nope", "/stream/x/y/z/w", "/whip", "/live/video-to-video/x/nope"):
            for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
                async with s.request(method, base + path, headers={"Origin": ORIGIN}) as resp:
                    assert resp.status == 404, (method, path)
                    assert resp.headers["Access-Control-Allow-Origin"] == "*"
            resp = await _preflight(s, base + path, "GET")
            assert resp.status == 404, path
        # a known path with another method stays 405, and says what it allows
        async with s.post(base + "/healthz") as resp:
            assert resp.status == 405
            assert _items(resp.headers["Allow"]) == {"get", "head", "options"}
        async with s.get(base + "/healthz") as resp:
            assert resp.status == 200


async def test_preflights_on_real_routes(gateway: Gateway) -> None:
    base = f"http://127.0.0.1:{gateway.http_port}"
    async with aiohttp.ClientSession() as s:
        for path in ("/stream/cam.m3u8", "/stream/cam/source/3.ts", "/streams", "/healthz"):
            resp = await _preflight(s, base + path, "GET")
            assert resp.status == 204, path
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "get" in _items(resp.headers["Access-Control-Allow-Methods"])
        sdp_with_token = "authorization, content-type"
        for path in ("/whip/cam", "/live/video-to-video/cam/whip", "/live/video-to-video/cam/whep"):
            resp = await _preflight(s, base + path, "POST", sdp_with_token)
            assert resp.status == 204, path
            assert resp.headers["Accept-Post"] == "application/sdp"
            assert "post" in _items(resp.headers["Access-Control-Allow-Methods"])
            # "*" would not cover Authorization (Fetch spec): it must be listed by name
            assert "authorization" in _items(resp.headers["Access-Control-Allow-Headers"])
            for method in ("DELETE", "PATCH"):
                resp = await _preflight(s, f"{base}{path}/abc123", method, "authorization")
                assert resp.status == 204, (path, method)
                assert method.lower() in _items(resp.headers["Access-Control-Allow-Methods"])
                assert "authorization" in _items(resp.headers["Access-Control-Allow-Headers"])
        # what a page reads from the 201 and session answers (errors too)
        async with s.delete(base + "/whip/cam/abc123", headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 404 and resp.headers["Access-Control-Allow-Origin"] == "*"
            exposed = _items(resp.headers["Access-Control-Expose-Headers"])
            assert {"location", "etag", "link", "accept-patch"} <= exposed
