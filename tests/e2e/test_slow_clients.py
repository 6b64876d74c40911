"""Floods of slow and idle clients: slowloris on RTMP and HTTP, 1,000 idle TCP connections.
The limits close them, and a clean stream published alongside keeps every frame."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from e2e.slow_testkit import SlowClients, threads_and_rss
from mediatools import ClipMaker, count_frames, fetch_hls, push, wait_until
from rtmp.rtmp_testkit import C0C1, C2

import mediagw.api.guard
import mediagw.gateway_http
from mediagw.gateway import Gateway
from webrtc import IceConfig, gathering_scope

pytestmark = pytest.mark.ffmpeg


def rtmp(gw: Gateway, name: str) -> str:
    return f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{name}"


async def _clean_stream(gw: Gateway, push_task: asyncio.Task[tuple[int, str]], frames: Any) -> None:
    code, err = await push_task
    assert code == 0, err
    await wait_until(lambda: not gw.hub.get("clean").live)  # type: ignore[union-attr]
    hls = await fetch_hls(gw.http_port, "clean")
    assert (hls.video_frames, hls.audio_frames) == frames


async def test_rtmp_slowloris_and_idle_connections_are_closed(
    gateway: Gateway, make_clip: ClipMaker
) -> None:
    """1,000 idle connections from one address (100 held: the per-IP limit), 30 whose
    handshake arrives one byte a second, 20 idle after the handshake: the handshake and idle
    timeouts close every one, and a publisher from another address streams whole meanwhile."""
    gw = gateway
    limits = gw.rtmp.limits
    gw.rtmp.limits = dataclasses.replace(limits, handshake_timeout=2.0, idle_timeout=3.0)
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    slow = SlowClients(gw.rtmp_port)
    before = threads_and_rss()
    try:
        # the 1,000 first: the server never holds more than the per-IP limit of them (when
        # opening them outlasts the handshake timeout, closed ones free slots for later ones,
        # so the refusals may be fewer than 900: what holds is the count held at any time)
        await slow.idle(1000, "127.0.0.2")
        assert gw.rtmp.connections <= limits.max_connections_per_ip
        assert gw.rtmp.refused >= 1
        await asyncio.gather(
            slow.trickle(30, "127.0.0.3", C0C1),
            slow.idle(20, "127.0.0.4", first=C0C1 + C2),
        )
        print(f"\nrtmp: {gw.rtmp.connections} held, {gw.rtmp.refused} refused; "
              f"(threads, RSS MiB) {before} -> {threads_and_rss()}")  # fmt: skip
        url = f"http://127.0.0.1:{gw.http_port}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            text = await resp.text()
        assert f"mediagw_rtmp_conns_refused_total {float(gw.rtmp.refused)}" in text
        clean = asyncio.create_task(push(clip, rtmp(gw, "clean")))
        await wait_until(lambda: slow.open == 0, 3.0 + 5)
        assert gw.rtmp.connections <= 1  # the clean publisher
        await _clean_stream(gw, clean, frames)
    finally:
        await slow.aclose()


async def test_http_slowloris_and_idle_connections_are_closed(
    gateway_factory: Any, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 idle HTTP connections and 30 whose request head arrives one byte a second are
    closed after the idle timeout (aiohttp's own is about an hour); HLS serves a clean stream
    whole meanwhile."""
    monkeypatch.setattr(mediagw.gateway_http, "HTTP_IDLE_TIMEOUT", 2.0)
    gw = await gateway_factory()
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    slow = SlowClients(gw.http_port)
    head = b"GET /stream/clean.m3u8 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 60
    try:
        clean = asyncio.create_task(push(clip, rtmp(gw, "clean")))
        before = threads_and_rss()
        await asyncio.gather(slow.idle(1000, "127.0.0.2"), slow.trickle(30, "127.0.0.3", head))
        print(f"\nhttp: {slow.open} open; (threads, RSS MiB) {before} -> {threads_and_rss()}")
        await wait_until(lambda: slow.open == 0, 2.0 + 8)
        await _clean_stream(gw, clean, frames)
    finally:
        await slow.aclose()


async def _offer_sdp() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendonly")
    pc.addTransceiver("audio", direction="sendonly")
    ice = IceConfig.loopback()
    with gathering_scope(ice):
        await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_whip_offers_at_50_a_second_are_refused_cleanly(
    gateway_factory: Any, make_clip: ClipMaker
) -> None:
    """200 WHIP offers at 50 a second for 200 streams, room for 4 WHIP sessions: 4 answered,
    every other one a 503 with Retry-After; no thread is left behind; the 4 sessions that
    never send media end after the connect timeout; an RTMP stream alongside stays whole."""
    gw = await gateway_factory(max_whip_sessions=4)
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    sdp = await _offer_sdp()
    base = f"http://127.0.0.1:{gw.http_port}"
    statuses: Counter[int] = Counter()
    retry_after: set[str | None] = set()
    threads_before, rss_before = threads_and_rss()
    peak_threads = threads_before

    async def offer(s: aiohttp.ClientSession, i: int) -> None:
        nonlocal peak_threads
        headers = {"Content-Type": "application/sdp"}
        async with s.post(f"{base}/whip/w{i}", data=sdp, headers=headers) as resp:
            await resp.read()
            statuses[resp.status] += 1
            if resp.status == 503:
                retry_after.add(resp.headers.get("Retry-After"))
        peak_threads = max(peak_threads, threads_and_rss()[0])

    clean = asyncio.create_task(push(clip, rtmp(gw, "clean")))
    async with aiohttp.ClientSession() as s:
        sent = []
        for i in range(200):
            sent.append(asyncio.create_task(offer(s, i)))
            await asyncio.sleep(1 / 50)
        await asyncio.gather(*sent)
    threads_after, rss_after = threads_and_rss()
    print(f"\nwhip flood: {dict(statuses)}; threads {threads_before} -> peak {peak_threads}, "
          f"{threads_after} after; RSS {rss_before} -> {rss_after} MiB")  # fmt: skip
    assert statuses == {201: 4, 503: 196}
    assert retry_after == {"5"}
    await _clean_stream(gw, clean, frames)
    # the answered sessions never connect: closed after the connect timeout, their streams end
    await wait_until(lambda: len(gw.whip.ingest) == 0, 15.0 + 10)
    await wait_until(lambda: gw.hub.live_count() == 0, 10)
    # at most the media executor (4 workers here) and asyncio's default executor (cpus + 4):
    # pools that do not grow with the offers; a thread per offer would be 200 (other tests in
    # the same process may have started neither pool yet, seen in a run after them)
    assert threads_and_rss()[0] <= threads_before + 4 + (os.cpu_count() or 1) + 4


async def test_hls_readers_that_never_read_are_cut_off(
    gateway_factory: Any, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 readers each pipeline 50 requests for a segment and never read a byte: each answer
    not written within the send timeout closes its connection (the unsent bytes are dropped,
    not held until the reader leaves), and the stream being published meanwhile stays whole."""
    monkeypatch.setattr(mediagw.api.guard, "SEND_TIMEOUT", 2.0)
    gw = await gateway_factory()
    clip = make_clip(seconds=10, size="640x360")
    frames = count_frames(clip)
    clean = asyncio.create_task(push(clip, rtmp(gw, "clean"), live=False))
    await wait_until(lambda: gw.hls.segment("clean", "source", 0) is not None, 10)
    size = len(gw.hls.segment("clean", "source", 0) or b"")
    request = b"GET /stream/clean/source/0.ts HTTP/1.1\r\nHost: x\r\n\r\n"
    stuck = []
    for _ in range(20):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", gw.http_port, local_addr=("127.0.0.2", 0)
        )
        writer.write(request * 50)
        stuck.append((reader, writer))
    await _clean_stream(gw, clean, frames)
    await asyncio.sleep(2.0 + 2)
    for reader, writer in stuck:  # what is left to read ends early: the server cut it
        got = 0
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(10):  # not cut: it all arrives, then nothing more
                while chunk := await reader.read(1 << 20):
                    got += len(chunk)
        assert got < 50 * size, f"{got} bytes of {50 * size}: the connection was not cut"
        writer.transport.abort()
