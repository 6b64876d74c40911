"""Floods of slow and idle clients: slowloris on RTMP and HTTP, 1,000 idle TCP connections.
The limits close them, and a clean stream published alongside keeps every frame."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from e2e.slow_testkit import SlowClients
from mediatools import ClipMaker, count_frames, fetch_hls, push, wait_until
from rtmp.rtmp_testkit import C0C1, C2

import mediagw.gateway
from mediagw.gateway import Gateway

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
    try:
        await asyncio.gather(
            slow.idle(1000, "127.0.0.2"),
            slow.trickle(30, "127.0.0.3", C0C1),
            slow.idle(20, "127.0.0.4", first=C0C1 + C2),
        )
        assert gw.rtmp.refused >= 1000 - limits.max_connections_per_ip
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
    monkeypatch.setattr(mediagw.gateway, "HTTP_IDLE_TIMEOUT", 2.0)
    gw = await gateway_factory()
    clip = make_clip(seconds=6)
    frames = count_frames(clip)
    slow = SlowClients(gw.http_port)
    head = b"GET /stream/clean.m3u8 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 60
    try:
        clean = asyncio.create_task(push(clip, rtmp(gw, "clean")))
        await asyncio.gather(slow.idle(1000, "127.0.0.2"), slow.trickle(30, "127.0.0.3", head))
        await wait_until(lambda: slow.open == 0, 2.0 + 8)
        await _clean_stream(gw, clean, frames)
    finally:
        await slow.aclose()
