"""One input segment to one output segment on ``<mid>-out`` while the input still arrives.

``forward`` (pass-through) writes each input chunk to the output segment as it comes; ``effect``
runs ``media.process_stream`` in the live thread pool, fed from the loop through an
``InputPipe``, and writes the muxer's output as it is produced. The output segment is opened at
its first byte. When the input breaks off (``Broken``) or processing fails (``LiveMediaError``)
after output began, the output segment is broken off too (its readers are cut: an aborted body
over HTTP), never closed as if whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from functools import partial

from segmenter import SegmenterError
from segmenter.tsdemux import TsDemuxer

from ..trickle import Channel, LocalSegmentWriter
from .jobs import Broken, InputJob
from .media import InputPipe, SegmentOutput, process_stream
from .params import Luts

__all__ = ["effect", "forward"]


async def forward(job: InputJob, channel: Channel) -> int:
    """Pass the input through; the number of video frames (raises ``Broken``,
    ``TrickleError``)."""
    counter: TsDemuxer | None = TsDemuxer()
    frames = 0
    async with channel.segment_writer() as writer:
        async for chunk in job.chunks():
            writer.write(chunk)
            if counter is not None:
                try:
                    frames += sum(p.kind == "video" for p in counter.feed(chunk))
                except SegmenterError:
                    counter = None  # only the frame count suffers
    if counter is not None:
        frames += sum(p.kind == "video" for p in counter.flush())
    return frames


async def _feed(job: InputJob, pipe: InputPipe) -> None:
    try:
        async for chunk in job.chunks():
            pipe.feed(chunk)
    except Broken:
        pipe.end(broken=True)
    else:
        pipe.end()


async def effect(
    job: InputJob,
    channel: Channel,
    *,
    executor: Executor | None,
    luts: Luts | None,
    size: tuple[int, int] | None,
    preset: str,
) -> SegmentOutput:
    """Run the effect progressively (raises ``Broken``, ``LiveMediaError``, ``TrickleError``)."""
    loop = asyncio.get_running_loop()
    pipe = InputPipe()
    produced: asyncio.Queue[bytes | None] = asyncio.Queue()

    def emit(data: bytes) -> None:  # in the worker thread
        loop.call_soon_threadsafe(produced.put_nowait, data)

    work = partial(process_stream, pipe, emit, luts=luts, size=size, preset=preset)
    feeder = asyncio.create_task(_feed(job, pipe))
    done = loop.run_in_executor(executor, work)
    # scheduled after every emit of the thread (call_soon_threadsafe keeps their order)
    done.add_done_callback(lambda _: produced.put_nowait(None))
    try:
        async with contextlib.AsyncExitStack() as stack:
            writer: LocalSegmentWriter | None = None
            while (data := await produced.get()) is not None:
                if writer is None:
                    writer = await stack.enter_async_context(channel.segment_writer())
                writer.write(data)
            try:
                result = await done
            except Exception:
                if job.broken:
                    raise Broken from None
                raise
            if writer is None:  # nothing came out, yet no error: nothing to publish
                raise Broken
        return result
    finally:
        pipe.end(broken=True)  # a thread still reading ends (no-op once it has finished)
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        if not done.done():
            await asyncio.gather(done, return_exceptions=True)
