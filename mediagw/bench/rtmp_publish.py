"""An RTMP publisher of numbered frames for ``mediagw bench live`` (the RTMP glass-to-glass phase).

Frames that show their own number (:mod:`.framecode`) are encoded with libx264 (``zerolatency``,
no B-frames, a keyframe every 30 frames: a 1 s GOP at 30 fps) and pushed by FFmpeg's own RTMP
client (PyAV, ``format="flv"``), paced at real time, in a thread: encoding never shares an event
loop. A frame's capture time is when it is handed to the encoder.
"""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import av

from .framecode import make_frame

__all__ = ["RtmpNumbered"]

FPS = 30


class RtmpNumbered:
    """Push numbered frames to ``url`` until :meth:`stop`; ``captured[n]`` (``time.monotonic``)
    and ``captured_wall[n]`` (``time.time``) are when frame n went to the encoder."""

    def __init__(self, url: str, width: int, height: int, keyint: int = FPS) -> None:
        self.url, self.width, self.height, self.keyint = url, width, height, keyint
        self.captured: list[float] = []
        self.captured_wall: list[float] = []
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtmp-numbered", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with av.open(self.url, mode="w", format="flv") as out:
                stream = out.add_stream("libx264", rate=FPS)
                ctx = stream.codec_context
                ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, "yuv420p"
                ctx.time_base = Fraction(1, FPS)
                ctx.options = {
                    "preset": "ultrafast",
                    "tune": "zerolatency",
                    "bf": "0",
                    "g": str(self.keyint),
                    "x264-params": f"keyint={self.keyint}:min-keyint={self.keyint}:scenecut=0",
                }
                started = time.monotonic()
                n = 0
                while not self._stop.is_set():
                    delay = started + n / FPS - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    frame = make_frame(n, self.width, self.height)
                    frame.pts, frame.time_base = n, Fraction(1, FPS)
                    self.captured.append(time.monotonic())
                    self.captured_wall.append(time.time())
                    for packet in stream.encode(frame):
                        out.mux(packet)
                    n += 1
                for packet in stream.encode(None):
                    out.mux(packet)
        except Exception as exc:  # the gateway refused or went away: the client reports it
            self.error = f"{type(exc).__name__}: {exc}"
