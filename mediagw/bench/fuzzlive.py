"""``mediagw bench fuzzlive``: fuzzed RTMP sessions and HTTP requests against a running gateway
while one clean stream stays live; the clean stream must lose no frame.

The gateway runs as ``mediagw run`` in a child process (a crash shows as one), on an in-process
reference orchestrator (``instant``: the live AI and transcoding routes are live, at no CPU
cost). A clean clip with a known frame count is published with the ffmpeg CLI, again and again
under fresh names until the fuzz is over (:mod:`.fuzzlive_clean`); meanwhile ``--sessions``
fuzzed RTMP sessions (:mod:`.fuzzlive_rtmp`) and ``--requests`` fuzzed HTTP requests
(:mod:`.fuzzlive_http`) go out with bounded concurrency over real TCP.

Reported (:mod:`.fuzzlive_report`): sessions and requests sent, by strategy and by answer
(RTMP: how the connection ended; HTTP: status classes), the gateway's 500s (must be 0, each
shown with a reproducer) and other 5xx, whether it stayed up and stopped cleanly, its threads,
RSS and open files before, at peak and after (RSS also in the progress lines, when 25/50/75/100 %
of the sessions had ended, and, with an ``--ended-ttl`` up to a minute, once the fuzz's ended
streams were swept: whether memory is bounded), its log's errors and tracebacks (must be 0),
streams left live after the fuzz (must be 0), RTMP sessions the gateway left open after our FIN
(must be 0), the clean stream's frames expected and got (must be equal), wall time and rates.
Exit status 1 on any failure. Needs the ffmpeg CLI.
"""

from __future__ import annotations

import asyncio
import json
import random
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from yarl import URL

from segmenter.probe import count_frames_flv

from ..errors import ConfigError
from .flood_wire import raw_http, rtmp_session
from .fuzzlive_clean import CleanStream, GatewayProc
from .fuzzlive_http import FuzzedRequest, RequestFuzzer
from .fuzzlive_report import SHOWN, LiveFuzzReport, format_report, read_log
from .fuzzlive_rtmp import SessionFuzzer
from .ingest import make_clip

__all__ = ["LiveFuzzReport", "run_fuzzlive_bench"]

FUZZ_NAMES = [f"fz{i}" for i in range(12)]  # the streams fuzzed sessions publish under
REQUEST_TIMEOUT = 10.0  # an answer to a request aiohttp's client sends (complete HTTP)
SETTLE = 20.0  # seconds for the fuzz's streams to end once it is over
RAW_TIMEOUT = 3.0  # over a raw socket: the request may be incomplete (a length that lies)
SWEPT_TTL = 60.0  # an ended TTL up to this long: RSS is read again once the fuzz's are swept


def _answer_class(answer: int | str) -> str:
    return f"{answer // 100}xx" if isinstance(answer, int) else answer


async def _send(
    http: aiohttp.ClientSession, port: int, req: FuzzedRequest, rep: LiveFuzzReport
) -> int | str:
    if req.raw is None:
        url = URL(f"http://127.0.0.1:{port}{req.target}", encoded=True)
        try:
            async with (
                asyncio.timeout(REQUEST_TIMEOUT),
                http.request(req.method, url, headers=req.headers, data=req.body or None,
                             allow_redirects=False) as resp,
            ):  # fmt: skip
                await resp.read()
                return resp.status
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientConnectionError:
            return "closed"
        except aiohttp.ClientResponseError:
            return "bad-answer"
        except (ValueError, TypeError, LookupError):  # aiohttp's client refused to send it
            req.raw = b"".join(  # the same request, by hand
                [f"{req.method} {req.target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 .encode("utf-8", "surrogateescape"),
                 *(f"{k}: {v}\r\n".encode("utf-8", "surrogateescape")
                   for k, v in req.headers.items()),
                 f"Content-Length: {len(req.body)}\r\n\r\n".encode(), req.body]
            )  # fmt: skip
    rep.raw_requests += 1
    return await raw_http("127.0.0.1", port, req.raw, timeout=RAW_TIMEOUT)


async def _fuzz_http(
    gw: GatewayProc, n: int, concurrency: int, fuzzer: RequestFuzzer, rep: LiveFuzzReport
) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            while rep.requests < n:
                rep.requests += 1
                req = fuzzer.request()
                rep.http_kinds[req.kind] += 1
                answer = await _send(http, gw.http_port, req, rep)
                rep.http_answers[_answer_class(answer)] += 1
                if answer == "timeout":
                    rep.http_timeouts[req.kind] += 1
                if isinstance(answer, int):
                    rep.http_statuses[answer] += 1
                    if answer == 500 and len(rep.findings) < SHOWN:
                        rep.findings.append(f"HTTP 500 ({req.kind}): {req.reproducer()}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rep.http_seconds = time.perf_counter() - start


async def _fuzz_rtmp(
    gw: GatewayProc, n: int, concurrency: int, fuzzer: SessionFuzzer, rep: LiveFuzzReport
) -> None:
    marks = [max(1, round(n * q / 4)) for q in (1, 2, 3, 4)]  # sessions ended at each quarter

    async def worker() -> None:
        while rep.sessions < n:
            rep.sessions += 1
            session = fuzzer.session()
            rep.rtmp_strategies[session.strategy] += 1
            outcome = await rtmp_session(
                "127.0.0.1", gw.rtmp_port, session.parts, fin=session.fin, close_timeout=10.0
            )
            rep.rtmp_outcomes[outcome] += 1
            done = sum(rep.rtmp_outcomes.values())
            while len(rep.rss_quarters) < len(marks) and done >= marks[len(rep.rss_quarters)]:
                rep.rss_quarters.append(gw.stats().rss_mb)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rep.rtmp_seconds = time.perf_counter() - start


async def _progress(
    gw: GatewayProc, rep: LiveFuzzReport, sessions: int, requests: int, every: float
) -> None:
    start = time.monotonic()
    while True:
        await asyncio.sleep(every)
        now, stats = time.monotonic() - start, gw.stats()
        rep.rss_progress.append((round(now, 1), rep.sessions, round(stats.rss_mb, 1)))
        print(f"  {now:5.0f} s: {rep.sessions}/{sessions} sessions, "
              f"{rep.requests}/{requests} requests, RSS {stats.rss_mb:.0f} MB, "
              f"{stats.threads} threads", file=sys.stderr, flush=True)  # fmt: skip


async def _live_streams(port: int) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/streams?live=1") as resp,
    ):
        return [s["id"] for s in (await resp.json())["streams"]]


async def _left_live(port: int, timeout: float, clean: str) -> list[str]:
    """The fuzz's streams still live ``timeout`` s after it (every publisher has hung up; a
    WHIP session never connected ends after 15 s)."""
    deadline = time.monotonic() + timeout
    first = True
    try:
        while True:
            live = [s for s in await _live_streams(port) if clean not in s]
            if first:
                print(f"  the fuzz's streams live at its end: {live}", file=sys.stderr)
                first = False
            if not live or time.monotonic() >= deadline:
                return live
            await asyncio.sleep(0.5)
    except (aiohttp.ClientError, ValueError, KeyError) as exc:
        return [f"(no answer from /streams: {type(exc).__name__})"]


async def fuzz_live(
    work: Path,
    *,
    sessions: int,
    requests: int,
    concurrency: int,
    seed: int,
    clip_seconds: float,
    ended_ttl: float | None = None,
    gateway_args: str = "",
) -> LiveFuzzReport:
    from ..orchestrator import OrchestratorConfig, ReferenceOrchestrator

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    rep = LiveFuzzReport(ended_ttl=ended_ttl)
    started = time.perf_counter()
    clip = work / "clean.flv"
    await asyncio.to_thread(make_clip, clip, clip_seconds, "320x240", 30, ffmpeg)
    frames = await asyncio.to_thread(count_frames_flv, clip)
    orch = ReferenceOrchestrator(OrchestratorConfig(instant=True))
    await orch.start()
    gw = GatewayProc(work, [
        "-rtmpAddr", "127.0.0.1:0", "-httpAddr", "127.0.0.1:0", "-orchAddr", orch.url,
        "-dataDir", str(work / "data"), "-hlsWindow", "100", "-logFormat", "json",
        "-logLevel", "info",
        *(["-endedStreamTtl", str(ended_ttl)] if ended_ttl is not None else []),
        *shlex.split(gateway_args),
    ])  # fmt: skip
    sampler = progress = None
    try:
        await gw.start()
        sampler = asyncio.create_task(gw.sample())
        clean = CleanStream(ffmpeg, clip, frames, gw)
        publisher = asyncio.create_task(clean.run())
        await clean.live()
        rep.before = gw.stats()
        print(f"clean stream live; fuzzing: {sessions} RTMP sessions, {requests} HTTP requests,"
              f" {concurrency} at once each ...", file=sys.stderr, flush=True)  # fmt: skip
        progress = asyncio.create_task(_progress(gw, rep, sessions, requests, 10.0))
        fuzz_start = time.perf_counter()
        watch = [*FUZZ_NAMES[:4], clean.current]
        rtmp = SessionFuzzer(random.Random(f"{seed}:rtmp"), FUZZ_NAMES)
        http = RequestFuzzer(random.Random(f"{seed}:http"), FUZZ_NAMES, watch)
        await asyncio.gather(
            _fuzz_rtmp(gw, sessions, concurrency, rtmp, rep),
            _fuzz_http(gw, requests, concurrency, http, rep),
        )
        rep.fuzz_seconds = time.perf_counter() - fuzz_start
        progress.cancel()
        clean.stop.set()
        print("fuzz done; the clean stream's last publish finishing, the fuzz's streams ending"
              " ...", file=sys.stderr)  # fmt: skip
        left = asyncio.create_task(_left_live(gw.http_port, SETTLE, clean.token))
        await publisher
        rep.stuck_live = await left
        rep.gateway_up = gw.alive
        if gw.alive:
            await asyncio.sleep(1)
            rep.after = gw.stats()
        if gw.alive and ended_ttl is not None and ended_ttl <= SWEPT_TTL:
            # every stream of the fuzz has ended by now: one TTL and one sweep period later
            # (gateway.py: a quarter of the TTL, at least 1 s) the hub has forgotten them all
            await asyncio.sleep(ended_ttl + max(1.0, ended_ttl / 4) + 1)
            rep.rss_swept = gw.stats().rss_mb
        rep.peak = gw.peak
        rep.clean_publishes = len(clean.publishes)
        for pub in clean.publishes:
            rep.frames_expected = tuple(
                a + b for a, b in zip(rep.frames_expected, pub.expected, strict=True)
            )  # type: ignore[assignment]
            rep.frames_got = tuple(a + b for a, b in zip(rep.frames_got, pub.got, strict=True))  # type: ignore[assignment]
            if not pub.whole:
                rep.clean_errors.append(
                    f"{pub.name}: exit {pub.code}, frames {pub.got} of {pub.expected} {pub.error}"
                )
    finally:
        for task in (sampler, progress):
            if task is not None:
                task.cancel()
        print("stopping the gateway ...", file=sys.stderr)
        rep.gateway_exit = await gw.stop()
        await orch.stop()
        read_log(gw.log, rep)
        rep.wall_seconds = time.perf_counter() - started
    return rep


async def run_fuzzlive_bench(
    *,
    sessions: int,
    requests: int,
    concurrency: int = 16,
    seed: int = 1,
    clip_seconds: float = 10.0,
    ended_ttl: float | None = None,
    gateway_args: str = "",
    json_out: str = "",
) -> int:
    with tempfile.TemporaryDirectory(prefix="mediagw-fuzzlive-") as tmp:
        rep = await fuzz_live(
            Path(tmp), sessions=sessions, requests=requests, concurrency=concurrency,
            seed=seed, clip_seconds=clip_seconds, ended_ttl=ended_ttl, gateway_args=gateway_args,
        )  # fmt: skip
    print(format_report(rep))
    if json_out:
        doc = json.dumps(rep.as_dict(), indent=2, default=str) + "\n"
        await asyncio.to_thread(Path(json_out).write_text, doc)
    if rep.failures:
        print("failures: " + "; ".join(rep.failures), file=sys.stderr)
        return 1
    return 0
