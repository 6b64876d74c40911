"""The Metrics seam's small parts: error codes stay bounded, the failed-auth throttle counts
its refusals, and a gateway's metrics object exposes what it was told (its own registry)."""

from __future__ import annotations

from fractions import Fraction

from mediagw.api.metrics import GatewayMetrics
from mediagw.metrics import ERROR_CODES, error_code
from mediagw.platform.throttle import FailureThrottle
from mediagw.stream.hub import StreamHub
from mediagw.usage import PAYMENT, UsageEvent


def test_error_codes_are_a_fixed_set() -> None:
    assert error_code("non-retryable: payment: no deposit") == "PaymentCreate"
    assert error_code("download failed: 404 (after 3 attempts)") == "DownloadFailed"
    assert error_code("no orchestrator available") == "NoOrchestrators"
    assert error_code("anything new, with a URL https://x/1") == "Other"
    assert error_code(None) == "None"
    codes = {code for _, code in ERROR_CODES} | {"Other", "None"}
    assert len(codes) <= 20


def test_the_throttle_counts_requests_refused_while_blocked() -> None:
    throttle = FailureThrottle(limit=2, window=60, block=300)
    assert throttle.retry_after("1.2.3.4", 0.0) == 0.0
    throttle.failed("1.2.3.4", 1.0)
    throttle.failed("1.2.3.4", 2.0)  # blocked from here
    assert throttle.refused == 0
    assert throttle.retry_after("1.2.3.4", 3.0) > 0
    assert throttle.retry_after("1.2.3.4", 4.0) > 0
    assert throttle.retry_after("5.6.7.8", 4.0) == 0.0
    assert throttle.refused == 2


def test_payments_and_plain_counters_in_gwei_under_go_livepeers_names() -> None:
    a, b = GatewayMetrics(StreamHub(), node_id="a"), GatewayMetrics(StreamHub(), node_id="b")
    a.emit(UsageEvent("s", 1, "", "https://o", PAYMENT, 3, "ticket", Fraction(4_500_000_000)))
    a.orchestrator_swap("s")
    a.rate_limited("api")
    a.webhook_attempt(False)
    text = a.exposition().decode()
    assert "# TYPE livepeer_tickets_sent counter" in text
    assert 'livepeer_tickets_sent{node_id="a",node_type="bctr"} 3.0' in text
    assert 'livepeer_ticket_value_sent{node_id="a",node_type="bctr"} 4.5' in text
    assert 'livepeer_orchestrator_swaps{node_id="a",node_type="bctr"} 1.0' in text
    assert 'mediagw_api_rate_limited_total{node_id="a",node_type="bctr",scope="api"} 1.0' in text
    assert 'mediagw_webhook_deliveries_total{node_id="a",node_type="bctr",outcome="failed"}' in text
    assert "mediagw_usage_wei_total 4.5e+09" in text
    assert "livepeer_tickets_sent{" not in b.exposition().decode()  # its own registry
