"""Two gateway processes on one PostgreSQL database and one Redis act as one gateway: a key made
on A works on B, a key revoked on A is refused on B at once, and a key's request quota holds
across both (the in-process version: tests/platform/test_nodes_gateway.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from nodes_testkit import cluster

N = 20  # requests, over a daily quota of N // 2


async def test_keys_and_quotas_hold_across_two_processes(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as group:
        a, b = group.nodes
        admin = {"Authorization": f"Bearer {group.admin_key}"}
        async with aiohttp.ClientSession(headers=admin) as http:
            body = {"name": "customer", "scopes": ["streams"]}
            async with http.post(f"{a.url}/api/admin/keys", json=body) as resp:
                assert resp.status == 201, await resp.text()
                made = await resp.json()
            plan = {"id": "tight", "name": "Tight", "dailyQuota": N // 2}
            async with http.post(f"{a.url}/api/admin/plans", json=plan) as resp:
                assert resp.status == 201, await resp.text()
            async with http.patch(
                f"{a.url}/api/admin/keys/{made['id']}", json={"planId": "tight"}
            ) as resp:
                assert resp.status == 204, await resp.text()
            other_body = {"name": "to revoke", "scopes": ["streams"]}
            async with http.post(f"{a.url}/api/admin/keys", json=other_body) as resp:
                doomed = await resp.json()

        async def status(node_url: str, key: str) -> int:
            auth = {"Authorization": f"Bearer {key}"}
            async with (
                aiohttp.ClientSession(headers=auth) as http,
                http.get(f"{node_url}/api/stream") as resp,
            ):
                return resp.status

        assert await status(b.url, doomed["key"]) == 200  # made on A, works on B
        async with (
            aiohttp.ClientSession(headers=admin) as http,
            http.delete(f"{a.url}/api/admin/keys/{doomed['id']}") as resp,
        ):
            assert resp.status == 204
        loop = asyncio.get_running_loop()
        revoked_at = loop.time()
        while await status(b.url, doomed["key"]) != 401:
            assert loop.time() - revoked_at < 1.0, "B still takes a key revoked on A"
            await asyncio.sleep(0.05)

        statuses = [await status((a, b)[i % 2].url, made["key"]) for i in range(N)]
        assert statuses.count(200) == N // 2, statuses  # exact: no refill in a daily quota
        assert statuses.count(429) == N // 2, statuses
        commands = 0.0
        for node in (a, b):  # both served: neither node ran without Redis
            async with aiohttp.ClientSession() as http, http.get(f"{node.url}/metrics") as resp:
                text = await resp.text()
            assert "mediagw_redis_failures_total 0.0" in text, node.log_tail()
            commands += _metric(text, "mediagw_redis_commands_total")
        assert commands >= N  # a limiter decision is a command, counted where it was sent


def _metric(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))
