"""HLS playlists as plain values (RFC 8216): a sliding-window media playlist and a multivariant one.

Sans-IO: no clock or file access; the caller passes each segment's program date-time.

Window rules:
- ``EXT-X-MEDIA-SEQUENCE`` is the seq of the first listed segment.
- ``EXT-X-DISCONTINUITY-SEQUENCE`` counts the discontinuities that slid out of the window.
- ``EXT-X-TARGETDURATION`` is the ceiling of the longest segment ever listed and of the
  configured target, so it never shrinks (players cache it).
- ``EXT-X-ENDLIST`` once the publisher has stopped; a new publish clears it (and the next segment
  carries a discontinuity).
- With ``window=0`` nothing slides out: a VOD / event playlist for recordings.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["MediaPlaylist", "PlaylistEntry", "Variant", "render_multivariant"]


@dataclass(frozen=True, slots=True)
class PlaylistEntry:
    seq: int
    duration: float  # seconds
    uri: str
    pdt: float = 0.0  # UNIX time of the first frame; 0 = unknown
    discontinuity: bool = False


def _pdt(ts: float) -> str:
    stamp = datetime.fromtimestamp(ts, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class MediaPlaylist:
    def __init__(self, target_duration: float, window: int = 6, *, playlist_type: str = "") -> None:
        self.window = window
        self.playlist_type = playlist_type  # "", "EVENT" or "VOD"
        self._target = max(1, math.ceil(target_duration))
        self._entries: deque[PlaylistEntry] = deque()
        self._discontinuity_seq = 0
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

    def add(self, entry: PlaylistEntry) -> list[PlaylistEntry]:
        """Append a segment; return the entries that slid out of the window."""
        if self._entries and entry.seq <= self._entries[-1].seq:
            raise ValueError(f"segment {entry.seq} is not after {self._entries[-1].seq}")
        self.ended = False
        self._entries.append(entry)
        self._target = max(self._target, round(entry.duration))
        removed: list[PlaylistEntry] = []
        while self.window and len(self._entries) > self.window:
            old = self._entries.popleft()
            removed.append(old)
            if self._entries and self._entries[0].discontinuity:
                self._discontinuity_seq += 1
        return removed

    def end(self) -> None:
        self.ended = True

    def render(self) -> str:
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{self._target}"]
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
