"""Two nodes on one Redis share what they learn of orchestrators (``platform/shared/
orchestrators``): the certificate pins (against reference orchestrators over real TLS), the
penalty of an O that failed on one node (B's next stream avoids it while a healthy O is there),
and latency scores (coalesced, not per segment). Redis down: each node keeps its own."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from mediatools import ClipMaker, wait_until
from redis_testkit import fresh_redis, redis_url, refused_url

from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.livepeer.errors import CertificatePinError
from mediagw.livepeer.profiles import PRESETS
from mediagw.livepeer.proto import net
from mediagw.livepeer.rpc import OrchestratorRequests, OrchestratorRPC, normalize_orch_addr
from mediagw.livepeer.segment import SegmentClient
from mediagw.livepeer.tls import PinStore
from mediagw.orchestrator import Faults, OrchestratorConfig, ReferenceOrchestrator
from mediagw.payments.sender import PaymentSender
from mediagw.payments.signer import OffchainSigner
from mediagw.pipelines.transcode import LivepeerTranscoder, TranscodeJob
from mediagw.platform.shared.orchestrators import SharedOrchestrators
from mediagw.platform.shared.redis import SharedRedis
from mediagw.pool.notes import OrchNotes
from mediagw.pool.prices import PriceCaps
from mediagw.pool.sources import StaticSource

CAPS = net.Capabilities()
A, B = bytes([1]) * 32, bytes([2]) * 32


@dataclass
class Node:
    pins: PinStore
    notes: OrchNotes
    rpc: OrchestratorRPC
    requests: OrchestratorRequests
    shared: SharedOrchestrators


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as running:
        yield running


@pytest.fixture
def prefix() -> str:
    """One deployment's key prefix: two ``fresh_redis`` clients on it are two nodes."""
    return f"mediagw-test:{uuid.uuid4().hex[:12]}:"


async def _node(
    stack: AsyncExitStack,
    name: str,
    prefix: str | None,
    *,
    redis: SharedRedis | None = None,
    latency_every: float = 5.0,
) -> Node:
    if redis is None:
        redis = await stack.enter_async_context(fresh_redis(prefix))
    pins, notes = PinStore(), OrchNotes(time.time)
    rpc = OrchestratorRPC(pins)
    stack.push_async_callback(rpc.close)
    shared = SharedOrchestrators(
        redis, name, wall=time.time, pins=pins, notes=notes,
        latency_every=latency_every,
    )  # fmt: skip
    await shared.start()
    stack.push_async_callback(shared.close)
    if not redis.down:
        await asyncio.wait_for(shared.ready.wait(), 5)
    return Node(pins, notes, rpc, OrchestratorRequests(rpc, signer=None), shared)


async def _orchestrator(port: int = 0, faults: Faults | None = None) -> ReferenceOrchestrator:
    config = OrchestratorConfig(port=port, x264_preset="ultrafast", faults=faults or Faults())
    orch = ReferenceOrchestrator(config)
    await orch.start()
    return orch


def _key(orch: ReferenceOrchestrator) -> str:
    return f"127.0.0.1:{orch.port}"


# -- certificate pins -------------------------------------------------------------------------


async def test_a_pin_made_on_one_node_holds_on_the_other(
    stack: AsyncExitStack, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await _node(stack, "node-a", prefix)
    b = await _node(stack, "node-b", prefix)
    running: list[ReferenceOrchestrator] = []

    async def restart(port: int = 0) -> ReferenceOrchestrator:
        """The O at this port, (re)started: a new certificate each time, as a real O."""
        if running:
            await running.pop().stop()
        running.append(await _orchestrator(port))
        return running[0]

    try:
        orch = await restart()
        key = _key(orch)
        await a.requests.fetch(orch.url, CAPS, 5)  # first contact anywhere: A pins
        pinned = a.pins.fingerprint(key)
        assert pinned is not None
        await wait_until(lambda: b.pins.fingerprint(key) == pinned, 5)
        orch = await restart(orch.port)  # O restarted (new certificate): A re-pins once
        with caplog.at_level(logging.WARNING, logger="mediagw.livepeer.tls"):
            await a.requests.fetch(orch.url, CAPS, 5)
        assert any("re-pinned" in r.getMessage() for r in caplog.records)
        repinned = a.pins.fingerprint(key)
        assert repinned not in (None, pinned)
        await wait_until(lambda: b.pins.fingerprint(key) == repinned, 5)
        orch = await restart(orch.port)  # another change right away: refused on B too,
        with pytest.raises(CertificatePinError, match="changed again"):  # though B never
            await b.requests.fetch(orch.url, CAPS, 5)  # talked to this O itself
        assert orch.stats.get_orchestrator == 0  # refused in the handshake, before any request
        assert b.pins.fingerprint(key) == repinned
    finally:
        if running:
            await running.pop().stop()


async def test_the_first_pin_on_any_node_wins(stack: AsyncExitStack, prefix: str) -> None:
    a = await _node(stack, "node-a", prefix)
    b = await _node(stack, "node-b", prefix)
    key = "o.example:8935"
    # another node pinned first; its message has not reached B yet: B's own pin loses
    record = json.dumps({"sha256": A.hex(), "repinned": None})
    await a.shared.shared.client.hset(a.shared.pins_key, key, record)
    assert b.pins.check(key, B) is True
    await wait_until(lambda: b.pins.fingerprint(key) == A, 5)
    # both pin at once, each its own certificate: they agree on one
    a.pins.check("p.example:8935", A)
    b.pins.check("p.example:8935", B)
    await wait_until(
        lambda: a.pins.fingerprint("p.example:8935") == b.pins.fingerprint("p.example:8935"), 5
    )
    raw = await a.shared.shared.client.hget(a.shared.pins_key, "p.example:8935")
    assert bytes.fromhex(json.loads(raw)["sha256"]) == a.pins.fingerprint("p.example:8935")


async def test_a_node_starting_later_has_the_pins_before_any_contact(
    stack: AsyncExitStack, prefix: str
) -> None:
    a = await _node(stack, "node-a", prefix)
    a.pins.check("o.example:8935", A)
    raw = None
    while raw is None:  # A wrote it (in the background)
        raw = await a.shared.shared.client.hget(a.shared.pins_key, "o.example:8935")
        await asyncio.sleep(0.02)
    late = await _node(stack, "node-c", prefix)
    assert late.pins.fingerprint("o.example:8935") == A


# -- penalties and latency --------------------------------------------------------------------


class _SlowTo(OrchestratorRequests):
    """GetOrchestrator of one O answers later (that O is then last in discovery order)."""

    def __init__(self, rpc: OrchestratorRPC, slow: str) -> None:
        super().__init__(rpc, signer=None)
        self.slow = slow

    async def fetch(self, url: str, caps: net.Capabilities, timeout: float) -> net.OrchestratorInfo:
        if url == self.slow:
            await asyncio.sleep(0.3)
        return await super().fetch(url, caps, timeout)


def _transcoder(
    stack: AsyncExitStack, node: Node, urls: list[str], requests: OrchestratorRequests
) -> LivepeerTranscoder:
    segments = SegmentClient(node.pins)
    stack.push_async_callback(segments.close)
    signer = OffchainSigner()
    transcoder = LivepeerTranscoder(
        rpc=node.rpc,
        segments=segments,
        sources=[StaticSource(urls, normalize_orch_addr)],
        signer=signer,
        payments=PaymentSender(signer),
        caps=PriceCaps(),
        requests=requests,
        notes=node.notes,
    )
    stack.push_async_callback(transcoder.close)
    return transcoder


async def test_an_o_failing_on_one_node_is_avoided_by_the_other(
    stack: AsyncExitStack, prefix: str, make_clip: ClipMaker
) -> None:
    a = await _node(stack, "node-a", prefix)
    b = await _node(stack, "node-b", prefix)
    bad = await _orchestrator(faults=Faults(fail_segments=True))
    good = await _orchestrator()
    stack.push_async_callback(bad.stop)
    stack.push_async_callback(good.stop)
    segment = make_clip(seconds=2, fmt="mpegts").read_bytes()
    job = TranscodeJob("s-a", 0, segment, 2.0, (PRESETS["P144p30fps16x9"],))
    on_a = _transcoder(stack, a, [bad.url], a.requests)
    assert not (await on_a.transcode(job)).ok  # A suspends bad for its failure
    assert bad.stats.segments_failed >= 1
    await wait_until(lambda: b.notes.penalized(bad.url), 5)
    assert b.notes.penalty(bad.url).node == "node-a"  # type: ignore[union-attr]
    # for B, bad answers discovery first: without A's news it would be tried first
    on_b = _transcoder(stack, b, [bad.url, good.url], _SlowTo(b.rpc, good.url))
    failed = bad.stats.segments_received
    outcome = await on_b.transcode(TranscodeJob("s-b", 0, segment, 2.0, job.profiles))
    assert outcome.ok and outcome.attempts == 1
    assert bad.stats.segments_received == failed  # B never sent bad a segment
    rows = {r["url"]: r for r in on_b.scoreboard_rows()}
    assert rows[good.url]["suspended_by_node"] is None
    assert rows[bad.url]["suspended_by_node"] == "node-a"  # the dashboard says who


async def test_latency_scores_are_shared_coalesced(stack: AsyncExitStack, prefix: str) -> None:
    a = await _node(stack, "node-a", prefix, latency_every=30.0)
    b = await _node(stack, "node-b", prefix)
    redis = await stack.enter_async_context(fresh_redis(prefix))
    messages: list[dict[str, object]] = []
    pubsub = redis.client.pubsub()
    stack.push_async_callback(pubsub.aclose)
    await pubsub.subscribe(a.shared.channel)

    async def listen() -> None:
        async for m in pubsub.listen():
            if m.get("type") == "message":
                messages.append(json.loads(m["data"]))

    listener = asyncio.create_task(listen())
    o1 = "https://o1:8935"
    a.notes.observe(o1, 0.2)  # a first segment completed on A: published at once
    await wait_until(lambda: b.notes.latency(o1) == 0.2, 5)
    for i in range(20):  # then one segment after another: kept for the next publication
        a.notes.observe(o1, 0.3 + i / 100)
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    listener.cancel()
    assert [m["scores"] for m in messages if m.get("kind") == "latency"] == [{o1: 0.2}]
    assert a.notes.latencies_pending
    late = await _node(stack, "node-c", prefix)  # a node starting later reads the hash
    assert late.notes.latency(o1) == 0.2


async def test_redis_down_each_node_keeps_its_own_knowledge(
    stack: AsyncExitStack, caplog: pytest.LogCaptureFixture
) -> None:
    redis = SharedRedis(refused_url(), prefix="mediagw-test:down:")
    stack.push_async_callback(redis.close)
    await redis.start()
    node = await _node(stack, "node-a", None, redis=redis)
    assert node.pins.check("o.example:8935", A) is True  # pins on first use, as alone
    assert node.pins.check("o.example:8935", B) is True  # one re-pin
    with pytest.raises(CertificatePinError, match="changed again"):
        node.pins.check("o.example:8935", A)
    node.notes.suspend("https://o1:8935", 60)
    node.notes.observe("https://o1:8935", 0.4)
    await asyncio.sleep(0.2)  # the sender tried and failed
    assert redis.down
    assert any("pinned by this node alone" in r.getMessage() for r in caplog.records)
    assert node.notes.penalized("https://o1:8935")
    assert node.notes.latency("https://o1:8935") == 0.4


async def test_two_gateways_share_what_they_learn(stack: AsyncExitStack, tmp_path: Path) -> None:
    """The wiring: ``-redisUrl`` with an orchestrator: pins and penalties reach the other node."""
    orch = await _orchestrator()
    stack.push_async_callback(orch.stop)
    run = uuid.uuid4().hex[:8]
    gateways = []
    for name in ("a", "b"):
        settings = Settings(
            rtmp_addr="127.0.0.1:0",
            http_addr="127.0.0.1:0",
            data_dir=str(tmp_path / name),
            redis_url=redis_url(),
            orch_addr=(orch.url,),
            node_id=f"test-{name}-{run}",
        )
        gw = Gateway(settings)
        await gw.start()
        stack.push_async_callback(gw.stop)
        gateways.append(gw)
    a, b = (gw.stack for gw in gateways)
    assert a is not None and b is not None and a.notes is not None and b.notes is not None
    assert a.requests is not None and a.pins is not None and b.pins is not None
    redis = gateways[0].redis
    assert redis is not None and gateways[0].orchestrators is not None
    shared = gateways[0].orchestrators

    async def forget() -> None:  # the default prefix: leave nothing of this test behind
        await redis.client.hdel(shared.pins_key, _key(orch))
        await redis.client.hdel(shared.penalties_key, orch.url)

    stack.push_async_callback(forget)
    await asyncio.wait_for(gateways[1].orchestrators.ready.wait(), 5)  # type: ignore[union-attr]
    await a.requests.fetch(orch.url, CAPS, 5)
    await wait_until(lambda: b.pins.fingerprint(_key(orch)) == a.pins.fingerprint(_key(orch)), 5)
    a.notes.suspend(orch.url, 60)
    await wait_until(lambda: b.notes.penalized(orch.url), 5)
    assert b.notes.penalty(orch.url).node == f"test-a-{run}"  # type: ignore[union-attr]
