"""Live AI input goes out progressively, on real sockets: RTMP (the ffmpeg CLI) and WHIP (aiortc)
publishers -> ``Gateway`` -> reference orchestrators running ``noop`` (the output is the input,
byte for byte) -> HLS.

What the orchestrator's trickle server receives is recorded (``Channel.write``: the first chunk of
each input segment, and all its bytes) in one event list with the gateway hub's listing of each
source segment, so the tests assert on the order of events, never on wall-clock times."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from e2e.test_live_ai_faults import finished, live, orch_session, outputs, publishers
from e2e.test_whip_ingest import _publish
from mediatools import ClipMaker, fetch_hls, wait_until

from mediagw.gateway import Gateway
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.orchestrator.trickle.channel import Channel
from mediagw.orchestrator.trickle.config import WriteResult
from mediagw.orchestrator.trickle.segment import Segment as TrickleSegment
from webrtc import IceConfig

SUFFIXES = ("-out", "-control", "-events")


@dataclass
class Received:
    """One input segment as an orchestrator's trickle server got it."""

    channel: str
    seq: int
    data: bytearray = field(default_factory=bytearray)
    complete: bool = False  # its POST body ended
    cut: bool = False  # its POST broke off (the publisher went away)


@dataclass
class Recorder:
    """Events in the order they happened: ("first", Received) when an orchestrator's input
    channel got the first chunk of a segment, ("listed", seq, data) when the gateway listed a
    source segment; ``inputs`` every input segment received, per orchestrator input channel."""

    stream: str
    events: list[tuple[Any, ...]] = field(default_factory=list)
    inputs: dict[str, list[Received]] = field(default_factory=dict)
    # keyed by the segment object, not id(): the id of a segment that was dropped when its
    # orchestrator stopped is reused by a later one (that mixed two segments into one record)
    _open: dict[TrickleSegment, Received] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch, gw: Gateway) -> None:
        write, end_post, abandon_post = Channel.write, Channel.end_post, Channel.abandon_post

        def recording_write(channel: Channel, seg: TrickleSegment, data: bytes) -> WriteResult:
            result = write(channel, seg, data)
            if result is WriteResult.OK and not channel.name.endswith(SUFFIXES):
                got = self._open.get(seg)
                if got is None:
                    got = self._open[seg] = Received(channel.name, seg.seq)
                    self.inputs.setdefault(channel.name, []).append(got)
                    self.events.append(("first", got))
                got.data += data
            return result

        def recording_end(channel: Channel, seg: TrickleSegment) -> None:
            got = self._open.pop(seg, None)
            if got is not None:
                got.complete = True
            end_post(channel, seg)

        def recording_abandon(channel: Channel, seg: TrickleSegment) -> None:
            got = self._open.pop(seg, None)
            if got is not None:
                got.cut = True
            abandon_post(channel, seg)

        monkeypatch.setattr(Channel, "write", recording_write)
        monkeypatch.setattr(Channel, "end_post", recording_end)
        monkeypatch.setattr(Channel, "abandon_post", recording_abandon)
        gw.hub.add_listener(self)

    def on_stream_start(self, stream: Any) -> None: ...
    def on_stream_end(self, stream: Any) -> None: ...
    def on_stream_removed(self, stream: Any) -> None: ...

    def on_segment(self, stream: Any, segment: Any) -> None:
        if stream.id == self.stream:
            self.events.append(("listed", segment.seq, segment.data))

    def listed(self) -> dict[bytes, int]:
        """Source segment bytes -> the index of its listing event."""
        return {e[2]: i for i, e in enumerate(self.events) if e[0] == "listed"}

    def firsts(self) -> list[tuple[int, Received]]:
        return [(i, e[1]) for i, e in enumerate(self.events) if e[0] == "first"]


def assert_progressive(rec: Recorder, least: int) -> None:
    """Every input segment reached the orchestrator whole, and (but for the first two: the
    session was starting) its first bytes got there before the gateway had cut it."""
    listed = rec.listed()
    firsts = rec.firsts()
    assert firsts, "no input reached the orchestrator"
    for _, got in firsts:
        assert got.complete and bytes(got.data) in listed, (got.seq, len(got.data))
    early = [(at, got) for at, got in firsts[2:] if at < listed[bytes(got.data)]]
    assert len(early) == len(firsts) - 2 >= least, [
        (got.seq, at, listed[bytes(got.data)]) for at, got in firsts
    ]


async def test_rtmp_input_reaches_the_orchestrator_before_each_segment_is_cut(
    gateway_factory: Any, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ReferenceOrchestrator(live()) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,))
        rec = Recorder("prog")
        rec.install(monkeypatch, gw)
        async with publishers(make_clip(seconds=6), gw, prog="?pipeline=noop"):
            pass
        status = (await finished(gw, "prog"))["prog"]
        segments = status["gateway_status"]["segments"]
        assert segments["failed"] == segments["skipped"] == segments["dropped"] == 0, segments
        assert_progressive(rec, least=3)
        timings = status["timings"]
        assert timings["input_ingest_first_byte"]["count"] == segments["published"]
        # the output is the input, each segment whole
        source = gw.hls.rendition("prog", "source")
        out = gw.hls.rendition("prog-out", "source")
        assert source is not None and out is not None
        assert set(out.segments.values()) <= set(source.segments.values())


async def test_whip_input_reaches_the_orchestrator_before_each_segment_is_cut(
    gateway_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ReferenceOrchestrator(live()) as orch:
        gw = await gateway_factory(orch_addr=(orch.url,), webrtc_host_addresses=("127.0.0.1",))
        rec = Recorder("cam")
        rec.install(monkeypatch, gw)
        base = f"http://127.0.0.1:{gw.http_port}"
        pc, _ = await _publish(
            f"{base}/live/video-to-video/cam/whip?pipeline=noop", IceConfig.loopback()
        )
        try:
            await wait_until(lambda: len(rec.firsts()) >= 6, 30)
        finally:
            await pc.close()
        await finished(gw, "cam")
        assert_progressive(rec, least=3)


async def test_a_post_cut_mid_segment_drops_that_segment_only(
    gateway_factory: Any, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ReferenceOrchestrator(live()) as orch:
        orch.faults.live_cut_input = (2, 3000)
        gw = await gateway_factory(orch_addr=(orch.url,))
        rec = Recorder("cut")
        rec.install(monkeypatch, gw)
        async with publishers(make_clip(seconds=6), gw, cut="?pipeline=noop"):
            pass
        status = (await finished(gw, "cut"))["cut"]["gateway_status"]
        segments = status["segments"]
        assert segments["failed"] == 1 and segments["skipped"] == 0, segments
        assert segments["published"] == segments["in"] - 1 == segments["out"], segments
        assert status["swaps"] == 0, status
        (inputs,) = rec.inputs.values()
        cut = [got for got in inputs if not got.complete]
        assert [(got.seq, len(got.data)) for got in cut] == [(2, 3000)]
        assert orch.stats.faults_injected == 1
        # every output segment is a whole source segment, and decodes from its first frame
        source = gw.hls.rendition("cut", "source")
        assert source is not None
        played = await fetch_hls(gw.http_port, "cut-out")
        assert played.ended and len(played.segments) == segments["out"]
        assert all(s.first_is_key and s.video_frames >= 25 for s in played.segments[:-1])
        out = gw.hls.rendition("cut-out", "source")
        assert out is not None and set(out.segments.values()) <= set(source.segments.values())


async def test_an_orchestrator_lost_mid_segment_gets_it_resent_whole_to_the_next(
    gateway_factory: Any, make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ReferenceOrchestrator(live()) as o1, ReferenceOrchestrator(live()) as o2:
        gw = await gateway_factory(orch_addr=(o1.url, o2.url))
        rec = Recorder("swap")
        rec.install(monkeypatch, gw)
        async with publishers(make_clip(seconds=8), gw, swap="?pipeline=noop"):
            await wait_until(lambda: outputs(gw, "swap") >= 2, 30)
            first = o1 if o1.node and o1.node.live.sessions else o2
            orch_session(first, "swap")

            def in_flight() -> bool:  # the orchestrator has part of a segment
                got = rec.firsts()[-1][1]
                return not got.complete and len(got.data) > 0

            await wait_until(in_flight, 10)
            await first.stop()  # dies mid-segment
            await wait_until(lambda: len(rec.inputs) == 2, 30)
        status = (await finished(gw, "swap"))["swap"]["gateway_status"]
        assert status["swaps"] == 1, status
        old, new = rec.inputs.values()
        listed = rec.listed()
        # the segment in flight: a prefix on the old orchestrator, whole and first on the new
        assert [got.complete for got in old] == [True] * (len(old) - 1) + [False]
        assert old[-1].cut  # the old orchestrator saw its POST break off
        partial, resent = bytes(old[-1].data), bytes(new[0].data)
        assert new[0].complete and resent in listed
        assert resent.startswith(partial) and len(resent) > len(partial) > 0
        # nothing lost on the way: every segment listed from the first sent on reached one of
        # the orchestrators whole, in order
        sent = [bytes(got.data) for got in old + new if got.complete]
        first_sent = listed[sent[0]]
        wanted = [rec.events[i][2] for i in sorted(listed.values()) if i >= first_sent]
        assert sent == wanted, (len(sent), len(wanted))
        segments = status["segments"]
        assert segments["published"] == len(sent) and segments["dropped"] == 0, segments
