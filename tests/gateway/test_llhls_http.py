"""LL-HLS over HTTP (aiohttp client, real sockets): blocking playlist reload (held, then served;
400; 503), a preload-hinted part held until it is cut, and the limit on held requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from llhls_testkit import FRAME, T0, segment_items
from mediatools import serve_app

from mediagw.api.http import build_app
from mediagw.api.llhls_http import add_llhls_routes
from mediagw.publish.hls import HLSPublisher
from mediagw.publish.llhls import LLHLSPublisher
from mediagw.stream.hub import StreamHub

Feed = Callable[..., None]


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, LLHLSPublisher]]:
    # held requests wait up to 2 s: the tests check several held ones in turn (~0.1 s each),
    # which on a loaded machine took longer than a shorter hold (seen in CI)
    ll = LLHLSPublisher(0.333, hold=2.0, max_waiters=4)
    app = build_app(StreamHub(), HLSPublisher(), first_segment_wait=0.1)
    add_llhls_routes(app, ll)
    async with serve_app(app) as base:
        yield f"{base}/stream/s/ll", ll


def _feed(ll: LLHLSPublisher, items: list) -> None:  # type: ignore[type-arg]
    for item in items:
        ll.feed("s", item, session=1)


async def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def _pending(task: asyncio.Task[tuple[int, dict[str, str], bytes]]) -> bool:
    """Whether ``task`` is still held once the server had every chance to answer it."""
    for _ in range(20):
        await asyncio.sleep(0.005)
    return not task.done()


async def test_playlist_and_media_answers(served: tuple[str, LLHLSPublisher]) -> None:
    url, ll = served
    assert (await _get(f"{url}/source.m3u8"))[0] == 404  # nothing yet
    _feed(ll, segment_items(0, T0, 60))
    _feed(ll, segment_items(1, T0 + 60 * FRAME, 12, complete=False))
    status, headers, body = await _get(f"{url}/index.m3u8")
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    assert 'CODECS="avc1.64001f"' in body.decode() and "RESOLUTION=320x240" in body.decode()
    status, headers, body = await _get(f"{url}/source.m3u8")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    assert body.decode().endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="source/1.1.mp4"\n')
    rend = ll.rendition("s", "source")
    assert rend is not None
    for path, data in [
        ("source/init-0.mp4", rend.inits[0]),
        ("source/0.mp4", rend.segments[0]),
        ("source/1.0.mp4", rend.parts[(1, 0)]),
    ]:
        status, headers, body = await _get(f"{url}/{path}")
        assert (status, body) == (200, data), path
        assert headers["Content-Type"] == "video/mp4"
        assert headers["Cache-Control"] == "public, max-age=3600, immutable"
    assert (await _get(f"{url}/source/9.0.mp4"))[0] == 404  # far ahead: not held
    # also at Studio's path
    studio = url.replace("/stream/s/ll", "/hls/s/ll")
    assert (await _get(f"{studio}/source/1.0.mp4"))[2] == rend.parts[(1, 0)]


async def test_blocking_reload_held_then_served(served: tuple[str, LLHLSPublisher]) -> None:
    url, ll = served
    _feed(ll, segment_items(0, T0, 60))
    _feed(ll, segment_items(1, T0 + 60 * FRAME, 5, complete=False))
    task = asyncio.create_task(_get(f"{url}/source.m3u8?_HLS_msn=1&_HLS_part=1"))
    assert await _pending(task)
    _feed(ll, segment_items(1, T0 + 60 * FRAME, 12, complete=False)[6:])  # frames 5..11
    assert await _pending(task)  # part 0 only: frames 10 and 11 wait for the next one
    _feed(ll, segment_items(1, T0 + 60 * FRAME, 22)[13:])  # to frame 21, then the segment
    status, _, body = await task
    assert status == 200
    assert 'URI="source/1.1.mp4"' in body.decode()
    # the whole segment (no part asked): held until it is complete
    task = asyncio.create_task(_get(f"{url}/source.m3u8?_HLS_msn=2"))
    assert await _pending(task)
    _feed(ll, segment_items(2, T0 + 82 * FRAME, 30))
    status, _, body = await task
    assert status == 200 and "source/2.mp4" in body.decode()


async def test_blocking_reload_refusals(served: tuple[str, LLHLSPublisher]) -> None:
    url, ll = served
    _feed(ll, segment_items(0, T0, 60))
    _feed(ll, segment_items(1, T0 + 60 * FRAME, 12, complete=False))
    for query, status in [
        ("_HLS_part=1", 400),  # a part without its msn
        ("_HLS_msn=x", 400),
        ("_HLS_msn=%C2%B2", 400),  # a digit, but not an ASCII one
        ("_HLS_msn=4", 400),  # more than the last msn + 2
        ("_HLS_msn=1&_HLS_part=11", 400),  # beyond the Advance Part Limit
        ("_HLS_msn=3", 503),  # may come, but not within the hold
    ]:
        got, _, body = await _get(f"{url}/source.m3u8?{query}")
        assert got == status, (query, body)
    ll.end("s", session=1)  # an ended playlist answers at once, however far ahead
    assert (await _get(f"{url}/source.m3u8?_HLS_msn=9"))[0] == 200


async def test_preload_hint_part_held_then_served(served: tuple[str, LLHLSPublisher]) -> None:
    url, ll = served
    _feed(ll, segment_items(0, T0, 60))
    items = segment_items(1, T0 + 60 * FRAME, 15)
    _feed(ll, items[:3])  # SegmentStart + two frames
    _, _, text = await _get(f"{url}/source.m3u8")
    assert text.decode().endswith('URI="source/1.0.mp4"\n')  # the hint
    task = asyncio.create_task(_get(f"{url}/source/1.0.mp4"))
    later = asyncio.create_task(_get(f"{url}/source/1.1.mp4"))
    assert await _pending(task)
    _feed(ll, items[3:12])  # frame 10 cuts part 0
    status, headers, body = await task
    rend = ll.rendition("s", "source")
    assert rend is not None
    assert (status, body) == (200, rend.parts[(1, 0)])
    assert headers["Content-Type"] == "video/mp4"
    # the segment ends after 15 frames: part 1 is its last; a part 2 will never come
    gone = asyncio.create_task(_get(f"{url}/source/1.2.mp4"))
    whole = asyncio.create_task(_get(f"{url}/source/1.mp4"))  # the segment being cut
    assert await _pending(later) and await _pending(gone) and await _pending(whole)
    _feed(ll, items[12:])
    assert (await later)[2] == rend.parts[(1, 1)]
    assert (await gone)[0] == 404
    assert (await whole)[2] == rend.segments[1] == rend.parts[(1, 0)] + rend.parts[(1, 1)]


async def test_held_requests_are_bounded(served: tuple[str, LLHLSPublisher]) -> None:
    url, ll = served
    _feed(ll, segment_items(0, T0, 30, complete=False))
    held = [asyncio.create_task(_get(f"{url}/source.m3u8?_HLS_msn=1")) for _ in range(4)]
    for task in held:
        assert await _pending(task)
    status, headers, _ = await _get(f"{url}/source.m3u8?_HLS_msn=1")
    assert status == 503 and headers["Retry-After"] == "1"
    _feed(ll, segment_items(1, T0 + 30 * FRAME, 1))  # segment 0 superseded: 1 is listed
    _feed(ll, segment_items(2, T0 + 31 * FRAME, 1))
    assert [(await t)[0] for t in held] == [200] * 4


async def test_removed_stream_releases_held_requests(served: tuple[str, LLHLSPublisher]) -> None:
    url, ll = served
    _feed(ll, segment_items(0, T0, 5, complete=False))
    held = asyncio.create_task(_get(f"{url}/source/0.0.mp4"))
    assert await _pending(held)
    ll.remove("s")  # what the hub's removal of an ended stream does
    assert (await held)[0] == 404
