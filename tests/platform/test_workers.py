"""``mediagw run -workers 2`` as an operator runs it: one command, a throwaway PostgreSQL
database and Redis database of the test services, publishers on FFmpeg's own RTMP client.

The workers share the RTMP and HTTP ports (the kernel picks a worker per connection): every
stream lands on exactly one worker, both get some, and each plays through the shared port and
through the *other* worker's own port (proxied to its owner). A worker killed with SIGKILL is
started again and takes publishers; SIGTERM of the command stops everything with exit code 0.
Without Redis or a PostgreSQL store the command refuses to start and says what to give."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
from mediatools import ClipMaker, fetch_hls, push, wait_until
from nodes_testkit import Node, pg_database, redis_database, run_cli
from prometheus_client.parser import text_string_to_metric_families

from mediagw.config import Settings
from mediagw.errors import ConfigError
from mediagw.workers import check_workers, worker_group, worker_settings

READY = re.compile(r"worker ready node=(\S+) node_url=(\S+)")


def _ready_lines(node: Node) -> list[tuple[str, str]]:
    return READY.findall(node.log_tail(1_000_000))


def _workers(pid: int) -> list[int]:
    """The worker processes of the command ``pid`` (not multiprocessing's helper)."""
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        children = [int(c) for c in fh.read().split()]
    out = []
    for child in children:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                if b"spawn_main" in fh.read():
                    out.append(child)
        except FileNotFoundError:
            continue
    return out


async def _held(urls: list[str]) -> dict[str, set[str]]:
    """Each worker's live streams, asked at its own port."""
    out: dict[str, set[str]] = {}
    async with aiohttp.ClientSession() as http:
        for url in urls:
            async with http.get(f"{url}/streams") as resp:
                assert resp.status == 200, await resp.text()
                streams = (await resp.json())["streams"]
                out[url] = {s["id"] for s in streams if s["state"] == "live" and s["segments"]}
    return out


async def _two_workers(
    name: str, tmp_path: Path, store_url: str, redis: str
) -> tuple[Node, list[int]]:
    """``mediagw run -workers 2`` on loopback ports of its own, both workers ready: the node and
    its workers' pids."""
    node = Node(name, tmp_path)
    node.args = [
        "-workers", "2", "-httpAddr", f"127.0.0.1:{node.http_port}",
        "-rtmpAddr", f"127.0.0.1:{node.rtmp_port}", "-dataDir", str(node.data_dir),
        "-storeUrl", store_url, "-redisUrl", redis, "-embeddedOrchestrator=false",
        "-logLevel", "info",
    ]  # fmt: skip
    await node.start()
    try:
        await wait_until(lambda: len(_ready_lines(node)) == 2, timeout=60)
        assert node.proc is not None
        pids = _workers(node.proc.pid)
        assert len(pids) == 2, pids
    except BaseException:
        await node.stop(40)
        raise
    return node, pids


async def _all_live(urls: list[str], count: int) -> dict[str, set[str]]:
    """Each worker's streams once ``count`` streams are live in all, with a segment listed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        held = await _held(urls)
        if sum(len(s) for s in held.values()) >= count or loop.time() > deadline:
            return held
        await asyncio.sleep(0.2)


def _created(text: str) -> dict[str, float]:
    """``livepeer_stream_created_total`` by worker label ("" without one)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "livepeer_stream_created_total":
                worker = sample.labels.get("worker", "")
                out[worker] = out.get(worker, 0.0) + sample.value
    return out


async def _metrics_of_both(port: int, urls: list[str], streams: int) -> None:
    """``/metrics`` on the shared port has both workers' series whichever worker takes it (a
    new connection each time), their streams adding up; a worker's own port has its own."""
    own = {}
    async with aiohttp.ClientSession() as http:
        for url in urls:
            async with http.get(f"{url}/metrics") as resp:
                assert resp.status == 200
                own[url] = _created(await resp.text())
    assert all(list(c) == [""] for c in own.values()), own  # unlabelled, one worker's
    assert sum(c[""] for c in own.values()) == streams
    for _ in range(6):
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
            http.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            assert resp.status == 200
            text = await resp.text()
        created = _created(text)
        assert sorted(created) == ["1", "2"] and sum(created.values()) == streams, created
        assert 'mediagw_worker_up{worker="1"} 1' in text
        assert 'mediagw_worker_up{worker="2"} 1' in text


async def test_two_workers_share_the_ports_and_play_each_others_streams(
    tmp_path: Path, make_clip: ClipMaker
) -> None:
    clip = make_clip(seconds=10.0, size="160x90", fps=15, gop=15, audio=False)
    async with pg_database() as store_url, redis_database() as redis:
        node, first = await _two_workers("workers", tmp_path, store_url, redis)
        try:
            assert node.proc is not None
            urls = [url for _, url in _ready_lines(node)]
            assert len(set(urls)) == 2 and all(f":{node.http_port}" not in u for u in urls)

            # the kernel spreads connections: start batches of live pushes until both workers
            # hold a stream (a batch's 6 connections all go to one worker 1 time in 32)
            names: list[str] = []
            pushes: list[asyncio.Task[tuple[int, str]]] = []
            for batch in range(4):
                more = [f"wk{batch}s{i}" for i in range(6)]
                pushes += [
                    asyncio.create_task(push(clip, f"rtmp://127.0.0.1:{node.rtmp_port}/live/{n}"))
                    for n in more
                ]
                names += more
                held = await _all_live(urls, len(names))
                if all(held.values()):
                    break
            assert all(held.values()), f"every publisher went to one worker: {held}"
            # each stream on exactly one worker
            assert sorted(n for s in held.values() for n in s) == sorted(names)

            async with aiohttp.ClientSession() as http:
                for owner, other in (urls, urls[::-1]):
                    for name in held[owner]:
                        # at the worker that does not hold it: proxied to its owner
                        url = f"{other}/stream/{name}/source.m3u8"
                        async with http.get(url) as resp:
                            assert resp.status == 200, (url, await resp.text())
                            assert "#EXTINF" in await resp.text()
            for name in names[:4]:  # and through the shared port, whichever worker answers
                hls = await fetch_hls(node.http_port, name)
                assert len(hls.segments) >= 1, name
            pushed = await asyncio.gather(*pushes)
            assert all(code == 0 for code, _ in pushed), pushed
            await _metrics_of_both(node.http_port, urls, len(names))

            # a worker that dies is started again, and the shared ports keep taking publishers
            os.kill(first[0], signal.SIGKILL)
            await wait_until(lambda: len(_ready_lines(node)) == 3, timeout=60)
            now = _workers(node.proc.pid)
            assert len(now) == 2 and first[0] not in now and first[1] in now, (first, now)
            assert "worker exited: starting it again" in node.log_tail(1_000_000)
            assert _ready_lines(node)[2][1] in urls  # back on its own port: the others find it
            pushed = await asyncio.gather(
                *(push(clip, f"rtmp://127.0.0.1:{node.rtmp_port}/live/after{i}") for i in range(4))
            )
            assert all(code == 0 for code, _ in pushed), pushed
            async with (  # the new worker answers the others
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{node.http_port}/metrics") as resp,
            ):
                text = await resp.text()
            assert 'mediagw_worker_up{worker="1"} 1' in text, text[-500:]
            assert 'mediagw_worker_up{worker="2"} 1' in text, text[-500:]
        finally:
            await node.stop(40)
        assert node.proc.returncode == 0, node.log_tail()
        assert not [p for p in now if os.path.exists(f"/proc/{p}")], "a worker outlived the command"


def test_workers_need_redis_and_a_postgresql_store() -> None:
    check_workers(Settings(workers=1))  # one process: nothing shared, nothing needed
    with pytest.raises(ConfigError, match="-workers 2 needs -redisUrl"):
        check_workers(Settings(workers=2, store_url="postgresql://u@h/db"))
    with pytest.raises(ConfigError, match="needs a PostgreSQL -storeUrl"):
        check_workers(Settings(workers=2, redis_url="redis://h:6379/0"))
    with pytest.raises(ConfigError, match="-nodeUrl"):
        check_workers(
            Settings(
                workers=3,
                redis_url="redis://h:6379/0",
                store_url="postgresql://u@h/db",
                node_url="http://h:1",
            )
        )
    shared = Settings(workers=2, redis_url="redis://h:6379/0", store_url="postgresql://u@h/db")
    check_workers(shared)
    group = worker_group(shared)
    worker = worker_settings(dataclasses.replace(shared, node_id="edge"), 2, group)
    assert (worker.workers, worker.reuse_port, worker.embedded_orchestrator) == (1, True, False)
    assert worker.worker_group is not None and worker.worker_group.index == 2
    assert worker.worker_group.ports == group.ports and len(set(group.ports)) == 2
    assert worker.node_id == "edge-w2"
    # the gateway's HOST-PID: its own per worker
    assert worker_settings(shared, 1, group).node_id == ""


async def test_the_command_refuses_workers_without_redis(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="-workers 2 needs -redisUrl"):
        await run_cli("run", "-workers", "2", "-dataDir", str(tmp_path))


async def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of the command alone (not its workers): each worker gets SIGTERM from the
    kernel (``PR_SET_PDEATHSIG``), ends and exits; none is left holding the ports."""
    async with pg_database() as store_url, redis_database() as redis:
        node, workers = await _two_workers("orphans", tmp_path, store_url, redis)
        try:
            assert node.proc is not None
            os.kill(node.proc.pid, signal.SIGKILL)  # the parent only: no shutdown of its own
            await asyncio.to_thread(node.proc.wait)
            await wait_until(lambda: not [p for p in workers if _alive(p)], timeout=STOP_WAIT)
        finally:
            for pid in workers:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            await node.stop(5)
        assert node.log_tail(1_000_000).count("gateway stopped") == 2  # shut down, not killed


STOP_WAIT = 40.0  # seconds: a worker's shutdown (its streams ended, stores closed)


def _alive(pid: int) -> bool:
    """A process that has not exited (a zombie, reaped by init soon, counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_worker_whose_own_port_is_taken_listens_on_another(tmp_path: Path) -> None:
    """The parent chose the port, something took it before the worker bound it: the worker
    starts all the same, on a port of the kernel's choice (a log line says what it costs)."""
    from mediagw.config import WorkerGroup
    from mediagw.gateway import Gateway

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(
            rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0", data_dir=str(tmp_path),
            worker_group=WorkerGroup(1, (port, port + 1), "s3cret-group"),
        )  # fmt: skip
        gateway = Gateway(settings)
        await gateway.start()
        try:
            assert gateway.node_port not in (0, port, gateway.http_port)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{gateway.node_port}/metrics") as resp,
            ):
                assert resp.status == 200 and "worker=" not in await resp.text()
        finally:
            await gateway.stop()
