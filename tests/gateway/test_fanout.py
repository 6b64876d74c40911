import asyncio

from mediagw.stream.fanout import Fanout


async def test_slow_subscriber_drops_oldest_and_never_blocks() -> None:
    fan: Fanout[int] = Fanout()
    slow = fan.subscribe(maxsize=3, name="slow")
    fast = fan.subscribe(maxsize=100, name="fast")
    for i in range(10):
        fan.publish(i)  # synchronous: returns even though nobody reads
    fan.close()
    assert [i async for i in fast] == list(range(10))
    assert [i async for i in slow] == [7, 8, 9]
    assert slow.dropped == 7 and fast.dropped == 0


async def test_subscriber_wakes_on_publish() -> None:
    fan: Fanout[str] = Fanout()
    sub = fan.subscribe()
    got: list[str] = []

    async def reader() -> None:
        async for item in sub:
            got.append(item)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)
    fan.publish("a")
    await asyncio.sleep(0.01)
    assert got == ["a"]
    sub.unsubscribe()
    await asyncio.wait_for(task, 1)
    assert fan.subscribers == 0
