"""``SharedRedis``: the one Redis client of a gateway (``-redisUrl``), and whether Redis is up.

One ``redis.asyncio.Redis`` per gateway (a connection pool inside), opened by the gateway's
start and closed by its stop. Timeouts are short and nothing is retried: a dead Redis costs a
request at most ``timeout`` seconds (a refused connection, far less), never a hang. Every key and
channel starts with ``prefix``, so several gateways' deployments (or tests) can share one Redis.

The features that use it decide whether they fail open or closed (see each); they report a
failure with ``failed`` and a success with ``ok``, so the log says once that Redis is down and
once that it is back, not once per request.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("mediagw.redis")

__all__ = ["DEFAULT_PREFIX", "RedisError", "SharedRedis"]

DEFAULT_PREFIX = "mediagw:"
TIMEOUT = 0.5  # seconds: connect, and each command


class _CountingRedis(Redis):
    """The client, counting the commands it sends (``mediagw_redis_commands_total``)."""

    commands = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands += 1
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


class SharedRedis:
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.prefix = prefix
        self.client = cast(
            _CountingRedis,
            _CountingRedis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
            ),
        )
        self.down = False  # the last command failed
        self.failures = 0  # failed commands that served a request (served without Redis)

    @property
    def commands(self) -> int:
        """Commands sent to Redis (one round trip each; pub/sub messages are not counted)."""
        return self.client.commands

    def key(self, *parts: str) -> str:
        """A key (or channel) name under this gateway's prefix."""
        return self.prefix + ":".join(parts)

    async def start(self) -> None:
        """Check that Redis answers; if not, log it (the gateway starts anyway: each feature
        falls back as documented, and Redis is tried again at each use)."""
        try:
            await self.client.ping()
        except RedisError as exc:
            self.failed(exc)
        else:
            self.ok()
            log.info("redis connected", extra={"redis": _safe(self.url)})

    def failed(self, exc: BaseException, *, counted: bool = True) -> None:
        """A command failed; ``counted``: it served a request (the metric counts those)."""
        self.failures += counted
        if not self.down:
            self.down = True
            log.error(
                "redis is down: rate limits and quotas are not enforced (requests are allowed)"
                " and other nodes do not hear of changes made here until it is back; check"
                " -redisUrl and the Redis server",
                extra={"redis": _safe(self.url), "error": str(exc) or type(exc).__name__},
            )

    def ok(self) -> None:
        if self.down:
            self.down = False
            log.warning("redis is back", extra={"redis": _safe(self.url)})

    async def close(self) -> None:
        await self.client.aclose()


def _safe(url: str) -> str:
    """The URL without its password (for logs)."""
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not at:
        return url
    user = auth.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}" if ":" in auth else f"{scheme}{sep}{auth}@{host}"
