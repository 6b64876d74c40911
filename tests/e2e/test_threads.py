"""Thread pools start all their threads at once, so the gateway's thread count is fixed from
its start: a soak or a flood never sees it climb as jobs first overlap."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from mediagw.gateway import Gateway
from mediagw.threads import media_workers, start_all


def _named(prefix: str) -> int:
    return sum(t.name.startswith(prefix) for t in threading.enumerate())


async def test_start_all_starts_every_thread_of_a_pool() -> None:
    pool = ThreadPoolExecutor(5, thread_name_prefix="t-start-all")
    try:
        assert _named("t-start-all") == 0  # a pool starts none until a job comes
        await start_all(pool, 5)
        assert _named("t-start-all") == 5
        # then jobs reuse them, however many overlap
        await asyncio.gather(*(asyncio.to_thread(lambda: None) for _ in range(20)))
        await asyncio.gather(
            *(asyncio.get_running_loop().run_in_executor(pool, threading.Event().wait, 0.05)
              for _ in range(12))
        )  # fmt: skip
        assert _named("t-start-all") == 5
    finally:
        pool.shutdown()


async def test_a_busy_pool_is_not_held_up() -> None:
    """A pool whose threads are already taken gives up waiting for them (bounded) instead
    of blocking start-up for good."""
    pool = ThreadPoolExecutor(2, thread_name_prefix="t-busy")
    release = threading.Event()
    try:
        busy = asyncio.get_running_loop().run_in_executor(pool, release.wait, 30)
        starting = asyncio.create_task(start_all(pool, 2))
        await asyncio.sleep(0.2)
        assert not starting.done()  # one job waits at the barrier for the busy thread
        release.set()
        await asyncio.wait_for(asyncio.gather(busy, starting), 15)
    finally:
        release.set()
        pool.shutdown()


async def test_a_gateway_starts_its_whole_media_pool(gateway: Gateway) -> None:
    assert _named("media") >= media_workers()
