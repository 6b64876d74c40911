"""The transcode pipeline's playlist rules, with a transcoder the test answers segment by segment:
every rendition ends once its last segment is in, keeps the source's numbering (a failed or
dropped segment is a gap), and a reconnect continues the same playlists in order.

The real thing over sockets (RTMP, reference orchestrators) is tests/e2e/test_transcode.py."""

from __future__ import annotations

import asyncio

from mediagw.livepeer.profiles import PRESETS
from mediagw.pipelines.transcode import (
    RenditionData,
    TranscodeJob,
    TranscodeManager,
    TranscodeOutcome,
    TranscodePipeline,
)
from mediagw.publish.hls import SOURCE, HLSPublisher
from mediagw.stream.hub import StreamHub
from segmenter import CLOCK, Segment, VideoConfig

P144 = PRESETS["P144p30fps16x9"]
VIDEO = VideoConfig("h264", 640, 360, (b"\x67\x64\x00\x1f\xac",), (b"\x68",))


def seg(seq: int, disc: bool = False) -> Segment:
    return Segment(seq, b"\x47" * 188, seq * 2 * CLOCK, 2 * CLOCK, disc, VIDEO, None, 60, 0)


class AnsweredTranscoder:
    """``transcode`` waits until the test answers that seq with ``ok()`` or ``fail()``."""

    def __init__(self) -> None:
        self.answers: dict[int, asyncio.Future[TranscodeOutcome]] = {}
        self.asked: list[int] = []
        self.ended: list[str] = []

    def _answer(self, seq: int) -> asyncio.Future[TranscodeOutcome]:
        return self.answers.setdefault(seq, asyncio.get_running_loop().create_future())

    def ok(self, seq: int) -> None:
        self._answer(seq).set_result(
            TranscodeOutcome((RenditionData(P144, f"ts{seq}".encode(), 1),), attempts=1)
        )

    def fail(self, seq: int) -> None:
        self._answer(seq).set_result(TranscodeOutcome(error="every O failed", attempts=3))

    async def transcode(self, job: TranscodeJob) -> TranscodeOutcome:
        self.asked.append(job.seq)
        return await self._answer(job.seq)

    async def end_stream(self, stream_id: str) -> None:
        self.ended.append(stream_id)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def rendition_lines(hls: HLSPublisher, stream: str, name: str = "P144p30fps16x9") -> list[str]:
    rendition = hls.rendition(stream, name)
    assert rendition is not None, name
    return rendition.playlist.render().splitlines()


def uris(lines: list[str]) -> list[str]:
    return [line for line in lines if line and not line.startswith("#")]


def gaps(lines: list[str]) -> list[str]:
    return [lines[i + 2] for i, line in enumerate(lines) if line == "#EXT-X-GAP"]


def setup() -> tuple[StreamHub, HLSPublisher, AnsweredTranscoder, TranscodeManager]:
    hub = StreamHub()
    hls = HLSPublisher(2.0, window=50)
    transcoder = AnsweredTranscoder()
    manager = TranscodeManager(hls, transcoder, [P144])
    hub.add_listener(hls)
    hub.add_listener(manager)
    return hub, hls, transcoder, manager


async def test_renditions_end_once_their_last_segment_is_in() -> None:
    hub, hls, transcoder, manager = setup()
    stream = hub.begin_publish("s")
    for i in range(3):
        hub.add_segment(stream, seg(i))
    await settle()
    transcoder.ok(0)
    await settle()
    hub.end_publish(stream)  # segments 1 and 2 are still on the network
    assert "#EXT-X-ENDLIST" in rendition_lines(hls, "s", SOURCE)
    assert "#EXT-X-ENDLIST" not in rendition_lines(hls, "s")  # not before its last segment
    transcoder.ok(2)
    transcoder.fail(1)  # all attempts exhausted
    await manager.close()
    lines = rendition_lines(hls, "s")
    assert uris(lines) == [f"P144p30fps16x9/{i}.ts" for i in range(3)]
    assert gaps(lines) == ["P144p30fps16x9/1.ts"]
    assert lines[-1] == "#EXT-X-ENDLIST" and "#EXT-X-VERSION:8" in lines
    assert "#EXT-X-MEDIA-SEQUENCE:0" in lines
    assert hls.segment("s", "P144p30fps16x9", 1) is None  # a gap's URI is a 404
    assert hls.segment("s", "P144p30fps16x9", 2) == b"ts2"
    assert transcoder.ended == ["s"]
    master = hls.multivariant("s")
    assert master is not None and "s/P144p30fps16x9.m3u8" in master and "s/source.m3u8" in master


async def test_a_reconnect_continues_after_the_last_segments_of_the_previous_session() -> None:
    hub, hls, transcoder, manager = setup()
    stream = hub.begin_publish("r")
    hub.add_segment(stream, seg(0))
    hub.add_segment(stream, seg(1))
    await settle()
    transcoder.ok(0)
    await settle()
    hub.end_publish(stream)  # segment 1 still in flight...
    stream = hub.begin_publish("r")  # ...when the publisher is back
    hub.add_segment(stream, seg(2, disc=True))
    hub.add_segment(stream, seg(3))
    await settle()
    transcoder.ok(2)
    transcoder.ok(3)
    await settle()
    assert uris(rendition_lines(hls, "r")) == ["P144p30fps16x9/0.ts"]  # 2 waits for 1
    transcoder.ok(1)
    await settle()
    await settle()
    lines = rendition_lines(hls, "r")
    assert uris(lines) == [f"P144p30fps16x9/{i}.ts" for i in range(4)]
    assert "#EXT-X-ENDLIST" not in lines  # session 1 ended, session 2 goes on
    assert lines.count("#EXT-X-DISCONTINUITY") == 1
    assert lines.index("#EXT-X-DISCONTINUITY") > lines.index("P144p30fps16x9/1.ts")
    assert lines.index("#EXT-X-DISCONTINUITY") < lines.index("P144p30fps16x9/2.ts")
    hub.end_publish(stream)
    await manager.close()
    assert rendition_lines(hls, "r")[-1] == "#EXT-X-ENDLIST"


async def test_dropped_and_cut_short_segments_are_gaps() -> None:
    hub = StreamHub()
    hls = HLSPublisher(2.0, window=50)
    hub.add_listener(hls)
    transcoder = AnsweredTranscoder()
    stream = hub.begin_publish("d")
    pipeline = TranscodePipeline(stream, hls, transcoder, [P144], concurrency=1, backlog=2)
    # 0 on the network, 1 waiting for it, 2..5 for a backlog of 2: 2 and 3 are dropped
    for i in range(6):
        hub.add_segment(stream, seg(i))
        await settle()
    transcoder.ok(0)
    await settle()
    transcoder.ok(1)
    await settle()
    hub.end_publish(stream)
    await pipeline.close(timeout=0.05)  # 4 never comes back: the pipeline is cut short
    lines = rendition_lines(hls, "d")
    assert uris(lines) == [f"P144p30fps16x9/{i}.ts" for i in range(6)]
    assert gaps(lines) == [f"P144p30fps16x9/{i}.ts" for i in (2, 3, 4, 5)]
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert pipeline.stats.dropped == 2 and transcoder.asked == [0, 1, 4]
