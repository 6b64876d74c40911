"""The orchestrator scoreboard alone: nearest-rank percentiles over a bounded window, success
rate, swaps and suspensions per orchestrator, what the pools know merged in, and its bound on
how many orchestrators it keeps."""

from __future__ import annotations

from pool.pool_testkit import make_info, session

from mediagw.pool import OrchSession
from mediagw.pool.scoreboard import WINDOW, Scoreboard, percentile


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(reversed(values), 100) == 100.0
    assert percentile([3.0], 99) == 3.0


def test_latency_and_success_come_from_the_last_window_of_attempts() -> None:
    board = Scoreboard()
    o = session("o1", region="eu")
    for i in range(WINDOW):  # old, slow successes: they leave the window
        board.attempt(o, ok=True, seconds=10.0, now=float(i))
    for i in range(WINDOW // 2):
        board.attempt(o, ok=True, seconds=0.1 * (1 + i % 10), now=1000.0 + i)
        board.attempt(o, ok=False, seconds=5.0, now=1000.0 + i, error="timeout")
    (row,) = board.rows(now=1200.0)
    assert row["orchestrator"] == "https://o1-t:8935" and row["url"] == "https://o1:8935"
    assert row["region"] == "eu"
    assert row["attempts"] == 2 * WINDOW and row["successes"] == WINDOW + WINDOW // 2
    assert row["window"] == WINDOW and row["success_rate"] == 0.5
    # the latency window holds successes only: the last WINDOW of them, half old (10 s)
    assert row["latency_p50_s"] == 1.0 and row["latency_p99_s"] == 10.0
    assert row["last_error"] == "timeout" and row["last_attempt_ago_s"] == 101.0


def test_swaps_suspensions_and_what_the_pools_hold_now() -> None:
    board = Scoreboard()
    a = OrchSession("https://a:8935", make_info(transcoder="https://a-t:8935", price=(3, 2)))
    b = session("b")
    board.attempt(a, ok=True, seconds=0.2, now=1.0)
    board.attempt(a, ok=False, seconds=0.2, now=2.0, suspended=True, error="orchestrator error")
    board.swap("https://a-t:8935")
    board.swap("https://never-seen:8935")  # unknown: ignored, no row
    rows = board.rows([b, b], ["https://a:8935"], now=3.0)
    by = {r["orchestrator"]: r for r in rows}
    assert set(by) == {"https://a-t:8935", "https://b-t:8935"}
    assert by["https://a-t:8935"]["swaps"] == 1 and by["https://a-t:8935"]["suspensions"] == 1
    assert by["https://a-t:8935"]["suspended_in"] == 1 and by["https://a-t:8935"]["pools"] == 0
    assert by["https://a-t:8935"]["price_wei_per_pixel"] == "1.5"
    # in two streams' pools, never tried: listed with no figures
    assert by["https://b-t:8935"]["pools"] == 2 and by["https://b-t:8935"]["attempts"] == 0
    assert by["https://b-t:8935"]["success_rate"] is None
    assert by["https://b-t:8935"]["latency_p50_s"] is None
    assert len(board) == 1  # rows() wrote nothing


def test_at_most_max_orchestrators_the_least_recent_goes() -> None:
    board = Scoreboard(max_orchestrators=3)
    for name in ("o1", "o2", "o3"):
        board.attempt(session(name), ok=True, seconds=0.1, now=0.0)
    board.attempt(session("o1"), ok=True, seconds=0.1, now=1.0)  # o1 is recent again
    board.attempt(session("o4"), ok=True, seconds=0.1, now=2.0)
    assert len(board) == 3
    assert [r["orchestrator"] for r in board.rows()] == [
        "https://o4-t:8935", "https://o1-t:8935", "https://o3-t:8935",
    ]  # fmt: skip
