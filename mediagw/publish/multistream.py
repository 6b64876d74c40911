"""Multistream: push a stored stream's source to its multistream targets (the RTMP outputs
``StoreStreamAuth`` granted; principal ``stream:<id>``), when it is not a live AI stream (live
AI pushes its own output, ``pipelines/live_ai``). A publisher's own ``?rtmpOutput=`` still
applies to live AI only: the gateway is no open relay. One ``RtmpOutput`` per URL: the source's
MPEG-TS segments, copied (never re-encoded), never blocking the stream.

Each output's transitions (``connected``, ``error``, ``disconnected``) go to ``on_event`` with
the stored target the URL came from (``targets``: playback id -> URL -> ``{"id", "name",
"profile"}``, given by the platform); an output without a known target reports nothing. The
URL itself is never reported nor logged: it holds the destination's stream key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from segmenter import Segment

from ..stream.hub import Stream
from .rtmp_out import OutputEvent, RtmpOutput

log = logging.getLogger("mediagw.publish.multistream")

__all__ = ["Multistream", "TargetEvent"]

# (playback id, "connected" | "error" | "disconnected", the target, redacted error text or "")
TargetEvent = Callable[[str, str, Mapping[str, Any], str], None]


class Multistream:
    """A hub listener owning the RTMP outputs of each live stream."""

    def __init__(
        self,
        targets: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
        on_event: TargetEvent | None = None,
        *,
        allow_private: bool = False,
    ) -> None:
        self.targets = targets if targets is not None else {}
        self.allow_private = allow_private  # targets on loopback / private addresses (SSRF)
        self.on_event = on_event
        self.outputs: dict[str, list[RtmpOutput]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def on_stream_start(self, stream: Stream) -> None:
        request = stream.request
        if not request.outputs or request.pipeline or not request.principal.startswith("stream:"):
            return
        known = self.targets.get(stream.id, {})
        outputs = [
            RtmpOutput(
                url,
                name=stream.id,
                on_event=self._reporter(stream.id, known.get(url)),
                allow_private=self.allow_private,
            )
            for url in request.outputs
        ]
        for output in outputs:
            output.start()
        self.outputs[stream.id] = outputs
        log.info("multistream started", extra={"stream": stream.id, "targets": len(outputs)})

    def _reporter(self, stream_id: str, target: Mapping[str, Any] | None) -> OutputEvent | None:
        on_event = self.on_event
        if on_event is None or target is None:
            return None
        info = {"id": target.get("id", ""), "name": target.get("name", ""),
                "profile": target.get("profile", "source")}  # fmt: skip

        def report(event: str, error: str) -> None:
            on_event(stream_id, event, info, error)

        return report

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
