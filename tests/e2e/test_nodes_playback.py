"""Playback from any node (``api/node_proxy.py``): two real gateways on loopback sharing a Redis,
a publisher on A (FFmpeg's RTMP client), every playback URL asked of B: HLS, LL-HLS (a part, a
blocking reload), WHEP with an aiortc viewer, ffprobe playing B's playlist. The owner lookup is
the test's (the stream leases give it in production). A gated stream is checked and metered by
its owner; both nodes' URLs follow a stream that moved; a dead owner gets a quick 502; two nodes
that each think the other owns a stream answer after one hop; a stream live here stays here."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from mediatools import ClipMaker, count_frames, probe_frames, push, wait_until
from redis_testkit import redis_url, refused_url
from whep_testkit import Viewer

from mediagw.api.node_proxy import PROXIED_HEADER
from mediagw.gateway import Gateway
from mediagw.platform.access import create_signing_key, sign_token
from mediagw.platform.store import Stream

Nodes = Callable[..., Awaitable[Gateway]]


def _lookup(owners: dict[str, str]) -> Callable[[str], Awaitable[str | None]]:
    async def owner_url(stream_id: str) -> str | None:
        return owners.get(stream_id)

    return owner_url


@pytest.fixture
async def node(gateway_factory: Any) -> Nodes:
    """A gateway node (-redisUrl set: the proxy is on) whose lookup reads ``owners``."""

    async def start(owners: dict[str, str], **overrides: Any) -> Gateway:
        gw: Gateway = await gateway_factory(redis_url=redis_url(), **overrides)
        gw.owner_lookup = _lookup(owners)
        return gw

    return start


def _dead() -> str:
    """The URL of a node that is gone (a port nothing listens on)."""
    return refused_url().replace("redis://", "http://").removesuffix("/0")


def _segments(gw: Gateway, stream_id: str) -> int:
    stream = gw.hub.get(stream_id)
    return stream.stats.segments if stream is not None else 0


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
    async with http.get(url) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


@pytest.mark.ffmpeg
async def test_every_playback_url_of_a_stream_on_a_plays_through_b(
    node: Nodes, make_clip: ClipMaker
) -> None:
    owners: dict[str, str] = {}
    loopback = {"webrtc_host_addresses": ("127.0.0.1",)}
    # A's lookup names a dead node: a stream live on A is served by A all the same
    a, b = await node({"p1": _dead()}, **loopback), await node(owners, **loopback)
    owners["p1"] = a.node_url()
    clip = make_clip(seconds=12, size="416x240")
    pusher = asyncio.create_task(push(clip, f"rtmp://127.0.0.1:{a.rtmp_port}/live/p1"))
    base = f"{b.node_url()}/stream/p1"
    viewer = Viewer()
    async with aiohttp.ClientSession() as http:
        await wait_until(lambda: _segments(a, "p1") >= 2, 15)
        assert (await _get(http, f"{a.node_url()}/stream/p1.m3u8"))[0] == 200
        assert a.node_proxy is not None and a.node_proxy.proxied == 0
        async with http.get(f"{base}.m3u8") as resp:  # A's CORS headers come along
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
        status, ctype, body = await _get(http, f"{base}.m3u8")
        assert status == 200 and ctype.startswith("application/vnd.apple.mpegurl"), body
        assert b"source.m3u8" in body
        status, _, body = await _get(http, f"{b.node_url()}/hls/p1/index.m3u8")
        assert status == 200 and b"source.m3u8" in body
        status, _, body = await _get(http, f"{base}/source.m3u8")
        uri = re.findall(r"^(source/\d+\.ts)$", body.decode(), re.M)[0]
        status, ctype, segment = await _get(http, f"{base}/{uri}")
        assert status == 200 and ctype == "video/mp2t"
        assert segment == a.hls.segment("p1", "source", int(uri[7:-3]))
        # LL-HLS: the playlist, a part, and a blocking reload for the next segment
        status, _, body = await _get(http, f"{base}/ll/source.m3u8")
        assert status == 200, body
        text = body.decode()
        part = re.findall(r'#EXT-X-PART:DURATION=[\d.]+,URI="(source/\d+\.\d+\.mp4)"', text)[-1]
        status, ctype, data = await _get(http, f"{base}/ll/{part}")
        assert status == 200 and ctype == "video/mp4" and data
        msn = int(re.findall(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)[0])
        msn += text.count("#EXTINF:") + 1  # the segment after the one being cut
        status, _, body = await _get(http, f"{base}/ll/source.m3u8?_HLS_msn={msn}")
        assert status == 200 and f'URI="source/{msn}.0.mp4"' in body.decode(), body
        # WHEP: the offer and DELETE go through B; the media comes from A
        resp = await viewer.play(http, f"{b.node_url()}/webrtc/p1")
        assert resp.status == 201, await resp.text()
        assert viewer.location.startswith("/webrtc/p1/")
        try:
            await wait_until(lambda: len(viewer.frames) >= 15, 20)
            async with http.delete(b.node_url() + viewer.location) as resp:
                assert resp.status == 200
            await asyncio.wait_for(viewer.ended.wait(), 10)
        finally:
            await viewer.close()
    code, err = await pusher
    assert code == 0, err
    await wait_until(lambda: not a.hub.get("p1").live)  # type: ignore[union-attr]
    # the stream ended on A: FFmpeg plays B's URL whole, every frame
    assert await probe_frames(f"{base}/source.m3u8") == count_frames(clip)[0]
    assert b.hub.get("p1") is None  # nothing of it on B
    assert b.node_proxy is not None and b.node_proxy.proxied >= 9
    assert b.node_proxy.failed == 0
    assert a.node_proxy.proxied == 0  # B's requests were served by A, never sent on
    assert b.metrics.hls_total == 0 and a.metrics.hls_total > 0  # metered by A alone
    # ended on A, and the lookup names another node: that node wins (here: a dead one)
    async with aiohttp.ClientSession() as http:
        assert (await _get(http, f"{a.node_url()}/stream/p1.m3u8"))[0] == 502


@pytest.mark.ffmpeg
async def test_a_gated_stream_on_a_is_checked_and_metered_by_a_alone(
    node: Nodes, make_clip: ClipMaker
) -> None:
    owners: dict[str, str] = {}
    a, b = await node({}), await node(owners)  # one store: the fixture's data directory
    owners["gatedpb"] = a.node_url()
    assert a.store is not None
    policy = {"type": "jwt"}
    row = Stream(id="g", name="g", stream_key="key-g", playback_id="gatedpb", created_at=1)
    await a.store.create_stream(replace(row, playback_policy=policy))
    key = await create_signing_key(a.store, "main")
    clip = make_clip(seconds=3)
    code, err = await push(clip, f"rtmp://127.0.0.1:{a.rtmp_port}/live/key-g", live=False)
    assert code == 0, err
    await wait_until(lambda: not a.hub.get("gatedpb").live)  # type: ignore[union-attr]
    token = sign_token(key.private_key, key.public_key, "gatedpb", expires_at=time.time() + 300)
    base = f"{b.node_url()}/stream/gatedpb"
    async with aiohttp.ClientSession() as http:
        status, _, body = await _get(http, f"{base}/source.m3u8")
        assert status == 401 and b"Livepeer-Jwt" in body, body
        status, _, body = await _get(http, f"{base}/source.m3u8?jwt={token}")
        assert status == 200, body
        uris = [line for line in body.decode().splitlines() if line.endswith(".ts?jwt=" + token)]
        assert uris and body.decode().count("jwt=") == len(uris)  # carried once, by A
        status, _, segment = await _get(http, f"{base}/{uris[0]}")
        assert status == 200 and (await _get(http, f"{base}/{uris[0].split('?')[0]}"))[0] == 401
    assert b.metrics.hls_total == 0 and a.metrics.hls_total == len(segment)


@pytest.mark.ffmpeg
async def test_both_urls_play_the_stream_where_it_moved(node: Nodes, make_clip: ClipMaker) -> None:
    to_a: dict[str, str] = {}
    to_b: dict[str, str] = {}
    a, b = await node(to_a), await node(to_b)
    playlists = []
    for owner, seconds in ((a, 3), (b, 5)):  # published on A, then on B (the lease moved)
        to_a.clear()
        to_b.clear()
        (to_b if owner is a else to_a)["mv"] = owner.node_url()
        clip = make_clip(seconds=seconds)
        code, err = await push(clip, f"rtmp://127.0.0.1:{owner.rtmp_port}/live/mv", live=False)
        assert code == 0, err
        await wait_until(lambda gw=owner: not gw.hub.get("mv").live)  # type: ignore[union-attr]
        async with aiohttp.ClientSession() as http:
            playlists.append(
                [await _get(http, f"{gw.node_url()}/stream/mv/source.m3u8") for gw in (a, b)]
            )
    # each time both nodes answer with the owner's playlist; A's own (ended) copy lost to B's
    assert playlists[0][0] == playlists[0][1] and playlists[1][0] == playlists[1][1]
    assert playlists[0][0][0] == 200 and playlists[1][0][0] == 200
    on_b = b.hls.media_playlist("mv", "source")
    assert on_b is not None and playlists[1][0][2] == on_b.encode()
    assert playlists[1][0] != playlists[0][0]


async def test_a_dead_owner_gives_a_quick_502_that_says_to_retry(node: Nodes) -> None:
    b = await node({"gone": _dead()})
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.get(f"{b.node_url()}/stream/gone/source.m3u8") as resp:
            body = await resp.json()
        took = time.monotonic() - started
    assert resp.status == 502 and resp.headers["Retry-After"] == "1"
    assert "unreachable" in body["error"] and "retry" in body["error"], body
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    print(f"dead owner -> 502 in {took * 1000:.0f} ms")


async def test_two_nodes_that_each_think_the_other_owns_a_stream_answer_after_one_hop(
    node: Nodes,
) -> None:
    to_a: dict[str, str] = {}
    a, b = await node(to_a), await node({})
    b.owner_lookup = _lookup({"loop": a.node_url()})
    to_a["loop"] = b.node_url()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{b.node_url()}/stream/loop.m3u8") as resp:
            assert resp.status == 404, await resp.text()
            assert "not live" in (await resp.json())["error"]
        # a proxied request is never proxied again, whoever sent it
        async with http.get(
            f"{a.node_url()}/stream/loop.m3u8", headers={PROXIED_HEADER: "x"}
        ) as resp:
            assert resp.status == 404
    assert a.node_proxy is not None and b.node_proxy is not None
    assert (a.node_proxy.proxied, b.node_proxy.proxied) == (0, 1)
