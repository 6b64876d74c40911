"""One WebRTC publisher's media (H.264 access units + Opus packets) -> configs and packets.

``RtpDemuxer.feed(kind, data, pts)`` takes ``"video"`` access units in Annex B (through
:class:`~.annexb.AnnexBVideo`, no re-encoding) and ``"audio"`` Opus packets (transcoded to AAC by
:class:`~.opus.OpusToAac`), all stamped on one 90 kHz timeline by the caller, and returns what the
:class:`~.segmenter.Segmenter` takes, in presentation order across the two kinds.

Why the order matters: the segmenter cuts at a video keyframe and puts every packet that arrives
after it into the new segment. The AAC encoder hands a frame out 1024-2048 samples (21-43 ms) after
its Opus input arrived, so pushed as it comes, the audio just before each keyframe would land in
the next segment. Video therefore waits here until the audio has come out up to its pts (the
"horizon": the pts of the next AAC frame to come), and audio frames are put in front of any
waiting video they precede. A keyframe at pts ``k`` thus ends the segment after every AAC frame
with pts ``< k``: audio and video of a segment cover the same span to within one AAC frame.

Bounds: video waits at most ``MAX_HOLD`` (1 s of video pts, 512 access units, 16 MiB). When that
is exceeded (audio stopped, or never started: a publisher that offered audio but sends none),
everything waiting is released and video passes straight through until the audio is back within
``MAX_HOLD / 2`` of it; audio that comes out behind released video goes into the segment being
written.
At the start this bound also gives audio a chance to announce its ``AudioConfig`` before the
first keyframe, so the first segment already carries the AAC stream. With ``audio=False`` (no
audio offered) video is never held: the output is exactly ``AnnexBVideo``'s.

If the Opus decoder or AAC encoder fails as a whole (not a broken packet: those are skipped and
counted by the transcoder), audio is given up (``audio_error``) and video goes on alone.

Not thread-safe; PyAV work (the Opus/AAC codecs are opened at the first audio packet): call it
from a worker thread, never from an event loop.
"""

from __future__ import annotations

from collections import deque

from .annexb import AnnexBVideo
from .errors import MuxError
from .opus import FRAME_TICKS, OpusStats, OpusToAac
from .packet import CLOCK, AudioConfig, MediaPacket, VideoConfig

__all__ = ["RtpDemuxer"]

Item = VideoConfig | AudioConfig | MediaPacket

MAX_HOLD = CLOCK  # 90 kHz ticks of video waiting for audio
MAX_HOLD_UNITS = 512
MAX_HOLD_BYTES = 16 * 1024 * 1024


class RtpDemuxer:
    """H.264 + Opus of one WebRTC session -> segmenter items (see the module docstring).

    ``audio=False``: no audio was offered, video is never held. ``channels``: the AAC output's
    (WebRTC signals Opus as 2 channels; mono packets are decoded to both)."""

    def __init__(self, *, audio: bool = True, channels: int = 2) -> None:
        self.video = AnnexBVideo()
        self.audio: OpusToAac | None = None
        self._channels = channels
        self._held: deque[tuple[int, VideoConfig | MediaPacket]] = deque()
        self._held_bytes = 0
        self._horizon: int | None = None  # pts of the next AAC frame to come out
        self._passing = not audio  # True: video is not held for audio
        self._last_video: int | None = None  # pts of the last video released
        self.releases = 0  # times video stopped waiting for audio that did not come
        self.audio_error: str | None = None  # the transcoder failed: audio is dropped from then on
        self.audio_dropped = 0  # Opus packets dropped because of that

    @property
    def audio_stats(self) -> OpusStats:
        return self.audio.stats if self.audio is not None else OpusStats()

    def feed(self, kind: str, data: bytes, pts: int, dts: int | None = None) -> list[Item]:
        """One unit: ``kind`` is ``"video"`` (Annex B access unit, ``dts`` defaults to ``pts``)
        or ``"audio"`` (one Opus packet); timestamps in 90 kHz ticks."""
        out: list[Item] = []
        if kind == "video":
            dts = pts if dts is None else dts
            items = self.video.feed(data, pts, dts)
            if self._passing and not self._held:
                for item in items:
                    if isinstance(item, MediaPacket):
                        self._last_video = item.dts
                return list(items)
            for item in items:
                self._held.append((item.dts if isinstance(item, MediaPacket) else dts, item))
                if isinstance(item, MediaPacket):
                    self._held_bytes += len(item.data)
        elif kind == "audio":
            self._take_audio(self._transcode(data, pts), out)
        else:
            raise ValueError(f"unknown media kind {kind!r}")
        self._release(out)
        return out

    def flush(self) -> list[Item]:
        """End of the session: the encoder's last frames, then every video still waiting."""
        out: list[Item] = []
        if self.audio is not None and self.audio_error is None:
            try:
                self._take_audio(self.audio.flush(), out)
            except MuxError as exc:
                self.audio_error = str(exc)
        self._release_upto(None, out)
        return out

    def _transcode(self, data: bytes, pts: int) -> list[AudioConfig | MediaPacket]:
        """Opus -> AAC. A broken packet is the transcoder's business (skipped, counted); if the
        codecs themselves fail, audio is given up and video goes on alone."""
        if self.audio_error is not None:
            self.audio_dropped += 1
            return []
        try:
            if self.audio is None:
                self.audio = OpusToAac(self._channels)
            return self.audio.feed(data, pts)
        except MuxError as exc:
            self.audio_error = str(exc)
            self.audio_dropped += 1
            self._passing = True
            return []

    def _take_audio(self, items: list[AudioConfig | MediaPacket], out: list[Item]) -> None:
        for item in items:
            if isinstance(item, MediaPacket):
                self._release_upto(item.pts, out)  # video at or before this frame goes first
                self._horizon = item.pts + FRAME_TICKS
            out.append(item)
        if (
            self._passing
            and self.audio_error is None
            and self._horizon is not None
            and (self._last_video is None or self._last_video - self._horizon < MAX_HOLD // 2)
        ):
            self._passing = False  # audio caught up with video: interleave again

    def _release(self, out: list[Item]) -> None:
        held = self._held
        if not held:
            return
        if self._horizon is not None:
            self._release_upto(self._horizon, out)
        if held and (
            self._passing
            or held[-1][0] - held[0][0] >= MAX_HOLD
            or len(held) > MAX_HOLD_UNITS
            or self._held_bytes > MAX_HOLD_BYTES
        ):
            if not self._passing:
                self.releases += 1
            self._passing = True  # audio is late or absent: stop waiting for it
            self._release_upto(None, out)

    def _release_upto(self, pts: int | None, out: list[Item]) -> None:
        held = self._held
        while held and (pts is None or held[0][0] <= pts):
            _, item = held.popleft()
            if isinstance(item, MediaPacket):
                self._held_bytes -= len(item.data)
                self._last_video = item.dts
            out.append(item)
