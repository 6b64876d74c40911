"""When the WHIP ingest asks a browser for a keyframe (WhipGateway._pump, with stand-ins for
the session and the publisher; the real ones run end to end in tests/e2e/test_whip_ingest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from mediagw.ingest.whip import WhipGateway
from segmenter import Segmenter
from webrtc import VideoAccessUnit

FRAME = 3000  # 30 fps in 90 kHz ticks


class Session:
    """Frames at 30 fps; keyframes at the given frame numbers; records keyframe requests."""

    def __init__(self, frames: int, keys: set[int], at_frame: dict[int, Any] | None = None):
        self.frames, self.keys = frames, keys
        self.at_frame = at_frame or {}  # frame number -> called before it is yielded
        self.asked: list[int] = []  # frame numbers at which a keyframe was requested
        self._at = 0

    async def __aiter__(self) -> AsyncIterator[VideoAccessUnit]:
        for i in range(self.frames):
            self._at = i
            if i in self.at_frame:
                self.at_frame[i]()
            yield VideoAccessUnit(b"", i * FRAME, i * FRAME, i in self.keys)

    def request_keyframe(self) -> None:
        self.asked.append(self._at)

    async def close(self, reason: str) -> None:
        pass


class Publisher:
    def __init__(self, target: float) -> None:
        self.stream = SimpleNamespace(id="s", segmenter=Segmenter(target))

    async def unit(self, *args: Any) -> None:
        pass

    async def close(self, error: str | None) -> None:
        pass


async def _pump(session: Session, target: float, publisher: Publisher | None = None) -> None:
    gateway: Any = SimpleNamespace(audio_dropped=0, audio_packets=0, audio_bad_packets=0)
    demuxer = SimpleNamespace(audio_stats=SimpleNamespace(packets=0, bad_packets=0),
                              audio_error=None)  # fmt: skip
    publisher = publisher or Publisher(target)
    await WhipGateway._pump(gateway, session, publisher, demuxer)  # type: ignore[arg-type]


async def test_asks_one_frame_before_the_target_and_not_again_when_it_comes() -> None:
    session = Session(90, keys={0, 30, 60})  # the browser answers at once: keyframe at 1 s
    await _pump(session, target=1.0)
    assert session.asked == [29, 59, 89]  # the frame before each 1 s mark


async def test_asks_again_when_the_keyframe_does_not_come() -> None:
    session = Session(60, keys={0})  # the browser ignores the requests
    await _pump(session, target=1.0)
    # first at frame 29, then every 0.3 s (9 frames) until a keyframe arrives
    assert session.asked == [29, 38, 47, 56], session.asked


async def test_the_target_is_read_per_frame() -> None:
    publisher = Publisher(2.0)
    # the stream goes to live AI at frame 5, which shortens its segments to 0.5 s
    session = Session(
        30, keys={0, 15}, at_frame={5: lambda: publisher.stream.segmenter.set_target(0.5)}
    )
    await _pump(session, target=2.0, publisher=publisher)
    assert session.asked == [14, 29], session.asked
