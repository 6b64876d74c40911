"""What the runner writes on ``<mid>-events`` (live-AI spec §7; ai-runner ``process/status.py``,
``streamer/streamer.py``, ``trickle/media.py``). Sans-IO.

Each trickle segment holds one JSON object ``{"event": {...}, "queue_event_type": ...}``:

- ``status`` (``ai_stream_status``) every status interval: ``pipeline``, ``start_time``,
  ``state``, ``last_state_update_time``, ``input_status{last_input_time, fps}``,
  ``inference_status{last_output_time, fps, last_params_update_time, last_params,
  last_params_hash, last_error_time, last_error, last_restart_time, last_restart_logs,
  restart_count}``, ``timestamp``, ``last_status_timestamp``. Times are unix milliseconds.
  ``last_params`` is sent once after each change, then null (the gateway keeps the last
  non-null value). ``state``: ``ONLINE`` while input arrived within the last
  ``max(5 s, 2 x interval)``, ``OFFLINE`` before the first input or after it stopped,
  ``DEGRADED_INFERENCE`` when an error happened since the previous status;
- ``error`` (``ai_stream_events``): ``pipeline``, ``message``, ``time`` (unix seconds);
- ``runner_receive_first_ingest_segment`` / ``runner_send_first_processed_segment``
  (``stream_trace``): ``timestamp``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .params import params_hash

__all__ = [
    "EVENTS_QUEUE",
    "STATUS_QUEUE",
    "TRACE_QUEUE",
    "LiveStatus",
    "encode_event",
    "error_event",
    "trace_event",
]

STATUS_QUEUE = "ai_stream_status"
EVENTS_QUEUE = "ai_stream_events"
TRACE_QUEUE = "stream_trace"
MIN_ONLINE_WINDOW = 5.0


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


def encode_event(event: dict[str, Any], queue: str) -> bytes:
    return json.dumps({"event": event, "queue_event_type": queue}).encode()


def error_event(pipeline: str, message: str, now: float) -> dict[str, Any]:
    return {"type": "error", "pipeline": pipeline, "message": message, "time": now,
            "timestamp": _ms(now)}  # fmt: skip


def trace_event(kind: str, now: float) -> dict[str, Any]:
    return {"type": kind, "timestamp": _ms(now)}


@dataclass
class LiveStatus:
    """A session's status, updated by its tasks; ``report(now)`` makes the next status event.
    ``now`` values are unix seconds."""

    pipeline: str
    start_time: float
    interval: float
    state: str = "OFFLINE"
    last_state_update_time: float | None = None
    last_input_time: float | None = None
    last_output_time: float | None = None
    last_params: dict[str, Any] | None = None
    last_params_update_time: float | None = None
    last_error: str | None = None
    last_error_time: float | None = None
    params_sent: bool = False
    frames_in: int = 0
    frames_out: int = 0
    _window_start: float | None = None
    _errors_in_window: int = 0
    _last_report: float | None = None

    def input(self, frames: int, now: float) -> None:
        self.last_input_time = now
        self.frames_in += frames

    def output(self, frames: int, now: float) -> None:
        self.last_output_time = now
        self.frames_out += frames

    def params(self, raw: dict[str, Any], now: float, *, initial: bool = False) -> None:
        self.last_params = raw
        self.params_sent = False
        if not initial:
            self.last_params_update_time = now

    def error(self, message: str, now: float) -> None:
        self.last_error, self.last_error_time = message, now
        self._errors_in_window += 1

    def _state(self, now: float) -> str:
        window = max(MIN_ONLINE_WINDOW, 2 * self.interval)
        if self.last_input_time is None or now - self.last_input_time > window:
            return "OFFLINE"
        return "DEGRADED_INFERENCE" if self._errors_in_window else "ONLINE"

    def report(self, now: float) -> dict[str, Any]:
        state = self._state(now)
        if state != self.state or self.last_state_update_time is None:
            self.state, self.last_state_update_time = state, now
        start = self._window_start if self._window_start is not None else self.start_time
        elapsed = max(now - start, 1e-6)
        fps_in, fps_out = self.frames_in / elapsed, self.frames_out / elapsed
        self.frames_in = self.frames_out = self._errors_in_window = 0
        self._window_start = now
        params = None if self.params_sent else self.last_params
        self.params_sent = True
        previous = self._last_report
        self._last_report = now
        return {
            "type": "status",
            "pipeline": self.pipeline,
            "start_time": _ms(self.start_time),
            "state": self.state,
            "last_state_update_time": _ms(self.last_state_update_time),
            "input_status": {"last_input_time": _ms(self.last_input_time), "fps": fps_in},
            "inference_status": {
                "last_output_time": _ms(self.last_output_time),
                "fps": fps_out,
                "last_params_update_time": _ms(self.last_params_update_time),
                "last_params": params,
                "last_params_hash": params_hash(self.last_params)
                if self.last_params is not None
                else None,
                "last_error_time": _ms(self.last_error_time),
                "last_error": self.last_error,
                "last_restart_time": None,
                "last_restart_logs": None,
                "restart_count": 0,
            },
            "timestamp": _ms(now),
            "last_status_timestamp": _ms(previous if previous is not None else self.start_time),
        }
