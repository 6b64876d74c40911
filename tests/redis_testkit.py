"""The test Redis (``MEDIAGW_TEST_REDIS_URL``, started by ``.ci/run``): skipped without it on a
laptop, failing under ``CI=true``; each test gets a fresh key prefix, deleted afterwards."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mediatools import need_env

from mediagw.platform.shared.redis import SharedRedis

REDIS_ENV = "MEDIAGW_TEST_REDIS_URL"


def redis_url() -> str:
    """The Redis the tests may use; skip without it on a laptop, fail under CI."""
    return need_env(REDIS_ENV, "a Redis the tests may write to")


def refused_url() -> str:
    """A Redis URL nothing listens on (a port just freed): connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@asynccontextmanager
async def fresh_redis(prefix: str | None = None) -> AsyncIterator[SharedRedis]:
    """A client of the test Redis under ``prefix`` (None: a fresh one); the prefix's keys are
    deleted when it closes. Two clients on one prefix are two gateway nodes."""
    prefix = prefix or f"mediagw-test:{uuid.uuid4().hex[:12]}:"
    shared = SharedRedis(redis_url(), prefix=prefix)
    try:
        yield shared
    finally:
        keys = [key async for key in shared.client.scan_iter(match=prefix + "*")]
        if keys:
            await shared.client.delete(*keys)
        await shared.close()
