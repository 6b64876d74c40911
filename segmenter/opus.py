"""Opus packets (WebRTC audio) -> AAC-LC frames for MPEG-TS: decode, regroup, encode (PyAV).

Browsers publish Opus; HLS players and Livepeer orchestrators expect AAC in MPEG-TS, so the audio
of a WebRTC publisher is transcoded: FFmpeg's Opus decoder (48 kHz, float planar), an
``AudioFifo`` that regroups 20 ms Opus frames into 1024-sample AAC frames, and FFmpeg's native
``aac`` encoder (AAC-LC, 48 kHz, 64 kb/s per channel). Video is never touched.

The encoder runs its ``fast`` quantizer search (``aac_coder``), not FFmpeg's default ``twoloop``:
at 128 kb/s stereo it halves the cost of a live stream's audio (measured: 0.37 vs 0.74 CPU-s per
minute of stereo audio, the Opus decoding adding 0.07) and FFmpeg's authors rate it as sounding
decent at that rate; ``coder="twoloop"`` is there for low bit rates.

Timeline (all 90 kHz ticks; 1024 samples at 48 kHz are exactly 1920 ticks):
  * The AAC output is one continuous run of samples: frame ``n`` of the encoder has pts
    ``first input pts + n * 1920`` minus the encoder's priming delay (its first frame starts 1024
    samples before the first Opus sample, as FFmpeg reports it), so A/V sync carries over from the
    input timestamps and consecutive AAC frames never leave a gap or overlap.
  * Each decoded Opus frame is compared with where the output stands: within ``TOLERANCE`` it is
    appended as is; later (lost packets, DTX) the hole is filled with silence up to ``MAX_FILL``;
    earlier (overlap) its first samples are trimmed. So the audio never drifts from its input
    timestamps by more than ``TOLERANCE``.
  * A hole longer than ``MAX_FILL`` (the publisher stopped sending audio) is not filled: the AAC
    timeline jumps forward at a frame boundary (counted in ``jumps``). A step back longer than
    ``MAX_FILL`` (a new input clock) re-bases the input instead, the output stays continuous.
  * A broken Opus packet is skipped and counted (``bad_packets``); its time is filled by the hole
    rule when the next packet arrives. The stream goes on.

Memory is bounded: the FIFO holds less than one AAC frame between calls, the encoder one frame
of look-ahead, a fill at most ``MAX_FILL`` of silence. Not thread-safe; one instance per stream.
PyAV work: call it from a worker thread, never from an event loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from .aac import SAMPLE_RATES, SAMPLES_PER_FRAME
from .errors import MuxError
from .packet import CLOCK, AudioConfig, MediaPacket

__all__ = ["OpusStats", "OpusToAac"]

SAMPLE_RATE = 48_000  # Opus always decodes at 48 kHz here; AAC keeps it
FRAME_TICKS = SAMPLES_PER_FRAME * CLOCK // SAMPLE_RATE  # 1920
TOLERANCE = 240  # samples (5 ms): smaller deviations from the input timestamps are ignored
MAX_FILL = SAMPLE_RATE  # samples (1 s): longer holes are a jump, not silence
MAX_PACKET = 64 * 1024  # bytes; an RFC 6716 packet is at most 48 frames of 1275 bytes
_AAC_LC = 2
_TIME_BASE = Fraction(1, SAMPLE_RATE)
_AV_ERRORS = (av.FFmpegError, ValueError, TypeError, OSError, MemoryError)


@dataclass(slots=True)
class OpusStats:
    packets: int = 0  # Opus packets fed
    bad_packets: int = 0  # undecodable (or oversized) packets, skipped
    aac_frames: int = 0  # AAC frames produced
    filled_samples: int = 0  # silence inserted for holes (loss, DTX)
    trimmed_samples: int = 0  # overlapping samples removed
    jumps: int = 0  # holes too long to fill, and input clock steps back


def _ticks(samples: int) -> int:
    return samples * CLOCK // SAMPLE_RATE


class OpusToAac:
    """``feed(opus_packet, pts)`` -> ``AudioConfig`` (once, before the first frame) and raw AAC
    ``MediaPacket`` objects (no ADTS header: the TS writer adds it); ``flush()`` at the end."""

    def __init__(
        self, channels: int = 2, bit_rate: int | None = None, *, coder: str = "fast"
    ) -> None:
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        self.channels = channels
        self._layout = "stereo" if channels == 2 else "mono"
        freq_index = SAMPLE_RATES.index(SAMPLE_RATE)
        asc = ((_AAC_LC << 11) | (freq_index << 7) | (channels << 3)).to_bytes(2, "big")
        self.config = AudioConfig("aac", SAMPLE_RATE, channels, _AAC_LC, asc)
        self.stats = OpusStats()
        try:
            self._decoder: Any = av.CodecContext.create("opus", "r")
            self._decoder.sample_rate = SAMPLE_RATE
            self._decoder.layout = self._layout
            self._encoder: Any = av.CodecContext.create("aac", "w")
            self._encoder.sample_rate = SAMPLE_RATE
            self._encoder.layout = self._layout
            self._encoder.format = "fltp"
            self._encoder.bit_rate = bit_rate or 64_000 * channels
            self._encoder.time_base = _TIME_BASE
            self._encoder.options = {"aac_coder": coder}
            self._encoder.open()
        except _AV_ERRORS as e:
            raise MuxError(f"cannot open the Opus decoder / AAC encoder: {e}") from e
        self._resampler: Any = None  # only if the decoder's output is not fltp/48k/layout
        self._fifo: Any = av.AudioFifo()
        self._written = 0  # samples put into the FIFO so far (the encoder's input position)
        self._encoded = 0  # samples handed to the encoder so far
        self._shift = 0  # added to input pts (re-based after a step back)
        # (encoder sample position, 90 kHz pts of that sample): where the output timeline jumps
        self._marks: deque[tuple[int, int]] = deque()
        self._announced = False
        self._flushed = False

    # -- public API --------------------------------------------------------------------------
    def feed(self, data: bytes, pts: int) -> list[AudioConfig | MediaPacket]:
        """One Opus packet with its pts (90 kHz); returns what the encoder finished."""
        if self._flushed:
            raise MuxError("OpusToAac was flushed: the stream has ended")
        self.stats.packets += 1
        if not data or len(data) > MAX_PACKET:
            self.stats.bad_packets += 1
            return []
        try:
            frames = self._decoder.decode(av.Packet(data))
        except _AV_ERRORS:
            self.stats.bad_packets += 1
            return []
        out: list[AudioConfig | MediaPacket] = []
        for decoded in frames:
            frame = self._normalize(decoded)
            if frame is None:
                continue
            if not self._announced:
                out.append(self.config)
                self._announced = True
            pts += _ticks(self._place(frame, pts))
        self._encode(out)
        return out

    def flush(self) -> list[AudioConfig | MediaPacket]:
        """End of the stream: pad the last frame with silence and drain the encoder."""
        out: list[AudioConfig | MediaPacket] = []
        if self._flushed:
            return out
        self._flushed = True
        if not self._announced:
            return out
        self._pad_to_frame()
        self._encode(out)
        try:
            packets = self._encoder.encode(None)
        except _AV_ERRORS as e:
            raise MuxError(f"draining the AAC encoder failed: {e}") from e
        out.extend(self._packet(p) for p in packets)
        return out

    # -- timeline ----------------------------------------------------------------------------
    def _end_pts(self) -> int:
        """90 kHz pts of the next sample to be written (the end of the output so far)."""
        at, pts = self._marks[-1]
        return pts + _ticks(self._written - at)

    def _place(self, frame: Any, pts: int) -> int:
        """Put one decoded frame on the output timeline; returns its duration in samples."""
        samples: int = frame.samples
        pts += self._shift
        if not self._marks:
            self._marks.append((0, pts))
        ahead_ticks = pts - self._end_pts()
        ahead = ahead_ticks * SAMPLE_RATE // CLOCK  # samples
        if ahead > MAX_FILL:
            self._pad_to_frame()
            self._marks.append((self._written, pts))
            self.stats.jumps += 1
        elif ahead > TOLERANCE:
            self._silence(ahead)
            self.stats.filled_samples += ahead
        elif ahead < -MAX_FILL:
            self._shift -= ahead_ticks  # a new input clock: carry on where the output stands
            self.stats.jumps += 1
        elif ahead < -TOLERANCE:
            trim = -ahead
            self.stats.trimmed_samples += min(trim, samples)
            if trim >= samples:
                return samples
            frame = self._trim(frame, trim)
        self._write(frame)
        return samples

    # -- PCM ---------------------------------------------------------------------------------
    def _normalize(self, frame: Any) -> Any:
        """The decoder is opened for fltp at 48 kHz in our layout; convert anything else."""
        frame.pts = None
        if (frame.format.name, frame.layout.name, frame.sample_rate) == (
            "fltp",
            self._layout,
            SAMPLE_RATE,
        ):
            return frame
        if self._resampler is None:
            self._resampler = av.AudioResampler(
                format="fltp", layout=self._layout, rate=SAMPLE_RATE
            )
        merged: Any = av.AudioFifo()
        for part in self._resampler.resample(frame):
            part.pts = None
            merged.write(part)
        return merged.read()

    def _silent_frame(self, samples: int) -> Any:
        frame = av.AudioFrame(format="fltp", layout=self._layout, samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = SAMPLE_RATE
        return frame

    def _silence(self, samples: int) -> None:
        if samples > 0:
            self._write(self._silent_frame(samples))

    def _pad_to_frame(self) -> None:
        self._silence(-self._written % SAMPLES_PER_FRAME)

    @staticmethod
    def _trim(frame: Any, samples: int) -> Any:
        scratch: Any = av.AudioFifo()
        scratch.write(frame)
        scratch.read(samples)
        return scratch.read()

    def _write(self, frame: Any) -> None:
        if frame is None or frame.samples == 0:
            return
        frame.pts = None
        self._fifo.write(frame)
        self._written += frame.samples

    def _encode(self, out: list[AudioConfig | MediaPacket]) -> None:
        while self._fifo.samples >= SAMPLES_PER_FRAME:
            frame = self._fifo.read(SAMPLES_PER_FRAME)
            frame.pts = self._encoded
            frame.time_base = _TIME_BASE
            self._encoded += SAMPLES_PER_FRAME
            try:
                packets = self._encoder.encode(frame)
            except _AV_ERRORS as e:
                raise MuxError(f"AAC encoding failed: {e}") from e
            out.extend(self._packet(p) for p in packets)

    def _packet(self, packet: Any) -> MediaPacket:
        position: int = packet.pts
        marks = self._marks
        while len(marks) > 1 and marks[1][0] <= position:
            marks.popleft()  # the encoder's output only moves forward
        at, pts = marks[0]
        pts += _ticks(position - at)
        self.stats.aac_frames += 1
        return MediaPacket("audio", pts, pts, True, bytes(packet))
