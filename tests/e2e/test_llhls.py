"""LL-HLS end to end: FFmpeg's RTMP client -> gateway -> LL-HLS, read back with FFmpeg (ffprobe
plays the LL playlist) and PyAV (parts and segments decode), on the TS playlist's timeline; a
player's request for the preload-hinted part is held until the part is cut."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import aiohttp
import av
import pytest
from mediatools import ClipMaker, count_frames, fetch_hls, probe_frames, push, wait_until

from mediagw.gateway import Gateway

pytestmark = pytest.mark.ffmpeg


def _rtmp(gw: Gateway, name: str) -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}"


async def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def _segments(text: str) -> list[tuple[int, float]]:
    """(msn, EXTINF) of the whole segments a media playlist lists (TS or LL)."""
    msn = int(re.findall(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)[0])
    out = []
    for duration in re.findall(r"#EXTINF:([\d.]+),", text):
        out.append((msn, round(float(duration), 3)))
        msn += 1
    return out


def _frames(data: bytes) -> tuple[int, int]:
    """Decoded (video, audio) frames of an fMP4 file (init + fragments)."""
    video = audio = 0
    with av.open(io.BytesIO(data), format="mp4") as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                video += 1
            else:
                audio += 1
    return video, audio


async def test_rtmp_publish_reads_back_from_ll_hls(gateway: Gateway, make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=6, bframes=2)
    video_in, audio_in = count_frames(clip)
    code, err = await push(clip, _rtmp(gateway, "ll1"), live=False)
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("ll1").live)  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{gateway.http_port}/stream/ll1"
    status, headers, body = await _get(f"{base}/ll/index.m3u8")
    assert status == 200 and 'CODECS="avc1.' in body.decode() and "mp4a.40.2" in body.decode()
    status, _, body = await _get(f"{base}/ll/source.m3u8")
    text = body.decode()
    assert status == 200 and text.endswith("#EXT-X-ENDLIST\n"), text
    assert "#EXT-X-PROGRAM-DATE-TIME:" in text and "#EXT-X-PART:" in text
    # the TS playlist's segments: the same msn, the same durations
    ts = await fetch_hls(gateway.http_port, "ll1")
    assert _segments(text) == _segments(ts.playlist)
    # FFmpeg's HLS demuxer plays the LL playlist (whole segments, fMP4): every frame
    assert await probe_frames(f"{base}/ll/source.m3u8") == video_in
    # a segment is its parts joined; init + its parts decode on their own
    _, _, init = await _get(f"{base}/ll/source/init-0.mp4")
    video = audio = 0
    listed = re.findall(r'#EXT-X-PART:DURATION=[\d.]+,URI="source/(\d+)\.(\d+)\.mp4"', text)
    assert listed
    for msn, _ in _segments(text):
        _, headers, segment = await _get(f"{base}/ll/source/{msn}.mp4")
        assert headers["Content-Type"] == "video/mp4"
        v, a = await asyncio.to_thread(_frames, init + segment)
        video, audio = video + v, audio + a
        parts = [p for m, p in listed if int(m) == msn]
        if parts:
            joined = b"".join([(await _get(f"{base}/ll/source/{msn}.{p}.mp4"))[2] for p in parts])
            assert joined == segment
    assert (video, audio) == (video_in, audio_in)


async def test_preload_hint_part_is_held_then_served(
    gateway: Gateway, make_clip: ClipMaker
) -> None:
    clip = make_clip(seconds=4)
    pusher = asyncio.create_task(push(clip, _rtmp(gateway, "ll2")))
    assert gateway.llhls is not None
    base = f"http://127.0.0.1:{gateway.http_port}/stream/ll2/ll"
    # LL-HLS is made on demand: the first player's request turns it on for the stream
    await wait_until(lambda: gateway.hub.get("ll2") is not None, 8)
    await _get(f"{base}/source.m3u8")
    await wait_until(lambda: gateway.llhls.rendition("ll2", "source") is not None, 8)  # type: ignore[union-attr]
    _, _, body = await _get(f"{base}/source.m3u8")
    hint = re.findall(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', body.decode())[0]
    rend = gateway.llhls.rendition("ll2", "source")
    assert rend is not None
    msn, index = (int(n) for n in re.findall(r"(\d+)\.(\d+)\.mp4$", hint)[0])
    assert (msn, index) not in rend.parts  # not cut yet: the request is held
    status, headers, data = await _get(f"{base}/{hint}")
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    assert data == rend.parts[(msn, index)]
    # and a blocking reload for the part after it returns a playlist that lists it
    query = f"_HLS_msn={msn}&_HLS_part={index + 1}"
    status, _, body = await _get(f"{base}/source.m3u8?{query}")
    listed = body.decode()
    assert status == 200
    assert f'"source/{msn}.{index + 1}.mp4"' in listed or f'"source/{msn + 1}.0.mp4"' in listed
    code, err = await pusher
    assert code == 0, err


async def test_ai_output_plays_as_ll_hls(gateway_factory: Any, make_clip: ClipMaker) -> None:
    """The live AI output has its LL-HLS too: fMP4 parts of the output as the orchestrator
    returns it, on the output HLS's timeline, ended with the run."""
    from mediagw.orchestrator import DEFAULT_LIVE_MODELS, OrchestratorConfig, ReferenceOrchestrator

    async with ReferenceOrchestrator(OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,), live_ai_segment_duration=1.0)
        clip = make_clip(seconds=5, bframes=0)
        code, err = await push(clip, _rtmp(gw, "llai") + "?pipeline=noop")
        assert code == 0, err
        await wait_until(lambda: "llai" in gw.live_ai.finished, 30)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{gw.http_port}/stream/llai-out"
        status, _, body = await _get(f"{base}/ll/index.m3u8")
        assert status == 200 and 'CODECS="avc1.' in body.decode()
        status, _, body = await _get(f"{base}/ll/source.m3u8")
        text = body.decode()
        assert status == 200 and text.endswith("#EXT-X-ENDLIST\n"), text
        assert "#EXT-X-PART:" in text and "INDEPENDENT=YES" in text
        # one output, one init segment: its configs do not churn from segment to segment
        assert text.count("#EXT-X-MAP:") == 1 and "#EXT-X-DISCONTINUITY" not in text, text
        ts = await fetch_hls(gw.http_port, "llai-out")
        assert _segments(text) == _segments(ts.playlist)
        assert await probe_frames(f"{base}/ll/source.m3u8") == ts.video_frames > 0
