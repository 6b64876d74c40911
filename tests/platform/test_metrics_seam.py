"""The Metrics seam's small parts: error codes stay bounded, the failed-auth throttle counts
its refusals, and a gateway's metrics object exposes what it was told (its own registry)."""

from __future__ import annotations

from fractions import Fraction

from mediagw.api.metrics import GatewayMetrics
from mediagw.metrics import ERROR_CODES, error_code
from mediagw.platform.throttle import FailureThrottle
from mediagw.stream.hub import StreamHub
from mediagw.usage import PAYMENT, UsageEvent
from segmenter import Segment


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


def test_per_stream_series_go_when_the_hub_forgets_the_stream() -> None:
    """With -metricsPerStream every stream name is a label set; a flood of publishes under
    fresh names must not leave them behind once their ended streams are swept."""
    now = [0.0]
    hub = StreamHub(ended_ttl=10, clock=lambda: now[0])
    metrics = GatewayMetrics(hub, node_id="a", per_stream=True)
    hub.add_listener(metrics)
    segment = Segment(0, b"\x47" * 188, 0, 180_000, True, None, None, 60, 0)
    for i in range(50):
        stream = hub.begin_publish(f"gone{i}")
        hub.add_segment(stream, segment)
        metrics.segment_uploaded(stream.id, "https://o", 0.1)
        metrics.segment_transcode_failed(stream.id, "Other")
        metrics.orchestrator_swap(stream.id)
        hub.end_publish(stream)
    kept = hub.begin_publish("kept")
    metrics.segment_uploaded(kept.id, "https://o", 0.1)
    metrics.orchestrator_swap(kept.id)
    now[0] = 11.0
    assert len(hub.sweep()) == 50
    text = metrics.exposition().decode()
    assert 'manifest_id="gone' not in text
    assert 'manifest_id="kept"' in text  # a stream still known keeps its series
    assert list(metrics._stream_series) == ["kept"]
    assert all(labels[2] == "kept" for _, labels in metrics._plain)


def test_the_workers_series_merge_into_one_valid_exposition() -> None:
    """``-workers N``: each worker's text format under one HELP/TYPE per family, every sample
    labelled with its worker, parsed back by prometheus-client's own parser; a worker that did
    not answer is ``mediagw_worker_up 0`` and has no series."""
    from prometheus_client.parser import text_string_to_metric_families

    from mediagw.api.worker_metrics import merge_expositions

    one, two = GatewayMetrics(StreamHub(), node_id="a"), GatewayMetrics(StreamHub(), node_id="b")
    one.emit(UsageEvent("s", 1, "", "https://o", PAYMENT, 3, "ticket", Fraction(10**9)))
    two.emit(UsageEvent("s", 1, "", "https://o", PAYMENT, 4, "ticket", Fraction(10**9)))
    for m in (one, two):
        m.segment_uploaded("s", "https://o", 0.3)  # a histogram: _bucket/_sum/_count samples
    merged = merge_expositions([("1", one.exposition()), ("2", two.exposition()), ("3", None)])

    families = {f.name: f for f in text_string_to_metric_families(merged.decode())}
    heads = [line for line in merged.split(b"\n") if line.startswith(b"# TYPE ")]
    assert len(heads) == len(set(heads)) == len(families)  # one TYPE line per family
    sent = {s.labels["worker"]: s.value for s in families["livepeer_tickets_sent"].samples}
    assert sent == {"1": 3.0, "2": 4.0}
    assert families["livepeer_tickets_sent"].type == "counter"
    for family in families.values():
        for sample in family.samples:
            assert sample.labels.get("worker") in {"1", "2", "3"}, (family.name, sample)
            assert sample.labels["worker"] != "3" or family.name == "mediagw_worker_up"
    up = {s.labels["worker"]: s.value for s in families["mediagw_worker_up"].samples}
    assert up == {"1": 1.0, "2": 1.0, "3": 0.0}
    counts = [s for s in families["livepeer_upload_time_seconds"].samples
              if s.name.endswith("_count")]  # fmt: skip
    assert sorted(s.labels["worker"] for s in counts) == ["1", "2"]
    # the labels a sample already had stay, after the worker's
    assert b'livepeer_tickets_sent{worker="2",node_id="b",node_type="bctr"} 4.0' in merged


def test_a_sample_without_labels_gets_the_worker_label() -> None:
    from mediagw.api.worker_metrics import merge_expositions

    text = b"# HELP x_total doc\n# TYPE x_total counter\nx_total 2.0\n# TYPE y gauge\ny{} 1\n"
    merged = merge_expositions([("1", text), ("2", text)])
    assert merged.count(b"# TYPE x_total counter") == 1
    assert b'x_total{worker="1"} 2.0\nx_total{worker="2"} 2.0' in merged
    assert b'y{worker="2"} 1' in merged


def test_a_worker_answering_something_else_counts_as_down() -> None:
    """A reply that is not the text format (a page from whatever took the port) is not merged:
    that worker is ``mediagw_worker_up 0``, the others' series are all there."""
    from mediagw.api.worker_metrics import merge_expositions

    text = b"# HELP x_total doc\n# TYPE x_total counter\nx_total 2.0\n"
    merged = merge_expositions([("1", text), ("2", b"<html>not metrics</html>\n")])
    assert b'x_total{worker="1"} 2.0' in merged and b"html" not in merged
    assert b'mediagw_worker_up{worker="1"} 1' in merged
    assert b'mediagw_worker_up{worker="2"} 0' in merged
    merged = merge_expositions([("1", text), ("2", b"Not Found\n")])
    assert b"Not" not in merged and b'mediagw_worker_up{worker="2"} 0' in merged
