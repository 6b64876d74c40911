"""``SharedStreamLimits`` on the test Redis: two clients on one prefix are two nodes. The last
place of a key is taken once however many nodes ask at once; a node's places expire when it stops
renewing them; minutes added on two nodes are one total; a refused Redis admits and keeps the
sums for later."""

from __future__ import annotations

import asyncio

from redis_testkit import fresh_redis, refused_url

from mediagw.platform.shared.redis import SharedRedis
from mediagw.platform.shared.stream_limits import (
    BATCH,
    LIVE_AI,
    STREAM,
    SharedStreamLimits,
    Totals,
)

NOW = 1_780_000_000.0


async def test_the_last_place_is_taken_once_across_nodes() -> None:
    async with fresh_redis() as one, fresh_redis(one.prefix) as two:
        nodes = [SharedStreamLimits(r) for r in (one, two) for _ in range(4)]
        answers = await asyncio.gather(
            *(n.reserve("key1", f"play{i}", 2) for i, n in enumerate(nodes))
        )
        assert sorted(answers) == [False] * 6 + [True] * 2
        winner = answers.index(True)
        assert await nodes[7].reserve("key1", f"play{winner}", 2)  # its own publish again
        assert await nodes[0].reserve("key2", "other", 1)  # another key: its own places
        nodes[winner].release("key1", f"play{winner}")
        await asyncio.gather(*nodes[winner]._sends)
        assert await nodes[5].reserve("key1", "new", 2)


async def test_a_silent_nodes_places_expire_and_a_live_ones_are_renewed() -> None:
    async with fresh_redis() as one, fresh_redis(one.prefix) as two:
        dead = SharedStreamLimits(one, ttl=1.0)
        alive = SharedStreamLimits(two, ttl=1.0)
        alive.held = lambda: {"key": {"b"}}
        assert await dead.reserve("key", "a", 2) and await alive.reserve("key", "b", 2)
        assert not await alive.reserve("key", "c", 2)
        for _ in range(5):  # 1.5 s: the dead node's place is gone, the renewed one is not
            await asyncio.sleep(0.3)
            await alive.flush(NOW)
        assert await alive.reserve("key", "c", 2)
        assert not await dead.reserve("key", "a", 2)


async def test_minutes_added_on_two_nodes_are_one_total() -> None:
    async with fresh_redis() as one, fresh_redis(one.prefix) as two:
        a, b = SharedStreamLimits(one), SharedStreamLimits(two)
        seen: dict[str, Totals] = {}
        b.held = lambda: {"key": {"p"}}
        b.on_totals = seen.__setitem__
        a.add("key", STREAM, 0.5)
        a.add("key", STREAM, 0.25)
        a.add("key", LIVE_AI, 0.125)
        await a.flush(NOW)
        b.add("key", STREAM, 1.0)
        await b.flush(NOW)
        totals = seen["key"]
        assert (totals.stream_day, totals.stream_month) == (1.75, 1.75)
        assert (totals.live_ai_day, totals.live_ai_month) == (0.125, 0.125)
        a.add("key", STREAM, 0.25)  # not flushed yet: counted in this node's view
        assert (await a.totals("key", NOW)) == Totals(
            totals.day, totals.month, 2.0, 2.0, 0.125, 0.125
        )
        later = await a.totals("key", NOW + 86_400.0 * 40)  # another day and month: fresh
        assert later is not None and later.stream_day == 0.25 and later.live_ai_month == 0.0


async def test_a_refused_redis_admits_and_keeps_the_sums() -> None:
    down = SharedRedis(refused_url())
    try:
        limits = SharedStreamLimits(down)
        assert await limits.reserve("key", "p", 1) and await limits.reserve("key", "q", 1)
        assert await limits.totals("key", NOW) is None
        limits.add("key", STREAM, 0.5)
        await limits.flush(NOW)
        assert limits._pending == {("key", STREAM): 0.5}  # added once Redis is back
        assert down.failures == 3  # the admissions' calls; the background flush is not counted
    finally:
        await down.close()


async def test_a_flush_of_more_keys_than_a_batch_reports_each_keys_own_totals() -> None:
    async with fresh_redis() as one:
        limits, seen = SharedStreamLimits(one), dict[str, Totals]()
        owners = [f"key{i}" for i in range(BATCH + 50)]
        limits.held = lambda: {owner: {f"p-{owner}"} for owner in owners[::2]}
        limits.on_totals = seen.__setitem__
        for i, owner in enumerate(owners):
            limits.add(owner, STREAM, i)
            limits.add(owner, LIVE_AI, i / 2)
        await limits.flush(NOW)
        assert sorted(seen) == sorted(owners[::2])  # only the keys with streams here
        assert all(seen[o].stream_day == i and seen[o].live_ai_month == i / 2
                   for i, o in enumerate(owners) if o in seen)  # fmt: skip
        assert not await limits.reserve(owners[-2], "another", 1)  # renewed: held
