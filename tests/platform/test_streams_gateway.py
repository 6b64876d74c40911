"""Stored streams published for real, on SQLite and PostgreSQL (the ``store_url`` fixture): a
stream created through the service, pushed with the ffmpeg CLI to ``rtmp://.../live/{streamKey}``,
played at its playback id with its profiles as the renditions (reference orchestrator), its
activity, session and counters, recording, suspension, ``-requireStreamKey``, the clean-up
after an unclean stop, and the stream key never in a log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import aiohttp
import pytest
from gateway_streams import GatewayFactory
from mediatools import ClipMaker, fetch_hls, need_tool, probe_frames, push, wait_until

from mediagw.gateway import Gateway
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform.store import Session, SqlStore, Stream

pytestmark = pytest.mark.ffmpeg

PROFILES = [
    {"name": "144p0", "width": 256, "height": 144, "bitrate": 200_000, "fps": 30},
    {"name": "240p0", "width": 426, "height": 240, "bitrate": 400_000, "fps": 30},
]


async def _poll(gw: Gateway, stream_id: str, cond: Callable[[Stream], bool]) -> Stream:
    """Wait until the stored stream meets ``cond`` (the store, as the API reads it)."""
    assert gw.streams is not None
    found: list[Stream] = []

    async def check() -> bool:
        stream = await gw.streams.get(stream_id)  # type: ignore[union-attr]
        if stream is not None and cond(stream):
            found.append(stream)
            return True
        return False

    deadline = asyncio.get_running_loop().time() + 60
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "stream never reached the state"
        await asyncio.sleep(0.1)
    return found[0]


def _rtmp(gw: Gateway, name: str) -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}"


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def test_a_stored_stream_plays_at_its_playback_id_with_its_profiles(
    stored_gateways: GatewayFactory, make_clip: ClipMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ReferenceOrchestrator(OrchestratorConfig(x264_preset="ultrafast")) as orch:
        gw = await stored_gateways(orch_addr=(orch.url,))
        assert gw.streams is not None
        stream = await gw.streams.create(
            {"name": "show'; DROP TABLE streams;--", "profiles": PROFILES}
        )
        pushing = asyncio.create_task(push(make_clip(seconds=5), _rtmp(gw, stream.stream_key)))
        live = await _poll(gw, stream.id, lambda s: s.is_active)
        assert live.last_seen is not None
        sessions = await gw.streams.list_sessions(stream.id)
        assert len(sessions) == 1 and sessions[0].ended_at is None
        code, err = await pushing
        assert code == 0, err
        idle = await _poll(gw, stream.id, lambda s: not s.is_active)
        hub = gw.hub.get(stream.playback_id)
        assert hub is not None and gw.hub.get(stream.stream_key) is None
        base = f"http://127.0.0.1:{gw.http_port}/stream"
        status, master = await _get(f"{base}/{stream.playback_id}.m3u8")
        assert status == 200
        for p in PROFILES:
            assert f"RESOLUTION={p['width']}x{p['height']}" in master, master
        assert (await _get(f"{base}/{stream.stream_key}.m3u8"))[0] == 404
        source = await fetch_hls(gw.http_port, stream.playback_id)
        assert source.video_frames == 150
        rendition = await fetch_hls(gw.http_port, stream.playback_id, "240p0")
        assert {(s.width, s.height) for s in rendition.segments} == {(426, 240)}
        (session,) = await gw.streams.list_sessions(stream.id)
        assert session.ended_at is not None and session.id == sessions[0].id
        assert session.source_segments == len(source.segments) == idle.source_segments
        assert session.source_bytes > 0 and session.source_segments_duration == pytest.approx(
            5, 0.1
        )
        assert session.transcoded_segments > 0 and session.transcoded_bytes > 0
        assert idle.name == "show'; DROP TABLE streams;--"
    lines = [r.getMessage() + json.dumps(vars(r), default=str) for r in caplog.records]
    assert any(stream.playback_id in line for line in lines)  # the logs do name the stream
    assert not [line for line in lines if stream.stream_key in line]


async def test_suspended_refused_unknown_key_falls_through_unless_required(
    stored_gateways: GatewayFactory, make_clip: ClipMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = await stored_gateways()
    assert gw.streams is not None
    stream = await gw.streams.create({"name": "s", "suspended": True})
    clip = make_clip(seconds=2)
    code, _ = await push(clip, _rtmp(gw, stream.stream_key))
    assert code != 0 and gw.hub.get(stream.playback_id) is None
    assert await gw.streams.list_sessions(stream.id) == ()
    code, err = await push(clip, _rtmp(gw, "not-a-key"))  # open mode: a plain stream name
    assert code == 0, err
    assert gw.hub.get("not-a-key") is not None
    code, _ = await push(clip, _rtmp(gw, stream.playback_id))  # never over a stored stream
    assert code != 0 and gw.hub.get(stream.playback_id) is None

    strict = await stored_gateways(require_stream_key=True)
    assert strict.streams is not None
    code, _ = await push(clip, _rtmp(strict, "not-a-key"))
    assert code != 0 and strict.hub.get("not-a-key") is None
    await strict.streams.update(stream.id, {"suspended": False})
    code, err = await push(clip, _rtmp(strict, stream.stream_key))
    assert code == 0, err
    assert strict.hub.get(stream.playback_id) is not None
    lines = [r.getMessage() + json.dumps(vars(r), default=str) for r in caplog.records]
    assert any("rejected" in line for line in lines)  # the refusals are logged, without the key
    assert not [line for line in lines if stream.stream_key in line]


async def test_a_recorded_session_has_a_recording_url_that_plays(
    stored_gateways: GatewayFactory, make_clip: ClipMaker
) -> None:
    need_tool("ffprobe")
    gw = await stored_gateways()
    assert gw.streams is not None
    stream = await gw.streams.create({"name": "rec", "record": True, "profiles": []})
    code, err = await push(make_clip(seconds=3), _rtmp(gw, stream.stream_key), readrate=4)
    assert code == 0, err
    await _poll(gw, stream.id, lambda s: not s.is_active)
    (session,) = await gw.streams.list_sessions(stream.id)
    assert session.record and session.recording_url
    assert session.recording_url == (
        f"http://127.0.0.1:{gw.http_port}/recordings/{session.id}/index.m3u8"
    )
    await wait_until((gw.recordings_dir / session.id / "index.m3u8").exists)
    status, text = await _get(session.recording_url)
    assert status == 200 and "#EXT-X-ENDLIST" in text
    assert await probe_frames(session.recording_url) == 90  # every video frame
    bad = f"http://127.0.0.1:{gw.http_port}/recordings/{'0' * 8}-0000-0000-0000-{'0' * 12}"
    assert (await _get(f"{bad}/index.m3u8"))[0] == 404


async def test_a_restart_after_an_unclean_stop_ends_what_was_live(
    stored_gateways: GatewayFactory, store_url: str
) -> None:
    # what a kill -9 leaves: the stream active, its session open
    store = await SqlStore.open(store_url)
    try:
        stream = Stream(id="s1", name="n", stream_key="k", playback_id="p", created_at=1)
        await store.create_stream(stream)
        await store.start_session(Session(id="a", stream_id="s1", created_at=10, last_seen=10))
        from mediagw.platform.store import Counters

        await store.add_counters("s1", "a", Counters(source_segments=3), 20)
    finally:
        await store.close()
    gw = await stored_gateways()
    assert gw.streams is not None
    after = await gw.streams.get("s1")
    assert after is not None and not after.is_active and after.source_segments == 3
    session = await gw.streams.get_session("a")
    assert session is not None and session.ended_at == 20
