"""Replay a real ffmpeg publish (fixtures/rtmp/ffmpeg_publish.bin) through the server core.

The capture (made by capture_ffmpeg_fixture.py) is ffmpeg 5.1 pushing 1 s of 160x120 H.264 + AAC
to rtmp://HOST/live/capture?key=not-a-secret: digest-style C1, Set Chunk Size 4096, connect,
releaseStream, FCPublish, createStream, publish, @setDataFrame, media, FCUnpublish,
deleteStream. No ffmpeg needed to run this.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from rtmp.rtmp_testkit import fixed_rand

from mediagw.ingest.rtmp import messages as mt
from mediagw.ingest.rtmp.events import (
    Connected,
    Event,
    HandshakeCompleted,
    MediaMessage,
    Metadata,
    PublishEnded,
    PublishRequested,
)
from mediagw.ingest.rtmp.statemachine import ServerConnection, State

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "rtmp" / "ffmpeg_publish.bin"


@pytest.fixture(scope="module")
def capture() -> bytes:
    return CAPTURE.read_bytes()


def replay(data: bytes, cuts: list[int]) -> tuple[ServerConnection, list[Event], bytes]:
    conn = ServerConnection(rand=fixed_rand)
    events: list[Event] = []
    sent_after_start = b""
    pos = 0
    for cut in [*cuts, len(data)]:
        was_publishing = conn.state is State.PUBLISHING
        for ev in conn.receive_data(data[pos : pos + cut], now_ms=0):
            events.append(ev)
            if isinstance(ev, PublishRequested):
                conn.accept_publish()
        out = conn.data_to_send()
        if was_publishing:
            sent_after_start += out
        pos += cut
    events += conn.receive_eof()
    return conn, events, sent_after_start


def test_ffmpeg_capture_digest_c1(capture: bytes) -> None:
    assert capture[0] == 3
    assert capture[5:9] != b"\x00\x00\x00\x00"  # ffmpeg sends a digest-style ("complex") C1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replay_ffmpeg_capture(capture: bytes, seed: int) -> None:
    rng = random.Random(seed)
    cuts = [rng.randint(1, 3000) for _ in range(60)] if seed else []
    conn, events, sent_after_start = replay(capture, cuts)
    kinds = [type(e) for e in events]
    assert kinds[:3] == [HandshakeCompleted, Connected, PublishRequested]
    connected = events[1]
    assert isinstance(connected, Connected)
    want = PublishRequested("live", "capture", {"key": "not-a-secret"}, connected.tc_url, 1)
    assert events[2] == want
    assert connected.tc_url.startswith("rtmp://127.0.0.1:")
    assert connected.tc_url.endswith("/live")
    meta = [e for e in events if isinstance(e, Metadata)]
    assert len(meta) == 1 and meta[0].meta["width"] == 160.0
    media = [e for e in events if isinstance(e, MediaMessage)]
    video = [m for m in media if m.msg_type == mt.VIDEO]
    assert video[0].payload[:2] == b"\x17\x00"  # AVC sequence header
    frames = [m for m in video if m.payload[1] == 1]
    assert len(frames) == 30
    start = frames[0].timestamp
    assert [m.timestamp - start for m in frames] == [round(i * 1000 / 30) for i in range(30)]
    assert any(m.msg_type == mt.AUDIO for m in media)
    assert isinstance(events[-1], PublishEnded) and events[-1].error is None
    assert conn._reader.chunk_size == 4096
    assert sent_after_start == b""  # not one unsolicited byte while publishing
