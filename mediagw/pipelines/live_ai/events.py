"""The events channel (`<mid>-events`, live-ai spec §7): parse, coalesce, keep the latest status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventError", "RunnerEvents", "parse_event"]

MAX_EVENT_BYTES = 256 * 1024
_STICKY = ("last_restart_logs", "last_params")  # sent once by the runner; keep the last non-null


class EventError(ValueError):
    """An events-channel segment that is not a JSON event."""


def parse_event(data: bytes) -> tuple[str, dict[str, Any]]:
    """-> (queue_event_type, event). A bare object without ``event`` is an ai_stream_events one."""
    if len(data) > MAX_EVENT_BYTES:
        raise EventError(f"event of {len(data)} bytes is over the {MAX_EVENT_BYTES} limit")
    try:
        obj = json.loads(data)
    except RecursionError:
        raise EventError("event is JSON nested too deeply") from None
    except ValueError as exc:
        raise EventError(f"event is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EventError("event is not a JSON object")
    if "event" in obj:
        event = obj["event"]
        if not isinstance(event, dict):
            raise EventError("'event' is not an object")
        kind = obj.get("queue_event_type") or "ai_stream_events"
        return str(kind), event
    return "ai_stream_events", obj


@dataclass
class RunnerEvents:
    """What the gateway shows in the status API: the latest status, coalesced, and a few events."""

    status: dict[str, Any] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)
    keep: int = 20
    count: int = 0

    def add(self, kind: str, event: dict[str, Any], extra: dict[str, Any]) -> None:
        self.count += 1
        event = {**event, **extra}
        if kind == "ai_stream_status" or event.get("type") == "status":
            inference = dict(event.get("inference_status") or {})
            previous = self.status.get("inference_status") or {}
            for key in _STICKY:
                if inference.get(key) is None and previous.get(key) is not None:
                    inference[key] = previous[key]
            if inference:
                event["inference_status"] = inference
            self.status = event
            return
        self.recent.append(event)
        del self.recent[: max(0, len(self.recent) - self.keep)]
