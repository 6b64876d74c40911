"""A stream continued on another node: gateway A has a stream (FFmpeg's RTMP client, the
reference orchestrator transcoding it or running live AI on it), gateway B, fresh, admits the
publisher's reconnect with the ``Resume`` A's state gives (what the leases put on the request),
and every playlist of B goes on from A's: no seq listed twice, the next timeline announced by
the discontinuity sequence; FFmpeg plays B's playlists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mediatools import (
    ClipMaker,
    check_continues,
    count_frames,
    discontinuity_numbers,
    fetch_hls,
    probe_frames,
    push,
    stream_entry,
    wait_until,
)

from mediagw.gateway import Gateway
from mediagw.orchestrator import (
    DEFAULT_LIVE_MODELS,
    OrchestratorConfig,
    ReferenceOrchestrator,
)
from mediagw.platform.admission import Admission
from mediagw.platform.stream_auth import PublishAttempt
from mediagw.request import Resume, StreamRequest

pytestmark = pytest.mark.ffmpeg

LADDER = "P144p30fps16x9"


class _Resuming(Admission):
    """Admits as the gateway's own admission does, with ``resume`` on the request: what the
    stream leases do when they claim a stream another node owned."""

    def __init__(self, inner: Admission, resume: Resume) -> None:
        super().__init__(inner.authorizer, inner.live)
        self.resume = resume

    async def admit(self, attempt: PublishAttempt) -> StreamRequest:
        return replace(await super().admit(attempt), resume=self.resume)


def _resume_from(gw: Gateway, stream: str) -> Resume:
    """Where A's stream stands: what the leases' cursor holds."""
    source = gw.hls.rendition(stream, "source")
    live = gw.hub.get(stream)
    assert source is not None and live is not None
    return Resume(
        source.playlist.next_seq, source.playlist.discontinuity_number, live.stats.sessions
    )


async def _text(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200, url
        return await resp.text()


def _rtmp(gw: Gateway, name: str, query: str = "") -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}{query}"


async def _ended(gw: Gateway, stream: str) -> None:
    """The publish has ended and its transcoded rendition is in to the source's last segment."""

    def done() -> bool:
        live = gw.hub.get(stream)
        source, rendition = gw.hls.rendition(stream, "source"), gw.hls.rendition(stream, LADDER)
        if live is None or live.live or source is None or rendition is None:
            return False
        listed = rendition.playlist
        last = listed.next_seq == source.playlist.next_seq
        return listed.ended and listed.session == live.stats.sessions and last

    await wait_until(done, 90)


async def test_a_stream_continues_on_another_node_in_every_playlist(
    gateway_factory: Any, make_clip: ClipMaker, tmp_path: Path
) -> None:
    clip = make_clip(seconds=6)
    video, _ = count_frames(clip)
    async with ReferenceOrchestrator(OrchestratorConfig(x264_preset="ultrafast")) as orch:
        settings = {"orch_addr": (orch.url,), "transcoding_options": LADDER, "hls_window": 6}
        a = await gateway_factory(**settings)
        b = await gateway_factory(**settings, data_dir=str(tmp_path / "b"))
        # A: two publish sessions, so its playlists already carry a discontinuity
        for _ in range(2):
            code, err = await push(clip, _rtmp(a, "s"), live=False)
            assert code == 0, err
            await _ended(a, "s")
        urls = {
            "source": "/stream/s/source.m3u8",
            LADDER: f"/stream/s/{LADDER}.m3u8",
            "ll": "/stream/s/ll/source.m3u8",
        }
        before = {k: await _text(f"http://127.0.0.1:{a.http_port}{u}") for k, u in urls.items()}
        resume = _resume_from(a, "s")
        assert resume.session == 2 and resume.discontinuity == 1 and resume.next_seq == 6
        # A's publisher reconnects to B, which knows nothing of A but the resume
        b.ingest.admission = _Resuming(b.admission, resume)
        code, err = await push(clip, _rtmp(b, "s"), live=False)
        assert code == 0, err
        await _ended(b, "s")
        after = {k: await _text(f"http://127.0.0.1:{b.http_port}{u}") for k, u in urls.items()}
        for name in urls:
            check_continues(before[name], after[name])
            assert discontinuity_numbers(after[name])[0] == (6, 2), (name, after[name])
        # every rendition numbered as the source, as on one node
        assert discontinuity_numbers(after[LADDER]) == discontinuity_numbers(after["source"])
        assert (await stream_entry(b.http_port, "s"))["sessions"] == 3
        # players play B's playlists: every frame of the publish
        base = f"http://127.0.0.1:{b.http_port}"
        assert (await fetch_hls(b.http_port, "s")).video_frames == video
        assert await probe_frames(f"{base}/stream/s/source.m3u8") == video
        assert await probe_frames(f"{base}/stream/s/ll/source.m3u8") == video
        assert await probe_frames(f"{base}/stream/s/{LADDER}.m3u8") > 0


async def test_the_live_ai_output_continues_on_another_node(
    gateway_factory: Any, make_clip: ClipMaker, tmp_path: Path
) -> None:
    clip = make_clip(seconds=6)
    config = OrchestratorConfig(live_models=DEFAULT_LIVE_MODELS)
    async with ReferenceOrchestrator(config) as orch:
        a = await gateway_factory(orch_addr=(orch.url,), hls_window=6)
        b = await gateway_factory(orch_addr=(orch.url,), hls_window=6, data_dir=str(tmp_path / "b"))
        code, err = await push(clip, _rtmp(a, "ai", "?pipeline=noop"))
        assert code == 0, err
        await wait_until(lambda: "ai" in a.live_ai.finished, 30)  # type: ignore[union-attr]
        out = "/stream/ai-out/source.m3u8"
        before = await _text(f"http://127.0.0.1:{a.http_port}{out}")
        resume = _resume_from(a, "ai")
        # the output's numbering never passes the source's (one output per input segment)
        assert discontinuity_numbers(before)[-1][0] < resume.next_seq
        b.ingest.admission = _Resuming(b.admission, resume)
        code, err = await push(clip, _rtmp(b, "ai", "?pipeline=noop"))
        assert code == 0, err
        await wait_until(lambda: "ai" in b.live_ai.finished, 30)  # type: ignore[union-attr]
        after = await _text(f"http://127.0.0.1:{b.http_port}{out}")
        check_continues(before, after)
        assert discontinuity_numbers(after)[0] == (resume.next_seq, resume.discontinuity + 1)
        ll = await _text(f"http://127.0.0.1:{b.http_port}/stream/ai-out/ll/source.m3u8")
        assert discontinuity_numbers(ll)[0] == (resume.next_seq, resume.discontinuity + 1)
        assert await probe_frames(f"http://127.0.0.1:{b.http_port}{out}") > 0
