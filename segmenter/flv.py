"""FLV tag payloads (as carried in RTMP audio/video messages) -> configs and Annex B packets.

Supported: video CodecID 7 (AVC/H.264), audio SoundFormat 10 (AAC). Everything else, including
enhanced RTMP (ExVideoTagHeader / ExAudioTagHeader), raises :class:`UnsupportedCodec`.
Timestamps arrive in milliseconds (the FLV/RTMP dts) and leave in 90 kHz ticks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from . import aac, h264
from .errors import MalformedMedia, UnsupportedCodec
from .packet import AudioConfig, MediaPacket, VideoConfig

MSG_AUDIO = 8
MSG_VIDEO = 9
MSG_SCRIPT = 18

MAX_TAG_SIZE = 16 * 1024 * 1024  # RTMP message length is 24 bits

Item = VideoConfig | AudioConfig | MediaPacket

_VIDEO_CODECS = {
    1: "JPEG",
    2: "Sorenson H.263",
    3: "Screen video",
    4: "On2 VP6",
    5: "On2 VP6 with alpha",
    6: "Screen video v2",
    7: "AVC/H.264",
    12: "HEVC (non-standard CodecID 12)",
    13: "AV1 (non-standard CodecID 13)",
}
_AUDIO_CODECS = {
    0: "Linear PCM (platform endian)",
    1: "ADPCM",
    2: "MP3",
    3: "Linear PCM (little endian)",
    4: "Nellymoser 16 kHz",
    5: "Nellymoser 8 kHz",
    6: "Nellymoser",
    7: "G.711 A-law",
    8: "G.711 mu-law",
    10: "AAC",
    11: "Speex",
    14: "MP3 8 kHz",
    15: "device-specific sound",
}
_SUPPORTED = "supported: H.264/AVC video (FLV CodecID 7) and AAC audio (SoundFormat 10)"
_START = h264.START_CODE
_AUD = h264.START_CODE + h264.AUD_NAL


def _fourcc(data: bytes) -> str:
    return data.decode("ascii", "replace") if len(data) == 4 else data.hex()


class FlvDemuxer:
    """Sans-IO FLV tag parser: ``feed`` one RTMP audio/video message, get configs and packets.

    Video access units are returned as Annex B with an AUD first and, on keyframes, SPS+PPS in
    band (taken from the last config record when the frame carries none), so any segment that
    starts at a keyframe decodes on its own. Audio packets are raw AAC frames.

    An empty AAC sequence header (FFmpeg's FLV muxer sends one when it copies AAC from ADTS, e.g.
    from MPEG-TS, before it knows the config; the real one comes with the first audio frame)
    announces audio: video is held back until that config arrives, so the segmenter learns
    about the audio before the first segment is opened and need not cut (and drop frames) for
    it. The hold is bounded (``MAX_AUDIO_WAIT`` of video); past it video goes on without.
    """

    MAX_AUDIO_WAIT = 90_000  # 90 kHz ticks of video held for an announced AAC config

    def __init__(self) -> None:
        self.video: VideoConfig | None = None
        self.audio: AudioConfig | None = None
        self._length_size = 4
        self._param_sets = b""  # start-code-prefixed SPS+PPS of the current config
        self.dropped_video = 0  # NAL-less frames etc.
        self._audio_announced = False  # an empty AAC sequence header came, the real one not yet
        self._held: list[Item] = []  # video items waiting for that config

    def feed(self, msg_type: int, timestamp_ms: int, payload: bytes) -> list[Item]:
        if msg_type == MSG_VIDEO:
            items = self._video(timestamp_ms * 90, payload)
            if not self._audio_announced:
                return items
            self._held += items
            first = next((i for i in self._held if isinstance(i, MediaPacket)), None)
            if first is None or timestamp_ms * 90 - first.dts < self.MAX_AUDIO_WAIT:
                return []
            self._audio_announced = False  # it did not come: go on without waiting
            return self._release()
        if msg_type == MSG_AUDIO:
            items = self._audio(timestamp_ms * 90, payload)
            if self._held and any(isinstance(i, AudioConfig) for i in items):
                return [*items[:1], *self._release(), *items[1:]]
            return items
        return []  # script data (onMetaData) and anything else carries no media

    def flush(self) -> list[Item]:
        """At the end of the session: video still waiting for an announced AAC config."""
        self._audio_announced = False
        return self._release()

    def _release(self) -> list[Item]:
        held, self._held = self._held, []
        return held

    # -- video ---------------------------------------------------------------------------
    def _video(self, dts: int, payload: bytes) -> list[Item]:
        if not payload:
            return []
        head = payload[0]
        if head & 0x80:
            fourcc = _fourcc(payload[1:5])
            raise UnsupportedCodec(
                f"enhanced RTMP video (FourCC {fourcc!r}) is not supported; {_SUPPORTED}"
            )
        frame_type, codec_id = head >> 4, head & 0x0F
        if frame_type == 5:
            return []  # video info / command frame
        if codec_id != 7:
            name = _VIDEO_CODECS.get(codec_id, f"unknown CodecID {codec_id}")
            raise UnsupportedCodec(f"FLV video codec {name} is not supported; {_SUPPORTED}")
        if len(payload) < 5:
            raise MalformedMedia(f"AVC video tag of {len(payload)} bytes is truncated")
        packet_type = payload[1]
        if packet_type == 0:
            return self._video_config(payload[5:])
        if packet_type == 2:
            return []  # end of sequence
        if packet_type != 1:
            raise MalformedMedia(f"AVCPacketType {packet_type} is reserved")
        cts = int.from_bytes(payload[2:5], "big", signed=True) * 90
        nals = h264.avcc_views(memoryview(payload)[5:], self._length_size)
        if not nals:
            self.dropped_video += 1
            return []
        types = [n[0] & 0x1F for n in nals]
        keyframe = frame_type == 1 or h264.NAL_IDR in types
        out: list[Item] = []
        parts: list[bytes | memoryview] = []
        if types[0] != h264.NAL_AUD:
            parts.append(_AUD)
        if keyframe:
            if h264.NAL_SPS not in types:
                if self._param_sets:
                    parts.append(self._param_sets)
            elif self.video is None or nals[types.index(h264.NAL_SPS)] != self.video.sps[0]:
                # parameter sets only in band (no sequence header) or changed in band
                cfg = self._config_from_nals(nals, types)
                if cfg is not None:
                    out.append(cfg)
        for nal in nals:
            parts.append(_START)
            parts.append(nal)
        out.append(MediaPacket("video", dts + cts, dts, keyframe, b"".join(parts)))
        return out

    def _video_config(self, record: bytes) -> list[Item]:
        rec = h264.parse_avc_config(record)
        info = h264.parse_sps(rec.sps[0])
        self._length_size = rec.length_size
        self._param_sets = b"".join(_START + n for n in rec.sps + rec.pps)
        self.video = VideoConfig(
            codec="h264",
            width=info.width,
            height=info.height,
            sps=rec.sps,
            pps=rec.pps,
            profile=info.profile_idc,
            level=info.level_idc,
        )
        return [self.video]

    def _config_from_nals(self, nals: list[memoryview], types: list[int]) -> VideoConfig | None:
        sps = tuple(bytes(n) for n, t in zip(nals, types, strict=True) if t == h264.NAL_SPS)
        pps = tuple(bytes(n) for n, t in zip(nals, types, strict=True) if t == h264.NAL_PPS)
        if not pps:
            if self.video is None:
                return None
            pps = self.video.pps
        info = h264.parse_sps(sps[0])
        self._param_sets = b"".join(_START + n for n in sps + pps)
        self.video = VideoConfig(
            "h264", info.width, info.height, sps, pps, info.profile_idc, info.level_idc
        )
        return self.video

    # -- audio ---------------------------------------------------------------------------
    def _audio(self, dts: int, payload: bytes) -> list[Item]:
        if not payload:
            return []
        sound_format = payload[0] >> 4
        if sound_format == 9:
            fourcc = _fourcc(payload[1:5])
            raise UnsupportedCodec(
                f"enhanced RTMP audio (FourCC {fourcc!r}) is not supported; {_SUPPORTED}"
            )
        if sound_format != 10:
            name = _AUDIO_CODECS.get(sound_format, f"unknown SoundFormat {sound_format}")
            raise UnsupportedCodec(f"FLV audio codec {name} is not supported; {_SUPPORTED}")
        if len(payload) < 2:
            raise MalformedMedia("AAC audio tag without AACPacketType")
        if payload[1] == 0:
            asc = payload[2:]
            if not asc:  # FFmpeg's FLV muxer sends an empty one when it copies AAC from ADTS
                self._audio_announced = self.audio is None  # (see the class docstring)
                return []
            info = aac.parse_asc(asc)
            aac.AdtsWriter.from_asc(info)  # reject what MPEG-TS cannot carry, at config time
            self._audio_announced = False
            self.audio = AudioConfig(
                codec="aac",
                sample_rate=info.sample_rate,
                channels=info.channels,
                object_type=info.signaled_type,
                asc=bytes(asc),
            )
            return [self.audio]
        if payload[1] != 1:
            raise MalformedMedia(f"AACPacketType {payload[1]} is reserved")
        if len(payload) == 2:
            return []
        if len(payload) - 2 + aac.ADTS_HEADER_SIZE > aac.MAX_ADTS_FRAME:
            raise MalformedMedia(f"AAC frame of {len(payload) - 2} bytes is too large")
        return [MediaPacket("audio", dts, dts, True, payload[2:])]


def read_flv_file(source: str | os.PathLike[str] | bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(tag_type, timestamp_ms, payload)`` for each tag of an FLV file (path or bytes)."""
    if isinstance(source, bytes):
        import io

        yield from _read_tags(io.BytesIO(source))
        return
    with open(source, "rb") as f:
        yield from _read_tags(f)


def _read_tags(f: BinaryIO) -> Iterator[tuple[int, int, bytes]]:
    header = f.read(9)
    if len(header) < 9 or header[:3] != b"FLV":
        raise MalformedMedia("not an FLV file (no 'FLV' signature)")
    offset = int.from_bytes(header[5:9], "big")
    if not 9 <= offset <= 1024:
        raise MalformedMedia(f"FLV header size {offset} is invalid")
    f.read(offset - 9 + 4)  # rest of the header + PreviousTagSize0
    read = f.read
    while True:
        tag = read(11)
        if len(tag) < 11:
            return  # end of file (a truncated trailing tag header is ignored)
        size = int.from_bytes(tag[1:4], "big")
        if size > MAX_TAG_SIZE:
            raise MalformedMedia(f"FLV tag of {size} bytes exceeds {MAX_TAG_SIZE}")
        ts = int.from_bytes(tag[4:7], "big") | (tag[7] << 24)
        payload = read(size)
        if len(payload) < size:
            return  # truncated last tag
        read(4)  # PreviousTagSize
        yield tag[0] & 0x1F, ts, payload
