"""Play keyframe-aligned MPEG-TS segments to a WHEP source at real-time pace, never re-encoding.

Used for the source rendition of every live stream (``source_whep.py``); the live AI output
arrives progressively and plays access unit by access unit instead (``unit_play.py``). Each
segment is demuxed once (PyAV, in the executor, never on the event loop) into H.264 access
units, which a ``Pacer`` releases at wall-clock speed to one ``EncodedSource``; viewers cost no
encoding. Segments wait in a small queue that drops the oldest
when full, so whoever hands them over (the hub) never waits on viewers.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import av

from webrtc import Pacer, VideoAccessUnit

log = logging.getLogger("mediagw.whep_play")

__all__ = ["MAX_LAG", "PlayStats", "Segments", "VideoSink", "access_units", "offer", "play"]

MAX_LAG = 45_000  # 0.5 s (90 kHz) behind the newest segment: viewers jump ahead

Segments = asyncio.Queue[bytes | None]  # MPEG-TS segments; None ends the play


class VideoSink(Protocol):
    def push_video(self, unit: VideoAccessUnit) -> None: ...


@dataclass
class PlayStats:
    demuxed: int = 0  # segments demuxed into access units
    units: int = 0  # access units released to the source
    skips: int = 0  # times play jumped ahead to the newest segment to stay live
    unplayable: int = 0  # segments PyAV could not demux


def access_units(ts: bytes) -> list[VideoAccessUnit]:
    """The H.264 access units of an MPEG-TS segment (Annex B, 90 kHz), without decoding."""
    units = []
    with av.open(io.BytesIO(ts), mode="r", format="mpegts") as container:
        for packet in container.demux(video=0):
            if packet.size and packet.pts is not None:
                dts = packet.dts if packet.dts is not None else packet.pts
                units.append(VideoAccessUnit(bytes(packet), int(packet.pts), int(dts),
                                             bool(packet.is_keyframe)))  # fmt: skip
    return units


def offer(segments: Segments, item: bytes | None) -> None:
    """Queue ``item`` without waiting: when the player is behind, its oldest segment goes."""
    if segments.full():
        segments.get_nowait()
    segments.put_nowait(item)


async def play(
    sink: VideoSink,
    segments: Segments,
    *,
    executor: Executor | None,
    stats: PlayStats,
    watched: Callable[[], bool] | None = None,
    accept: Callable[[list[VideoAccessUnit]], bool] | None = None,
) -> None:
    """Segments -> access units at real-time pace -> ``sink``, until None (the end) is taken.

    With ``watched``, play also stops (before demuxing anything) at the first segment that
    arrives while ``watched()`` is false: nobody watches, so nothing is demuxed. With ``accept``,
    play stops before releasing a segment whose access units ``accept`` refuses.

    Viewers stay live: when the next segment is already waiting while more than ``MAX_LAG`` of
    the current one is still to be released (a long first segment, a burst after a swap), the
    rest is skipped and play jumps to the newest segment, which starts with a keyframe;
    otherwise the lag would last for the whole stream."""
    loop = asyncio.get_running_loop()
    pacer = Pacer()
    data: bytes | None = await segments.get()
    ending = False  # the end of the stream was taken out of the queue by a skip
    while data is not None:
        if watched is not None and not watched():
            return
        try:
            units = await loop.run_in_executor(executor, access_units, data)
        except Exception as exc:
            log.warning("segment not playable over WHEP", extra={"error": str(exc)})
            stats.unplayable += 1
            units = []
        stats.demuxed += 1
        if accept is not None and not accept(units):
            return
        data = None
        for unit in units:
            if not segments.empty() and units[-1].pts - unit.pts > MAX_LAG:
                waiting = [segments.get_nowait() for _ in range(segments.qsize())]
                ending = None in waiting
                data = next((d for d in reversed(waiting) if d is not None), None)
                stats.skips += 1
                pacer.reset()
                break
            await pacer.wait(unit.pts)
            sink.push_video(unit)
            stats.units += 1
        if data is None and not ending:
            data = await segments.get()
