"""HLS playlists as plain values (RFC 8216): a sliding-window media playlist and a multivariant one.

Sans-IO: no clock or file access; the caller passes each segment's program date-time.

Window rules:
- ``EXT-X-MEDIA-SEQUENCE`` is the seq of the first listed segment.
- ``EXT-X-DISCONTINUITY-SEQUENCE`` counts the discontinuities that slid out of the window.
- ``EXT-X-TARGETDURATION`` is the ceiling of the longest segment ever listed and of the
  configured target, so it never shrinks (players cache it).
- Segments belong to a publish *session* (1, 2, ... as the publisher reconnects). ``end(session)``
  adds ``EXT-X-ENDLIST``; once ended, a late segment of that session (or of an older one) is
  refused, so whoever ends a playlist must do it after its last segment is in. The first
  segment of a newer session reopens the playlist and always carries a discontinuity.
- A gap entry (``EXT-X-GAP``, RFC 8216bis 4.4.4.7) keeps the slot of a segment that could not be
  produced, so every rendition keeps the source's media sequence numbers. Why a gap and not a
  discontinuity: a media sequence number is implicit (``EXT-X-MEDIA-SEQUENCE`` + position), so
  leaving a segment out would shift every later segment's number, and players align variants
  by it when they switch. hls.js (>= 1.4) does not load a gap segment and fetches that time
  from another variant (the source always has it); Safari honours the tag (Apple's HLS, from
  protocol version 8, so playlists that may carry gaps declare ``EXT-X-VERSION:8`` from their
  first line on: the version must not change while a playlist is live); FFmpeg's HLS demuxer
  ignores the tag, gets a 404 for the URI and moves on to the next segment. The media after a
  gap keeps its timestamps, so no ``EXT-X-DISCONTINUITY`` is added (it would make players
  re-align their timeline for nothing).
- With ``window=0`` nothing slides out: a VOD / event playlist for recordings.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

__all__ = ["GAP_VERSION", "MediaPlaylist", "PlaylistEntry", "Variant", "render_multivariant"]

GAP_VERSION = 8  # EXT-X-VERSION of a playlist that may carry EXT-X-GAP (Apple's version table)


@dataclass(frozen=True, slots=True)
class PlaylistEntry:
    seq: int
    duration: float  # seconds
    uri: str
    pdt: float = 0.0  # UNIX time of the first frame; 0 = unknown
    discontinuity: bool = False
    gap: bool = False  # no media: the segment could not be produced (the URI answers 404)


def _pdt(ts: float) -> str:
    stamp = datetime.fromtimestamp(ts, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def check_order(seq: int, session: int, current: int, ended: bool, last_seq: int) -> None:
    """A segment ``seq`` of publish ``session`` may be listed after ``last_seq`` of the
    playlist's ``current`` session (``ended`` or not); else ValueError saying why."""
    if session < current:
        raise ValueError(
            f"segment {seq} is from publish session {session}, the playlist is at session {current}"
        )
    if session == current and ended:
        raise ValueError(f"segment {seq} came after the end of session {session}")
    if seq <= last_seq:
        raise ValueError(f"segment {seq} is not after {last_seq}")


class MediaPlaylist:
    def __init__(
        self,
        target_duration: float,
        window: int = 6,
        *,
        playlist_type: str = "",
        version: int = 3,
    ) -> None:
        self.window = window
        self.playlist_type = playlist_type  # "", "EVENT" or "VOD"
        self.version = version  # GAP_VERSION for a playlist that may list gaps
        self._target = max(1, math.ceil(target_duration))
        self._entries: deque[PlaylistEntry] = deque()
        self._discontinuity_seq = 0
        self._last_seq = -1
        self.session = 0  # the publish session of the last segment or end
        self.ended = False

    @property
    def entries(self) -> list[PlaylistEntry]:
        return list(self._entries)

    @property
    def target_duration(self) -> int:
        return self._target

    @property
    def media_sequence(self) -> int:
        return self._entries[0].seq if self._entries else 0

    @property
    def discontinuity_number(self) -> int:
        """The discontinuity number of the last listed segment (0 before any)."""
        later = itertools.islice(self._entries, 1, None)  # the first one's is the sequence's
        return self._discontinuity_seq + sum(1 for e in later if e.discontinuity)

    @property
    def next_seq(self) -> int:
        """The seq after the last one ever listed (0 for an empty playlist)."""
        return self._last_seq + 1

    def add(self, entry: PlaylistEntry, session: int = 0) -> list[PlaylistEntry]:
        """Append a segment of publish session ``session``; return the entries that slid out of
        the window. Raises ValueError for a segment that is not after the last one, or that
        comes after the end of its session (or from an older session)."""
        check_order(entry.seq, session, self.session, self.ended, self._last_seq)
        if session > self.session:  # a new publish: reopen, on a new timeline
            if self._last_seq >= 0 and not entry.discontinuity:
                entry = replace(entry, discontinuity=True)
            self.session = session
            self.ended = False
        self._last_seq = entry.seq
        self._entries.append(entry)
        self._target = max(self._target, round(entry.duration))
        removed: list[PlaylistEntry] = []
        while self.window and len(self._entries) > self.window:
            old = self._entries.popleft()
            removed.append(old)
            if self._entries and self._entries[0].discontinuity:
                self._discontinuity_seq += 1
        return removed

    def end(self, session: int | None = None) -> None:
        """EXT-X-ENDLIST for ``session`` (None: whatever session is current). The end of an
        older session than the playlist's is ignored: a newer publish has taken over."""
        if session is None or session >= self.session:
            self.session = max(self.session, session or 0)
            self.ended = True

    def render(self) -> str:
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{self.version}",
            f"#EXT-X-TARGETDURATION:{self._target}",
        ]
        if self.playlist_type:
            lines.append(f"#EXT-X-PLAYLIST-TYPE:{self.playlist_type}")
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}")
        if self._discontinuity_seq:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuity_seq}")
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        first = True
        for e in self._entries:
            if e.discontinuity and not first:
                lines.append("#EXT-X-DISCONTINUITY")
            if e.pdt:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(e.pdt)}")
            if e.gap:
                lines.append("#EXT-X-GAP")
            lines.append(f"#EXTINF:{e.duration:.3f},")
            lines.append(e.uri)
            first = False
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Variant:
    uri: str
    bandwidth: int  # peak bits per second
    average_bandwidth: int = 0
    resolution: tuple[int, int] | None = None
    codecs: str = ""
    frame_rate: float = 0.0


def render_multivariant(variants: Iterable[Variant]) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        attrs = [f"BANDWIDTH={max(1, v.bandwidth)}"]
        if v.average_bandwidth:
            attrs.append(f"AVERAGE-BANDWIDTH={v.average_bandwidth}")
        if v.resolution:
            attrs.append(f"RESOLUTION={v.resolution[0]}x{v.resolution[1]}")
        if v.codecs:
            attrs.append(f'CODECS="{v.codecs}"')
        if v.frame_rate:
            attrs.append(f"FRAME-RATE={v.frame_rate:.3f}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(v.uri)
    return "\n".join(lines) + "\n"
