"""Several gateway *processes* on loopback, as a deployment runs them: each a ``mediagw run`` with
its own ports, ``-nodeId``, ``-nodeUrl`` and ``-dataDir``, all on one throwaway PostgreSQL
database and one Redis database of the test services; and a small TCP load balancer in front.

- ``pg_database()``: a fresh database on ``MEDIAGW_TEST_POSTGRES_URL``'s server, dropped after.
- ``redis_database()``: a Redis database number (1-15) of the test Redis that no other test holds
  (a lock key taken with NX), flushed after. The nodes use the default key prefix, as deployed.
- ``cluster(tmp_path, n)``: the above and ``n`` started nodes; ``Node.kill()`` is ``kill -9`` of
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
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from mediatools import need_env
from redis.asyncio import Redis
from redis_testkit import redis_url
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
PG_ENV = "MEDIAGW_TEST_POSTGRES_URL"
READY_TIMEOUT = 30.0  # seconds for a node to answer /healthz (a loaded machine, Alembic)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str) -> list[str]:
    """The ``mediagw`` command line of this checkout (not the venv's installed copy)."""
    main = "import sys; from mediagw.cli import main; sys.exit(main())"
    return [sys.executable, "-c", main, *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


async def run_cli(*args: str) -> str:
    """Run ``mediagw ARGS`` to the end; its stdout (an error says what it printed)."""
    done = await asyncio.to_thread(
        subprocess.run, cli(*args), capture_output=True, cwd=REPO, env=_env(), timeout=60
    )
    if done.returncode:
        raise AssertionError(f"mediagw {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return done.stdout.decode()


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


@dataclass
class Node:
    """One ``mediagw run`` process."""

    node_id: str
    http_port: int
    rtmp_port: int
    data_dir: Path
    log_path: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rtmp_url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live/{key}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    async def start(self) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                cli("run", *self.args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=_env(),
                start_new_session=True,  # its own process group: kill() takes it whole
            )
        await self.wait_ready()

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while loop.time() < deadline:
                if not self.alive:
                    raise AssertionError(
                        f"node {self.node_id} exited ({self.proc and self.proc.returncode}) "
                        f"before it was ready; its log:\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        self.kill()
        raise AssertionError(
            f"node {self.node_id} did not answer {self.url}/healthz in {timeout:.0f} s; "
            f"its log:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """``kill -9`` the node's process group (no shutdown runs)."""
        self._signal(signal.SIGKILL)

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it lingers."""
        self._signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def _signal(self, signum: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)
        if signum == signal.SIGKILL:
            self.proc.wait()


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
        "-nodeId", node.node_id, "-nodeUrl", node.url,
        "-httpAddr", f"127.0.0.1:{node.http_port}", "-rtmpAddr", f"127.0.0.1:{node.rtmp_port}",
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
            name = f"node-{chr(ord('a') + i)}"
            log = tmp_path / f"{name}.log"
            node = Node(name, free_port(), free_port(), tmp_path / name, log, [])
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
