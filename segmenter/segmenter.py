"""Cut a live stream of configs and packets into keyframe-aligned MPEG-TS segments.

Policy (all times in 90 kHz ticks, measured on presentation timestamps):
  * A segment starts at a video keyframe and spans ``[start_pts, next start_pts)``; the final one
    ends at its largest video pts + one frame (the mean DTS step so far). Durations therefore
    telescope: they sum exactly to ``end - first start``.
  * Cut when a keyframe arrives and ``kf.pts - start >= target - CUT_TOLERANCE`` (10 ms slack for
    RTMP's millisecond rounding). A codec change (new SPS/size, new AudioConfig) forces a cut at
    the next keyframe and sets ``discontinuity``; non-keyframes between the change and that
    keyframe are dropped (they belong to the new parameters).
  * No keyframe for ``max_segment_duration`` (default 4 x target): the segment keeps growing,
    because any cut would make the next segment undecodable; it is flagged
    ``meta["overlong"] = 1`` and counted. A segment above ``max_segment_bytes`` (default 32 MiB)
    raises :class:`MalformedMedia` (a keyframe-less stream must not eat memory).
  * Audio-only sessions (no VideoConfig after one target duration of audio) cut on the first
    audio packet at/after the target; their final segment ends one AAC frame after the last one.
  * Video before the first keyframe is dropped and counted. Audio that arrives while no segment
    can take it (before the first keyframe, or between an AudioConfig change and the cut) is held
    (bounded) and kept only if it overlaps the segment it would open with (pts >= start - 1 AAC
    frame); the rest is dropped and counted.
  * Timestamps leave on one continuous timeline: the first session starts at ``start_pts``
    (default 1 s, so every DTS stays above the 0.4 s PCR lead, see :mod:`.tsmux`), each
    ``restart()`` continues at the previous end, and publisher timestamp resets are absorbed
    (:mod:`.timeline`). The TS holds exactly these PTS/DTS: ``probe_ts(seg.data).first_pts ==
    seg.start_pts``. If video first shows up behind an open audio-only segment, both clocks move
    forward so the timeline stays monotonic (one audio gap, at a discontinuity anyway).
  * Progress (``enable_progress``): a consumer that sends or packages a segment while it is being
    cut (live AI, LL-HLS) reads ``take_progress()`` after each push: for every segment opened
    since progress was enabled, ``SegmentStart``, then ``SegmentProgress`` items (the packets
    muxed, and with ``ts=True`` the TS bytes written: :class:`TsWriter` progressive mode), then
    the ``Segment`` itself, whose ``data`` is exactly the progress bytes joined. A segment
    aborted for its size gets no ``Segment``: the next ``SegmentStart`` supersedes it.
  * ``Segment.meta``: ``open_ms`` (container open + first packet muxed), ``close_ms``, ``bytes``,
    and ``overlong`` when set.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from .aac import SAMPLES_PER_FRAME
from .errors import MalformedMedia
from .packet import (
    CLOCK,
    AudioConfig,
    MediaPacket,
    Progress,
    Segment,
    SegmentProgress,
    SegmentStart,
    VideoConfig,
)
from .timeline import StreamClock
from .tsmux import PCR_LEAD, TsWriter

TIMELINE_START = CLOCK
CUT_TOLERANCE = 900  # 10 ms
DEFAULT_FRAME = 3000  # assume 30 fps until two video frames were seen
MAX_PENDING_AUDIO = 2000


@dataclass(slots=True)
class SegmenterStats:
    segments: int = 0
    video_packets: int = 0
    audio_packets: int = 0
    dropped_video: int = 0
    dropped_audio: int = 0
    overlong_segments: int = 0
    timestamp_jumps: int = 0
    restarts: int = 0


class _Open:
    """The segment currently being written."""

    __slots__ = ("audio_end", "audio_frames", "bytes", "discontinuity", "max_pts", "meta",
                 "overlong", "packets", "sent", "seq", "start", "t0", "video_frames",
                 "writer")  # fmt: skip

    def __init__(self, writer: TsWriter, seq: int, start: int, discontinuity: bool) -> None:
        self.writer = writer
        self.seq = seq
        self.start = start
        self.discontinuity = discontinuity
        self.video_frames = 0
        self.audio_frames = 0
        self.max_pts = start
        self.audio_end = start
        self.bytes = 0
        self.overlong = False
        self.t0 = 0.0
        self.meta: dict[str, float] = {}
        self.packets: list[MediaPacket] | None = None  # progress on: muxed since the last take
        self.sent = 0  # progress: TS bytes handed over so far


class Segmenter:
    """Sans-IO segmenter: ``push`` configs/packets, get finished :class:`Segment` objects.

    ``flush()`` ends a publish session (the open segment comes back with ``last=True``);
    ``restart()`` begins the next one (discontinuity, continuous timestamps, seq continues). A
    ``push`` after ``flush`` restarts implicitly. Not thread-safe: one instance per stream.
    ``start_seq`` and ``discontinuity`` continue a stream segmented elsewhere (another node):
    its first segment gets that seq and, with ``discontinuity``, is flagged as one.
    """

    def __init__(
        self,
        target_duration: float = 2.0,
        *,
        start_seq: int = 0,
        max_segment_duration: float | None = None,
        max_segment_bytes: int = 32 << 20,
        start_pts: int = TIMELINE_START,
        discontinuity: bool = False,
    ) -> None:
        if target_duration <= 0:
            raise ValueError("target_duration must be positive")
        self.target_duration = target_duration
        self.max_segment_duration = max_segment_duration or 4 * target_duration
        self._target = round(target_duration * CLOCK)
        self._cut_at = self._target - CUT_TOLERANCE
        self._max_ticks = round(self.max_segment_duration * CLOCK)
        self._max_bytes = max_segment_bytes
        self._seq = start_seq
        self._next_start = max(start_pts, PCR_LEAD)
        self._floor: dict[str, int] = {}
        self._ready: list[Segment] = []
        self._progress = False  # emit the progress stream (packets)
        self._progress_ts = False  # ... with the TS bytes as they are muxed
        self._events: list[Progress] = []
        self.stats = SegmenterStats()
        self._reset_session(discontinuity=discontinuity)

    @property
    def next_seq(self) -> int:
        """The seq the next segment opened will get."""
        return self._seq

    @property
    def target_ticks(self) -> int:
        return self._target

    def set_target(self, target_duration: float) -> None:
        """Change the target duration from the next cut on (e.g. a stream that goes to live AI,
        which wants shorter segments than transcoding)."""
        if target_duration <= 0:
            raise ValueError("target_duration must be positive")
        self.target_duration = target_duration
        self.max_segment_duration = max(self.max_segment_duration, 4 * target_duration)
        self._target = round(target_duration * CLOCK)
        self._cut_at = self._target - CUT_TOLERANCE
        self._max_ticks = round(self.max_segment_duration * CLOCK)

    def enable_progress(self, *, ts: bool = False) -> None:
        """Emit the progress stream from the next segment opened on (``take_progress``);
        ``ts``: with the TS bytes as they are muxed. Never turned off: a stream that had a
        consumer keeps it for its lifetime (the cost is one small object per push)."""
        self._progress = True
        self._progress_ts = self._progress_ts or ts

    @property
    def progress(self) -> bool:
        return self._progress

    def take_progress(self) -> list[Progress]:
        """The progress items since the previous call, in order (see the module docstring)."""
        cur = self._cur
        if cur is not None and cur.packets is not None:
            self._emit_progress(cur, cur.writer.take())
        events, self._events = self._events, []
        return events

    def _emit_progress(self, cur: _Open, data: bytes) -> None:
        assert cur.packets is not None
        if data or cur.packets:
            cur.sent += len(data)
            self._events.append(SegmentProgress(cur.seq, data, tuple(cur.packets)))
            cur.packets = []

    def _reset_session(self, discontinuity: bool) -> None:
        self._video_cfg: VideoConfig | None = None
        self._audio_cfg: AudioConfig | None = None
        self._audio_frame = 1920
        self._force_cut = False
        self._discontinuity = discontinuity
        self._cur: _Open | None = None
        self._pending: deque[MediaPacket] = deque()
        self._vclock: StreamClock | None = None
        self._aclock: StreamClock | None = None
        self._ended = False

    # -- public API --------------------------------------------------------------------------
    def push(self, item: VideoConfig | AudioConfig | MediaPacket) -> list[Segment]:
        """Feed one item; return the segments it completed (usually none, at most two)."""
        if self._ended:
            self.restart()
        out: list[Segment] = []
        if self._ready:
            out, self._ready = self._ready, []
        if isinstance(item, MediaPacket):
            if item.kind == "video":
                self._push_video(item, out)
            else:
                self._push_audio(item, out)
        elif isinstance(item, VideoConfig):
            self._set_video(item)
        elif isinstance(item, AudioConfig):
            self._set_audio(item)
        else:
            raise TypeError(f"cannot segment {type(item).__name__}")
        return out

    def flush(self) -> list[Segment]:
        """End of the publish session: close the open segment (``last=True``)."""
        out: list[Segment] = []
        if self._ready:
            out, self._ready = self._ready, []
        if self._ended:
            return out
        if self._cur is None and self._pending:
            self._open_audio_only()  # never saw a keyframe: keep what audio we have
        cur = self._cur
        if cur is not None:
            if cur.writer.video is not None:
                assert self._vclock is not None
                end = cur.max_pts + self._vclock.frame_duration()
            else:
                end = cur.audio_end
            out.append(self._close(cur, end, last=True))
        for kind, clock in (("video", self._vclock), ("audio", self._aclock)):
            if clock is not None and clock.last_dts is not None:
                self._floor[kind] = clock.last_dts
                self.stats.timestamp_jumps += clock.jumps
        self._ended = True
        return out

    def restart(self) -> None:
        """Start a new publish session: timestamps continue, the next segment is a discontinuity.

        A still-open segment is closed (``last=True``) and returned by the next push/flush.
        """
        if not self._ended:
            done = self.flush()  # takes self._ready too: evaluate before re-storing
            self._ready = done
        self._reset_session(discontinuity=True)
        self.stats.restarts += 1

    # -- configs -----------------------------------------------------------------------------
    def _set_video(self, cfg: VideoConfig) -> None:
        old = self._video_cfg
        if old == cfg:
            return
        self._video_cfg = cfg
        if old is not None and (old.sps, old.width, old.height) == (cfg.sps, cfg.width, cfg.height):
            return  # PPS-only update: in band on every keyframe anyway
        if self._cur is not None:
            self._force_cut = True
            self._discontinuity = True

    def _set_audio(self, cfg: AudioConfig) -> None:
        if self._audio_cfg == cfg:
            return
        self._audio_cfg = cfg
        self._audio_frame = max(1, round(SAMPLES_PER_FRAME * CLOCK / max(cfg.sample_rate, 1)))
        if self._aclock is not None:
            self._aclock.default_duration = self._audio_frame
        self.stats.dropped_audio += len(self._pending)
        self._pending.clear()
        if self._cur is not None:
            self._force_cut = True
            self._discontinuity = True

    # -- packets -----------------------------------------------------------------------------
    def _push_video(self, pkt: MediaPacket, out: list[Segment]) -> None:
        cur = self._cur
        if self._video_cfg is None or not (
            pkt.keyframe
            or (cur is not None and cur.writer.video is not None and not self._force_cut)
        ):
            self.stats.dropped_video += 1
            return
        self.stats.video_packets += 1
        if self._vclock is None:
            self._start_session(pkt.pts, pkt.dts, "video")
        assert self._vclock is not None
        pts, dts = self._vclock.map(pkt.pts, pkt.dts)
        pts = max(pts, dts)  # pts below dts is invalid and the muxer would reject it
        if cur is not None:
            video_seg = cur.writer.video is not None
            if (
                not pkt.keyframe
                or (video_seg and pts <= cur.start)
                or (video_seg and not self._force_cut and pts - cur.start < self._cut_at)
            ):
                self._mux_video(cur, pts, dts, pkt)
                return
            if pts <= cur.start:
                # video arrives behind an audio-only segment: move both clocks forward so the
                # timeline stays monotonic (one audio gap at this discontinuity)
                shift = cur.audio_end - pts
                pts, dts = self._shift_clocks(shift, pts, dts)
            out.append(self._close(cur, pts))
        cur = self._open(pts, with_video=True)
        self._mux_video(cur, pts, dts, pkt)
        self._opened(cur)
        self._flush_pending(cur)

    def _push_audio(self, pkt: MediaPacket, out: list[Segment]) -> None:
        if self._audio_cfg is None:
            self.stats.dropped_audio += 1
            return
        self.stats.audio_packets += 1
        cur = self._cur
        if self._video_cfg is not None:
            if cur is None or cur.writer.audio is not self._audio_cfg:
                self._hold(pkt, max(self._target, CLOCK))
            else:
                assert self._aclock is not None
                self._mux_audio(cur, self._aclock.map(pkt.pts, pkt.dts)[0], pkt.data)
            return
        if cur is None:  # audio-only, or video not announced yet
            self._hold(pkt, None)
            if self._pending[-1].dts - self._pending[0].dts >= self._target:
                self._open_audio_only()
            return
        assert self._aclock is not None
        pts = self._aclock.map(pkt.pts, pkt.dts)[0]
        if pts > cur.start and (
            self._force_cut
            or cur.writer.audio is not self._audio_cfg
            or pts - cur.start >= self._cut_at
        ):
            out.append(self._close(cur, pts))
            cur = self._open(pts, with_video=False)
            self._mux_audio(cur, pts, pkt.data)
            self._opened(cur)
            return
        self._mux_audio(cur, pts, pkt.data)

    def _shift_clocks(self, shift: int, pts: int, dts: int) -> tuple[int, int]:
        assert self._vclock is not None and self._aclock is not None
        self._vclock.offset += shift
        self._aclock.offset += shift
        self._vclock.last_dts = dts + shift
        return pts + shift, dts + shift

    def _hold(self, pkt: MediaPacket, max_span: int | None) -> None:
        pending = self._pending
        pending.append(pkt)
        while len(pending) > MAX_PENDING_AUDIO or (
            max_span is not None and pkt.dts - pending[0].dts > max_span
        ):
            pending.popleft()
            self.stats.dropped_audio += 1

    # -- segment lifecycle -------------------------------------------------------------------
    def _start_session(self, raw_pts: int, raw_dts: int, kind: str) -> None:
        offset = max(self._next_start - raw_pts, PCR_LEAD - raw_dts)
        floor = self._floor.get(kind)
        if floor is not None:
            offset = max(offset, floor + 1 - raw_dts)
        self._vclock = StreamClock(DEFAULT_FRAME, offset)
        self._aclock = StreamClock(self._audio_frame, offset)

    def _open(self, start: int, *, with_video: bool) -> _Open:
        t0 = time.perf_counter()
        video = self._video_cfg if with_video else None
        progressive = self._progress_ts
        writer = TsWriter(video, self._audio_cfg, self._discontinuity, progressive=progressive)
        cur = _Open(writer, self._seq, start, self._discontinuity)
        cur.t0 = t0
        if self._progress:
            cur.packets = []
            self._events.append(
                SegmentStart(self._seq, start, self._discontinuity, video, self._audio_cfg)
            )
        self._seq += 1
        self._discontinuity = False
        self._force_cut = False
        self._cur = cur
        return cur

    def _open_audio_only(self) -> None:
        first = self._pending[0]
        if self._aclock is None:
            self._start_session(first.pts, first.dts, "audio")
        assert self._aclock is not None
        cur = self._open(self._aclock.peek(first.pts), with_video=False)
        self._flush_pending(cur)
        self._opened(cur)

    @staticmethod
    def _opened(cur: _Open) -> None:
        cur.meta["open_ms"] = (time.perf_counter() - cur.t0) * 1000.0

    def _flush_pending(self, cur: _Open) -> None:
        pending = self._pending
        if not pending:
            return
        if cur.writer.audio is None:
            self.stats.dropped_audio += len(pending)
        else:
            clock = self._aclock
            assert clock is not None
            earliest = cur.start - self._audio_frame
            for p in pending:
                if clock.peek(p.pts) < earliest:
                    self.stats.dropped_audio += 1
                    continue
                self._mux_audio(cur, clock.map(p.pts, p.dts)[0], p.data)
        pending.clear()

    def _mux_video(self, cur: _Open, pts: int, dts: int, pkt: MediaPacket) -> None:
        cur.writer.write_video(pts, dts, pkt.keyframe, pkt.data)
        if cur.packets is not None:
            cur.packets.append(MediaPacket("video", pts, dts, pkt.keyframe, pkt.data))
        cur.video_frames += 1
        if pts > cur.max_pts:
            cur.max_pts = pts
            if not cur.overlong and pts - cur.start > self._max_ticks:
                cur.overlong = True
                cur.meta["overlong"] = 1.0
                self.stats.overlong_segments += 1
        cur.bytes += len(pkt.data)
        if cur.bytes > self._max_bytes:
            self._abort(cur)

    def _mux_audio(self, cur: _Open, pts: int, data: bytes) -> None:
        cur.writer.write_audio(pts, data)
        if cur.packets is not None:
            cur.packets.append(MediaPacket("audio", pts, pts, True, data))
        cur.audio_frames += 1
        cur.audio_end = pts + self._audio_frame
        cur.bytes += len(data)
        if cur.bytes > self._max_bytes:
            self._abort(cur)

    def _abort(self, cur: _Open) -> None:
        cur.writer.abort()
        self._cur = None
        self._discontinuity = True
        self._force_cut = True
        raise MalformedMedia(
            f"segment {cur.seq} exceeds {self._max_bytes} bytes without a keyframe "
            f"({(cur.max_pts - cur.start) / CLOCK:.1f} s); send keyframes more often"
        )

    def _close(self, cur: _Open, end: int, *, last: bool = False) -> Segment:
        t0 = time.perf_counter()
        data = cur.writer.close()
        cur.meta["close_ms"] = (time.perf_counter() - t0) * 1000.0
        cur.meta["bytes"] = float(len(data))
        self._cur = None
        self._next_start = end
        self.stats.segments += 1
        if cur.packets is not None:
            self._emit_progress(cur, data[cur.sent :] if cur.writer.progressive else b"")
        segment = Segment(
            seq=cur.seq,
            data=data,
            start_pts=cur.start,
            duration_ticks=end - cur.start,
            discontinuity=cur.discontinuity,
            video=cur.writer.video,
            audio=cur.writer.audio,
            video_frames=cur.video_frames,
            audio_frames=cur.audio_frames,
            last=last,
            meta=cur.meta,
        )
        if cur.packets is not None:
            self._events.append(segment)
        return segment
