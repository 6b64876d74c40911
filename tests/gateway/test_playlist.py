import pytest

from mediagw.publish.playlist import (
    GAP_VERSION,
    MediaPlaylist,
    PlaylistEntry,
    Variant,
    render_multivariant,
)


def _entry(seq: int, dur: float = 2.0, disc: bool = False, pdt: float = 0.0) -> PlaylistEntry:
    return PlaylistEntry(seq, dur, f"source/{seq}.ts", pdt, disc)


def test_sliding_window_and_media_sequence() -> None:
    pl = MediaPlaylist(2.0, window=3)
    removed = []
    for i in range(5):
        removed += pl.add(_entry(i))
    assert [e.seq for e in removed] == [0, 1]
    text = pl.render()
    assert "#EXT-X-MEDIA-SEQUENCE:2\n" in text
    assert text.count("#EXTINF:2.000,") == 3
    assert "source/1.ts" not in text and "source/4.ts" in text
    assert "#EXT-X-ENDLIST" not in text
    pl.end()
    assert pl.render().endswith("#EXT-X-ENDLIST\n")


def test_target_duration_never_shrinks_and_covers_long_segments() -> None:
    pl = MediaPlaylist(2.0, window=2)
    pl.add(_entry(0, 2.0))
    assert "#EXT-X-TARGETDURATION:2\n" in pl.render()
    pl.add(_entry(1, 4.6))
    pl.add(_entry(2, 2.0))
    pl.add(_entry(3, 2.0))
    assert "#EXT-X-TARGETDURATION:5\n" in pl.render()


def test_discontinuity_and_discontinuity_sequence() -> None:
    pl = MediaPlaylist(2.0, window=2)
    pl.add(_entry(0))
    pl.add(_entry(1, disc=True))
    text = pl.render()
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert "DISCONTINUITY-SEQUENCE" not in text
    pl.add(_entry(2))
    pl.add(_entry(3))  # the discontinuity at seq 1 slides out
    text = pl.render()
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1\n" in text
    assert "#EXT-X-DISCONTINUITY\n" not in text


def test_the_discontinuity_number_of_the_last_segment_holds_as_the_window_slides() -> None:
    pl = MediaPlaylist(2.0, window=2)
    assert pl.discontinuity_number == 0
    pl.add(_entry(0))
    pl.add(_entry(1, disc=True))
    assert pl.discontinuity_number == 1
    pl.add(_entry(2, disc=True))
    assert pl.discontinuity_number == 2
    pl.add(_entry(3))  # both slide out: EXT-X-DISCONTINUITY-SEQUENCE counts them
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:2\n" in pl.render() and pl.discontinuity_number == 2


def test_program_date_time_is_iso_utc_with_millis() -> None:
    pl = MediaPlaylist(2.0)
    pl.add(_entry(0, pdt=1_700_000_000.25))
    assert "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.250Z\n" in pl.render()


def test_add_refuses_going_back() -> None:
    pl = MediaPlaylist(2.0)
    pl.add(_entry(5))
    try:
        pl.add(_entry(5))
    except ValueError:
        pass
    else:
        raise AssertionError("duplicate seq accepted")


def test_a_late_segment_never_reopens_an_ended_playlist() -> None:
    pl = MediaPlaylist(2.0)
    pl.add(_entry(0), session=1)
    pl.end(1)
    with pytest.raises(ValueError, match="after the end of session 1"):
        pl.add(_entry(1), session=1)  # the last transcode of session 1, after its end
    with pytest.raises(ValueError, match="session 0"):
        pl.add(_entry(1), session=0)  # an older session's
    text = pl.render()
    assert text.endswith("#EXT-X-ENDLIST\n") and "source/1.ts" not in text


def test_a_new_session_reopens_with_a_discontinuity_and_ignores_the_old_end() -> None:
    pl = MediaPlaylist(2.0)
    pl.add(_entry(0), session=1)
    pl.end(1)
    pl.add(_entry(1), session=2)  # not flagged by its producer: the playlist flags it
    pl.end(1)  # a late end of session 1 leaves session 2 live
    text = pl.render()
    assert "#EXT-X-ENDLIST" not in text
    assert text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert text.index("#EXT-X-DISCONTINUITY\n") < text.index("source/1.ts")
    pl.end(2)
    assert pl.render().endswith("#EXT-X-ENDLIST\n")


def test_the_first_session_needs_no_discontinuity() -> None:
    pl = MediaPlaylist(2.0)
    pl.add(_entry(0), session=1)
    assert "DISCONTINUITY" not in pl.render()


def test_a_gap_keeps_its_slot_and_the_numbering() -> None:
    pl = MediaPlaylist(2.0, window=3, version=GAP_VERSION)
    pl.add(_entry(4, pdt=1_700_000_000.0))
    pl.add(PlaylistEntry(5, 2.0, "P144p/5.ts", 1_700_000_002.0, gap=True))
    pl.add(_entry(6))
    lines = pl.render().splitlines()
    assert lines[1] == "#EXT-X-VERSION:8"
    assert "#EXT-X-MEDIA-SEQUENCE:4" in lines
    # the gap is listed in its place: segment 6 stays the third of the window (4 + 2)
    uris = [line for line in lines if line and not line.startswith("#")]
    assert uris == ["source/4.ts", "P144p/5.ts", "source/6.ts"]
    at = lines.index("P144p/5.ts")
    assert lines[at - 3 : at] == [
        "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z",
        "#EXT-X-GAP",
        "#EXTINF:2.000,",
    ]
    assert lines.count("#EXT-X-GAP") == 1 and "#EXT-X-DISCONTINUITY" not in lines
    assert pl.next_seq == 7


def test_vod_playlist_keeps_everything() -> None:
    pl = MediaPlaylist(2.0, window=0, playlist_type="EVENT")
    for i in range(50):
        pl.add(_entry(i))
    pl.end()
    text = pl.render()
    assert text.count("#EXTINF") == 50 and "#EXT-X-PLAYLIST-TYPE:EVENT" in text


def test_multivariant() -> None:
    text = render_multivariant(
        [Variant("s/source.m3u8", 2_000_000, 1_500_000, (1280, 720), "avc1.64001f,mp4a.40.2")]
    )
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,RESOLUTION=1280x720,"
        'CODECS="avc1.64001f,mp4a.40.2"',
        "s/source.m3u8",
    ]
