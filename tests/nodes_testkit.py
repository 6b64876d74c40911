"""Several gateway *processes* on loopback, as a deployment runs them: each a ``mediagw run`` with
its own ports, ``-nodeId``, ``-nodeUrl`` and ``-dataDir``, all on one throwaway PostgreSQL
database and one Redis database of the test services; and a small TCP load balancer in front.

- ``pg_database()``: a fresh database on ``MEDIAGW_TEST_POSTGRES_URL``'s server, dropped after.
- ``redis_database()``: a Redis database number (1-15) of the test Redis that no other test holds
  (a lock key taken with NX), flushed after. The nodes use the default key prefix, as deployed.
- ``cluster(tmp_path, n)``: the above and ``n`` started nodes (``Node``: the benchmark's
  ``mediagw.bench.process.GatewayProcess`` of this checkout); ``Node.kill()`` is ``kill -9`` of
  its process group; every node's log goes to ``tmp_path/NODE.log`` (its tail is in the error
  when a node does not become ready). Nodes run source-only (``-embeddedOrchestrator=false``);
  ``extra`` flags come last and win: ``-embeddedOrchestrator`` gives each node its own local
  reference orchestrator, ``-orchAddr URL`` a shared one (e.g. a ``ReferenceOrchestrator``).
- ``Balancer``: forwards each new TCP connection to a backend: the first that accepts
  (``first``, as an LB whose health check took a dead node out), or in turn (``round_robin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from mediatools import need_env
from redis.asyncio import Redis
from redis_testkit import redis_url
from sqlalchemy.engine import make_url

from mediagw.bench.process import GatewayProcess, free_port, run_mediagw

__all__ = [
    "Balancer", "Cluster", "Node", "cluster", "free_port", "node_args", "pg_admin_url",
    "pg_database", "redis_database", "run_cli",
]  # fmt: skip

REPO = Path(__file__).resolve().parents[1]
PG_ENV = "MEDIAGW_TEST_POSTGRES_URL"


def _env() -> dict[str, str]:
    """The tests' environment without ``MEDIAGW_`` settings, importing this checkout's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


async def run_cli(*args: str) -> str:
    """Run ``mediagw ARGS`` of this checkout to the end; its stdout."""
    return await run_mediagw(*args, cwd=REPO, env=_env(), timeout=60)


def pg_admin_url() -> str:
    """The PostgreSQL server the tests may create databases in."""
    return need_env(PG_ENV, "a PostgreSQL the tests may create databases in")


@asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped (connections and all) after."""
    admin = make_url(pg_admin_url())
    name = f"mediagw_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


LOCK_KEY = "mediagw-nodes-testkit:lock"


@asynccontextmanager
async def redis_database() -> AsyncIterator[str]:
    """``redis://HOST:PORT/N``: a database of the test Redis held by this test alone (the lock
    key is set NX with a TTL, so a crashed test frees it), flushed before and after."""
    base = urlsplit(redis_url())
    host, port = base.hostname or "127.0.0.1", base.port or 6379
    order = list(range(1, 16))
    order = order[os.getpid() % 15 :] + order[: os.getpid() % 15]
    for db in order:
        client = Redis(host=host, port=port, db=db)
        token = uuid.uuid4().hex
        if await client.set(LOCK_KEY, token, nx=True, ex=600):
            break
        await client.aclose()
    else:
        raise AssertionError("every Redis database 1-15 is held by another test: wait, or flush")
    try:
        await client.flushdb()
        await client.set(LOCK_KEY, token, ex=600)
        yield f"redis://{host}:{port}/{db}"
    finally:
        await client.flushdb()  # the lock too
        await client.aclose()


class Node(GatewayProcess):
    """One ``mediagw run`` process of this checkout, leading a process group of its own (so
    ``kill`` takes it whole), its data in ``data_dir``."""

    def __init__(self, node_id: str, tmp_path: Path) -> None:
        super().__init__(node_id, tmp_path / f"{node_id}.log", cwd=REPO, env=_env(), own_group=True)
        self.node_id = node_id
        self.data_dir = tmp_path / node_id


@dataclass
class Cluster:
    nodes: list[Node]
    store_url: str
    redis_url: str
    admin_key: str = ""
    balancers: list[Balancer] = field(default_factory=list)

    async def balancer(self, ports: Sequence[int], mode: str = "first") -> Balancer:
        lb = Balancer([("127.0.0.1", p) for p in ports], mode=mode)
        await lb.start()
        self.balancers.append(lb)
        return lb


def node_args(node: Node, store_url: str, redis: str, extra: Sequence[str] = ()) -> list[str]:
    return [
        *node.address_flags(),
        "-dataDir", str(node.data_dir), "-storeUrl", store_url, "-redisUrl", redis,
        "-embeddedOrchestrator=false", "-webhookAllowPrivate", "-logLevel", "info",
        *extra,
    ]  # fmt: skip


@asynccontextmanager
async def cluster(
    tmp_path: Path, n: int = 2, extra: Sequence[str] = (), admin: bool = True
) -> AsyncIterator[Cluster]:
    """``n`` running nodes (``node-a``, ``node-b``, ...) on one fresh PostgreSQL database and one
    Redis database; ``admin``: an admin API key made with ``mediagw keys create`` first."""
    async with pg_database() as store_url, redis_database() as redis:
        nodes = []
        for i in range(n):
            node = Node(f"node-{chr(ord('a') + i)}", tmp_path)
            node.args = node_args(node, store_url, redis, extra)
            nodes.append(node)
        group = Cluster(nodes, store_url, redis)
        try:
            if admin:  # migrates the database too, so the nodes do not race to
                out = await run_cli("keys", "create", "--name", "ops", "-storeUrl", store_url)
                group.admin_key = out.strip().splitlines()[-1]
            await asyncio.gather(*(node.start() for node in nodes))
            yield group
        finally:
            for lb in group.balancers:
                await lb.close()
            await asyncio.gather(*(node.stop() for node in nodes))


class Balancer:
    """A TCP load balancer on 127.0.0.1: each new connection goes to a backend that accepts it
    (``first``: in order, skipping refused ones; ``round_robin``: starting from the next one),
    and bytes are copied both ways until either side closes."""

    def __init__(self, backends: Sequence[tuple[str, int]], mode: str = "first") -> None:
        if mode not in ("first", "round_robin"):
            raise ValueError(f"mode is first or round_robin, not {mode!r}")
        self.backends = list(backends)
        self.mode = mode
        self.port = 0
        self.chosen: list[int] = []  # backend port of each connection, in order
        self._next = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _order(self) -> list[tuple[str, int]]:
        if self.mode == "first":
            return self.backends
        start = self._next % len(self.backends)
        self._next += 1
        return self.backends[start:] + self.backends[:start]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            for host, port in self._order():
                try:
                    up_reader, up_writer = await asyncio.open_connection(host, port)
                except OSError:
                    continue  # refused: the next backend
                self.chosen.append(port)
                try:
                    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                finally:
                    up_writer.close()
                return
        finally:
            writer.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
