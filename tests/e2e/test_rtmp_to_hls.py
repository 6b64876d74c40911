"""The media backbone end to end: FFmpeg's RTMP client -> gateway -> HLS, decoded back."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
from pathlib import Path

import aiohttp
import pytest
from mediatools import ClipMaker, count_frames, fetch_hls, need_tool, push, wait_until

from mediagw.gateway import Gateway

pytestmark = pytest.mark.ffmpeg


def rtmp(gw: Gateway, name: str) -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}"


def assert_complete(result, clip_frames: tuple[int, int], fps: int, target: float = 2.0) -> None:
    video_in, audio_in = clip_frames
    assert result.ended, result.playlist
    assert result.segments, "no segment"
    for seg in result.segments:
        assert seg.first_is_key, f"segment {seg.seq} does not start with a keyframe"
    seqs = [s.seq for s in result.segments]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert result.video_frames == video_in, (result.video_frames, video_in)
    if audio_in:
        assert result.audio_frames == audio_in, (result.audio_frames, audio_in)
    pushed = video_in / fps
    assert abs(result.duration - pushed) <= target, (result.duration, pushed)
    for seg in result.segments[:-1]:
        assert seg.duration >= target - 1 / fps


async def test_live_paced_h264_aac(gateway: Gateway, make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    pusher = asyncio.create_task(push(clip, rtmp(gateway, "live1")))
    # Playable while live, long before the push ends.
    await wait_until(lambda: gateway.hls.media_playlist("live1", "source") is not None, 8)
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{gateway.http_port}/stream/live1.m3u8"
        async with s.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            master = await resp.text()
    assert "#EXT-X-STREAM-INF:" in master and "RESOLUTION=320x240" in master
    assert 'CODECS="avc1.' in master and "mp4a.40.2" in master
    assert "live1/source.m3u8" in master
    assert not pusher.done()
    code, err = await pusher
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("live1").live)  # type: ignore[union-attr]
    result = await fetch_hls(gateway.http_port, "live1")
    assert_complete(result, frames, 30)
    # with reads held between keyframes (-rtmpReadHold, on by default): no frame lost
    assert gateway.rtmp.moderator.holds > 0
    assert "#EXT-X-PROGRAM-DATE-TIME:" in result.playlist
    assert "#EXT-X-TARGETDURATION:2" in result.playlist


async def test_fast_push_loses_nothing(gateway: Gateway, make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=20, size="640x360")
    frames = count_frames(clip)
    code, err = await push(clip, rtmp(gateway, "fast"), live=False)
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("fast").live)  # type: ignore[union-attr]
    result = await fetch_hls(gateway.http_port, "fast")
    assert_complete(result, frames, 30)
    assert len(result.segments) == 10


async def test_video_only_with_bframes(gateway: Gateway, make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=5, audio=False, bframes=2, gop=45)
    frames = count_frames(clip)
    code, err = await push(clip, rtmp(gateway, "vonly"), live=False)
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("vonly").live)  # type: ignore[union-attr]
    result = await fetch_hls(gateway.http_port, "vonly")
    assert_complete(result, frames, 30, target=2.0)
    assert result.audio_frames == 0
    # GOP of 1.5 s with a 2 s target: segments are cut at the second keyframe (3 s).
    assert all(abs(s.duration - 3.0) < 0.01 for s in result.segments[:-1])


async def test_five_concurrent_publishers(gateway: Gateway, make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=5)
    frames = count_frames(clip)
    names = [f"multi{i}" for i in range(5)]
    results = await asyncio.gather(*(push(clip, rtmp(gateway, n)) for n in names))
    assert all(code == 0 for code, _ in results), results
    for name in names:
        await wait_until(lambda n=name: not gateway.hub.get(n).live)  # type: ignore[misc,union-attr]
        assert_complete(await fetch_hls(gateway.http_port, name), frames, 30)


async def test_publisher_reconnect_continues_with_discontinuity(
    gateway: Gateway, make_clip: ClipMaker
) -> None:
    clip = make_clip(seconds=4)
    v, a = count_frames(clip)
    for _ in range(2):
        code, err = await push(clip, rtmp(gateway, "again"), live=False)
        assert code == 0, err
        await wait_until(lambda: not gateway.hub.get("again").live)  # type: ignore[union-attr]
    result = await fetch_hls(gateway.http_port, "again")
    assert result.playlist.count("#EXT-X-DISCONTINUITY\n") == 1
    assert_complete(result, (2 * v, 2 * a), 30)
    # Timestamps keep increasing across the restart.
    pts = [s.first_pts for s in result.segments]
    assert all(b > a for a, b in itertools.pairwise(pts)), pts
    streams = gateway.hub.get("again")
    assert streams is not None and streams.stats.sessions == 2


async def test_second_publisher_is_refused(gateway: Gateway, make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    first = asyncio.create_task(push(clip, rtmp(gateway, "busy")))
    await wait_until(lambda: gateway.hub.get("busy") is not None, 5)
    code, err = await push(clip, rtmp(gateway, "busy"), timeout=30)
    assert code != 0, "second publisher was accepted"
    code, err = await first
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("busy").live)  # type: ignore[union-attr]
    assert_complete(await fetch_hls(gateway.http_port, "busy"), frames, 30)


async def test_static_stream_key_is_never_in_playback_url(
    gateway_factory, make_clip: ClipMaker
) -> None:
    gw = await gateway_factory(stream_keys={"sk_live_123": "concert"})
    clip = make_clip(seconds=3)
    code, err = await push(clip, rtmp(gw, "wrongkey"), live=False, timeout=30)
    assert code != 0
    code, err = await push(clip, rtmp(gw, "sk_live_123"), live=False)
    assert code == 0, err
    await wait_until(lambda: gw.hub.get("concert") is not None and not gw.hub.get("concert").live)  # type: ignore[union-attr]
    assert gw.hub.get("sk_live_123") is None
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{gw.http_port}/streams") as resp:
            listing = await resp.text()
        async with s.get(f"http://127.0.0.1:{gw.http_port}/stream/concert.m3u8") as resp:
            assert resp.status == 200
            master = await resp.text()
    assert "sk_live_123" not in listing and "sk_live_123" not in master
    assert json.loads(listing)["streams"][0]["playback_url"] == "/stream/concert.m3u8"


async def test_recording_to_disk(gateway_factory, make_clip: ClipMaker, tmp_path: Path) -> None:
    gw = await gateway_factory(record_dir=str(tmp_path / "rec"))
    clip = make_clip(seconds=5)
    v, _ = count_frames(clip)

    def closed_with(segments: int) -> bool:
        indexes = list((tmp_path / "rec").glob("rec1/*/index.m3u8"))
        text = indexes[0].read_text() if indexes else ""
        return text.count("#EXTINF") == segments and text.endswith("#EXT-X-ENDLIST\n")

    for segments in (3, 6):  # a reconnect continues the same recording, which closes again
        code, err = await push(clip, rtmp(gw, "rec1"), live=False)
        assert code == 0, err
        await wait_until(lambda: not gw.hub.get("rec1").live)  # type: ignore[union-attr]
        await wait_until(lambda n=segments: closed_with(n))  # type: ignore[misc]
    index = next((tmp_path / "rec").glob("rec1/*/index.m3u8"))
    assert index.read_text().count("#EXT-X-DISCONTINUITY\n") == 1
    ffprobe = need_tool("ffprobe")
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets,width",
            "-of",
            "json",
            str(index),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    stream = json.loads(out.stdout)["streams"][0]
    assert int(stream["nb_read_packets"]) == 2 * v and stream["width"] == 320


async def test_a_failing_recording_disk_is_named_in_the_status_and_loses_no_live_frame(
    gateway_factory, make_clip: ClipMaker, tmp_path: Path
) -> None:
    """Every recording write fails (its directory is under a regular file: ENOTDIR, as a full or
    read-only disk fails them); the live stream is whole and ``/streams`` says why recording
    failed."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    gw = await gateway_factory(record_dir=str(blocker / "rec"))
    clip = make_clip(seconds=4)
    v, a = count_frames(clip)
    code, err = await push(clip, rtmp(gw, "nodisk"), live=False)
    assert code == 0, err
    await wait_until(lambda: not gw.hub.get("nodisk").live)  # type: ignore[union-attr]
    assert_complete(await fetch_hls(gw.http_port, "nodisk"), (v, a), 30)
    url = f"http://127.0.0.1:{gw.http_port}/streams"

    async def status() -> dict:
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            return (await resp.json())["streams"][0]

    async def named() -> bool:
        error = (await status())["recording_error"] or ""
        return error.startswith("recording write failed") and "Not a directory" in error

    for _ in range(100):
        if await named():
            break
        await asyncio.sleep(0.1)
    assert await named(), await status()


async def test_ffprobe_plays_the_live_hls(gateway: Gateway, make_clip: ClipMaker) -> None:
    """A real HLS client (FFmpeg's hls demuxer) reads every frame through the multivariant URL."""
    clip = make_clip(seconds=4)
    v, _ = count_frames(clip)
    code, err = await push(clip, rtmp(gateway, "probe"), live=False)
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("probe").live)  # type: ignore[union-attr]
    ffprobe = need_tool("ffprobe")
    url = f"http://127.0.0.1:{gateway.http_port}/stream/probe.m3u8"
    proc = await asyncio.create_subprocess_exec(
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        "stream=nb_read_frames,codec_name",
        "-of",
        "json",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    stream = json.loads(out)["streams"][0]
    assert stream["codec_name"] == "h264" and int(stream["nb_read_frames"]) == v


async def test_unknown_stream_is_a_clear_404(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/stream/nope.m3u8", "/stream/nope/source.m3u8", "/stream/nope/source/1.ts"):
            async with s.get(f"http://127.0.0.1:{gateway.http_port}{path}") as resp:
                assert resp.status == 404
                assert "error" in await resp.json()
        async with s.get(f"http://127.0.0.1:{gateway.http_port}/healthz") as resp:
            assert (await resp.json())["status"] == "ok"
