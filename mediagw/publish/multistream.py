"""Multistream: push a stored stream's source to its multistream targets (the RTMP outputs
``StoreStreamAuth`` granted; principal ``stream:<id>``), when it is not a live AI stream (live
AI pushes its own output, ``pipelines/live_ai``). A publisher's own ``?rtmpOutput=`` still
applies to live AI only: the gateway is no open relay. One ``RtmpOutput`` per URL: the source's
MPEG-TS segments, copied (never re-encoded), never blocking the stream.
"""

from __future__ import annotations

import asyncio
import logging

from segmenter import Segment

from ..stream.hub import Stream
from .rtmp_out import RtmpOutput

log = logging.getLogger("mediagw.publish.multistream")

__all__ = ["Multistream"]


class Multistream:
    """A hub listener owning the RTMP outputs of each live stream."""

    def __init__(self) -> None:
        self.outputs: dict[str, list[RtmpOutput]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def on_stream_start(self, stream: Stream) -> None:
        request = stream.request
        if not request.outputs or request.pipeline or not request.principal.startswith("stream:"):
            return
        outputs = [RtmpOutput(url, name=stream.id) for url in request.outputs]
        for output in outputs:
            output.start()
        self.outputs[stream.id] = outputs
        log.info("multistream started", extra={"stream": stream.id, "targets": len(outputs)})

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        for output in self.outputs.get(stream.id, ()):
            output.push(segment.data)

    def on_stream_end(self, stream: Stream) -> None:
        for output in self.outputs.pop(stream.id, ()):
            task = asyncio.get_running_loop().create_task(output.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def on_stream_removed(self, stream: Stream) -> None:
        pass

    async def close(self) -> None:
        for outputs in self.outputs.values():
            self._closing.update(asyncio.get_running_loop().create_task(o.close()) for o in outputs)
        self.outputs.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
