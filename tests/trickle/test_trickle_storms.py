"""The subscriber against a server that keeps answering 470 (a "storm"), and why a subscription
ended (``ended_by``), over real sockets (hypercorn, plain HTTP)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from trickle.conftest import EnvFactory
from trickle.trickle_testkit import HypercornHost

from mediagw.livepeer.trickle import SubscriberStats, TricklePublisher, TrickleSubscriber


class Storm:
    """ASGI wrapper: the next ``count`` GETs answer 470 with Latest = the asked seq."""

    def __init__(self, app: Any, count: int) -> None:
        self.app = app
        self.count = count
        self.answered: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and self.count > 0:
            self.count -= 1
            self.answered.append(time.monotonic())
            seq = scope["path"].rsplit("/", 1)[1].encode()
            headers = [(b"lp-trickle-latest", seq), (b"lp-trickle-seq", seq),
                       (b"content-length", b"15")]  # fmt: skip
            await send({"type": "http.response.start", "status": 470, "headers": headers})
            await send({"type": "http.response.body", "body": b"Entry not found"})
            return
        await self.app(scope, receive, send)


async def test_a_470_storm_is_paced_logged_and_counted(
    make_env: EnvFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mediagw.trickle.subscriber")
    storms: list[Storm] = []

    def wrap(app: Any, host: HypercornHost) -> Storm:
        storms.append(Storm(app, 12))
        return storms[0]

    env = await make_env(wrap=wrap)
    env.server.create_channel("mid")
    stats = SubscriberStats()
    sub = TrickleSubscriber(
        env.url("mid"), session=env.session, start_seq=0, ahead_delay=0.05, stats=stats
    )
    pub = TricklePublisher(env.url("mid"), session=env.session)
    waiting = asyncio.create_task(sub.__anext__())
    await asyncio.sleep(0.1)
    await pub.write_segment(b"after the storm")
    segment = await asyncio.wait_for(waiting, 5)
    assert await segment.read() == b"after the storm"
    answered = storms[0].answered
    assert len(answered) == 12
    # 3 quick jumps, then one every ahead_delay: no spin
    assert answered[-1] - answered[3] >= 8 * 0.05 * 0.9
    assert stats.jumps == 12 and stats.storms == 1 and stats.longest_storm == 12
    assert sub.position.unavailable == 0  # reset by the 200
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert sum(1 for lvl, m in messages if lvl == logging.WARNING and "470" in m) == 1
    assert any("available again" in m for _, m in messages)
    await sub.close()
    await pub.close()


async def test_why_a_subscription_ended(make_env: EnvFactory) -> None:
    env = await make_env()
    gone = TrickleSubscriber(env.url("nope"), session=env.session, start_seq=0)
    assert [s async for s in gone] == []
    assert gone.ended_by == "HTTP 404: the channel is gone"

    env.server.create_channel("mid")
    closed = TrickleSubscriber(env.url("mid"), session=env.session, start_seq=0)
    task = asyncio.create_task(anext(closed, None))
    await asyncio.sleep(0.1)
    env.server.close_channel("mid")
    assert await asyncio.wait_for(task, 5) is None
    assert closed.ended_by == "Lp-Trickle-Closed: the server closed the channel"

    env.server.create_channel("mid2")
    mine = TrickleSubscriber(env.url("mid2"), session=env.session, start_seq=0)
    await mine.close()
    assert [s async for s in mine] == [] and mine.ended_by == "closed by this side"
