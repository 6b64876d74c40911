from mediagw.publish.playlist import MediaPlaylist, PlaylistEntry, Variant, render_multivariant


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


def test_new_segment_after_end_reopens() -> None:
    pl = MediaPlaylist(2.0)
    pl.add(_entry(0))
    pl.end()
    pl.add(_entry(1, disc=True))
    assert "#EXT-X-ENDLIST" not in pl.render()


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
