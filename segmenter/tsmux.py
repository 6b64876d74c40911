"""One MPEG-TS segment being written by PyAV (stream copy, no re-encoding).

Timestamps: the mpegts muxer adds ``2 * max_delay`` to every PTS/DTS unless ``mpegts_copyts`` is
set (the ffmpeg CLI's default ``-muxdelay 0.7`` is why its TS output starts at 1.4 s). We set
``mpegts_copyts=1`` so the PTS/DTS in the file are exactly the ticks we pass, and
``max_delay=PCR_LEAD`` so the PCR runs ``PCR_LEAD`` ahead of the video DTS (PCR = DTS - lead);
the segmenter keeps every DTS >= ``PCR_LEAD`` so the PCR never goes negative. Each segment is a
fresh container, so SDT/PAT/PMT come first in every file (no ``resend_headers`` needed) and
continuity counters restart at 0 in every file (as with ``ffmpeg -f segment``); segments that
start a discontinuity get ``mpegts_flags=+initial_discontinuity``.
"""

from __future__ import annotations

import io
from fractions import Fraction

import av

from .aac import AdtsWriter, parse_asc
from .errors import MuxError
from .packet import CLOCK, AudioConfig, VideoConfig

TIME_BASE = Fraction(1, CLOCK)
PCR_LEAD = 36_000  # 0.4 s in 90 kHz ticks
TS_OPTIONS = {"mpegts_copyts": "1", "max_delay": str(PCR_LEAD * 1_000_000 // CLOCK)}
# after a restart/codec change: set discontinuity_indicator on each PID's first packet
TS_OPTIONS_DISCONTINUITY = {**TS_OPTIONS, "mpegts_flags": "+initial_discontinuity"}

_AV_ERRORS = (av.FFmpegError, ValueError, TypeError, OSError, MemoryError)


class TsWriter:
    """Mux Annex B H.264 and raw AAC (ADTS added here) into one in-memory MPEG-TS file."""

    __slots__ = ("_adts", "_astream", "_buf", "_container", "_vstream", "audio", "video")

    def __init__(
        self, video: VideoConfig | None, audio: AudioConfig | None, discontinuity: bool = False
    ) -> None:
        self.video = video
        self.audio = audio
        self._adts = AdtsWriter.from_asc(parse_asc(audio.asc)) if audio is not None else None
        self._buf = io.BytesIO()
        try:
            options = TS_OPTIONS_DISCONTINUITY if discontinuity else TS_OPTIONS
            self._container = av.open(self._buf, "w", format="mpegts", options=options)
            self._vstream: av.stream.Stream | None = None
            self._astream: av.stream.Stream | None = None
            if video is not None:
                self._vstream = self._container.add_mux_stream(
                    "h264", width=video.width, height=video.height, time_base=TIME_BASE
                )
            if audio is not None:
                self._astream = self._container.add_mux_stream(
                    "aac", rate=audio.sample_rate, time_base=TIME_BASE
                )
        except _AV_ERRORS as e:
            raise MuxError(f"cannot open an MPEG-TS muxer: {e}") from e

    def write_video(self, pts: int, dts: int, keyframe: bool, data: bytes) -> None:
        pkt = av.Packet(data)
        pkt.pts = pts
        pkt.dts = dts
        pkt.time_base = TIME_BASE
        if self._vstream is None:
            raise MuxError("this segment has no video stream")
        pkt.stream = self._vstream
        pkt.is_keyframe = keyframe
        try:
            self._container.mux_one(pkt)
        except _AV_ERRORS as e:
            raise MuxError(f"muxing video packet dts={dts} failed: {e}") from e

    def write_audio(self, pts: int, data: bytes) -> None:
        if self._adts is None or self._astream is None:
            raise MuxError("this segment has no audio stream")
        pkt = av.Packet(self._adts.header(len(data)) + data)
        pkt.pts = pts
        pkt.dts = pts
        pkt.time_base = TIME_BASE
        pkt.stream = self._astream
        pkt.is_keyframe = True
        try:
            self._container.mux_one(pkt)
        except _AV_ERRORS as e:
            raise MuxError(f"muxing audio packet pts={pts} failed: {e}") from e

    def close(self) -> bytes:
        """Write the trailer and return the finished TS bytes."""
        try:
            self._container.close()
        except _AV_ERRORS as e:
            raise MuxError(f"finishing the MPEG-TS segment failed: {e}") from e
        return self._buf.getvalue()

    def abort(self) -> None:
        try:
            self._container.close()
        except _AV_ERRORS:
            pass
