"""Bodies that arrive in pieces are read whole (StreamReader.read(n) alone stops at the first)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from mediatools import serve_app

from mediagw.httpbody import BodyTooLarge, read_limited, read_prefix
from mediagw.platform.live_auth import LiveAIAuthorizer, LiveAIAuthWebhook
from mediagw.platform.stream_auth import OpenAuth, PublishAttempt

ANSWER = b'{"pipeline": "invert", "stream_id": "st_split"}'


async def in_two_pieces(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    await resp.write(ANSWER[:10])
    await asyncio.sleep(0.1)  # the rest comes in another TCP segment
    await resp.write(ANSWER[10:])
    await resp.write_eof()
    return resp


async def echo_length(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await read_prefix(request.content, 1000))))


async def big(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)) * 4000)  # 1 MB with a Content-Length


async def big_streamed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()  # chunked: no Content-Length to refuse early
    await resp.prepare(request)
    for _ in range(8):
        await resp.write(bytes(range(256)) * 500)
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/split", in_two_pieces)
    app.router.add_post("/length", echo_length)
    app.router.add_get("/big", big)
    app.router.add_get("/big-streamed", big_streamed)
    async with serve_app(app) as base:
        yield base


async def test_read_prefix_reads_a_split_body_on_both_sides(server: str) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"x" * 10
        await asyncio.sleep(0.1)
        yield b"y" * 10

    async with aiohttp.ClientSession() as s:
        async with s.post(f"{server}/split") as resp:
            assert await read_prefix(resp.content, 1000) == ANSWER
        async with s.post(f"{server}/split") as resp:
            assert await read_prefix(resp.content, 5) == ANSWER[:5]  # never more than asked
        async with s.post(f"{server}/length", data=pieces()) as resp:
            assert await resp.text() == "20"


async def test_a_webhook_answer_in_two_pieces_is_understood(server: str) -> None:
    auth = LiveAIAuthorizer(OpenAuth(), LiveAIAuthWebhook(f"{server}/split"), lambda: "http://gw")
    try:
        grant = await auth.authorize(PublishAttempt("", "live", "cam", {"pipeline": "noop"}))
    finally:
        await auth.close()
    assert grant.pipeline == "invert" and grant.stream_id == "st_split"


async def test_read_limited_reads_whole_bodies_and_refuses_big_ones(server: str) -> None:
    whole = bytes(range(256)) * 4000
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{server}/split") as resp:
            assert await read_limited(resp, 1000) == ANSWER  # two pieces, one body
        async with s.get(f"{server}/big") as resp:
            assert await read_limited(resp, len(whole)) == whole
        async with s.get(f"{server}/big-streamed") as resp:
            assert await read_limited(resp, len(whole)) == whole[: 8 * 256 * 500]
        async with s.get(f"{server}/big") as resp:
            with pytest.raises(BodyTooLarge) as declared:
                await read_limited(resp, len(whole) - 1)
        assert declared.value.declared == len(whole)
        async with s.get(f"{server}/big-streamed") as resp:
            with pytest.raises(BodyTooLarge) as streamed:
                await read_limited(resp, 3 * 256 * 500)
        assert streamed.value.declared is None and streamed.value.limit == 3 * 256 * 500
