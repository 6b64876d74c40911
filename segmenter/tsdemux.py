"""Incremental MPEG-TS demuxer (sans-IO): bytes in, H.264 / AAC access units out, as they complete.

    demux = TsDemuxer()
    for chunk in body:                 # any chunk sizes, even 1 byte
        for packet in demux.feed(chunk):
            ...                        # MediaPacket: video Annex B, audio raw AAC (no ADTS)
    tail = demux.flush()               # the last open PES (end of the segment)
    demux.video, demux.audio           # the configs learned in band (SPS/PPS, ADTS header)

A PES whose ``PES_packet_length`` is set is complete when that many bytes arrived; one with
length 0 (what ffmpeg writes for video by default) completes when the next PES starts on its
PID, or on ``flush()``. One video PES is one access unit (its keyframe flag: an IDR slice in
it); one audio PES holds one or more ADTS frames, each emitted on its own with its pts
(``pes_pts`` + i x 1024 samples, rounded to the tick).

PAT and PMT are read (H.264 ``0x1b`` and ADTS AAC ``0x0f``; the first of each kind is used,
other PIDs are skipped); adaptation fields are skipped (PCR ignored). A continuity-counter gap
on a PID damages the PES being assembled there: it is dropped when it would complete, and
counted in ``stats.damaged``. Lost sync (a byte other than 0x47 where a packet should start) is
recovered at the next 0x47 that is followed by another one 188 bytes later (``stats.resyncs``).

Hard limits: a PES longer than ``max_pes`` bytes, or more than ``max_buffered`` bytes held in
open PESs, raise ``MalformedMedia`` after dropping what was held (the demuxer stays usable and
resumes at the next PES start). Nothing else but ``SegmenterError`` subclasses is raised.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import h264
from .aac import SAMPLE_RATES, SAMPLES_PER_FRAME
from .errors import MalformedMedia
from .packet import CLOCK, AudioConfig, MediaPacket, VideoConfig

__all__ = ["DemuxStats", "TsDemuxer"]

TS_PACKET = 188
SYNC = 0x47
STREAM_H264 = 0x1B
STREAM_AAC = 0x0F
MAX_PES = 8 << 20  # one access unit / one audio PES
MAX_BUFFERED = 24 << 20  # bytes held in open PESs plus the partial TS packet
_CHANNELS = (0, 1, 2, 3, 4, 5, 6, 8)


@dataclass
class DemuxStats:
    packets: int = 0  # TS packets read
    video: int = 0  # video access units emitted
    audio: int = 0  # AAC frames emitted
    damaged: int = 0  # PESs dropped: continuity gap, bad header, truncated by a new start
    resyncs: int = 0  # times sync was lost and found again
    skipped: int = 0  # bytes skipped while looking for sync


class _Pes:
    __slots__ = ("chunks", "damaged", "expected", "size")

    def __init__(self, expected: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.expected = expected  # total PES bytes (6 + PES_packet_length), 0: unbounded
        self.damaged = False


def _timestamp(b: bytes, i: int) -> int:
    return (
        ((b[i] & 0x0E) << 29)
        | (b[i + 1] << 22)
        | ((b[i + 2] & 0xFE) << 14)
        | (b[i + 3] << 7)
        | (b[i + 4] >> 1)
    )


def _has_idr(data: bytes) -> bool:
    find = data.find
    pos = find(b"\x00\x00\x01")
    while 0 <= pos < len(data) - 3:
        kind = data[pos + 3] & 0x1F
        if kind == h264.NAL_IDR:
            return True
        if kind == h264.NAL_SLICE:
            return False  # a non-IDR slice: the picture is not IDR
        pos = find(b"\x00\x00\x01", pos + 4)
    return False


class TsDemuxer:
    def __init__(self, *, max_pes: int = MAX_PES, max_buffered: int = MAX_BUFFERED) -> None:
        self.max_pes = max_pes
        self.max_buffered = max_buffered
        self.video: VideoConfig | None = None
        self.audio: AudioConfig | None = None
        self.stats = DemuxStats()
        self._rest = b""
        self._pmt_pids: set[int] = set()
        self._video_pid = -1
        self._audio_pid = -1
        self._pes: dict[int, _Pes] = {}
        self._cc: dict[int, int] = {}
        self._buffered = 0

    @property
    def has_video(self) -> bool:
        """The PMT lists an H.264 stream."""
        return self._video_pid >= 0

    @property
    def has_audio(self) -> bool:
        """The PMT lists an AAC stream."""
        return self._audio_pid >= 0

    # -- input ---------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[MediaPacket]:
        """Demux ``data`` (any length); the access units completed by it, in stream order."""
        buf = self._rest + data if self._rest else data
        out: list[MediaPacket] = []
        pos, end = 0, len(buf)
        try:
            while end - pos >= TS_PACKET:
                if buf[pos] != SYNC:
                    pos = self._resync(buf, pos)
                    continue
                self._packet(buf, pos, out)
                pos += TS_PACKET
        finally:
            self._rest = bytes(buf[pos:]) if pos < end else b""
            if len(self._rest) >= TS_PACKET:  # an exception left whole packets unread
                self._rest = b""
        return out

    def flush(self) -> list[MediaPacket]:
        """End of input: complete the open PESs (a partial TS packet is dropped)."""
        out: list[MediaPacket] = []
        self._rest = b""
        for pid in list(self._pes):
            self._finish(pid, out, flushing=True)
        self._cc.clear()
        return out

    def reset(self) -> None:
        """Forget everything but the configs (a new stream on the same demuxer)."""
        self._rest = b""
        self._pes.clear()
        self._cc.clear()
        self._buffered = 0

    # -- packets -------------------------------------------------------------------------------

    def _resync(self, buf: bytes, pos: int) -> int:
        self.stats.resyncs += 1
        start = pos
        find = buf.find
        while True:
            pos = find(b"\x47", pos + 1)
            if pos < 0:
                pos = len(buf)
                break
            nxt = pos + TS_PACKET
            if nxt >= len(buf) or buf[nxt] == SYNC:
                break
        self.stats.skipped += pos - start
        # a PES cut by lost bytes is damaged
        for pes in self._pes.values():
            pes.damaged = True
        return pos

    def _packet(self, buf: bytes, pos: int, out: list[MediaPacket]) -> None:
        self.stats.packets += 1
        b1 = buf[pos + 1]
        if b1 & 0x80:  # transport_error_indicator
            return
        pid = ((b1 & 0x1F) << 8) | buf[pos + 2]
        b3 = buf[pos + 3]
        afc = (b3 >> 4) & 3
        start = pos + 4
        end = pos + TS_PACKET
        discontinuity = False
        if afc & 2:
            length = buf[start]
            if length and start + 1 < end:
                discontinuity = bool(buf[start + 1] & 0x80)
            start += 1 + length
            if start > end:
                return  # a bad adaptation field length: nothing usable
        if not afc & 1 or start >= end:
            return
        unit_start = bool(b1 & 0x40)
        if pid in (self._video_pid, self._audio_pid):
            cc = b3 & 0x0F
            last = self._cc.get(pid)
            self._cc[pid] = cc
            if last is not None and not discontinuity and cc != (last + 1) & 0x0F:
                if cc == last:
                    return  # a duplicate packet (allowed once by the standard)
                pes = self._pes.get(pid)
                if pes is not None:
                    pes.damaged = True
            self._payload(pid, buf[start:end], unit_start, out)
        elif pid == 0:
            if unit_start:
                self._pat(buf[start:end])
        elif pid in self._pmt_pids and unit_start:
            self._pmt(buf[start:end])

    def _section(self, payload: bytes) -> bytes | None:
        pointer = payload[0]
        body = payload[1 + pointer :]
        if len(body) < 8:
            return None
        length = ((body[1] & 0x0F) << 8) | body[2]
        if length < 9 or 3 + length > len(body):
            return None  # sections spanning packets are not used by TS muxers for PAT/PMT
        return body[: 3 + length - 4]  # without the CRC

    def _pat(self, payload: bytes) -> None:
        section = self._section(payload)
        if section is None or section[0] != 0x00:
            return
        pids = set()
        for i in range(8, len(section) - 3, 4):
            program = (section[i] << 8) | section[i + 1]
            if program:
                pids.add(((section[i + 2] & 0x1F) << 8) | section[i + 3])
        self._pmt_pids = pids

    def _pmt(self, payload: bytes) -> None:
        section = self._section(payload)
        if section is None or section[0] != 0x02 or len(section) < 12:
            return
        info = ((section[10] & 0x0F) << 8) | section[11]
        i = 12 + info
        video = audio = -1
        while i + 5 <= len(section):
            kind = section[i]
            pid = ((section[i + 1] & 0x1F) << 8) | section[i + 2]
            i += 5 + (((section[i + 3] & 0x0F) << 8) | section[i + 4])
            if kind == STREAM_H264 and video < 0:
                video = pid
            elif kind == STREAM_AAC and audio < 0:
                audio = pid
        for old in (self._video_pid, self._audio_pid):
            if old not in (video, audio):
                self._drop(old)
        self._video_pid, self._audio_pid = video, audio

    # -- PES -----------------------------------------------------------------------------------

    def _payload(self, pid: int, data: bytes, unit_start: bool, out: list[MediaPacket]) -> None:
        pes = self._pes.get(pid)
        if unit_start:
            if pes is not None:
                if pes.expected:  # a bounded PES cut short by the next one
                    pes.damaged = True
                self._finish(pid, out, flushing=True)
            expected = 0
            if len(data) >= 6:
                length = (data[4] << 8) | data[5]
                expected = 6 + length if length else 0
            pes = self._pes[pid] = _Pes(expected)
        elif pes is None:
            return  # the middle of a PES whose start we did not see
        size = len(data)
        if pes.expected and pes.size + size > pes.expected:
            data = data[: pes.expected - pes.size]  # stuffing after a bounded PES
            size = len(data)
        pes.chunks.append(data)
        pes.size += size
        self._buffered += size
        if pes.size > self.max_pes:
            self._drop(pid)
            raise MalformedMedia(
                f"a PES on PID {pid} exceeds {self.max_pes} bytes: not a live stream this "
                "demuxer accepts (raise max_pes if frames this large are expected)"
            )
        if self._buffered > self.max_buffered:
            for other in list(self._pes):
                self._drop(other)
            raise MalformedMedia(
                f"more than {self.max_buffered} bytes buffered in open PESs: dropped them"
            )
        if pes.expected and pes.size >= pes.expected:
            self._finish(pid, out, flushing=False)

    def _drop(self, pid: int) -> None:
        pes = self._pes.pop(pid, None)
        if pes is not None:
            self._buffered -= pes.size

    def _finish(self, pid: int, out: list[MediaPacket], *, flushing: bool) -> None:
        pes = self._pes.pop(pid)
        self._buffered -= pes.size
        if pes.damaged or (pes.expected and pes.size < pes.expected):
            self.stats.damaged += 1
            return
        data = pes.chunks[0] if len(pes.chunks) == 1 else b"".join(pes.chunks)
        if len(data) < 9 or data[0] != 0 or data[1] != 0 or data[2] != 1:
            self.stats.damaged += 1
            return
        flags = data[7]
        body = 9 + data[8]
        if body > len(data) or not flags & 0x80 or body < 14:
            self.stats.damaged += 1  # no PTS: nothing to time it by
            return
        pts = _timestamp(data, 9)
        dts = _timestamp(data, 14) if flags & 0x40 and body >= 19 else pts
        payload = data[body:]
        if pid == self._video_pid:
            self._video_unit(payload, pts, dts, out)
        elif pid == self._audio_pid:
            self._audio_frames(payload, pts, out)

    def _video_unit(self, payload: bytes, pts: int, dts: int, out: list[MediaPacket]) -> None:
        if not payload:
            return
        keyframe = _has_idr(payload)
        if keyframe:
            self._learn_video(payload)
        self.stats.video += 1
        out.append(MediaPacket("video", pts, dts, keyframe, payload))

    def _learn_video(self, unit: bytes) -> None:
        nals = h264.split_annexb(unit)
        sps = tuple(n for n in nals if n[0] & 0x1F == h264.NAL_SPS)
        pps = tuple(n for n in nals if n[0] & 0x1F == h264.NAL_PPS)
        if not sps or not pps:
            return
        if self.video is not None and self.video.sps == sps and self.video.pps == pps:
            return
        info = h264.parse_sps(sps[0])
        self.video = VideoConfig(
            "h264", info.width, info.height, sps, pps, info.profile_idc, info.level_idc
        )

    def _audio_frames(self, payload: bytes, pts: int, out: list[MediaPacket]) -> None:
        pos, end, index = 0, len(payload), 0
        while pos + 7 <= end:
            if payload[pos] != 0xFF or payload[pos + 1] & 0xF0 != 0xF0:
                self.stats.damaged += 1
                return
            header = payload[pos : pos + 7]
            length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
            head = 7 if header[1] & 0x01 else 9  # protection_absent: no CRC
            if length < head or pos + length > end:
                self.stats.damaged += 1
                return
            rate = self._learn_audio(header)
            frame = payload[pos + head : pos + length]
            self.stats.audio += 1
            at = pts + (index * SAMPLES_PER_FRAME * CLOCK + rate // 2) // rate if rate else pts
            out.append(MediaPacket("audio", at, at, True, frame))
            pos += length
            index += 1

    def _learn_audio(self, header: bytes) -> int:
        object_type = (header[2] >> 6) + 1
        freq = (header[2] >> 2) & 0x0F
        channel_config = ((header[2] & 0x01) << 2) | (header[3] >> 6)
        if freq >= len(SAMPLE_RATES):
            return 0
        known = self.audio
        asc = ((object_type << 11) | (freq << 7) | (channel_config << 3)).to_bytes(2, "big")
        if known is None or known.asc != asc:
            channels = _CHANNELS[channel_config] if channel_config < len(_CHANNELS) else 0
            self.audio = AudioConfig("aac", SAMPLE_RATES[freq], channels, object_type, asc)
        return SAMPLE_RATES[freq]
