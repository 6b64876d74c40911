"""A stream continued from another node (``StreamRequest.resume``): the hub's segmenter and
session number, and every playlist (HLS source and renditions, LL-HLS, the live AI output's)
go on from the other node's numbering; a hub that knows the stream ignores it."""

from __future__ import annotations

import pytest
from llhls_testkit import FRAME, T0, VIDEO, segment_items
from mediatools import check_continues, discontinuity_numbers

from mediagw.publish.hls import SOURCE, HLSPublisher
from mediagw.publish.llhls import LLHLSPublisher
from mediagw.publish.llplaylist import LLPlaylist, LLSegment, Part
from mediagw.publish.playlist import GAP_VERSION, MediaPlaylist, PlaylistEntry
from mediagw.request import Resume, StreamRequest
from mediagw.stream.hub import Stream, StreamHub
from segmenter import CLOCK, Segment, SegmentProgress

RESUME = Resume(next_seq=41, discontinuity=6, session=3)


def _entry(seq: int, disc: bool = False) -> PlaylistEntry:
    return PlaylistEntry(seq, 2.0, f"source/{seq}.ts", 0.0, disc)


def _other_node(window: int = 3) -> str:
    """The playlist node A listed last: seq 38..40, the last one's discontinuity number 6."""
    pl = MediaPlaylist(2.0, window)
    for seq in range(41):
        pl.add(_entry(seq, disc=seq % 6 == 5 and seq < 36), session=1)  # at 5, 11, ..., 35
    assert pl.next_seq == RESUME.next_seq and pl.discontinuity_number == RESUME.discontinuity
    return pl.render()


GOLDEN = """\
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-DISCONTINUITY-SEQUENCE:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXTINF:2.000,
source/41.ts
#EXTINF:2.000,
source/42.ts
"""


def test_a_continued_playlist_starts_at_next_seq_on_the_next_timeline() -> None:
    pl = MediaPlaylist(2.0, window=3)
    pl.continue_from(RESUME.next_seq, RESUME.discontinuity)
    assert pl.next_seq == 41 and pl.discontinuity_number == 6  # nothing listed yet: A's
    pl.add(_entry(41, disc=True), session=4)  # the segmenter flags it; never rendered first
    pl.add(_entry(42), session=4)
    assert pl.render() == GOLDEN
    assert pl.discontinuity_number == 7
    check_continues(_other_node(), pl.render())
    # it slides on as any playlist: numbers stay those of the first render
    for seq in range(43, 47):
        pl.add(_entry(seq, disc=seq == 44), session=4)
    assert discontinuity_numbers(pl.render()) == [(44, 8), (45, 8), (46, 8)]
    assert pl.discontinuity_number == 8
    with pytest.raises(ValueError, match="only an empty playlist"):
        pl.continue_from(100, 9)


def test_discontinuity_number_follows_a_playlist_that_was_never_continued() -> None:
    pl = MediaPlaylist(2.0, window=2)
    assert pl.discontinuity_number == 0
    for seq in range(6):
        pl.add(_entry(seq, disc=seq in (0, 2, 3)))
        assert pl.discontinuity_number == discontinuity_numbers(pl.render())[-1][1]
    assert pl.discontinuity_number == 2  # the first segment's flag counts for nothing
    pl.add(_entry(6), session=1)  # a new publish session: a discontinuity of its own
    assert pl.discontinuity_number == 3 == discontinuity_numbers(pl.render())[-1][1]


def _seg(seq: int, disc: bool = False) -> Segment:
    return Segment(seq, b"\x47" * 188, seq * 2 * CLOCK, 2 * CLOCK, disc, VIDEO, None, 60, 0)


def _cut(stream: Stream, seconds: int) -> list[Segment]:
    """Segments the stream's segmenter cuts from ``seconds`` of 30 fps video (2 s GOPs)."""
    out: list[Segment] = [*stream.segmenter.push(VIDEO)]
    for item in segment_items(0, T0, seconds * 30):
        if isinstance(item, SegmentProgress):
            for packet in item.packets:
                out += stream.segmenter.push(packet)
    return out + stream.segmenter.flush()


def test_the_hub_numbers_a_continued_stream_from_where_the_other_node_left_it() -> None:
    hub = StreamHub(segment_duration=2.0)
    stream = hub.begin_publish(StreamRequest("s", resume=RESUME))
    assert stream.stats.sessions == 4 and stream.resume == RESUME
    segments = _cut(stream, 6)
    assert [(s.seq, s.discontinuity) for s in segments] == [(41, True), (42, False), (43, False)]


def test_a_resume_with_negative_numbers_is_ignored_not_fatal() -> None:
    hub = StreamHub(segment_duration=2.0)
    hub.add_listener(HLSPublisher(2.0))
    stream = hub.begin_publish(StreamRequest("s", resume=Resume(-1, 0, 0)))
    assert stream.live and stream.resume is None and stream.stats.sessions == 1
    assert [s.seq for s in _cut(stream, 2)] == [0]


def test_a_hub_that_knows_the_stream_ignores_a_resume_not_ahead_of_it() -> None:
    hub = StreamHub(segment_duration=2.0)
    hls = HLSPublisher(2.0, window=3)
    hub.add_listener(hls)
    stream = hub.begin_publish("s")
    for segment in _cut(stream, 4):
        hub.add_segment(stream, segment)
    hub.end_publish(stream)
    again = hub.begin_publish(StreamRequest("s", resume=Resume(2, 0, 1)))
    assert again is stream and stream.stats.sessions == 2
    assert stream.resume is None and stream.request.resume is None
    segments = _cut(stream, 4)
    assert [(s.seq, s.discontinuity) for s in segments][:1] == [(2, True)]
    for segment in segments:
        hub.add_segment(stream, segment)
    text = hls.media_playlist("s", SOURCE)
    assert text is not None
    assert discontinuity_numbers(text) == [(1, 0), (2, 1), (3, 1)]


def test_a_stream_that_went_on_elsewhere_and_comes_back_continues_from_the_other_node() -> None:
    """A -> B -> back to A: A's ended copy is behind B's numbering, so A drops it and goes on
    from B's cursor; no seq is listed twice and the timeline moves on."""
    hub = StreamHub(segment_duration=2.0)
    hls = HLSPublisher(2.0, window=3)
    hub.add_listener(hls)
    stream = hub.begin_publish("s")
    for segment in _cut(stream, 4):
        hub.add_segment(stream, segment)
    hub.end_publish(stream)
    back = hub.begin_publish(StreamRequest("s", resume=RESUME))  # B listed up to 40
    assert back is not stream and back.resume == RESUME and back.stats.sessions == 4
    for segment in _cut(back, 6):
        hub.add_segment(back, segment)
    text = hls.media_playlist("s", SOURCE)
    assert text == GOLDEN.replace("source/42.ts\n", "source/42.ts\n#EXTINF:2.000,\nsource/43.ts\n")
    assert discontinuity_numbers(text)[0] == (41, RESUME.discontinuity + 1)


def test_every_hls_rendition_of_a_continued_stream_goes_on() -> None:
    hub = StreamHub()
    hls = HLSPublisher(2.0, window=3)
    hub.add_listener(hls)
    stream = hub.begin_publish(StreamRequest("s", resume=RESUME))
    session = stream.stats.sessions
    hub.add_segment(stream, _seg(41, disc=True))
    hub.add_segment(stream, _seg(42))
    assert hls.media_playlist("s", SOURCE) == GOLDEN
    # a pipeline's rendition (the transcoder's: the source's seq, gaps in failed slots)
    hls.publish_gap("s", "P240p", 41, 2.0, discontinuity=True, session=session)
    hls.publish("s", "P240p", 42, b"\x47" * 188, 2.0, session=session)
    text = hls.media_playlist("s", "P240p")
    assert text is not None and f"#EXT-X-VERSION:{GAP_VERSION}\n" in text
    assert discontinuity_numbers(text) == [(41, 7), (42, 7)]
    # the live AI output (a stream the hub does not know): from next_seq on, too
    hls.continue_stream("s-out", RESUME.next_seq, RESUME.discontinuity)
    assert hls.next_seq("s-out", SOURCE) == 41
    hls.publish("s-out", SOURCE, 41, b"\x47" * 188, 2.0, session=session)
    check_continues(_other_node(), hls.media_playlist("s-out", SOURCE) or "")
    hls.continue_stream("s-out", 500, 50)  # known here: goes on as it is
    assert hls.next_seq("s-out", SOURCE) == 42
    assert hls.next_seq("other", SOURCE) == 0


LL_GOLDEN_HEAD = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002
#EXT-X-PART-INF:PART-TARGET=0.334
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-DISCONTINUITY-SEQUENCE:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="source/init-0.mp4"
"""


def test_ll_hls_of_a_continued_stream_goes_on_from_next_seq() -> None:
    hub = StreamHub()
    ll = LLHLSPublisher(part_target=0.333)
    hub.add_listener(ll)
    stream = hub.begin_publish(StreamRequest("s", resume=RESUME))
    first = segment_items(41, T0, 60, audio=True, discontinuity=True)
    ll.feed("s", first[0], session=stream.stats.sessions)
    rend = ll.rendition("s", SOURCE)
    assert rend is not None and rend.playlist.render().startswith(LL_GOLDEN_HEAD)
    for item in first[1:]:
        ll.feed("s", item, session=stream.stats.sessions)
    for item in segment_items(42, T0 + 60 * FRAME, 60, audio=True):
        ll.feed("s", item, session=stream.stats.sessions)
    text = rend.playlist.render()
    assert text.startswith(LL_GOLDEN_HEAD) and "#EXT-X-DISCONTINUITY\n" not in text
    assert discontinuity_numbers(text) == [(41, 7), (42, 7)]
    assert text.endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="source/43.0.mp4"\n')


def test_an_empty_continued_ll_playlist_names_the_next_msn() -> None:
    pl = LLPlaylist(2.0, 0.334)
    pl.continue_from(RESUME.next_seq, RESUME.discontinuity)
    text = pl.render()
    assert "#EXT-X-MEDIA-SEQUENCE:41\n" in text and "#EXT-X-DISCONTINUITY-SEQUENCE:7\n" in text
    assert text.endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="41.0.mp4"\n')
    pl.open_segment(LLSegment(41, 0, 0.0, True), session=4)
    pl.add_part(Part(0, 0.3, True))
    pl.complete(0.3)
    with pytest.raises(ValueError, match="only an empty playlist"):
        pl.continue_from(1, 0)
    with pytest.raises(ValueError, match="not after 41"):
        pl.open_segment(LLSegment(41, 0, 0.0, False), session=4)
