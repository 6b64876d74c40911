import json

import pytest

from mediagw.pipelines.live_ai.events import EventError, RunnerEvents, parse_event
from mediagw.pipelines.live_ai.monitor import HealthMonitor, SwapLimiter, SwapReason


def test_slow_orchestrator_is_the_fourth_segment_in_flight() -> None:
    m = HealthMonitor(started_at=0)
    assert [m.input_begun(t) for t in (1, 2, 3)] == [None, None, None]
    assert m.input_begun(4) is SwapReason.SLOW and SwapReason.SLOW.suspends
    m.input_done()
    m.input_done()
    assert m.input_begun(5) is None


def test_output_watchdog_fires_only_while_input_is_fresh() -> None:
    m = HealthMonitor(started_at=0, output_timeout=30)
    m.event(29)
    m.input_begun(29)
    assert m.check(29.9) is None
    assert m.check(30) is SwapReason.NO_OUTPUT
    m.output(30)
    m.event(40)
    assert m.check(45) is None
    # input stopped long ago: a quiet output is the publisher's doing, not the O's
    stale = HealthMonitor(started_at=0, output_timeout=30)
    stale.input_begun(1)
    stale.event(40)
    assert stale.check(45) is None


def test_events_heartbeat() -> None:
    m = HealthMonitor(started_at=100)
    assert m.check(129) is None
    assert m.check(130) is SwapReason.NO_EVENTS and not SwapReason.NO_EVENTS.suspends
    m.event(130)
    assert m.check(159) is None


def test_payment_failures_swap_after_three_or_any_4xx() -> None:
    m = HealthMonitor(started_at=0)
    assert m.payment(False) is None and m.payment(False) is None
    assert m.payment(False) is SwapReason.PAYMENT_FAILED
    m.payment(True)
    assert m.payment(False, client_error=True) is SwapReason.PAYMENT_FAILED


def test_channel_gone_is_sticky() -> None:
    m = HealthMonitor(started_at=0)
    assert m.channel_gone(control=True) is SwapReason.CONTROL_FAILED
    assert m.check(1) is SwapReason.CONTROL_FAILED


def test_swap_limit_two_quick_swaps_then_end() -> None:
    s = SwapLimiter(started_at=0)
    assert s.swap(60, "a")  # < 3 min after start: 1
    assert s.swap(100, "b")  # 2
    assert not s.swap(150, "c")  # 3 > 2: end the stream
    later = SwapLimiter(started_at=0)
    assert later.swap(60, "a") and later.swap(100, "b")
    assert later.swap(100 + 181, "c")  # after a quiet 3 min the counter resets to 1
    assert later.count == 1


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (
            b'{"event": {"type": "status"}, "queue_event_type": "ai_stream_status"}',
            "ai_stream_status",
        ),
        (b'{"type": "restart"}', "ai_stream_events"),
    ],
)
def test_parse_event(raw: bytes, kind: str) -> None:
    assert parse_event(raw)[0] == kind


@pytest.mark.parametrize("raw", [b"nope", b"[]", b'{"event": 3}', b" " * (300 * 1024)])
def test_parse_event_errors(raw: bytes) -> None:
    with pytest.raises(EventError):
        parse_event(raw)


def test_status_coalescing_keeps_sticky_fields() -> None:
    ev = RunnerEvents()
    first = {
        "type": "status",
        "state": "ONLINE",
        "inference_status": {"last_params": {"prompt": "a"}, "fps": 30},
    }
    ev.add(
        *parse_event(json.dumps({"event": first, "queue_event_type": "ai_stream_status"}).encode()),
        {"stream_id": "s"},
    )
    ev.add(
        "ai_stream_status",
        {
            "type": "status",
            "state": "DEGRADED_INPUT",
            "inference_status": {"fps": 12, "last_params": None},
        },
        {},
    )
    assert ev.status["state"] == "DEGRADED_INPUT"
    assert ev.status["inference_status"] == {"fps": 12, "last_params": {"prompt": "a"}}
    for i in range(30):
        ev.add("ai_stream_events", {"type": "error", "n": i}, {})
    assert len(ev.recent) == 20 and ev.recent[-1]["n"] == 29
