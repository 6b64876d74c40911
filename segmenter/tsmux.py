"""One MPEG-TS segment being written by PyAV (stream copy, no re-encoding).

Timestamps: the mpegts muxer adds ``2 * max_delay`` to every PTS/DTS unless ``mpegts_copyts`` is
set (the ffmpeg CLI's default ``-muxdelay 0.7`` is why its TS output starts at 1.4 s). We set
``mpegts_copyts=1`` so the PTS/DTS in the file are exactly the ticks we pass, and
``max_delay=PCR_LEAD`` so the PCR runs ``PCR_LEAD`` ahead of the video DTS (PCR = DTS - lead);
the segmenter keeps every DTS >= ``PCR_LEAD`` so the PCR never goes negative. Each segment is a
fresh container, so SDT/PAT/PMT come first in every file (no ``resend_headers`` needed) and
continuity counters restart at 0 in every file (as with ``ffmpeg -f segment``); segments that
start a discontinuity get ``mpegts_flags=+initial_discontinuity``.

Audio frames are handed to the muxer in groups: consecutive ADTS frames, up to
``AUDIO_GROUP_BYTES`` (the PES payload size the mpegts muxer fills for audio anyway, so the file
holds the same PES packets) or ``AUDIO_GROUP_TICKS`` of time, go in as one packet with the first
frame's PTS. The muxer would have batched them into one PES all the same; one call per group
instead of one per frame (about 47 AAC frames a second against 30 video frames) means fewer
PyAV calls, each of which lets go of the GIL and may wait to take it back in a busy process.
The interleaver still orders the group by its PTS among the video packets, and ``close`` hands
over the last group before the trailer.

Writes: libavformat flushes its I/O buffer after every packet by default, and each flush is a
call back into Python (PyAV takes the GIL back for it). Outside progressive mode the muxer
keeps ``flush_packets=0``, so it writes when its ``IO_BUFFER`` is full: 72 -> 22 writes for a 2 s
720p segment of the bench clip, the same bytes. Fewer calls, not measurably less CPU: with a
256 KB buffer (3 writes) the 50-stream bench was the same within its noise, and a larger buffer
costs its size in memory per live stream, so the buffer stays PyAV's default.

Progressive mode (``progressive=True``, for consumers that send a segment while it is cut: live
AI's trickle POST): the muxer flushes after every packet (``flush_packets``), writes each audio
frame as its own PES (``pes_payload_size=0``: no audio batching, no groups) and sets
PES_packet_length on video PES too (``omit_video_pes_length=0``), so a demuxer knows a frame is
complete when its last byte arrives instead of when the next frame starts. ``take()`` hands
over the bytes written since the previous call. libavformat's interleaver still holds a packet
until one of the other stream arrives (at most one audio frame, ~21 ms, for a video frame); the
bytes are otherwise the same MPEG-TS.
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
TS_OPTIONS = {
    "mpegts_copyts": "1",
    "max_delay": str(PCR_LEAD * 1_000_000 // CLOCK),
    "flush_packets": "0",
}
# after a restart/codec change: set discontinuity_indicator on each PID's first packet
TS_OPTIONS_DISCONTINUITY = {**TS_OPTIONS, "mpegts_flags": "+initial_discontinuity"}

IO_BUFFER = 32 * 1024  # bytes the muxer holds before each write (PyAV's default size)
AUDIO_GROUP_BYTES = 2930  # libavformat's default mpegts PES payload size (its audio batching)
AUDIO_GROUP_TICKS = CLOCK // 5  # and under 200 ms: its own bound (half of max_delay, PCR_LEAD)

TS_OPTIONS_PROGRESSIVE = {
    "flush_packets": "1",
    "pes_payload_size": "0",
    "omit_video_pes_length": "0",
}

_AV_ERRORS = (av.FFmpegError, ValueError, TypeError, OSError, MemoryError)


class _Chunks(io.RawIOBase):
    """Where the muxer writes: every write kept, in order, joined once at the end. (An
    ``io.BytesIO`` grows by ``realloc``, about eight copies of a segment's bytes: under perf at
    50 streams, memmove was 16 % of the media thread's CPU, most of it from that growth.)"""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []
        self.taken = 0  # chunks already handed over by take()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)


class TsWriter:
    """Mux Annex B H.264 and raw AAC (ADTS added here) into one in-memory MPEG-TS file."""

    __slots__ = (
        "_adts",
        "_agroup",
        "_agroup_pts",
        "_astream",
        "_buf",
        "_container",
        "_vstream",
        "audio",
        "video",
    )

    def __init__(
        self,
        video: VideoConfig | None,
        audio: AudioConfig | None,
        discontinuity: bool = False,
        *,
        progressive: bool = False,
    ) -> None:
        self.video = video
        self.audio = audio
        self._adts = AdtsWriter.from_asc(parse_asc(audio.asc)) if audio is not None else None
        self._buf = _Chunks()
        # ADTS frames waiting for one mux call; None: progressive (every frame at once)
        self._agroup: bytearray | None = None if progressive else bytearray()
        self._agroup_pts = 0  # the group's first frame
        try:
            options = TS_OPTIONS_DISCONTINUITY if discontinuity else TS_OPTIONS
            if progressive:
                options = {**options, **TS_OPTIONS_PROGRESSIVE}
            self._container = av.open(
                self._buf, "w", format="mpegts", options=options, buffer_size=IO_BUFFER
            )
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
        frame = self._adts.header(len(data)) + data
        group = self._agroup
        if group is None:  # progressive: every frame at once, as its own PES
            self._mux_audio(pts, frame)
            return
        if group and (
            len(group) + len(frame) > AUDIO_GROUP_BYTES
            or not 0 <= pts - self._agroup_pts < AUDIO_GROUP_TICKS
        ):
            self._flush_audio()
        if not group:
            self._agroup_pts = pts
        group += frame

    def _flush_audio(self) -> None:
        group = self._agroup
        if group:
            self._mux_audio(self._agroup_pts, bytes(group))
            group.clear()

    def _mux_audio(self, pts: int, frames: bytes) -> None:
        assert self._astream is not None  # write_audio checked
        pkt = av.Packet(frames)
        pkt.pts = pts
        pkt.dts = pts
        pkt.time_base = TIME_BASE
        pkt.stream = self._astream
        pkt.is_keyframe = True
        try:
            self._container.mux_one(pkt)
        except _AV_ERRORS as e:
            raise MuxError(f"muxing audio packet pts={pts} failed: {e}") from e

    @property
    def progressive(self) -> bool:
        return self._agroup is None

    def take(self) -> bytes:
        """Progressive mode: the bytes written since the previous ``take`` (else empty)."""
        buf = self._buf
        if not self.progressive or buf.taken == len(buf.chunks):
            return b""
        new = b"".join(buf.chunks[buf.taken :])
        buf.taken = len(buf.chunks)
        return new

    def close(self) -> bytes:
        """Write the trailer and return the finished TS bytes (all of them, ``take`` or not)."""
        self._flush_audio()
        try:
            self._container.close()
        except _AV_ERRORS as e:
            raise MuxError(f"finishing the MPEG-TS segment failed: {e}") from e
        return b"".join(self._buf.chunks)

    def abort(self) -> None:
        try:
            self._container.close()
        except _AV_ERRORS:
            pass
