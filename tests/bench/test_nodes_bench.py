"""A short slice of ``mediagw bench nodes``: the same pushes to one node on SQLite and to two
nodes on PostgreSQL + Redis; every push arrives, and the report's counts are those of each setup
(SQL statements in both, no Redis command without Redis). Their sizes are the benchmark's to
measure, not a test's."""

from __future__ import annotations

import json
from pathlib import Path

from mediatools import need_tool
from nodes_testkit import pg_admin_url, redis_database

from mediagw.bench.nodes import run_nodes_bench

SECONDS = 2.0  # each push


async def test_the_nodes_bench_reports_shared_state_per_stream_minute(tmp_path: Path) -> None:
    need_tool("ffmpeg")
    out = tmp_path / "bench.json"
    async with redis_database() as redis:
        code = await run_nodes_bench(
            streams=2,
            seconds=SECONDS,
            postgres=pg_admin_url(),
            redis=redis,
            json_out=str(out),
            settle=0.5,
        )
    result = json.loads(out.read_text())
    assert code == 0, result
    one, two = result["one_node_sqlite"], result["two_nodes_postgresql_redis"]
    assert one["nodes"] == 1 and two["nodes"] == 2
    assert one["publishers_failed"] == two["publishers_failed"] == 0
    assert one["redis_commands"] == 0  # no Redis, no command (two's: what streams cost there)
    assert one["store_statements"] > 0 and two["store_statements"] > 0  # sessions are written
    for phase in (one, two):
        total = phase["store_statements"] + phase["redis_commands"]
        assert phase["round_trips_per_stream_minute"] == round(total / (2 * SECONDS / 60), 1)
        assert phase["cpu_seconds"] > 0
    assert result["cpu_ratio_vs_one_node"] > 0
