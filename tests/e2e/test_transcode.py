"""Transcoding end to end over real sockets: RTMP push -> gateway -> reference orchestrators
(TLS, gRPC, /segment, tickets) -> ABR HLS, decoded back."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import (
    ClipMaker,
    count_frames,
    fetch_hls,
    make_keystore,
    playlist_uris,
    probe_frames,
    push,
    serve_app,
    stream_entry,
    wait_until,
)

from mediagw.gateway import Gateway
from mediagw.orchestrator import Faults, OrchestratorConfig, ReferenceOrchestrator

pytestmark = pytest.mark.ffmpeg

LADDER = "P144p30fps16x9,P240p30fps16x9"
SIZES = {"P144p30fps16x9": (256, 144), "P240p30fps16x9": (426, 240)}

OrchFactory = Callable[..., Any]


@pytest.fixture
async def orchestrators() -> AsyncIterator[OrchFactory]:
    async with AsyncExitStack() as stack:

        async def start(**kwargs: Any) -> ReferenceOrchestrator:
            kwargs.setdefault("x264_preset", "ultrafast")
            orch = ReferenceOrchestrator(OrchestratorConfig(**kwargs))
            await stack.enter_async_context(orch)
            return orch

        yield start


def rtmp(gw: Gateway, name: str) -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}"


async def wait_transcoded(gw: Gateway, stream: str, timeout: float = 90) -> int:
    """Wait for the stream to end and its pipeline to finish; return the source segment count."""
    await wait_until(
        lambda: gw.hub.get(stream) is not None and not gw.hub.get(stream).live, timeout
    )  # type: ignore[union-attr]
    assert gw.transcodes is not None
    await wait_until(
        lambda: stream not in gw.transcodes.pipelines and not gw.transcodes._closing, timeout
    )  # type: ignore[union-attr]
    source = gw.hls.rendition(stream, "source")
    assert source is not None
    return len(source.segments)


async def check_abr(gw: Gateway, stream: str, video_frames: int) -> None:
    source = await fetch_hls(gw.http_port, stream)
    assert source.video_frames == video_frames
    url = f"http://127.0.0.1:{gw.http_port}/stream/{stream}.m3u8"
    async with aiohttp.ClientSession() as s, s.get(url) as resp:
        master = await resp.text()
    for name, (w, h) in SIZES.items():
        assert f"RESOLUTION={w}x{h}" in master, master
        assert f"{stream}/{name}.m3u8" in master
        result = await fetch_hls(gw.http_port, stream, name)
        assert [s.seq for s in result.segments] == [s.seq for s in source.segments], name
        for seg in result.segments:
            assert (seg.width, seg.height) == (w, h), (name, seg)
            assert seg.first_is_key and seg.video_frames > 0
        # Every segment is there at the right size; an encoder's fps conversion may add or drop
        # a frame at a segment's edge, so frame counts match within one per segment.
        assert abs(result.video_frames - video_frames) <= len(result.segments), (
            name,
            result.video_frames,
        )


async def fetch_playlists(gw: Gateway, stream: str) -> dict[str, str]:
    """Every media playlist the multivariant playlist lists, by rendition, over HTTP."""
    base = f"http://127.0.0.1:{gw.http_port}/stream"
    playlists = {}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/{stream}.m3u8") as resp:
            assert resp.status == 200
            master = await resp.text()
        for uri in playlist_uris(master):
            async with s.get(f"{base}/{uri}") as resp:
                assert resp.status == 200, uri
                playlists[uri.rsplit("/", 1)[-1].removesuffix(".m3u8")] = await resp.text()
    return playlists


def layout(playlist: str) -> tuple[int, list[tuple[int, bool]]]:
    """MEDIA-SEQUENCE and, per listed segment, (seq of its URI, after a discontinuity)."""
    media_sequence = int(re.findall(r"^#EXT-X-MEDIA-SEQUENCE:(\d+)$", playlist, re.M)[0])
    segments, discontinuity = [], False
    for line in playlist.splitlines():
        if line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line and not line.startswith("#"):
            segments.append((int(re.findall(r"(\d+)\.ts$", line)[0]), discontinuity))
            discontinuity = False
    return media_sequence, segments


def check_ended_and_numbered_as_source(playlists: dict[str, str]) -> None:
    """Every rendition ended, each segment at the media sequence number of the source's."""
    assert set(playlists) == {"source", *SIZES}, list(playlists)
    source = layout(playlists["source"])
    first, segments = source
    assert [seq for seq, _ in segments] == list(range(first, first + len(segments)))
    for name, playlist in playlists.items():
        assert playlist.endswith("#EXT-X-ENDLIST\n"), (name, playlist)
        assert layout(playlist) == source, (name, playlist)


async def test_abr_hls_through_two_orchestrators(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker
) -> None:
    o1 = await orchestrators()
    o2 = await orchestrators()
    gw = await gateway_factory(orch_addr=(o1.url, o2.url), transcoding_options=LADDER)
    clip = make_clip(seconds=6)
    video, _ = count_frames(clip)
    code, err = await push(clip, rtmp(gw, "abr"), live=False)
    assert code == 0, err
    await wait_transcoded(gw, "abr")
    await check_abr(gw, "abr", video)
    check_ended_and_numbered_as_source(await fetch_playlists(gw, "abr"))
    assert o1.stats.segments_transcoded + o2.stats.segments_transcoded >= 3
    await wait_until(lambda: o1.stats.sessions_ended + o2.stats.sessions_ended >= 1, 10)


async def test_every_rendition_ends_numbered_as_the_source_across_a_reconnect(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker
) -> None:
    """A fast publisher stops long before its renditions are in, then comes back at once:
    every playlist ends after its last segment, and goes on after the reconnect, in step."""
    orch = await orchestrators()
    gw = await gateway_factory(orch_addr=(orch.url,), transcoding_options=LADDER)
    clip = make_clip(seconds=6)
    for _ in range(2):
        code, err = await push(clip, rtmp(gw, "again"), live=False)
        assert code == 0, err
        await wait_until(lambda: not gw.hub.get("again").live, 30)  # type: ignore[union-attr]
    await wait_transcoded(gw, "again")
    playlists = await fetch_playlists(gw, "again")
    check_ended_and_numbered_as_source(playlists)
    _, segments = layout(playlists["source"])
    assert [seq for seq, disc in segments if disc] == [3], segments  # the reconnect
    assert "#EXT-X-GAP" not in "".join(playlists.values())
    for name in SIZES:
        rendition = await fetch_hls(gw.http_port, "again", name)
        assert [s.seq for s in rendition.segments] == list(range(6)), name


async def test_a_segment_failing_everywhere_leaves_a_gap_players_play_through(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker
) -> None:
    failing = Faults(fail_seqs=frozenset({1}))  # segment 1 fails on both: attempts exhausted
    o1 = await orchestrators(faults=failing)
    o2 = await orchestrators(faults=failing)
    gw = await gateway_factory(orch_addr=(o1.url, o2.url), transcoding_options=LADDER)
    clip = make_clip(seconds=8)
    code, err = await push(clip, rtmp(gw, "gap"), live=False)
    assert code == 0, err
    await wait_transcoded(gw, "gap")
    assert o1.stats.faults_injected + o2.stats.faults_injected >= 2
    playlists = await fetch_playlists(gw, "gap")
    check_ended_and_numbered_as_source(playlists)
    assert "#EXT-X-GAP" not in playlists["source"]
    base = f"http://127.0.0.1:{gw.http_port}/stream/gap"
    for name in SIZES:
        lines = playlists[name].splitlines()
        assert "#EXT-X-VERSION:8" in lines
        assert [lines[i + 2] for i, line in enumerate(lines) if line == "#EXT-X-GAP"] == [
            f"{name}/1.ts"
        ], playlists[name]
        async with aiohttp.ClientSession() as s, s.get(f"{base}/{name}/1.ts") as resp:
            assert resp.status == 404
        rendition = await fetch_hls(gw.http_port, "gap", name)  # what a player loads
        assert [s.seq for s in rendition.segments] == [0, 2, 3]
        # FFmpeg's HLS demuxer plays the rendition through the gap to its end.
        assert await probe_frames(f"{base}/{name}.m3u8") == rendition.video_frames


async def test_orchestrator_killed_mid_stream_loses_no_segment(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker
) -> None:
    o1 = await orchestrators()
    o2 = await orchestrators()
    gw = await gateway_factory(orch_addr=(o1.url, o2.url), transcoding_options=LADDER)
    clip = make_clip(seconds=10)
    video, _ = count_frames(clip)
    pusher = asyncio.create_task(push(clip, rtmp(gw, "kill")))
    await wait_until(lambda: o1.stats.segments_transcoded + o2.stats.segments_transcoded >= 1, 20)
    victim = o1 if o1.stats.segments_transcoded else o2
    await victim.stop()  # mid-stream: connections drop, the port closes
    code, err = await pusher
    assert code == 0, err
    await wait_transcoded(gw, "kill")
    await check_abr(gw, "kill", video)


@pytest.mark.parametrize(
    ("faults", "needle"),
    [
        (Faults(garbage=True), "protobuf"),
        (Faults(http_500=True), "500"),
        (Faults(delay_headers=30.0), "timed out"),
        (Faults(fail_segments=True), "injected fault"),
    ],
    ids=["garbage", "http500", "stall", "error-result"],
)
async def test_bad_orchestrator_is_routed_around(
    gateway_factory: Any,
    orchestrators: OrchFactory,
    make_clip: ClipMaker,
    caplog: pytest.LogCaptureFixture,
    faults: Faults,
    needle: str,
) -> None:
    bad = await orchestrators(faults=faults)
    good = await orchestrators()
    gw = await gateway_factory(orch_addr=(bad.url, good.url), transcoding_options=LADDER)
    clip = make_clip(seconds=4)
    video, _ = count_frames(clip)
    with caplog.at_level(logging.WARNING, logger="mediagw.livepeer"):
        code, err = await push(clip, rtmp(gw, "bad"), live=False)
        assert code == 0, err
        await wait_transcoded(gw, "bad")
    await check_abr(gw, "bad", video)
    lines = [r for r in caplog.records if r.getMessage() == "segment attempt failed"]
    if bad.stats.segments_received:
        assert any(needle.lower() in str(getattr(r, "error", "")).lower() for r in lines), [
            getattr(r, "error", "") for r in lines
        ]
        assert any(getattr(r, "orchestrator", "") == bad.url for r in lines)


async def test_orchestrator_above_price_cap_is_never_used(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker, tmp_path: Path
) -> None:
    keystore, password = make_keystore(tmp_path)
    pricey = await orchestrators(priced=True, price_per_unit=1000, pixels_per_unit=1)
    fair = await orchestrators(priced=True, price_per_unit=1, pixels_per_unit=1)
    gw = await gateway_factory(
        orch_addr=(pricey.url, fair.url),
        transcoding_options=LADDER,
        max_price_per_unit="10",
        eth_keystore_path=str(keystore),
        eth_password=password,
    )
    clip = make_clip(seconds=4)
    video, _ = count_frames(clip)
    code, err = await push(clip, rtmp(gw, "capped"), live=False)
    assert code == 0, err
    await wait_transcoded(gw, "capped")
    await check_abr(gw, "capped", video)
    assert pricey.stats.segments_received == 0 and pricey.stats.tickets_received == 0
    assert fair.stats.tickets_accepted > 0 and fair.stats.tickets_rejected == 0


async def test_priced_orchestrator_accepts_every_ticket_over_two_minutes(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker, tmp_path: Path
) -> None:
    """120 s of media, ticket params rotating on every result: 0 tickets rejected."""
    keystore, password = make_keystore(tmp_path)
    orch = await orchestrators(priced=True, price_per_unit=3, pixels_per_unit=1)
    gw = await gateway_factory(
        orch_addr=(orch.url,),
        transcoding_options="P144p30fps16x9",
        eth_keystore_path=str(keystore),
        eth_password=password,
    )
    clip = make_clip(seconds=120, size="256x144")
    # 4x real time: fast for CI, and still paced like a live source.
    code, err = await push(clip, rtmp(gw, "paid"), readrate=4.0, timeout=300)
    assert code == 0, err
    segments = await wait_transcoded(gw, "paid", timeout=300)
    assert segments == 60
    rendition = gw.hls.rendition("paid", "P144p30fps16x9")
    assert rendition is not None and rendition.playlist.entries[-1].seq == 59
    s = orch.stats
    assert s.segments_transcoded == 60, s.as_json()
    assert s.tickets_rejected == 0 and s.segments_rejected == 0, s.as_json()
    assert s.tickets_accepted == s.tickets_received > 0
    assert s.ev_credited >= s.fees_debited  # the gateway kept its balance positive
    assert 0 <= s.tickets_winning <= s.tickets_accepted
    # Usage metering on the gateway agrees with what the orchestrator saw and charged.
    gw.usage.drain()  # the usage events still queued, if any
    usage = await stream_entry(gw.http_port, "paid")
    assert usage["tickets_sent"] == s.tickets_received
    assert usage["transcode_pixels"] == s.pixels
    assert int(usage["ev_sent_wei"]) == round(s.ev_credited)


async def test_http_push_answers_with_renditions(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker
) -> None:
    """go-livepeer's HTTP push: POST /live/ID/SEQ.ts -> multipart/mixed renditions."""
    from mediatools import decode_segment

    orch = await orchestrators()
    gw = await gateway_factory(orch_addr=(orch.url,), transcoding_options=LADDER)
    clip = make_clip(seconds=2, fmt="mpegts")
    body = clip.read_bytes()
    base = f"http://127.0.0.1:{gw.http_port}/live/pushed"
    headers = {"Content-Duration": "2000", "Accept": "multipart/mixed"}
    async with aiohttp.ClientSession() as s:
        for seq in range(2):
            async with s.post(f"{base}/{seq}.ts", data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["Content-Type"].startswith("multipart/mixed")
                reader = aiohttp.MultipartReader.from_response(resp)
                parts = {}
                while (part := await reader.next()) is not None:
                    assert isinstance(part, aiohttp.BodyPartReader)
                    parts[part.headers["Rendition-Name"]] = await part.read()
            assert set(parts) == set(SIZES)
            for name, data in parts.items():
                info = decode_segment(seq, 2.0, bytes(data))
                assert (info.width, info.height) == SIZES[name] and info.first_is_key
        async with s.get(f"{base}/9.ts") as resp:
            assert resp.status == 405
        bad = {"Livepeer-Transcode-Configuration": "{not json"}
        async with s.post(f"{base}/5.ts", data=body, headers=bad) as resp:
            assert resp.status == 400 and "JSON" in await resp.text()
        async with s.post(f"{base}/6.mp4", data=body) as resp:
            assert resp.status == 400
    for name in SIZES:
        result = await fetch_hls(gw.http_port, "pushed", name)
        assert [seg.seq for seg in result.segments] == [0, 1]
    assert orch.stats.segments_transcoded == 2


async def test_webhooks_choose_orchestrators_and_ladder(
    gateway_factory: Any, orchestrators: OrchFactory, make_clip: ClipMaker
) -> None:
    """-orchWebhookUrl lists the orchestrators; the auth webhook's profiles set the ladder."""
    from aiohttp import web

    orch = await orchestrators()
    hits = {"orchs": 0, "auth": 0}

    async def orchs(request: web.Request) -> web.Response:
        hits["orchs"] += 1
        return web.json_response([{"address": orch.url, "score": 1.0}, {"address": ""}])

    async def auth(request: web.Request) -> web.Response:
        hits["auth"] += 1
        profiles = [{"name": "tiny", "width": 160, "height": 90, "bitrate": 100000}]
        return web.json_response({"manifestID": "public-id", "profiles": profiles})

    app = web.Application()
    app.router.add_get("/orchestrators", orchs)
    app.router.add_post("/auth", auth)
    async with serve_app(app) as base:
        gw = await gateway_factory(
            orch_webhook_url=f"{base}/orchestrators", auth_webhook_url=f"{base}/auth"
        )
        clip = make_clip(seconds=4)
        code, err = await push(clip, rtmp(gw, "secret-key"), live=False)
        assert code == 0, err
        await wait_transcoded(gw, "public-id")
        result = await fetch_hls(gw.http_port, "public-id", "tiny")
        assert result.segments and all((s.width, s.height) == (160, 90) for s in result.segments)
        assert gw.hls.rendition("public-id", "P240p30fps16x9") is None  # default ladder unused
        assert hits["orchs"] >= 1 and hits["auth"] == 1
