"""LL-HLS: parts cut from the progress stream, the playlist's text, sessions and the AI output's
shapes (no pdt, video only, a segment superseded before its end)."""

from __future__ import annotations

from llhls_testkit import AUDIO, FRAME, PDT, T0, VIDEO, segment_items

from mediagw.publish.llhls import LLHLSPublisher
from mediagw.publish.llplaylist import LLPlaylist, LLSegment, Part
from segmenter import MediaPacket, Progress, SegmentProgress, SegmentStart
from segmenter.fmp4 import Fmp4Writer


def _feed(ll: LLHLSPublisher, items: list[Progress], sid: str = "s", session: int = 1) -> None:
    for item in items:
        ll.feed(sid, item, session=session)


GOLDEN = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002
#EXT-X-PART-INF:PART-TARGET=0.334
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="source/init-0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXT-X-PART:DURATION=0.33333,URI="source/0.0.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33333,URI="source/0.1.mp4"
#EXT-X-PART:DURATION=0.33333,URI="source/0.2.mp4"
#EXT-X-PART:DURATION=0.33333,URI="source/0.3.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.33333,URI="source/0.4.mp4"
#EXT-X-PART:DURATION=0.33333,URI="source/0.5.mp4"
#EXTINF:2.00000,
source/0.mp4
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.33333,URI="source/1.0.mp4",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="source/1.1.mp4"
"""


def test_parts_and_the_playlist_text() -> None:
    ll = LLHLSPublisher(0.333)
    _feed(ll, segment_items(0, T0, 60, gop=30))  # a keyframe at 1 s: an independent part
    _feed(ll, segment_items(1, T0 + 60 * FRAME, 17, complete=False))
    rend = ll.rendition("s", "source")
    assert rend is not None
    # segment 1's last 7 frames wait for the next frame: a part is cut once it is complete
    assert rend.playlist.render() == GOLDEN
    assert rend.segments[0] == b"".join(rend.parts[(0, i)] for i in range(6))
    assert rend.inits[0] == Fmp4Writer(VIDEO, None).init
    assert rend.codecs == "avc1.64001f" and rend.resolution == (320, 240)


def test_segment_end_cuts_the_last_part_and_endlist() -> None:
    ll = LLHLSPublisher(0.333)
    _feed(ll, segment_items(0, T0, 45, audio=True))
    ll.end("s", session=1)
    rend = ll.rendition("s", "source")
    assert rend is not None
    text = rend.playlist.render()
    assert text.endswith("#EXTINF:1.50000,\nsource/0.mp4\n#EXT-X-ENDLIST\n")
    assert "PRELOAD-HINT" not in text
    durations = [p.duration for p in rend.playlist.segments[0].parts]
    assert len(durations) == 5 and abs(sum(durations) - 1.5) < 1e-9
    assert rend.inits[0] == Fmp4Writer(VIDEO, AUDIO).init
    assert rend.codecs == "avc1.64001f,mp4a.40.2"
    # a late item of the ended session is refused; the next session reopens, discontinuous
    _feed(ll, segment_items(1, T0 + 45 * FRAME, 10))
    assert rend.playlist.ended and len(rend.playlist.segments) == 1
    _feed(ll, segment_items(1, T0 + 45 * FRAME, 10), session=2)
    text = rend.playlist.render()
    assert "#EXT-X-ENDLIST" not in text
    # a new init (no audio now): a new EXT-X-MAP after the discontinuity
    assert '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="source/init-1.mp4"' in text


def test_ai_output_shape_superseded_segment_and_no_pdt() -> None:
    """The AI output: video only, no pdt (the wall clock is used), and a segment that never
    ends (its next SegmentStart supersedes it): completed from its parts, same msn."""
    ll = LLHLSPublisher(0.333, wall=lambda: PDT)
    _feed(ll, segment_items(5, T0, 25, pdt=None, complete=False), sid="s-out")
    _feed(ll, segment_items(6, T0 + 25 * FRAME, 30, pdt=None), sid="s-out")
    rend = ll.rendition("s-out", "source")
    assert rend is not None
    segs = rend.playlist.segments
    assert [s.msn for s in segs] == [5, 6] and all(s.complete for s in segs)
    assert abs(segs[0].duration - 25 / 30) < 1e-9  # its last frame's end
    assert segs[0].pdt == PDT
    assert "#EXT-X-MEDIA-SEQUENCE:5" in rend.playlist.render()
    assert rend.segments[5] == b"".join(rend.parts[(5, i)] for i in range(len(segs[0].parts)))


def test_memory_is_bounded_to_the_window() -> None:
    ll = LLHLSPublisher(0.333, window=3, grace=1)
    for seq in range(20):
        _feed(ll, segment_items(seq, T0 + seq * 60 * FRAME, 60))
    rend = ll.rendition("s", "source")
    assert rend is not None
    assert [s.msn for s in rend.playlist.segments] == [17, 18, 19]
    assert sorted(rend.segments) == [16, 17, 18, 19]
    assert min(k[0] for k in rend.parts) >= 16
    assert list(rend.inits) == [0]


def _playlist(parts: dict[int, int], open_parts: int | None) -> LLPlaylist:
    pl = LLPlaylist(2.0, 0.334)
    for msn, count in parts.items():
        pl.open_segment(LLSegment(msn, 0, 0.0, False))
        for i in range(count):
            pl.add_part(Part(i, 0.334, i == 0))
        pl.complete(2.0)
    if open_parts is not None:
        msn = max(parts) + 1
        pl.open_segment(LLSegment(msn, 0, 0.0, False))
        for i in range(open_parts):
            pl.add_part(Part(i, 0.334, i == 0))
    return pl


def test_blocking_reload_rules() -> None:
    pl = _playlist({3: 6, 4: 6}, open_parts=2)  # segment 5 has parts 0 and 1
    assert pl.reached(4, None) and not pl.reached(5, None)
    assert pl.reached(5, 1) and not pl.reached(5, 2)
    assert pl.reached(4, 9)  # a part segment 4 never had: segment 5's parts are later
    assert not pl.too_far(7, None) and pl.too_far(8, None)  # last msn + 2
    assert not pl.too_far(5, 10) and pl.too_far(5, 11)  # Advance Part Limit: ceil(3 / 0.334)
    assert not pl.too_far(6, 8) and pl.too_far(6, 9)
    assert pl.next_part() == (5, 2)
    pl.end()
    assert pl.reached(9, 0)  # an ended playlist answers at once


def test_audio_only_parts_stay_within_the_part_target() -> None:
    ll = LLHLSPublisher(0.333)
    start = SegmentStart(0, T0, False, None, AUDIO, {"pdt": PDT})
    frames = [
        MediaPacket("audio", T0 + i * 1920, T0 + i * 1920, True, b"\x21" * 9) for i in range(50)
    ]
    _feed(ll, [start, SegmentProgress(0, b"", tuple(frames))])
    ll.end("s", session=1)
    rend = ll.rendition("s", "source")
    assert rend is not None
    parts = rend.playlist.segments[0].parts
    assert len(parts) == 4 and all(p.independent for p in parts)  # 15 AAC frames each, then 5
    assert all(p.duration <= ll.part_target for p in parts), parts
    assert abs(sum(p.duration for p in parts) - 50 * 1920 / 90000) < 1e-9
