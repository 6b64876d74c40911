"""One bad client never hurts another stream; slow HTTP readers never stall ingest;
blocking media work never runs on the event loop; a flood of malformed sessions and requests
leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from e2e.flood_testkit import CLOSE_WAIT, Flood, tcp_states
from mediatools import ClipMaker, count_frames, fetch_hls, need_tool, push, wait_until

import segmenter.flv
import segmenter.tsmux
from mediagw.gateway import Gateway
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator

pytestmark = pytest.mark.ffmpeg


def rtmp(gw: Gateway, name: str) -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}"


async def _raw(port: int, data: bytes, linger: float = 0.2) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    await asyncio.sleep(linger)
    writer.transport.abort()  # vanish without a goodbye


async def test_bad_clients_do_not_hurt_a_live_stream(
    gateway: Gateway, make_clip: ClipMaker
) -> None:
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    good = asyncio.create_task(push(clip, rtmp(gateway, "good")))
    await wait_until(lambda: gateway.hub.get("good") is not None, 5)
    port = gateway.rtmp_port
    c0c1 = b"\x03" + bytes(1536)
    await asyncio.gather(
        _raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),  # wrong protocol
        _raw(port, bytes(range(256)) * 64),  # garbage
        _raw(port, c0c1[:700]),  # truncated handshake
        _raw(
            port,
            c0c1
            + bytes(1536)
            + b"\x02\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00"
            + (16 * 1024 * 1024).to_bytes(4, "big"),
        ),  # 16 MiB chunk size
        _raw(
            port,
            c0c1
            + bytes(1536)
            + b"\x03\x00\x00\x00\x00\x10\x00\x14\x00\x00\x00\x00"
            + b"\x02\x00\x07connect",
        ),  # a command message cut short, then gone
    )
    code, err = await good
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("good").live)  # type: ignore[union-attr]
    result = await fetch_hls(gateway.http_port, "good")
    assert result.video_frames == frames[0] and result.audio_frames == frames[1]


async def test_unsupported_codec_is_refused_clearly(gateway: Gateway, make_clip: ClipMaker) -> None:
    ffmpeg = need_tool("ffmpeg")
    clip = make_clip(seconds=4)
    frames = count_frames(clip)
    good = asyncio.create_task(push(clip, rtmp(gateway, "fine")))
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi",
        "-i", "testsrc2=size=320x240:rate=30", "-t", "3", "-c:v", "flv1", "-f", "flv",
        rtmp(gateway, "sorenson"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.wait_for(proc.communicate(), 60)
    await wait_until(lambda: gateway.hub.get("sorenson") is not None, 5)
    await wait_until(lambda: not gateway.hub.get("sorenson").live, 10)  # type: ignore[union-attr]
    error = gateway.hub.get("sorenson").last_error  # type: ignore[union-attr]
    assert error is not None and "H.264" in error, error
    code, err = await good
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("fine").live)  # type: ignore[union-attr]
    assert (await fetch_hls(gateway.http_port, "fine")).video_frames == frames[0]


async def test_slow_http_readers_never_stall_ingest(gateway: Gateway, make_clip: ClipMaker) -> None:
    clip = make_clip(seconds=10, size="640x360")
    frames = count_frames(clip)
    pusher = asyncio.create_task(push(clip, rtmp(gateway, "slowread"), live=False))
    await wait_until(lambda: gateway.hls.segment("slowread", "source", 0) is not None, 10)
    stuck = []
    for _ in range(20):  # ask for a segment over and over, never read a byte of the answers
        _reader, writer = await asyncio.open_connection("127.0.0.1", gateway.http_port)
        writer.write(b"GET /stream/slowread/source/0.ts HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
        stuck.append(writer)
    code, err = await pusher
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("slowread").live)  # type: ignore[union-attr]
    result = await fetch_hls(gateway.http_port, "slowread")
    assert result.video_frames == frames[0]
    for writer in stuck:
        writer.transport.abort()


async def test_media_work_stays_off_the_event_loop(
    gateway: Gateway, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every PyAV container open and every FLV demux call happens on a worker thread."""
    loop_thread = threading.get_ident()
    calls: list[tuple[str, bool]] = []
    real_open = segmenter.tsmux.av.open
    real_feed = segmenter.flv.FlvDemuxer.feed

    def spy_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(("av.open", threading.get_ident() == loop_thread))
        return real_open(*args, **kwargs)

    def spy_feed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(("feed", threading.get_ident() == loop_thread))
        return real_feed(self, *args, **kwargs)

    monkeypatch.setattr(segmenter.tsmux.av, "open", spy_open)
    monkeypatch.setattr(segmenter.flv.FlvDemuxer, "feed", spy_feed)
    clip = make_clip(seconds=4)
    code, err = await push(clip, rtmp(gateway, "offloop"), live=False)
    assert code == 0, err
    await wait_until(lambda: not gateway.hub.get("offloop").live)  # type: ignore[union-attr]
    assert {name for name, _ in calls} == {"av.open", "feed"}
    on_loop = [name for name, on in calls if on]
    assert not on_loop, f"{len(on_loop)} calls ran on the event loop: {set(on_loop)}"


CLEAN_KEY = "sk_SECRET_clean"
BAD_KEYS = {f"sk_SECRET_bad{i}": f"bad{i}" for i in range(6)}


async def test_flood_of_malformed_sessions_and_requests_beside_a_clean_stream(
    gateway_factory: Any, make_clip: ClipMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed RTMP sessions (truncated handshakes, garbage, huge and deep AMF, publishes of
    corrupt media that hang up at once, resets) and malformed HTTP requests (bad request lines
    and headers over raw sockets, bad bodies on the live AI, WHIP, WHEP and push routes) beside
    a clean ffmpeg publisher, with room for only 3 live streams: the clean stream is whole, no
    stream outlives its publisher, no 5xx, no traceback, no stream key in the logs, and no
    server socket is left in CLOSE-WAIT."""
    caplog.set_level(logging.INFO)
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    async with ReferenceOrchestrator(OrchestratorConfig(instant=True)) as orch:
        gw = await gateway_factory(
            orch_addr=(orch.url,),  # live AI routes, and transcoding the clean stream
            transcoding_options="P144p30fps16x9",
            stream_keys={CLEAN_KEY: "clean", **BAD_KEYS},
            max_sessions=3,
            max_conns_per_ip=40,
        )
        flood = Flood(gw, BAD_KEYS, concurrency=16)
        await flood.rtmp(rounds=4)  # first: a clean publisher must still get in after this
        clean = asyncio.create_task(push(clip, rtmp(gw, CLEAN_KEY)))
        await asyncio.gather(flood.rtmp(rounds=8), flood.http(rounds=25, key=CLEAN_KEY))
        code, err = await clean
        result = flood.result
        sessions, requests = sum(result.rtmp_sessions.values()), sum(result.http_requests.values())
        print(f"\nflood: {sessions} RTMP sessions, {requests} HTTP requests; "
              f"answers {dict(sorted(result.statuses.items()))}")  # fmt: skip
        assert code == 0, err
        # no stream outlives its publisher
        assert not result.stuck_live, f"streams stuck live: {sorted(result.stuck_live)}"
        await wait_until(lambda: gw.hub.live_count() == 0, 10)
        # the clean stream is whole, and decodes
        hls = await fetch_hls(gw.http_port, "clean")
        assert hls.ended
        assert (hls.video_frames, hls.audio_frames) == frames
        # no server socket left in CLOSE-WAIT (the kernel's view where there is one)
        assert result.rtmp_unclosed == 0
        await wait_until(lambda: gw.rtmp.connections == 0, 5)
        for port in (gw.rtmp_port, gw.http_port):
            states = tcp_states(port)
            if states is not None:
                await wait_until(lambda p=port: not tcp_states(p)[CLOSE_WAIT], 5)  # type: ignore[index]
    # no 5xx; every request got its 4xx
    assert result.server_errors == 0, result.statuses
    assert sum(result.statuses.values()) > 0
    records = caplog.records
    tracebacks = [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [(r.name, r.getMessage()) for r in tracebacks[:5]]
    leaks = [r for r in records if "SECRET" in repr(vars(r))]
    assert not leaks, [(r.name, r.getMessage(), getattr(r, "stream", "")) for r in leaks[:5]]
    # one short line per malformed request, rate-limited
    malformed = [r for r in records if r.getMessage() == "malformed HTTP request"]
    assert len(malformed) < sum(result.http_requests.values())
