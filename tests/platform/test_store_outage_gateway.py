"""PostgreSQL going away mid-stream, on a real gateway: a stored stream published with the
ffmpeg CLI over RTMP keeps flowing to HLS (and its viewer keeps playing) while the database is
unreachable, the stream even ends meanwhile; once the database is back, the usage ledger's totals
equal the media ingested (nothing lost, nothing counted twice), the session is stored ended with
its counters, and ``stream.idle`` is sent once. A stream never looked up before answers 503.

The database is reached through ``TcpProxy`` (``mediagw/bench/tcp_proxy.py``) in front of the
shared test PostgreSQL (which other tests use, so it cannot be restarted). Cutting the proxy is
what a client sees of a PostgreSQL restart: every open connection is reset (the gateway's side
gets a reset, the server's side is closed, so the server aborts what was open, as a restart
does) and new connections are refused until it is back; the pool's connections all die. It is
cheaper than a throwaway server and exact about the client's view; it does not lose the
server's state (a restart does not either). A commit that succeeded but whose answer was lost
(possible at a real restart, rare here) is covered by ``test_ledger_once.py``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from mediatools import ClipMaker, fetch_hls, push, wait_until
from sqlalchemy.engine import make_url
from webhook_testkit import Received, receiver

from mediagw.bench.tcp_proxy import TcpProxy
from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.platform import keys
from mediagw.platform.ledger import HOUR_MS
from mediagw.platform.tenancy import Tenant
from mediagw.stream.hub import Stream
from mediagw.usage import SOURCE
from segmenter import Segment

pytestmark = pytest.mark.ffmpeg

SECONDS = 10  # of media; the database goes away after 3 and comes back once it has ended


class Segments:
    """A hub listener: the sequence number and milliseconds of every source segment."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_stream_start(self, stream: Stream) -> None:
        pass

    def on_segment(self, stream: Stream, segment: Segment) -> None:
        self.seen.append((segment.seq, round(segment.duration * 1000)))

    def on_stream_end(self, stream: Stream) -> None:
        pass

    def on_stream_removed(self, stream: Stream) -> None:
        pass


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_media_flows_while_postgresql_is_down_and_the_ledger_catches_up(
    store_url: str, make_clip: ClipMaker, tmp_path: Path
) -> None:
    db = make_url(store_url)
    async with TcpProxy(db.host or "127.0.0.1", db.port or 5432) as proxy, receiver() as rec:
        proxied = db.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        gw = Gateway(
            Settings(
                rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0", hls_window=200,
                segment_duration=1.0, store_url=proxied, usage_flush_interval=1.0,
                data_dir=str(tmp_path / "data"), webhook_allow_private=True,
            )
        )  # fmt: skip
        await gw.start()
        try:
            assert gw.streams is not None and gw.ledger is not None and gw.webhooks is not None
            assert gw.lifecycle is not None
            segments = Segments()
            gw.hub.add_listener(segments)
            await gw.webhooks.create("ops", f"{rec.url}/hook", ["stream.started", "stream.idle"])
            owner, _ = await keys.create_key(gw.store, "customer", ["streams"])  # type: ignore[arg-type]
            tenant = Tenant(owner.id, admin=False)  # its plan is read at every ledger flush
            stream = await gw.streams.create({"name": "show", "profiles": []}, tenant=tenant)
            url = f"rtmp://127.0.0.1:{gw.rtmp_port}/live/{stream.stream_key}"
            pushing = asyncio.create_task(push(make_clip(seconds=SECONDS), url, timeout=60))
            await wait_until(lambda: len(segments.seen) >= 3, 30)
            await wait_until(lambda: gw.ledger.flushes >= 1, 10)  # type: ignore[union-attr]
            await fetch_hls(gw.http_port, stream.playback_id)  # a viewer is watching

            await proxy.cut()  # PostgreSQL "restarts"; the stream goes on and ends meanwhile
            down = asyncio.get_running_loop().time()
            flushes, listed = gw.ledger.flushes, len(segments.seen)
            code, err = await pushing
            assert code == 0, err  # the publisher was never cut
            await wait_until(lambda: not gw.hub.get(stream.playback_id).live, 10)  # type: ignore[union-attr]
            played = await fetch_hls(gw.http_port, stream.playback_id)
            assert len(segments.seen) >= listed + 4  # media kept flowing to HLS
            assert [s.seq for s in played.segments] == [seq for seq, _ in segments.seen]
            assert played.ended and played.video_frames == SECONDS * 30  # no segment lost
            async with (  # a stream nobody asked about before: its policy is unknown
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{gw.http_port}/hls/unknown/index.m3u8") as resp,
            ):
                assert resp.status == 503 and resp.headers["Retry-After"] == "2"
            assert gw.ledger.flushes == flushes  # every flush failed meanwhile
            assert asyncio.get_running_loop().time() - down >= 4  # several seconds down
            await proxy.restore()

            def hooks(event: str) -> list[Received]:
                return [r for r in rec.on("/hook") if r.doc["event"] == event]

            await wait_until(lambda: bool(hooks("stream.idle")), 20)  # stored, then sent
            await gw.lifecycle.drain()
            gw.usage.drain()
            await gw.ledger.flush()
            now = int(gw.clock.wall() * 1000) // HOUR_MS * HOUR_MS
            rows = await gw.store.usage(now - HOUR_MS, now + HOUR_MS)  # type: ignore[union-attr]
            assert {r.key_id for r in rows} == {owner.id}
            ingested = sum(r.ms for r in rows if r.kind == SOURCE)
            assert ingested == sum(ms for _, ms in segments.seen)
            (session,) = await gw.streams.list_sessions(stream.id)
            assert session.ended_at is not None
            assert [h.doc["payload"]["sessionId"] for h in hooks("stream.idle")] == [session.id]
            assert len(hooks("stream.started")) == 1
            assert session.source_segments == len(segments.seen)
            assert not (await gw.streams.get(stream.id)).is_active  # type: ignore[union-attr]
        finally:
            await gw.stop()
