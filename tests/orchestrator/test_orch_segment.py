"""POST /segment over real TLS (aiohttp): the off-chain happy path with a real H.264 segment,
renditions downloaded and decoded, and every rejection with go-livepeer's status and text."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import aiohttp
import pytest
from mediatools import serve_app, wait_until
from orchestrator.orch_testkit import (
    P144,
    P240,
    P360,
    end_session,
    fetch,
    get_orchestrator,
    headers,
    post,
    probe,
    request_for,
    segdata,
)

from mediagw.livepeer.proto import net
from mediagw.orchestrator import ReferenceOrchestrator


async def test_happy_path_720p(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_720p: bytes
) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    sd = segdata(info, segment_720p, seq=7, profiles=(P240, P360, P144))
    started = time.perf_counter()
    async with http.post(
        info.transcoder + "/segment",
        data=io.BytesIO(segment_720p),
        headers=headers(sd, None),
        ssl=False,
    ) as resp:
        headers_at = time.perf_counter() - started
        assert resp.status == 200
        body = await resp.read()
        total = time.perf_counter() - started
    # the 200 is flushed before transcoding starts
    assert headers_at < total / 2, (headers_at, total)
    assert total < 3.0, total  # 2 s 720p to three small renditions, ultrafast
    result = net.TranscodeResult.FromString(body)
    assert result.seq == 7 and result.WhichOneof("result") == "data"
    assert result.data.sig == b""  # off-chain: no signature
    assert result.info.auth_token == info.auth_token  # same token echoed
    assert result.info.transcoder == offchain.url
    urls = [s.url for s in result.data.segments]
    sid = info.auth_token.session_id
    assert urls == [f"{offchain.url}/stream/{sid}/{p[0]}/7.ts" for p in (P240, P360, P144)]
    for seg, (_, width, height, _, _) in zip(result.data.segments, (P240, P360, P144), strict=True):
        data = await fetch(http, seg.url)
        w, h, frames, has_audio = probe(data)
        assert (w, h) == (width, height)
        assert frames == 60 and has_audio
        assert seg.pixels == width * height * frames
    stats = offchain.stats
    assert (stats.segments_received, stats.segments_accepted, stats.segments_transcoded) == (
        1,
        1,
        1,
    )
    assert stats.pixels == sum(s.pixels for s in result.data.segments)


async def test_transcode_stays_off_the_loop(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_720p: bytes
) -> None:
    """While a 720p segment transcodes, the event loop keeps ticking."""
    info = await get_orchestrator(offchain, request_for(None))
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)

    task = asyncio.create_task(ticker())
    reply = await post(
        http, offchain, "/segment", headers(segdata(info, segment_720p), None), segment_720p
    )
    done.set()
    await task
    assert reply.result.WhichOneof("result") == "data"
    assert worst < 0.1, worst


async def test_concurrent_segments_and_store_window(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    results = await asyncio.gather(
        *(
            post(
                http,
                offchain,
                "/segment",
                headers(segdata(info, segment_small, seq=i, profiles=(P144,)), None),
                segment_small,
            )
            for i in range(3)
        )
    )
    assert [r.result.seq for r in results] == [0, 1, 2]
    assert all(r.result.WhichOneof("result") == "data" for r in results)
    assert offchain.stats.sessions_started == 1
    tiny = ("tiny", 96, 54, 50_000, 0)
    for seq in range(14):
        reply = await post(
            http,
            offchain,
            "/segment",
            headers(segdata(info, segment_small, seq=seq, profiles=(tiny,)), None),
            segment_small,
        )
        assert reply.result.WhichOneof("result") == "data"
    base = f"{offchain.url}/stream/{info.auth_token.session_id}/tiny"
    for gone in (0, 1):  # 14 written, the last 12 kept
        async with http.get(f"{base}/{gone}.ts", ssl=False) as resp:
            assert resp.status == 404
    assert len(await fetch(http, f"{base}/2.ts")) > 0
    assert len(await fetch(http, f"{base}/13.ts")) > 0


async def test_transcode_error_is_in_the_body(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    junk = b"\x47" + b"not a transport stream" * 50
    reply = await post(http, offchain, "/segment", headers(segdata(info, junk), None), junk)
    result = reply.result
    assert result.WhichOneof("result") == "error" and result.error
    assert result.info.auth_token == info.auth_token
    assert offchain.stats.segments_failed == 1


def _b64(message: net.SegData) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


async def test_rejections(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    good = segdata(info, segment_small)

    async def send(hdrs: dict[str, str], body: bytes = segment_small) -> tuple[int, str]:
        reply = await post(http, offchain, "/segment", hdrs, body)
        return reply.status, reply.text

    # 402: the payment header is not base64 / not a Payment
    hdrs = headers(good, None) | {"Livepeer-Payment": "!!notbase64"}
    assert await send(hdrs) == (402, "base64 decode error: illegal base64 data at input byte 0\n")
    hdrs = headers(good, None) | {"Livepeer-Payment": base64.b64encode(b"\xff\xff").decode()}
    assert await send(hdrs) == (
        402,
        "protobuf unmarshal error: proto: cannot parse invalid wire-format data\n",
    )
    # 403: SegData problems
    assert await send(headers(good, None) | {"Livepeer-Segment": "@@@"}) == (
        403,
        "ErrorSegEncoding\n",
    )
    missing = net.SegData()
    missing.CopyFrom(good)
    missing.ClearField("auth_token")
    assert await send(headers(missing, None)) == (403, "missing auth token\n")
    forged = net.SegData()
    forged.CopyFrom(good)
    forged.auth_token.expiration += 60
    assert await send(headers(forged, None)) == (403, "invalid auth token\n")
    hevc = segdata(info, segment_small, caps=(1 << 15) | (1 << 12))  # HEVC decode: not offered
    assert await send(headers(hevc, None)) == (403, "incompatible capabilities\n")
    legacy = segdata(info, segment_small, caps=None)  # no caps: lacks the mandatory AuthToken
    assert await send(headers(legacy, None)) == (403, "incompatible capabilities\n")
    newer = segdata(info, segment_small)
    newer.capabilities.constraints.minVersion = "99.0.0"
    assert await send(headers(newer, None)) == (403, "incompatible capabilities\n")
    too_long = segdata(info, segment_small, duration=5 * 60 * 1000 + 1)
    assert await send(headers(too_long, None)) == (403, "invalid duration\n")
    negative = segdata(info, segment_small, duration=-1)
    assert await send(headers(negative, None)) == (403, "invalid duration\n")
    bad_format = segdata(info, segment_small)
    bad_format.fullProfiles[0].format = 7  # type: ignore[assignment]
    assert await send(headers(bad_format, None)) == (403, "unrecognized profile output format\n")
    # 403 Forbidden: the body is not what SegData.hash says
    assert await send(headers(good, None), segment_small[:-188]) == (403, "Forbidden\n")
    stats = offchain.stats
    assert stats.segments_accepted == 0 and stats.segments_rejected == 12
    assert stats.rejections["403 Forbidden"] == 1


async def test_expired_auth_token(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    assert offchain.node is not None
    issued = offchain.node.tokens.issue()
    expired = net.AuthToken(session_id="00c0ffee", expiration=int(time.time()) - 1)
    expired.token = offchain.node.tokens.mac(expired.session_id, expired.expiration)
    info = net.OrchestratorInfo(auth_token=expired)
    reply = await post(
        http, offchain, "/segment", headers(segdata(info, segment_small), None), segment_small
    )
    assert (reply.status, reply.text) == (403, "expired auth token\n")
    assert issued.expiration > time.time()


async def test_end_session_and_idle_timeout(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    sd = segdata(info, segment_small, profiles=(P144,))
    assert (await post(http, offchain, "/segment", headers(sd, None), segment_small)).status == 200
    assert offchain.node is not None and offchain.node.sessions.active == 1
    await end_session(offchain, info.auth_token)
    assert offchain.node.sessions.active == 0 and offchain.stats.sessions_ended == 1
    # a segment after the end starts a new session under the same ID
    assert (await post(http, offchain, "/segment", headers(sd, None), segment_small)).status == 200
    assert offchain.stats.sessions_started == 2
    # idle timeout (shortened here) tears it down
    offchain.node.sessions._idle_timeout = 0.2
    await end_session(offchain, info.auth_token)
    assert (await post(http, offchain, "/segment", headers(sd, None), segment_small)).status == 200
    await asyncio.sleep(0.5)
    assert offchain.node.sessions.active == 0 and offchain.stats.sessions_ended == 3


async def test_unnamed_profile_gets_net_name(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    sd = segdata(info, segment_small, profiles=(("", 160, 90, 100_000, 0),))
    reply = await post(http, offchain, "/segment", headers(sd, None), segment_small)
    [seg] = reply.result.data.segments
    assert "/net_160x90_100000/0.ts" in seg.url
    w, h, _, _ = probe(await fetch(http, seg.url))
    assert (w, h) == (160, 90)


@pytest.mark.parametrize("path", ["/nothing", "/stream/none/none/0.ts"])
async def test_not_found(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(offchain.url + path, ssl=False) as resp:
        assert resp.status == 404 and await resp.text() == "404 page not found\n"


async def test_segment_over_http2(offchain: ReferenceOrchestrator, segment_small: bytes) -> None:
    from orchestrator.orch_h2 import h2_post

    info = await get_orchestrator(offchain, request_for(None))
    sd = segdata(info, segment_small, seq=2, profiles=(P144,))
    reply = await h2_post(offchain, "/segment", headers(sd, None), segment_small)
    assert reply.status == 200 and reply.complete and reply.error is None
    result = net.TranscodeResult.FromString(reply.body)
    assert result.seq == 2 and result.WhichOneof("result") == "data"


async def test_legacy_profiles_field_is_ignored(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    sd = segdata(info, segment_small)
    sd.ClearField("fullProfiles")  # only profiles="invalid" left: no renditions asked for
    reply = await post(http, offchain, "/segment", headers(sd, None), segment_small)
    result = reply.result
    assert result.WhichOneof("result") == "data" and not result.data.segments
    hevc = segdata(info, segment_small, profiles=(("h", 160, 90, 100_000, 0),))
    hevc.fullProfiles[0].encoder = net.VideoProfile.H265
    reply = await post(http, offchain, "/segment", headers(hevc, None), segment_small)
    assert reply.result.WhichOneof("result") == "error"  # no HEVC encoder here
    av1 = segdata(info, segment_small)
    av1.fullProfiles[0].encoder = 4  # type: ignore[assignment]
    reply = await post(http, offchain, "/segment", headers(av1, None), segment_small)
    assert (reply.status, reply.text) == (403, "unrecognized video codec\n")


async def test_segment_by_url(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession, segment_small: bytes
) -> None:
    from aiohttp import web

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=segment_small)

    app = web.Application()
    app.router.add_get("/seg.ts", serve)
    async with serve_app(app) as base:
        info = await get_orchestrator(offchain, request_for(None))
        sd = segdata(info, segment_small, profiles=(P144,))
        hdrs = headers(sd, None) | {"Content-Type": "application/vnd+livepeer.uri"}
        reply = await post(http, offchain, "/segment", hdrs, f"{base}/seg.ts".encode())
        assert reply.result.WhichOneof("result") == "data"
        missing = f"{base}/none.ts".encode()
        reply = await post(http, offchain, "/segment", hdrs, missing)
        assert (reply.status, reply.text) == (400, "BadRequest\n")


async def test_client_gone_mid_transcode(tmp_path: object, segment_720p: bytes) -> None:
    """An HTTP/2 client that leaves while its segment transcodes leaks nothing and does not
    hold up stop()."""
    from pathlib import Path

    from orchestrator.orch_h2 import h2_post

    from mediagw.orchestrator import OrchestratorConfig

    assert isinstance(tmp_path, Path)
    orch = ReferenceOrchestrator(OrchestratorConfig(work_dir=tmp_path))
    await orch.start()
    try:
        info = await get_orchestrator(orch, request_for(None))
        sd = segdata(info, segment_720p, profiles=(P240, P360, P144))
        task = asyncio.create_task(h2_post(orch, "/segment", headers(sd, None), segment_720p))
        for _ in range(500):
            if orch.stats.segments_accepted:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()  # the client closes the connection during the transcode
        # the transcode finishes (however busy the machine); the result has nowhere to go
        await wait_until(lambda: orch.stats.segments_transcoded == 1, 60)
    finally:
        # a result stuck on the gone connection would hold stop() up for ever
        await asyncio.wait_for(orch.stop(), 10)
    assert not orch._tasks
