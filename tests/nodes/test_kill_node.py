"""kill -9 of the node that owns a stream: its publisher reconnects through the load balancer to
the other node, and the stream goes on there. A player on B (which proxied A's playlists until
then) sees the sequence numbers go on, never one twice, with a discontinuity where the owner
changed; the ledger counts each media second once; every webhook event arrives exactly once.

Needs the stream leases, the playback proxy and the continuation of issue 13 (see
/work/wt/I13_CONTEXT.md for their interfaces)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
from mediatools import ClipMaker, need_tool, push
from nodes_testkit import Node, cluster
from webhook_testkit import Receiver, receiver

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

FLUSH = 0.5  # -usageFlushInterval: what a kill -9 may lose of the ledger
SEGMENT = 1.0  # -segmentDuration
AFTER = 6.0  # seconds pushed to B after the kill (the 6 s clip other tests use too)


class Player:
    """Polls B's media playlist like an HLS player; every segment seen: seq -> (discontinuity
    number, duration, URI). A seq seen twice must be the same segment."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[int, tuple[int, float, str]] = {}
        self.digests: dict[int, str] = {}  # seq -> its bytes' digest, as first fetched
        self.errors: list[str] = []

    def read(self, text: str) -> list[int]:
        """Note the segments listed; the seqs of the ones not seen before."""
        fresh = []
        seq = int(_tag(text, "#EXT-X-MEDIA-SEQUENCE:") or 0)
        disc = int(_tag(text, "#EXT-X-DISCONTINUITY-SEQUENCE:") or 0)
        duration = 0.0
        for line in text.splitlines():
            if line == "#EXT-X-DISCONTINUITY":
                disc += 1
            elif line.startswith("#EXTINF:"):
                duration = float(line[8:].split(",")[0])
            elif line and not line.startswith("#"):
                entry = (disc, duration, line)
                if seq not in self.seen:
                    fresh.append(seq)
                if self.seen.setdefault(seq, entry) != entry:
                    self.errors.append(f"seq {seq} was {self.seen[seq]}, now {entry}")
                seq += 1
        return fresh

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                try:
                    async with http.get(self.url) as resp:
                        fresh = self.read(await resp.text()) if resp.status == 200 else []
                    for seq in fresh:  # a number used twice names two different segments
                        async with http.get(urljoin(self.url, self.seen[seq][2])) as resp:
                            self.digests[seq] = hashlib.sha256(await resp.read()).hexdigest()
                    await self._recheck(http)
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.25)

    async def _recheck(self, http: aiohttp.ClientSession) -> None:
        """Fetch again the oldest segment still listed: the same bytes, or a seq reused."""
        for seq, (_, _, uri) in sorted(self.seen.items())[:1]:
            async with http.get(urljoin(self.url, uri)) as resp:
                if resp.status != 200:
                    return
                digest = hashlib.sha256(await resp.read()).hexdigest()
            if self.digests.get(seq, digest) != digest:
                self.errors.append(f"seq {seq} names other bytes than before")


def _tag(text: str, name: str) -> str | None:
    match = re.search(re.escape(name) + r"(\d+)", text)
    return match.group(1) if match else None


async def _api(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with http.request(method, url, **kw) as resp:
        assert resp.status < 300, f"{method} {url}: {resp.status} {await resp.text()}"
        return await resp.json() if resp.content_length != 0 else None


async def _push_until_accepted(clip: Path, url: str, deadline: float) -> tuple[int, str]:
    """Publish ``clip``; while the dead owner's lease lasts, the stream is refused: try again."""
    while True:
        started = time.monotonic()
        code, err = await push(clip, url)
        if code == 0 or time.monotonic() - started > 2.0 or time.monotonic() > deadline:
            return code, err  # pushed (or ran a while and then failed: the test says so)
        await asyncio.sleep(0.3)


async def _wait(
    cond: Callable[[], Awaitable[bool]], timeout: float, what: str, node: Node | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            tail = f"; {node.node_id}'s log:\n{node.log_tail()}" if node else ""
            raise AssertionError(f"{what} in {timeout:.0f} s{tail}")
        await asyncio.sleep(0.2)


async def test_kill_9_of_the_owner_moves_the_stream_to_the_other_node(
    tmp_path: Path, make_clip: ClipMaker
) -> None:
    need_tool("ffmpeg")
    extra = ["-segmentDuration", str(SEGMENT), "-hlsWindow", "200",
             "-usageFlushInterval", f"{FLUSH}s"]  # fmt: skip
    before_clip = make_clip(seconds=30, gop=30)  # pushed until A dies (~5 s in)
    after_clip = make_clip(seconds=AFTER, gop=30)
    async with cluster(tmp_path, 2, extra=extra) as group, receiver() as rec:
        a, b = group.nodes
        admin = {"Authorization": f"Bearer {group.admin_key}"}
        async with aiohttp.ClientSession(headers=admin) as http:
            made = await _api(http, "POST", f"{a.url}/api/admin/keys",
                              json={"name": "customer", "scopes": ["streams"]})  # fmt: skip
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {made['key']}"}) as api:
            stream = await _api(api, "POST", f"{a.url}/api/stream", json={"name": "moving"})
            await _api(api, "POST", f"{b.url}/api/webhook", json={
                "name": "all", "url": f"{rec.url}/hook", "sharedSecret": "s3cret",
                "events": ["stream.started", "stream.idle", "recording.started",
                           "recording.ready", "quota.exhausted"],
            })  # fmt: skip
        lb = await group.balancer([a.rtmp_port, b.rtmp_port])  # A while it lives, then B
        url = f"rtmp://127.0.0.1:{lb.port}/live/{stream['streamKey']}"
        player = Player(f"{b.url}/stream/{stream['playbackId']}/source.m3u8")
        stop = asyncio.Event()
        playing = asyncio.create_task(player.run(stop))
        pushed_from = time.monotonic()  # -re: media seconds pushed = seconds since
        first = asyncio.create_task(push(before_clip, url))
        try:

            async def proxied() -> bool:
                return len(player.seen) >= 4

            await _wait(proxied, 30, "B never served A's playlist (the playback proxy)", b)
            assert lb.chosen == [a.rtmp_port]
            seen_before = dict(player.seen)
            a.kill()
            pushed_to_a = time.monotonic() - pushed_from
            code, _ = await first
            assert code != 0  # its connection died with A
            code, err = await _push_until_accepted(after_clip, url, time.monotonic() + 20)
            assert code == 0, f"the reconnect through the LB was refused: {err}\n{b.log_tail()}"
            assert lb.chosen[-1] == b.rtmp_port

            async def listed_after() -> bool:  # the last segments listed and polled
                after = [s for s in player.seen if s > max(seen_before)]
                return sum(player.seen[s][1] for s in after) >= AFTER - 2 * SEGMENT

            await _wait(listed_after, 10, "B's playlist did not list the pushed segments", b)
        finally:
            stop.set()
            await playing
            first.cancel()

        # HLS on B: one sequence, never a number twice, a discontinuity at the owner change
        assert not player.errors, player.errors
        old = sorted(seen_before)
        new = sorted(seq for seq in player.seen if seq > old[-1])
        assert new, "B's playlist never went on after the kill"
        assert player.seen[new[0]][0] == player.seen[old[-1]][0] + 1  # EXT-X-DISCONTINUITY
        assert all(player.seen[s][0] == player.seen[new[0]][0] for s in new)
        assert new[0] <= old[-1] + 3  # what A cut but never listed: a segment or two at most
        assert sum(player.seen[s][1] for s in new) >= AFTER - 2 * SEGMENT

        # the ledger: each media second once (A's last flush interval may be lost, never doubled)
        async def idle() -> bool:
            async with (
                aiohttp.ClientSession(headers=admin) as http,
                http.get(f"{b.url}/api/stream/{stream['id']}") as resp,
            ):
                return (await resp.json())["isActive"] is False

        await _wait(idle, 15, "the stream stayed active on B after its publisher left", b)
        await asyncio.sleep(2 * FLUSH)
        async with aiohttp.ClientSession(headers=admin) as http:
            rows = await _api(http, "GET", f"{b.url}/api/data/usage/query?breakdownBy[]=streamId")
        minutes = sum(float(r.get("TotalUsageMins") or 0) for r in rows)
        pushed = pushed_to_a + AFTER
        assert minutes * 60 <= pushed + SEGMENT, (minutes * 60, pushed)  # never counted twice
        assert minutes * 60 >= pushed - FLUSH - 3 * SEGMENT, (minutes * 60, pushed)

        # webhooks: each event exactly once; per session one stream.started and one stream.idle
        await asyncio.sleep(1.0)
        _check_webhooks(rec)


def _check_webhooks(rec: Receiver) -> None:
    docs = [got.doc for got in rec.on("/hook")]
    ids = Counter(doc["id"] for doc in docs)
    assert all(n == 1 for n in ids.values()), f"delivered twice: {ids.most_common(3)}"
    per_session = Counter((doc["event"], doc["payload"].get("sessionId")) for doc in docs)
    sessions = {s for _, s in per_session}
    assert len(sessions) == 2, per_session  # A's publish, then B's continuation
    for session in sessions:
        assert per_session["stream.started", session] == 1, per_session
        assert per_session["stream.idle", session] == 1, per_session
    others = [doc["event"] for doc in docs if doc["event"] not in ("stream.started", "stream.idle")]
    assert others == [], others  # no recording, no quota: nothing else happened
