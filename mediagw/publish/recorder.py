"""Recording: every segment of every stream to disk, with a VOD (EVENT + ENDLIST) playlist.

Layout: ``DIR/<stream id>/<UTC start>/source/<seq>.ts`` and ``.../index.m3u8``. With a
``folder`` function (the platform's per-session recordings), each publish session whose folder
is not None is recorded on its own in ``DIR/<folder>/`` instead, and others not at all. The
playlist is replaced atomically (write + rename) after each segment, so a reader never sees half
a file. Files are written in a thread; a slow disk fills a bounded queue whose overflow is
dropped and counted (and logged), never pushed back into ingest. Only the source is recorded.
The playlist ends with the stream (after its last queued segment); a reconnect continues it with
a discontinuity, as the live playlist does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from segmenter import Segment

from ..stream.hub import Stream
from .playlist import MediaPlaylist, PlaylistEntry

log = logging.getLogger("mediagw.recorder")

__all__ = ["Recorder"]

_END = object()


@dataclass(eq=False)
class _Recording:
    directory: Path
    playlist: MediaPlaylist
    queue: asyncio.Queue[tuple[int, Segment] | object]  # (publish session, segment) or a marker
    task: asyncio.Task[None] | None = None
    dropped: int = 0
    written: int = 0
    errors: list[str] = field(default_factory=list)
    stream: Stream | None = None  # its status names a failing write (``recording_error``)
    # set once the playlist's end is written (or its writer has stopped): ``Recorder.ended``
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Recorder:
    QUEUE = 64

    def __init__(
        self,
        root: str,
        target_duration: float,
        executor: Executor | None = None,
        *,
        folder: Callable[[Stream], str | None] | None = None,
        on_written: Callable[[str, float], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.target_duration = target_duration
        self._executor = executor
        self._folder = folder
        self._on_written = on_written  # (stream id, seconds) per segment written: usage
        self._recs: dict[str, _Recording] = {}

    def on_stream_start(self, stream: Stream) -> None:
        rec = self._recs.get(stream.id)
        directory: Path | None = None
        if self._folder is not None:
            name = self._folder(stream)
            if rec is not None:  # the previous session's recording: ended, its writer stops
                self.on_stream_removed(stream)
                rec = None
            if name is None:
                return
            directory = self.root / name
        if rec is None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(stream.created_at))
            directory = directory or self.root / stream.id / stamp
            playlist = MediaPlaylist(self.target_duration, window=0, playlist_type="EVENT")
            rec = _Recording(directory, playlist, asyncio.Queue(), stream=stream)
            rec.task = asyncio.get_running_loop().create_task(
                self._writer(stream.id, rec), name=f"recorder:{stream.id}"
            )
            self._recs[stream.id] = rec
        else:  # a reconnect continues the recording: it ends again with this publish
            rec.ended.clear()

    def ended(self, stream_id: str) -> asyncio.Event | None:
        """Set once the current recording of ``stream_id`` has its end written (its last
        queued segment before it): the recording plays to its end. None: not recorded."""
        rec = self._recs.get(stream_id)
        return rec.ended if rec is not None else None

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        rec = self._recs.get(stream.id)
        if rec is None:
            return
        if rec.queue.qsize() >= self.QUEUE:
            rec.dropped += 1
            log.warning("recording too slow, segment dropped", extra={"stream": stream.id})
            return
        rec.queue.put_nowait((stream.stats.sessions, segment))

    def on_stream_end(self, stream: Stream) -> None:
        rec = self._recs.get(stream.id)
        if rec is not None:
            rec.queue.put_nowait(_END)  # markers bypass the segment bound; after the last segment

    def on_stream_removed(self, stream: Stream) -> None:
        rec = self._recs.pop(stream.id, None)
        if rec is not None and rec.task is not None:
            rec.queue.put_nowait(None)

    def directory(self, stream_id: str) -> Path | None:
        rec = self._recs.get(stream_id)
        return rec.directory if rec else None

    async def close(self) -> None:
        tasks = []
        for rec in self._recs.values():
            if rec.task is not None:
                rec.queue.put_nowait(None)
                tasks.append(rec.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._recs.clear()

    async def _writer(self, stream_id: str, rec: _Recording) -> None:
        try:
            await self._write(stream_id, rec)
        finally:
            rec.ended.set()  # stopped: nothing more will be written

    async def _write(self, stream_id: str, rec: _Recording) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await rec.queue.get()
            if item is None:
                return
            try:
                if item is _END:
                    rec.playlist.end()
                    text = rec.playlist.render()
                    try:
                        await loop.run_in_executor(
                            self._executor, _write_playlist, rec.directory, text
                        )
                    finally:
                        rec.ended.set()
                    continue
                assert isinstance(item, tuple)
                session, seg = item
                entry = PlaylistEntry(
                    seg.seq,
                    seg.duration,
                    f"source/{seg.seq}.ts",
                    seg.meta.get("pdt", 0.0),
                    seg.discontinuity,
                )
                rec.playlist.add(entry, session)
                text = rec.playlist.render()
                await loop.run_in_executor(
                    self._executor, _write_segment, rec.directory, seg.seq, seg.data, text
                )
                rec.written += 1
                if rec.stream is not None:
                    rec.stream.recording_error = None
                if self._on_written is not None:
                    self._on_written(stream_id, seg.duration)
            except ValueError as exc:  # the playlist refused it (after the end): not recorded
                log.warning("segment not recorded", extra={"stream": stream_id, "error": str(exc)})
            except OSError as exc:
                rec.errors.append(str(exc))
                if rec.stream is not None:
                    rec.stream.recording_error = f"recording write failed: {exc}"
                log.error(
                    "recording write failed",
                    extra={"stream": stream_id, "error": str(exc), "dir": str(rec.directory)},
                )


def _write_playlist(directory: Path, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "index.m3u8.tmp"
    tmp.write_text(text)
    os.replace(tmp, directory / "index.m3u8")


def _write_segment(directory: Path, seq: int, data: bytes, playlist: str) -> None:
    seg_dir = directory / "source"
    seg_dir.mkdir(parents=True, exist_ok=True)
    (seg_dir / f"{seq}.ts").write_bytes(data)
    _write_playlist(directory, playlist)
