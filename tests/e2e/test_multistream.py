"""A stored stream's multistream targets, published for real: FFmpeg pushes to the stream's key,
the gateway pushes the source on to the target (here its own RTMP ingest, a real peer, as in
``test_rtmp_output``) and a real webhook receiver hears Studio's ``multistream.*`` events,
with the target's id and name and never the destination's stream key."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from mediatools import ClipMaker, push, wait_until
from webhook_testkit import Receiver, receiver

from mediagw.gateway import Gateway
from segmenter.probe import probe_ts

from .conftest import GatewayFactory

pytestmark = pytest.mark.ffmpeg

EVENTS = ["stream.started", "stream.idle", "multistream.connected", "multistream.error",
          "multistream.disconnected"]  # fmt: skip


def _events(rec: Receiver) -> list[str]:
    return [r.doc["event"] for r in rec.on("/hook")]


async def _publish_with_target(
    gw: Gateway, rec: Receiver, target_url: str, clip: Any
) -> dict[str, Any]:
    """A stored stream with one target, a global webhook, one publish; the target's doc."""
    assert gw.webhooks is not None and gw.streams is not None
    await gw.webhooks.create("all", f"{rec.url}/hook", EVENTS)
    stream = await gw.streams.create(
        {"name": "cam", "multistream": {"targets": [
            {"profile": "source", "spec": {"name": "yt", "url": target_url}},
        ]}}
    )  # fmt: skip
    code, err = await push(clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream.stream_key}")
    assert code == 0, err
    await wait_until(lambda: "stream.idle" in _events(rec), 30)
    return {"id": stream.multistream["targets"][0]["id"], "name": "yt", "profile": "source"}


async def test_a_target_that_takes_the_stream_is_connected_then_disconnected(
    gateway_factory: GatewayFactory, make_clip: ClipMaker
) -> None:
    gw: Gateway = await gateway_factory(webhook_allow_private=True)
    target_url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/secretkey"
    async with receiver() as rec:
        target = await _publish_with_target(gw, rec, target_url, make_clip(seconds=6))
        await wait_until(lambda: "multistream.disconnected" in _events(rec), 30)
        events = _events(rec)
        assert events.index("stream.started") < events.index("multistream.connected")
        assert events.index("multistream.connected") < events.index("multistream.disconnected")
        assert "multistream.error" not in events, events
        for got in rec.on("/hook"):
            assert b"secretkey" not in got.body  # the destination's key never leaves
            if got.doc["event"].startswith("multistream."):
                assert got.doc["payload"] == {"target": target}, got.doc
    relayed = gw.hls.rendition("secretkey", "source")  # what the target received
    assert relayed is not None
    frames = sum(probe_ts(d, decode=False).video_frames for d in relayed.segments.values())
    assert frames > 60, frames


async def test_a_target_that_refuses_is_one_error_and_never_connected(
    gateway_factory: GatewayFactory, make_clip: ClipMaker
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw: Gateway = await gateway_factory(webhook_allow_private=True)
    async with receiver() as rec:
        target = await _publish_with_target(
            gw, rec, f"rtmp://127.0.0.1:{port}/live/secretkey", make_clip(seconds=6)
        )
        errors = [r.doc for r in rec.on("/hook") if r.doc["event"] == "multistream.error"]
        assert len(errors) == 1, _events(rec)  # one failure, retried quietly
        assert errors[0]["payload"]["target"] == target
        assert "refused" in errors[0]["payload"]["error"].lower(), errors[0]
        assert "multistream.connected" not in _events(rec)
        assert "multistream.disconnected" not in _events(rec)
        assert all(b"secretkey" not in got.body for got in rec.on("/hook"))
