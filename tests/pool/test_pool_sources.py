"""Candidate sources: -orchAddr with region tags, the blocklist, and the webhook source against a
real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from mediatools import serve_app
from pool.pool_testkit import make_info

from mediagw.clock import ManualClock
from mediagw.errors import ConfigError
from mediagw.livepeer.candidates import Candidate
from mediagw.pool import Blocklist, StaticSource, WebhookSource


def normalize(entry: str) -> str:
    """The -orchAddr rule of transcode spec §8.1 (the real one lives in livepeer.rpc)."""
    if entry.startswith(":"):
        entry = "127.0.0.1" + entry
    if ":" not in entry:
        entry += ":8935"
    return entry if entry.startswith("http") else "https://" + entry


# -- -orchAddr ---------------------------------------------------------------------------------


async def test_static_source_regions_and_trust() -> None:
    src = StaticSource(
        [" o1.example.com:8935#eu-west", "o2", ":9000", "http://o4:1", "", "o2:8935#us"],
        normalize,
        regions={"o2": "us-east", "http://o4:1": "ap"},
    )
    assert await src.candidates() == [
        Candidate("https://o1.example.com:8935", 1.0, "eu-west"),
        Candidate("https://o2:8935", 1.0, "us-east"),  # raw-entry key
        Candidate("https://127.0.0.1:9000", 1.0, ""),
        Candidate("http://o4:1", 1.0, "ap"),  # normalized-URL key
    ]  # the second o2 entry is a duplicate and dropped
    assert all(c.trusted for c in await src.candidates())


async def test_static_source_tag_beats_mapping() -> None:
    src = StaticSource(["o1#eu"], normalize, regions={"o1": "us"})
    assert (await src.candidates())[0].region == "eu"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["#eu"], "entry '#eu' has no address"),
        (["o1#bad region"], "region tag 'bad region' must be"),
        (["o1#" + "x" * 65], "must be 1-64"),
    ],
)
def test_static_source_errors(entries: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StaticSource(entries, normalize)


def test_candidate_trust() -> None:
    assert Candidate("u", 1.0).trusted
    assert not Candidate("u", 0.99).trusted


# -- -orchBlocklist ----------------------------------------------------------------------------


def test_blocklist() -> None:
    addr = bytes.fromhex("2c7536e3605d9c16a7a3d7b1898e529396a65c23")
    bl = Blocklist(["0x2c7536E3605D9C16a7a3D7b1898e529396a65c23", " ", "AB" * 20])
    assert len(bl) == 2
    assert addr in bl
    assert "2C7536E3605D9C16A7A3D7B1898E529396A65C23" in bl
    assert "0xabababababababababababababababababababab" in bl
    assert bytes(20) not in bl
    assert 5 not in bl
    assert bl.blocks(make_info(address=addr))
    assert not bl.blocks(make_info(address=bytes(20)))
    assert not bl.blocks(make_info())  # off-chain O without address
    assert not Blocklist().blocks(make_info(address=addr))


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 20, "0x" + "a" * 41])
def test_blocklist_rejects_non_addresses(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"-orchBlocklist: .* is not an ETH address"):
        Blocklist([bad])


# -- -orchWebhookUrl ---------------------------------------------------------------------------


@dataclass
class Hook:
    """What the fake webhook answers; change ``handler`` between calls."""

    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    hits: int = 0
    urls: list[str] = field(default_factory=list)


def json_reply(doc: object, status: int = 200) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, text=json.dumps(doc), content_type="application/json")

    return handler


GOOD = [
    {"address": "https://o1:8935", "score": 1, "region": "eu-west"},
    {"address": "https://o2:8935", "score": 0.25},
    {"address": "", "score": 1},
    {"address": "https://o3:8935"},
]
GOOD_CANDIDATES = [
    Candidate("https://o1:8935", 1.0, "eu-west"),
    Candidate("https://o2:8935", 0.25, ""),
    Candidate("https://o3:8935", 0.0, ""),
]


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, str]]:
    state = Hook(json_reply(GOOD))

    async def dispatch(request: web.Request) -> web.StreamResponse:
        state.hits += 1
        state.urls.append(str(request.rel_url))
        return await state.handler(request)

    app = web.Application()
    app.router.add_get("/orchs", dispatch)
    async with serve_app(app) as base:
        yield state, f"{base}/orchs?token=s3cret"


async def test_webhook_parses_and_caches(hook: tuple[Hook, str]) -> None:
    state, url = hook
    clock = ManualClock()
    src = WebhookSource(url, clock=clock)
    assert await src.candidates() == GOOD_CANDIDATES
    clock.advance(59.9)
    assert await src.candidates() == GOOD_CANDIDATES
    assert state.hits == 1
    state.handler = json_reply([{"address": "https://o9:8935", "score": 1}])
    clock.advance(0.1)
    assert await src.candidates() == [Candidate("https://o9:8935", 1.0)]
    assert state.hits == 2
    assert state.urls[0] == "/orchs?token=s3cret"


async def test_webhook_concurrent_callers_share_one_fetch(hook: tuple[Hook, str]) -> None:
    state, url = hook

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.json_response(GOOD)

    state.handler = slow
    src = WebhookSource(url, clock=ManualClock())
    results = await asyncio.gather(*(src.candidates() for _ in range(5)))
    assert all(r == GOOD_CANDIDATES for r in results)
    assert state.hits == 1


async def _bad_status(_: web.Request) -> web.Response:
    return web.Response(status=500, text="boom")


async def _redirect(_: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/elsewhere"})


async def _not_json(_: web.Request) -> web.Response:
    return web.Response(text="<html>")


async def _not_array(_: web.Request) -> web.Response:
    return web.json_response({"address": "https://x:1"})


async def _hang(_: web.Request) -> web.Response:
    await asyncio.sleep(0.5)
    return web.json_response([])


async def _huge_declared(_: web.Request) -> web.Response:
    return web.Response(body=b"[" + b" " * 5000 + b"]")


async def _huge_chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(b"[")
    for _ in range(10):
        await resp.write(b" " * 1000)
    await resp.write(b"]")
    await resp.write_eof()
    return resp


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (_bad_status, "status 500"),
        (_redirect, "status 302"),
        (_not_json, "body is not JSON"),
        (_not_array, "body is not a JSON array"),
        (_hang, "no complete answer within 0.2 s"),
        (_huge_declared, "body of 5002 bytes is over the 4096 limit"),
        (_huge_chunked, "body is over the 4096 byte limit"),
    ],
)
async def test_webhook_keeps_last_good_list_on_error(
    hook: tuple[Hook, str],
    caplog: pytest.LogCaptureFixture,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    error: str,
) -> None:
    state, url = hook
    clock = ManualClock()
    src = WebhookSource(url, clock=clock, timeout=0.2, max_body=4096)
    assert await src.candidates() == GOOD_CANDIDATES
    state.handler = handler
    clock.advance(60)
    with caplog.at_level(logging.WARNING, logger="mediagw.pool"):
        assert await src.candidates() == GOOD_CANDIDATES
    [rec] = [r for r in caplog.records if hasattr(r, "webhook")]
    assert rec.error.startswith(error)
    assert rec.kept == 3
    assert rec.webhook == url.split("?")[0]  # the query (a token) is not logged
    # the gateway's records (not the test webhook server's own access log)
    assert not [
        r
        for r in caplog.records
        if r.name.startswith("mediagw") and "s3cret" in r.getMessage() + repr(r.__dict__)
    ]


async def test_webhook_error_backoff_then_recovery(hook: tuple[Hook, str]) -> None:
    state, url = hook
    state.handler = _bad_status
    clock = ManualClock()
    src = WebhookSource(url, clock=clock, retry_after=5)
    assert await src.candidates() == []  # nothing good yet
    clock.advance(4.9)
    assert await src.candidates() == []
    assert state.hits == 1  # a failing webhook is not hammered
    state.handler = json_reply(GOOD)
    clock.advance(0.1)
    assert await src.candidates() == GOOD_CANDIDATES
    assert state.hits == 2


async def test_webhook_skips_malformed_entries(
    hook: tuple[Hook, str], caplog: pytest.LogCaptureFixture
) -> None:
    state, url = hook
    state.handler = json_reply(
        [
            "nope",
            {"address": 5},
            {"address": "https://ok:1", "score": "high"},
            {"address": "https://ok:2", "score": True},
            {"address": "o-without-scheme:8935", "score": 1},
            {"address": "https://ok:3", "region": 7},
            {"address": "https://ok:4", "region": "bad region"},
            {"address": "  ", "score": 1},
            {"address": " https://ok:5 ", "score": 1, "region": None},
            {"address": "https://ok:5", "score": 0},
        ]
    )
    src = WebhookSource(url, clock=ManualClock())
    with caplog.at_level(logging.WARNING, logger="mediagw.pool"):
        assert await src.candidates() == [Candidate("https://ok:5", 1.0)]
    [rec] = [r for r in caplog.records if hasattr(r, "entries")]
    entries = rec.entries
    assert entries.count("[") == 7
    assert "[4] address 'o-without-scheme:8935' is not an http(s) URL" in entries


async def test_webhook_with_normalize(hook: tuple[Hook, str]) -> None:
    state, url = hook
    state.handler = json_reply([{"address": "o1", "score": 1}])
    src = WebhookSource(url, clock=ManualClock(), normalize=normalize)
    assert await src.candidates() == [Candidate("https://o1:8935", 1.0)]


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match="-orchWebhookUrl"):
        WebhookSource("ftp://x/y", clock=ManualClock())
