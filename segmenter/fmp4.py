"""Fragmented MP4 (CMAF) for LL-HLS: an init segment and ``moof``+``mdat`` fragments cut on demand.

    writer = Fmp4Writer(video_config, audio_config)
    writer.init                                   # ftyp + moov: served as EXT-X-MAP
    writer.fragment(packets, video_end=next_dts)  # one LL-HLS part: moof + mdat

Why our own writer: a part must end exactly where the packager decides (about every 200 ms,
at a segment boundary, before a keyframe), as soon as its last frame is in. PyAV's (FFmpeg's)
mp4 muxer fragments by its own rules (``frag_keyframe``, ``frag_duration``) and buffers until
the next fragment starts, so it cannot cut a fragment on demand without a frame of delay and
cannot be told where a segment ends. Writing ISO BMFF boxes is simple and exact; this module
is sans-IO (bytes in, bytes out; no clock, no files).

Layout (ISO/IEC 14496-12, 14496-15 for ``avcC``, 14496-14 for ``esds``): track 1 is H.264
video (``avc1``, timescale 90 kHz: the packets' own clock), track 2 AAC audio (``mp4a``,
timescale = its sample rate). Each fragment has one ``traf`` per track with samples in it:
``tfhd`` (default-base-is-moof), ``tfdt`` (64-bit baseMediaDecodeTime: the first sample's dts,
so fragments place themselves on the input timeline; nothing accumulates from fragment to
fragment), ``trun`` (version 1: signed composition offsets ``pts - dts``); ``mdat`` holds the
video samples, then the audio ones.

Sample durations: from the next sample's dts inside the fragment. The last video sample lasts
until ``video_end`` when the caller knows it (the packager does: the first dts of the next
part, or the segment's end), else the last frame duration seen; holding the last sample back
until the next one arrives would add a frame of latency to every part. Since every fragment's
``tfdt`` is its first sample's own dts, a guessed duration only shifts where one frame's display
ends, never the timeline after it. The last audio sample lasts one AAC frame (1024 samples).

Video samples are 4-byte length-prefixed NAL units. Access unit delimiters are dropped, and so
are SPS/PPS that the init segment's ``avcC`` already carries; parameter sets that differ from
it stay in band (decoders read them there). A new SPS is a new ``VideoConfig``: the packager
starts a new writer (a new init segment) for it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .aac import SAMPLES_PER_FRAME
from .errors import MalformedMedia
from .h264 import NAL_AUD, NAL_PPS, NAL_SPS, split_annexb
from .packet import CLOCK, AudioConfig, MediaPacket, VideoConfig

__all__ = ["AUDIO_TRACK", "VIDEO_TRACK", "Fmp4Writer", "init_segment"]

VIDEO_TRACK = 1
AUDIO_TRACK = 2
DEFAULT_FRAME = CLOCK // 30  # a video frame's duration before any was seen (30 fps)

_KEY_FLAGS = 0x02000000  # sample_depends_on = 2 (an I picture), a sync sample
_DELTA_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample
_TRUN_VIDEO = 0x000F01  # data offset, duration, size, flags, composition offset
_TRUN_AUDIO = 0x000701  # data offset, duration, size, flags
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_pack = struct.pack
_PARAM_SETS = (NAL_SPS, NAL_PPS)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return _pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, _pack(">I", (version << 24) | flags), *payload)


def _avcc(cfg: VideoConfig) -> bytes:
    if not cfg.sps or len(cfg.sps[0]) < 4 or not cfg.pps:
        raise MalformedMedia("an H.264 config without SPS/PPS cannot make an fMP4 init segment")
    sps = cfg.sps[0]
    out = [bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE0 | len(cfg.sps)))]
    for s in cfg.sps:
        out += (len(s).to_bytes(2, "big"), s)
    out.append(bytes((len(cfg.pps),)))
    for p in cfg.pps:
        out += (len(p).to_bytes(2, "big"), p)
    return _box(b"avcC", *out)


def _descriptor(tag: int, *body: bytes) -> bytes:
    data = b"".join(body)
    size = len(data)  # the 4-byte form of the expandable size: any length below 2**28
    head = bytes((tag, 0x80 | (size >> 21) & 0x7F, 0x80 | (size >> 14) & 0x7F))
    return head + bytes((0x80 | (size >> 7) & 0x7F, size & 0x7F)) + data


def _esds(cfg: AudioConfig) -> bytes:
    dec_info = _descriptor(5, cfg.asc)
    # objectTypeIndication 0x40 (MPEG-4 audio), streamType 5 (audio) << 2 | 1 (reserved)
    dec_cfg = _descriptor(4, bytes((0x40, 0x15, 0, 0, 0)), _pack(">II", 0, 0), dec_info)
    es = _descriptor(3, _pack(">HB", AUDIO_TRACK, 0), dec_cfg, _descriptor(6, b"\x02"))
    return _full(b"esds", 0, 0, es)


def _sample_entry(video: VideoConfig | None, audio: AudioConfig | None) -> bytes:
    if video is not None:
        return _box(
            b"avc1",
            bytes(6), _pack(">H", 1), bytes(16),
            _pack(">HHII", video.width, video.height, 0x480000, 0x480000),
            bytes(4), _pack(">H", 1), bytes(32), _pack(">Hh", 0x18, -1),
            _avcc(video),
        )  # fmt: skip
    assert audio is not None
    rate = audio.sample_rate if audio.sample_rate < 0x10000 else 0
    return _box(
        b"mp4a",
        bytes(6), _pack(">H", 1), bytes(8),
        _pack(">HHHHI", audio.channels, 16, 0, 0, rate << 16),
        _esds(audio),
    )  # fmt: skip


def _trak(
    track: int, timescale: int, video: VideoConfig | None, audio: AudioConfig | None
) -> bytes:
    width, height = (video.width, video.height) if video else (0, 0)
    tkhd = _full(
        b"tkhd", 0, 3,
        _pack(">IIIII", 0, 0, track, 0, 0), bytes(8),
        _pack(">hhhH", 0, 0, 0 if video else 0x0100, 0), _MATRIX,
        _pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _full(b"mdhd", 0, 0, _pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0))  # "und"
    handler, name = (b"vide", b"VideoHandler\0") if video else (b"soun", b"SoundHandler\0")
    hdlr = _full(b"hdlr", 0, 0, bytes(4), handler, bytes(12), name)
    media_header = _full(b"vmhd", 0, 1, bytes(8)) if video else _full(b"smhd", 0, 0, bytes(4))
    dinf = _box(b"dinf", _full(b"dref", 0, 0, _pack(">I", 1), _full(b"url ", 0, 1)))
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, _pack(">I", 1), _sample_entry(video, audio)),
        _full(b"stts", 0, 0, bytes(4)),
        _full(b"stsc", 0, 0, bytes(4)),
        _full(b"stsz", 0, 0, bytes(8)),
        _full(b"stco", 0, 0, bytes(4)),
    )
    minf = _box(b"minf", media_header, dinf, stbl)
    return _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))


def init_segment(video: VideoConfig | None, audio: AudioConfig | None) -> bytes:
    """``ftyp`` + ``moov`` (one ``trak`` per track, ``mvex``) for these configs."""
    if video is None and audio is None:
        raise MalformedMedia("an fMP4 init segment needs a video or an audio track")
    ftyp = _box(b"ftyp", b"iso6", _pack(">I", 0), b"iso6cmfcmp41")
    mvhd = _full(
        b"mvhd", 0, 0,
        _pack(">IIIIIH", 0, 0, 1000, 0, 0x10000, 0x0100), bytes(10), _MATRIX, bytes(24),
        _pack(">I", AUDIO_TRACK + 1),
    )  # fmt: skip
    traks: list[bytes] = []
    trexs: list[bytes] = []
    if video is not None:
        traks.append(_trak(VIDEO_TRACK, CLOCK, video, None))
        trexs.append(_full(b"trex", 0, 0, _pack(">IIIII", VIDEO_TRACK, 1, 0, 0, 0)))
    if audio is not None:
        traks.append(_trak(AUDIO_TRACK, audio.sample_rate, None, audio))
        trexs.append(_full(b"trex", 0, 0, _pack(">IIIII", AUDIO_TRACK, 1, 0, 0, 0)))
    return ftyp + _box(b"moov", mvhd, *traks, _box(b"mvex", *trexs))


class Fmp4Writer:
    """Fragments of one track set (one init segment). Not thread-safe; cheap to create."""

    __slots__ = ("_drop", "_frame", "_seq", "audio", "init", "video")

    def __init__(self, video: VideoConfig | None, audio: AudioConfig | None) -> None:
        self.video = video
        self.audio = audio
        self.init = init_segment(video, audio)
        self._seq = 0  # mfhd sequence_number of the last fragment
        self._frame = DEFAULT_FRAME  # the last video frame duration seen
        # in-band NAL units the samples leave out: AUDs, and the parameter sets avcC holds
        self._drop = frozenset(video.sps + video.pps) if video is not None else frozenset()

    @property
    def frame_duration(self) -> int:
        """The last video frame duration seen (90 kHz ticks)."""
        return self._frame

    def fragment(self, packets: Sequence[MediaPacket], *, video_end: int | None = None) -> bytes:
        """``moof`` + ``mdat`` of ``packets`` (each kind in decode order, as the segmenter muxes
        them). ``video_end``: the dts at which the last video sample ends, if known."""
        video = [p for p in packets if p.kind == "video"] if self.video is not None else []
        audio = [p for p in packets if p.kind == "audio"] if self.audio is not None else []
        if not video and not audio:
            raise MalformedMedia("an fMP4 fragment needs at least one sample")
        self._seq += 1
        trafs: list[bytes] = []
        payloads: list[bytes] = []
        patches: list[tuple[int, int]] = []  # (offset of a trun's data_offset, its mdat offset)
        mdat_size = 0
        pos = 24  # moof header (8) + mfhd (16)
        if video:
            samples = [self._avc_sample(p.data) for p in video]
            traf, where = self._video_traf(video, samples, video_end)
            patches.append((pos + where, mdat_size))
            pos += len(traf)
            trafs.append(traf)
            payloads += samples
            mdat_size += sum(map(len, samples))
        if audio:
            assert self.audio is not None
            traf, where = self._audio_traf(audio, self.audio.sample_rate)
            patches.append((pos + where, mdat_size))
            trafs.append(traf)
            payloads += (p.data for p in audio)
            mdat_size += sum(len(p.data) for p in audio)
        moof = bytearray(b"\0\0\0\0moof")  # its size is patched in last
        moof += _pack(">I4sII", 16, b"mfhd", 0, self._seq)
        for traf in trafs:
            moof += traf
        for at, offset in patches:  # data offsets are relative to the moof (base-is-moof)
            moof[at : at + 4] = _pack(">I", len(moof) + 8 + offset)
        moof[0:4] = _pack(">I", len(moof))
        return b"".join([moof, _pack(">I4s", 8 + mdat_size, b"mdat"), *payloads])

    def _avc_sample(self, annexb: bytes) -> bytes:
        drop = self._drop
        out: list[bytes] = []
        for nal in split_annexb(annexb):
            kind = nal[0] & 0x1F
            if kind == NAL_AUD or (kind in _PARAM_SETS and nal in drop):
                continue
            out.append(len(nal).to_bytes(4, "big"))
            out.append(nal)
        if not out:
            raise MalformedMedia("a video access unit holds no picture data")
        return b"".join(out)

    def _video_traf(
        self, video: list[MediaPacket], samples: list[bytes], end: int | None
    ) -> tuple[bytes, int]:
        n = len(video)
        flat: list[int] = []
        for i, p in enumerate(video):
            if i + 1 < n:
                duration = video[i + 1].dts - p.dts
                if duration > 0:
                    self._frame = duration
            elif end is not None and end > p.dts:
                duration = end - p.dts
            else:
                duration = self._frame
            flags = _KEY_FLAGS if p.keyframe else _DELTA_FLAGS
            flat += (max(duration, 0), len(samples[i]), flags, p.pts - p.dts)
        return self._traf(VIDEO_TRACK, video[0].dts, _TRUN_VIDEO, ">" + "IIIi" * n, n, flat)

    def _audio_traf(self, audio: list[MediaPacket], rate: int) -> tuple[bytes, int]:
        n = len(audio)
        times = [p.pts * rate // CLOCK for p in audio]
        flat: list[int] = []
        for i, p in enumerate(audio):
            duration = times[i + 1] - times[i] if i + 1 < n else SAMPLES_PER_FRAME
            flat += (max(duration, 0), len(p.data), _KEY_FLAGS)
        return self._traf(AUDIO_TRACK, times[0], _TRUN_AUDIO, ">" + "III" * n, n, flat)

    @staticmethod
    def _traf(
        track: int, base: int, flags: int, fmt: str, n: int, flat: list[int]
    ) -> tuple[bytes, int]:
        """A ``traf`` and where its trun's data_offset sits in it (patched by the caller)."""
        entries = _pack(fmt, *flat)
        trun_size = 20 + len(entries)
        traf_size = 8 + 16 + 20 + trun_size
        head = _pack(
            ">I4s" "I4sII" "I4sIQ" "I4sIIi",
            traf_size, b"traf",
            16, b"tfhd", 0x020000, track,  # default-base-is-moof
            20, b"tfdt", 1 << 24, max(base, 0),  # version 1: 64-bit baseMediaDecodeTime
            trun_size, b"trun", (1 << 24) | flags, n, 0,
        )  # fmt: skip
        return head + entries, 8 + 16 + 20 + 16
