"""The LL-HLS media playlist as a plain value (draft-pantos-hls-rfc8216bis: partial segments,
preload hints, blocking reload), and its multivariant.

Sans-IO: no clock, no asyncio; the publisher (``llhls.py``) adds parts and segments and asks
``reached()`` / ``too_far()`` on behalf of held requests.

Rules beside ``playlist.py``'s (window, sessions, discontinuities, ``continue_from``: the same
ones):
- A segment is listed as its parts while it is being cut (``open_segment``, ``add_part``),
  then with ``EXTINF`` once ``complete``; parts stay listed only for the segments that end
  within the last three target durations (the spec's minimum), older ones are plain segments.
- ``EXT-X-MAP`` precedes the first listed segment and every segment whose init segment differs
  from the one before it (a new init is a discontinuity: codec or publisher change).
- ``EXT-X-PRELOAD-HINT`` names the part after the last one listed (the first part of the next
  segment when none is open); none after ``EXT-X-ENDLIST``.
- ``EXT-X-VERSION:6``: the highest version any tag here needs (``EXT-X-MAP`` in a playlist that
  is not I-frames only); the LL-HLS tags add no version requirement.
- ``PART-HOLD-BACK`` is three part targets (the spec's recommended minimum): the latency a
  player aims at, 0.6 s with the default 200 ms parts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .playlist import _pdt, check_order

__all__ = ["LLPlaylist", "LLSegment", "Part", "render_ll_multivariant"]

VERSION = 6
PART_WINDOW = 3  # target durations of parts listed, from the end of the playlist


@dataclass(slots=True)
class Part:
    index: int
    duration: float  # seconds
    independent: bool  # starts with a keyframe (or audio only)


@dataclass(slots=True)
class LLSegment:
    msn: int
    init: int  # which init segment (EXT-X-MAP) its parts need
    pdt: float  # UNIX time of its first frame; 0 = unknown
    discontinuity: bool
    parts: list[Part] = field(default_factory=list)
    duration: float = 0.0  # seconds, once complete
    complete: bool = False


class LLPlaylist:
    """One rendition's LL-HLS media playlist. URIs are relative to it: ``{prefix}{msn}.mp4``,
    ``{prefix}{msn}.{part}.mp4``, ``{prefix}init-{n}.mp4``."""

    def __init__(
        self, target_duration: float, part_target: float, window: int = 6, prefix: str = ""
    ) -> None:
        self.part_target = part_target
        self.window = window
        self.prefix = prefix
        self._target = max(1, math.ceil(target_duration))
        self._segments: deque[LLSegment] = deque()  # listed: complete ones, then the open one
        self._discontinuity_seq = 0
        self._last_msn = -1
        self.session = 0
        self.ended = False
        self._text: str | None = None  # the rendered text until the next change

    def continue_from(self, next_seq: int, discontinuity: int) -> None:
        """Go on from another node's playlist of the stream (``MediaPlaylist.continue_from``):
        msns from ``next_seq`` on, the first segment's discontinuity number ``discontinuity
        + 1``. Only an empty playlist can; ValueError otherwise."""
        if self._segments or self._last_msn >= 0:
            raise ValueError("only an empty playlist can continue another")
        if next_seq < 0 or discontinuity < 0:
            raise ValueError(f"cannot continue from msn {next_seq}, discontinuity {discontinuity}")
        self._text = None
        self._last_msn = next_seq - 1
        self._discontinuity_seq = discontinuity + 1

    # -- state ------------------------------------------------------------------------------
    @property
    def target_duration(self) -> int:
        return self._target

    @property
    def segments(self) -> list[LLSegment]:
        return list(self._segments)

    @property
    def open(self) -> LLSegment | None:
        """The segment being cut, if any."""
        last = self._segments[-1] if self._segments else None
        return last if last is not None and not last.complete else None

    def last_part(self) -> tuple[int, int] | None:
        """(msn, part index) of the last part listed."""
        for seg in reversed(self._segments):
            if seg.parts:
                return seg.msn, seg.parts[-1].index
        return None

    def parts_from(self) -> int:
        """The first msn whose parts are listed (everything from there on lists its parts)."""
        age = 0.0
        first = self._last_msn + 1
        for seg in reversed(self._segments):
            if seg.complete and age >= PART_WINDOW * self._target:
                break
            age += seg.duration
            first = seg.msn
        return first

    # -- writing ----------------------------------------------------------------------------
    def open_segment(self, seg: LLSegment, session: int = 0) -> None:
        """Start listing segment ``seg.msn`` of publish ``session``; raises ValueError like
        ``MediaPlaylist.add`` for a late, stale or ended one. An open one must be completed
        first."""
        self._text = None
        check_order(seg.msn, session, self.session, self.ended, self._last_msn)
        if self.open is not None:
            raise ValueError(f"segment {self.open.msn} is still open")
        if session > self.session:
            seg.discontinuity = seg.discontinuity or self._last_msn >= 0
            self.session = session
            self.ended = False
        self._last_msn = seg.msn
        self._segments.append(seg)

    def add_part(self, part: Part) -> None:
        self._text = None
        seg = self.open
        if seg is None:
            raise ValueError("no segment is open")
        seg.parts.append(part)

    def complete(self, duration: float) -> list[LLSegment]:
        """The open segment is whole; return the segments that slid out of the window."""
        self._text = None
        seg = self.open
        if seg is None:
            raise ValueError("no segment is open")
        seg.duration = duration
        seg.complete = True
        self._target = max(self._target, round(duration))
        removed: list[LLSegment] = []
        while self.window and len(self._segments) > self.window:
            removed.append(self._segments.popleft())
            if self._segments and self._segments[0].discontinuity:
                self._discontinuity_seq += 1
        return removed

    def cancel(self) -> None:
        """Unlist the open segment, which has no part (its msn stays used)."""
        self._text = None
        if self.open is not None and not self.open.parts:
            self._segments.pop()

    def end(self, session: int | None = None) -> None:
        """EXT-X-ENDLIST (see ``MediaPlaylist.end``); complete the open segment first."""
        self._text = None
        if session is None or session >= self.session:
            self.session = max(self.session, session or 0)
            self.ended = True

    # -- blocking reload (rfc8216bis 6.2.5.2) -------------------------------------------------
    def reached(self, msn: int, part: int | None) -> bool:
        """Whether the playlist holds segment ``msn`` (``part``: part ``part`` of it), or a
        later one: a blocked request for it may be answered."""
        if self.ended:
            return True
        if part is None:
            last = self._segments[-1] if self._segments else None
            done = last.msn if last is not None and last.complete else self._last_msn - 1
            return msn <= done
        last_part = self.last_part()
        return last_part is not None and (msn, part) <= last_part

    def too_far(self, msn: int, part: int | None) -> bool:
        """A request that far ahead gets 400: ``msn`` beyond the last segment + 2, or ``part``
        more than the Advance Part Limit (3 / part target, or 3) beyond the last part."""
        last_msn = max(self._last_msn, 0)
        if msn > last_msn + 2:
            return True
        if part is None:
            return False
        limit = math.ceil(3 / self.part_target) if self.part_target < 1 else 3
        last = self.last_part()
        if last is None or msn > last[0]:
            return part + 1 > limit
        return msn == last[0] and part - last[1] > limit

    def next_part(self) -> tuple[int, int]:
        """(msn, index) of the part a preload hint names."""
        seg = self._segments[-1] if self._segments else None
        if seg is None:
            return self._last_msn + 1, 0
        if seg.complete:
            return seg.msn + 1, 0
        return seg.msn, len(seg.parts)

    # -- rendering --------------------------------------------------------------------------
    def render(self) -> str:
        """The playlist's text (rendered once per change: every held reload gets it)."""
        if self._text is None:
            self._text = self._render()
        return self._text

    def _render(self) -> str:
        p = self.prefix
        first_msn = self._segments[0].msn if self._segments else self._last_msn + 1
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{VERSION}",
            f"#EXT-X-TARGETDURATION:{self._target}",
            f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * self.part_target:.3f}",
            f"#EXT-X-PART-INF:PART-TARGET={self.part_target:.3f}",
            f"#EXT-X-MEDIA-SEQUENCE:{first_msn}",
        ]
        if self._discontinuity_seq:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuity_seq}")
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        parts_from = self.parts_from()
        init = -1
        for i, seg in enumerate(self._segments):
            if seg.discontinuity and i:
                lines.append("#EXT-X-DISCONTINUITY")
            if seg.init != init:
                lines.append(f'#EXT-X-MAP:URI="{p}init-{seg.init}.mp4"')
                init = seg.init
            if seg.pdt:
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(seg.pdt)}")
            if seg.msn >= parts_from:
                for part in seg.parts:
                    independent = ",INDEPENDENT=YES" if part.independent else ""
                    lines.append(
                        f"#EXT-X-PART:DURATION={part.duration:.5f},"
                        f'URI="{p}{seg.msn}.{part.index}.mp4"{independent}'
                    )
            if seg.complete:
                lines.append(f"#EXTINF:{seg.duration:.5f},")
                lines.append(f"{p}{seg.msn}.mp4")
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        else:
            msn, index = self.next_part()
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{p}{msn}.{index}.mp4"')
        return "\n".join(lines) + "\n"


def render_ll_multivariant(
    uri: str, bandwidth: int, codecs: str, resolution: tuple[int, int] | None
) -> str:
    """A multivariant with the one LL-HLS variant (the media playlist at ``uri``)."""
    attrs = [f"BANDWIDTH={max(1, bandwidth)}"]
    if resolution:
        attrs.append(f"RESOLUTION={resolution[0]}x{resolution[1]}")
    if codecs:
        attrs.append(f'CODECS="{codecs}"')
    return "\n".join(
        ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS",
         "#EXT-X-STREAM-INF:" + ",".join(attrs), uri]
    ) + "\n"  # fmt: skip
