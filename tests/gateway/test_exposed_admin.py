"""On an exposed ``-httpAddr`` (0.0.0.0), ``/metrics`` and the admin API never answer a client
on another address without a key: ``/metrics`` without ``-metricsKey`` serves this host's
loopback clients only (403 naming the flag otherwise), with it the key; ``/api/admin`` always
needs an admin API key, and so does ``/streams`` (every tenant's streams) from any client, while
a loopback gateway keeps it open. Real sockets: the client connects from this host's non-loopback
address."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import aiohttp
import pytest

from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.platform import keys
from webrtc import detect_host_addresses


def _outside_address() -> str:
    for addr in detect_host_addresses():
        ip = ipaddress.ip_address(addr)
        if ip.version == 4 and not ip.is_loopback:
            return addr
    pytest.skip("no non-loopback IPv4 interface to connect from")


async def _get(url: str, key: str = "") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize("metrics_key", ["", "s3cret-metrics"])
async def test_metrics_and_admin_need_a_key_from_outside(tmp_path: Path, metrics_key: str) -> None:
    outside = _outside_address()
    gw = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="0.0.0.0:0",
                          data_dir=str(tmp_path), metrics_key=metrics_key))  # fmt: skip
    await gw.start()
    try:
        local, remote = f"http://127.0.0.1:{gw.http_port}", f"http://{outside}:{gw.http_port}"
        status, body = await _get(f"{remote}/metrics")
        assert status in (401, 403) and "-metricsKey" in body and "livepeer_" not in body
        if metrics_key:
            assert (await _get(f"{remote}/metrics", metrics_key))[0] == 200
            assert (await _get(f"{local}/metrics"))[0] == 401  # the key, from anywhere
        else:
            assert (await _get(f"{local}/metrics"))[0] == 200
        assert gw.api is not None
        async with aiohttp.ClientSession() as http:
            for route in gw.api.routes:  # every keyed route of /api, the admin ones included
                if route.scope is None:
                    continue
                url = remote + "/api" + re.sub(r"\{[^}]+\}", "x", route.path)
                async with http.request(route.method, url, json={}) as resp:
                    assert resp.status in (401, 429), (route.method, route.path, resp.status)
    finally:
        await gw.stop()


async def test_streams_needs_an_admin_key_on_an_exposed_address(tmp_path: Path) -> None:
    outside = _outside_address()
    exposed = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="0.0.0.0:0",
                               data_dir=str(tmp_path / "exposed")))  # fmt: skip
    local = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0",
                             data_dir=str(tmp_path / "local")))  # fmt: skip
    await exposed.start()
    await local.start()
    try:
        assert exposed.store is not None
        _, admin = await keys.create_key(exposed.store, "ops", ["admin"])
        _, tenant = await keys.create_key(exposed.store, "app", ["streams"])
        for base in (
            f"http://{outside}:{exposed.http_port}",
            f"http://127.0.0.1:{exposed.http_port}",
        ):
            status, body = await _get(f"{base}/streams")
            assert status == 401 and "Bearer" in body and '"streams"' not in body
            assert (await _get(f"{base}/streams", "lp_not_a_key"))[0] == 401
            assert (await _get(f"{base}/streams", tenant))[0] == 403  # one tenant's key
            status, body = await _get(f"{base}/streams?live=1", admin)
            assert status == 200 and '"streams"' in body
        assert (await _get(f"http://127.0.0.1:{local.http_port}/streams"))[0] == 200
    finally:
        await exposed.stop()
        await local.stop()
