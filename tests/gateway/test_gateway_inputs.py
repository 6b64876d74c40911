"""Hostile input at the gateway's doors gets a 4xx that says what is wrong, and leaves no
traceback, no secret and nothing unbounded behind.

A whole Gateway on loopback with static stream keys and a reference orchestrator in instant
mode (so the live AI routes exist); raw sockets for what aiohttp's client will not send.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from rtmp.rtmp_testkit import ClientScript, ServerReplies, read_until

from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.log import RequestErrorFilter
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.platform.inputs import parse_rtmp_outputs

KEY = "sk_TOPSECRET7"  # -> playback id "concert"
DEEP = b"[" * 3000 + b"]" * 3000


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with ReferenceOrchestrator(OrchestratorConfig(instant=True)) as orch:
        gateway = Gateway(
            Settings(
                rtmp_addr="127.0.0.1:0",
                http_addr="127.0.0.1:0",
                orch_addr=(orch.url,),
                stream_keys={KEY: "concert"},
                transcoding_options="P144p30fps16x9",
            )
        )
        await gateway.start()
        try:
            yield gateway
        finally:
            await gateway.stop()


def _live(gw: Gateway, name: str, route: str) -> str:
    return f"http://127.0.0.1:{gw.http_port}/live/video-to-video/{name}/{route}"


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    failed = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not failed, [(r.name, r.getMessage()) for r in failed]


MULTIPART_BAD_UTF8 = (
    b'--zz\r\nContent-Disposition: form-data; name="pipeline"\r\n\r\n\xff\xfe\r\n--zz--\r\n'
)

BAD_BODIES = [
    # (route, Content-Type, body, status, words the answer must contain)
    ("start", "application/json; charset=utf-99", b'{"pipeline":"noop"}', 415, "charset"),
    ("start", "application/json; charset=latin-1", b'{"pipeline":"noop"}', 415, "UTF-8"),
    ("start", "multipart/form-data", b"--x\r\n", 400, "boundary"),
    ("start", "multipart/form-data; boundary=zz", b"--zz\r\nbroken", 400, "multipart"),
    ("start", "multipart/form-data; boundary=zz", MULTIPART_BAD_UTF8, 400, "not valid text"),
    ("start", "application/json", DEEP, 400, "deeper than 32 levels"),
    ("start", "application/json", b'{"params": 12, "pipeline": "noop"}', 400, "params must be"),
    ("start", "application/json", b'{"params": "[1]", "pipeline": "noop"}', 400, "JSON object"),
    ("start", "application/json", b'{"params": "' + b"[" * 3000 + b'"}', 400, "deeper"),
    ("start", "application/json", b'{"pipeline": ["noop"]}', 400, "pipeline must be a string"),
    ("start", "application/json", b'{"pipeline": "noop", "streamId": {}}', 400, "streamId"),
    ("start", "application/json", b"\xff\xfe{}", 400, "not UTF-8"),
    ("start", "application/json", b"{nope", 400, "not valid JSON"),
    ("start", "application/x-www-form-urlencoded", b"pipeline=\xff\xfe", 400, "utf-8"),
    ("start", "application/x-www-form-urlencoded; charset=x", b"pipeline=noop", 415, "charset"),
    ("start", "application/x-www-form-urlencoded", b"query=" + b"a%3D1%26" * 100, 400, "fields"),
    ("update", "application/json", DEEP, 400, "deeper than 32 levels"),
    ("update", "application/json", b"\xff\xfe", 400, "not UTF-8"),
    ("update", "application/json", b"[1]", 400, "JSON object"),
]


@pytest.mark.parametrize(("route", "ctype", "body", "status", "needle"), BAD_BODIES)
async def test_live_routes_answer_malformed_bodies_with_a_4xx_that_says_why(
    gw: Gateway,
    caplog: pytest.LogCaptureFixture,
    route: str,
    ctype: str,
    body: bytes,
    status: int,
    needle: str,
) -> None:
    async with aiohttp.ClientSession() as s:
        url = _live(gw, "cam", route)
        async with s.post(url, data=body, headers={"Content-Type": ctype}) as resp:
            text = await resp.text()
            assert resp.status == status, text
    assert needle.lower() in json.loads(text)["error"].lower(), text
    assert gw.live_ai is not None and "cam" not in gw.live_ai.pending
    _no_tracebacks(caplog)


async def test_pipeline_names_and_ids_are_bounded_on_every_way_in(gw: Gateway) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(_live(gw, "cam", "start"), json={"pipeline": "a" * 100_000}) as resp:
            assert resp.status == 400
            assert "1-128" in (await resp.json())["error"]
        async with s.post(_live(gw, "cam", "start"), json={"pipeline": "no op"}) as resp:
            assert resp.status == 400 and "'no op'" in (await resp.json())["error"]
        async with s.post(_live(gw, "x" * 200, "start"), json={"pipeline": "noop"}) as resp:
            assert resp.status == 400 and "stream name" in (await resp.json())["error"]
        # WHIP: refused before any SDP work
        url = f"http://127.0.0.1:{gw.http_port}/whip/{KEY}?pipeline={'p' * 300}"
        async with s.post(url, data="v=0\r\n", headers={"Content-Type": "application/sdp"}) as r:
            assert r.status == 400 and "1-128" in await r.text()
        async with s.get(f"http://127.0.0.1:{gw.http_port}/streams") as resp:
            listed = await resp.text()
    assert "a" * 200 not in listed and "p" * 200 not in listed
    # RTMP: the query's pipeline and streamId
    for query in (f"pipeline={'m' * 300}", "pipeline=noop&streamId=" + "i" * 300):
        client = ClientScript()
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.rtmp_port)
        writer.write(client.setup(f"{KEY}?{query}"))
        got = await read_until(reader, ServerReplies(), "NetStream.Publish.BadName")
        assert "1-128" in got[-1].values[3]["description"]
        writer.close()
    assert gw.hub.get("concert") is None


async def test_the_pending_live_ai_queue_is_bounded(gw: Gateway) -> None:
    assert gw.live_ai is not None
    gw.live_ai.max_pending = 3
    async with aiohttp.ClientSession() as s:
        for i in range(3):
            async with s.post(_live(gw, f"later{i}", "start"), json={"pipeline": "noop"}) as r:
                assert r.status == 200
        async with s.post(_live(gw, "later3", "start"), json={"pipeline": "noop"}) as resp:
            assert resp.status == 429
            assert "3 live AI requests already wait" in (await resp.json())["error"]
        # asking again for a stream that already waits replaces its request
        async with s.post(_live(gw, "later1", "start"), json={"pipeline": "tint"}) as resp:
            assert resp.status == 200
    assert sorted(gw.live_ai.pending) == ["later0", "later1", "later2"]
    assert gw.live_ai.pending["later1"].pipeline == "tint"
    assert gw.live_ai.pending_refused == 1


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ('{"timeoutMultiplier": {"a": 1}}', "timeoutMultiplier"),
        ('{"timeoutMultiplier": "abc"}', "timeoutMultiplier"),
        ('{"timeoutMultiplier": 1e309}', "timeoutMultiplier"),
        ("[" * 2000 + "]" * 2000, "not valid JSON"),
    ],
)
async def test_push_configuration_header_junk_is_a_400(
    gw: Gateway, caplog: pytest.LogCaptureFixture, config: str, needle: str
) -> None:
    url = f"http://127.0.0.1:{gw.http_port}/live/cam/0.ts"
    headers = {"Livepeer-Transcode-Configuration": config}
    async with aiohttp.ClientSession() as s, s.post(url, data=b"x", headers=headers) as resp:
        assert resp.status == 400 and needle in await resp.text()
    _no_tracebacks(caplog)


async def _raw(port: int, data: bytes, eof: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if eof:
        writer.write_eof()
    try:
        async with asyncio.timeout(5):
            return await reader.read()
    except (ConnectionError, TimeoutError):
        return b""
    finally:
        writer.close()


MALFORMED = [
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    f"POST /live/{KEY}/0.ts HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n".encode(),
    f"POST /live/{KEY}/0.ts HTTP/9.9\r\n\r\n".encode(),
    f"GET /whip/{KEY}?q={'a' * 9000} HTTP/1.1\r\n\r\n".encode(),
    b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
    b"POST /live/video-to-video/x/update HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"\r\nZZZ\r\n",
    b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
]


async def test_malformed_requests_log_one_short_line_each_rate_limited(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    suppressed = gw.request_errors.suppressed  # the filter is per process (one logger)
    rounds = 20
    for _ in range(rounds):
        await asyncio.gather(*(_raw(gw.http_port, data) for data in MALFORMED))
    await asyncio.sleep(1.1)  # a new second: the next line tells how many were dropped
    await _raw(gw.http_port, MALFORMED[0])
    lines = [r for r in caplog.records if r.name == "mediagw.http"]
    assert lines and all(r.getMessage() == "malformed HTTP request" for r in lines), [
        r.getMessage() for r in lines
    ]
    assert all(getattr(r, "peer", "") == "127.0.0.1" and getattr(r, "error", "") for r in lines)
    # at most `rate` a second; the rest counted, and the count is shown on a later line
    assert len(lines) < rounds * len(MALFORMED)
    dropped = gw.request_errors.suppressed - suppressed
    assert dropped > 0 and len(lines) + dropped == rounds * len(MALFORMED) + 1
    assert any(getattr(r, "suppressed", 0) for r in lines)
    _no_tracebacks(caplog)
    for record in caplog.records:
        assert "TOPSECRET" not in repr(vars(record)), record


async def test_a_client_gone_mid_body_is_no_500_and_no_traceback(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    for path in ("/live/video-to-video/cam/start", "/live/video-to-video/cam/update"):
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        await _raw(gw.http_port, head.encode() + b"Content-Length: 100\r\n\r\n{")
    _no_tracebacks(caplog)


def test_request_error_filter_counts_what_it_drops() -> None:
    from aiohttp.http_exceptions import BadStatusLine

    now = [0.0]
    flt = RequestErrorFilter(rate=2, clock=lambda: now[0])

    def record() -> logging.LogRecord:
        exc = BadStatusLine(f"POST /live/{KEY}/0.ts HTTP/9.9")
        return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1,
                                 "Error handling request from %s", ("10.0.0.9",),
                                 (BadStatusLine, exc, None))  # fmt: skip

    passed = [flt.filter(r) for r in (record(), record(), record(), record())]
    assert passed == [True, True, False, False] and flt.suppressed == 2
    now[0] = 1.5
    line = record()
    assert flt.filter(line)
    assert line.getMessage() == "malformed HTTP request" and line.exc_info is None
    assert line.levelno == logging.WARNING
    assert vars(line)["peer"] == "10.0.0.9" and vars(line)["suppressed"] == 2
    assert vars(line)["error"] == "BadStatusLine: Bad status line", vars(line)["error"]
    # a handler's own failure keeps its traceback: it is a bug
    bug = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling %s",
                            ("x",), (RuntimeError, RuntimeError("bug"), None))  # fmt: skip
    assert flt.filter(bug) and bug.exc_info is not None


@pytest.mark.parametrize("bad", ["http://a/live/SECRET1", "rtmp://a/SECRET1 x", "SECRET1"])
def test_a_refused_rtmp_output_is_named_without_its_key(bad: str) -> None:
    """The error goes back to the publisher and into logs: never the destination's key."""
    with pytest.raises(ValueError) as refused:
        parse_rtmp_outputs(f"rtmp://ok/live/k,{bad}")
    assert "SECRET1" not in str(refused.value), refused.value
