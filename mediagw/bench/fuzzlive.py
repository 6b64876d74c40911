"""``mediagw bench fuzzlive``: fuzzed RTMP sessions and HTTP requests against a running gateway
while one clean stream stays live; the clean stream must lose no frame.

The gateway runs as ``mediagw run`` in a child process (a crash shows as one), on an in-process
reference orchestrator (``instant``: the live AI and transcoding routes are live, at no CPU
cost). A clean clip with a known frame count is published with the ffmpeg CLI, again and again
under fresh names until the fuzz is over (:mod:`.fuzzlive_clean`); meanwhile ``--sessions``
fuzzed RTMP sessions (:mod:`.fuzzlive_rtmp`) and ``--requests`` fuzzed HTTP requests
(:mod:`.fuzzlive_http`) go out with bounded concurrency over real TCP.

Reported: sessions and requests sent, by strategy and by answer (RTMP: how the connection
ended; HTTP: status classes), the gateway's 500s (must be 0, each shown with a reproducer) and
other 5xx, whether it stayed up and stopped cleanly, its threads, RSS and open files before,
at peak and after, its log's errors and tracebacks (must be 0), streams left live after the
fuzz (must be 0), RTMP sessions the gateway left open after our FIN (must be 0), the clean
stream's frames expected and got (must be equal), wall time and rates. Exit status 1 on any
failure. Needs the ffmpeg CLI.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from segmenter.probe import count_frames_flv

from ..errors import ConfigError
from .flood_wire import raw_http, rtmp_session
from .fuzzlive_clean import CleanStream, GatewayProc, ProcStats
from .fuzzlive_http import FuzzedRequest, RequestFuzzer
from .fuzzlive_rtmp import SessionFuzzer
from .ingest import make_clip

__all__ = ["LiveFuzzReport", "run_fuzzlive_bench"]

FUZZ_NAMES = [f"fz{i}" for i in range(12)]  # the streams fuzzed sessions publish under
REQUEST_TIMEOUT = 10.0  # an answer to a request aiohttp's client sends (complete HTTP)
SETTLE = 20.0  # seconds for the fuzz's streams to end once it is over
RAW_TIMEOUT = 3.0  # over a raw socket: the request may be incomplete (a length that lies)
SHOWN = 5  # reproducers shown per finding kind


@dataclass
class LiveFuzzReport:
    sessions: int = 0
    requests: int = 0
    rtmp_strategies: Counter[str] = field(default_factory=Counter)
    rtmp_outcomes: Counter[str] = field(default_factory=Counter)
    http_kinds: Counter[str] = field(default_factory=Counter)
    http_answers: Counter[str] = field(default_factory=Counter)  # "2xx" .. "5xx", "closed", ..
    http_statuses: Counter[int] = field(default_factory=Counter)
    raw_requests: int = 0
    http_timeouts: Counter[str] = field(default_factory=Counter)  # request kind -> no answer
    findings: list[str] = field(default_factory=list)  # 500s, with a reproducer
    gateway_up: bool = False
    gateway_exit: int | None = None
    before: ProcStats = field(default_factory=ProcStats)
    peak: ProcStats = field(default_factory=ProcStats)
    after: ProcStats = field(default_factory=ProcStats)
    log_errors: int = 0
    tracebacks: list[str] = field(default_factory=list)
    stuck_live: list[str] = field(default_factory=list)
    clean_publishes: int = 0
    frames_expected: tuple[int, int] = (0, 0)
    frames_got: tuple[int, int] = (0, 0)
    clean_errors: list[str] = field(default_factory=list)
    fuzz_seconds: float = 0.0
    rtmp_seconds: float = 0.0  # until the last fuzzed session ended
    http_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def http_500(self) -> int:
        return self.http_statuses[500]

    @property
    def failures(self) -> list[str]:
        out = []
        if self.http_500:
            out.append(f"{self.http_500} HTTP 500 answers")
        if not self.gateway_up:
            out.append("the gateway died during the fuzz")
        if self.gateway_exit != 0:
            out.append(f"the gateway did not stop cleanly (exit {self.gateway_exit})")
        if self.tracebacks or self.log_errors:
            out.append(f"{self.log_errors} errors, {len(self.tracebacks)} tracebacks logged")
        if self.stuck_live:
            out.append(f"streams left live: {self.stuck_live[:5]}")
        if self.rtmp_outcomes["unclosed"]:
            out.append(f"{self.rtmp_outcomes['unclosed']} RTMP sessions left open after FIN")
        if self.frames_got != self.frames_expected or self.clean_errors:
            out.append(f"clean stream: frames {self.frames_got} of {self.frames_expected}")
        return out

    def as_dict(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if k not in ("before", "peak", "after")}
        for k in ("before", "peak", "after"):
            doc[k] = getattr(self, k).__dict__
        doc["http_500"] = self.http_500
        doc["failures"] = self.failures
        return doc


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
    async def worker() -> None:
        while rep.sessions < n:
            rep.sessions += 1
            session = fuzzer.session()
            rep.rtmp_strategies[session.strategy] += 1
            outcome = await rtmp_session(
                "127.0.0.1", gw.rtmp_port, session.parts, fin=session.fin, close_timeout=10.0
            )
            rep.rtmp_outcomes[outcome] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rep.rtmp_seconds = time.perf_counter() - start


async def _progress(rep: LiveFuzzReport, sessions: int, requests: int, every: float) -> None:
    start = time.monotonic()
    while True:
        await asyncio.sleep(every)
        print(f"  {time.monotonic() - start:5.0f} s: {rep.sessions}/{sessions} sessions, "
              f"{rep.requests}/{requests} requests", file=sys.stderr, flush=True)  # fmt: skip


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


def _read_log(path: Path, rep: LiveFuzzReport) -> None:
    for line in path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            if line.startswith("Traceback"):  # an uncaught one, outside logging
                rep.tracebacks.append(line)
            continue
        if not isinstance(doc, dict):
            continue
        if doc.get("level") in ("error", "critical"):
            rep.log_errors += 1
        if doc.get("exc"):
            rep.tracebacks.append(f"{doc.get('msg', '')}: {str(doc['exc'])[-3000:]}")


async def fuzz_live(
    work: Path, *, sessions: int, requests: int, concurrency: int, seed: int, clip_seconds: float
) -> LiveFuzzReport:
    from ..orchestrator import OrchestratorConfig, ReferenceOrchestrator

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    rep = LiveFuzzReport()
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
        progress = asyncio.create_task(_progress(rep, sessions, requests, 10.0))
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
        _read_log(gw.log, rep)
        rep.wall_seconds = time.perf_counter() - started
    return rep


def format_report(rep: LiveFuzzReport) -> str:
    secs = rep.fuzz_seconds or 1.0

    def counts(c: Counter[Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: str(kv[0])))

    rows = [
        ("RTMP sessions", f"{rep.sessions} in {rep.rtmp_seconds:.1f} s "
                          f"({rep.sessions / (rep.rtmp_seconds or secs):.0f}/s)"),
        ("  by strategy", counts(rep.rtmp_strategies)),
        ("  how they ended", counts(rep.rtmp_outcomes)),
        ("HTTP requests", f"{rep.requests} in {rep.http_seconds:.1f} s "
                          f"({rep.requests / (rep.http_seconds or secs):.0f}/s), "
                          f"{rep.raw_requests} over raw sockets"),
        ("  answers", counts(rep.http_answers)),
        ("  statuses", counts(rep.http_statuses)),
        ("  routes", f"{len(rep.http_kinds)} request kinds"),
        ("  no answer (3 s raw, 10 s)", counts(rep.http_timeouts) or "none"),
        ("HTTP 500", str(rep.http_500)),
        ("other 5xx", str(sum(n for s, n in rep.http_statuses.items() if s > 500))),
        ("gateway stayed up", "yes" if rep.gateway_up else "NO"),
        ("gateway stopped", "cleanly" if rep.gateway_exit == 0 else f"exit {rep.gateway_exit}"),
        ("threads before/peak/after",
         f"{rep.before.threads}/{rep.peak.threads}/{rep.after.threads}"),
        ("RSS MB before/peak/after",
         f"{rep.before.rss_mb:.0f}/{rep.peak.rss_mb:.0f}/{rep.after.rss_mb:.0f}"),
        ("open files before/peak/after", f"{rep.before.fds}/{rep.peak.fds}/{rep.after.fds}"),
        ("log errors / tracebacks", f"{rep.log_errors} / {len(rep.tracebacks)}"),
        ("streams left live", str(len(rep.stuck_live))),
        ("clean publishes", str(rep.clean_publishes)),
        ("clean frames expected",
         f"{rep.frames_expected[0]} video, {rep.frames_expected[1]} audio"),
        ("clean frames got", f"{rep.frames_got[0]} video, {rep.frames_got[1]} audio"),
        ("fuzz / wall seconds", f"{rep.fuzz_seconds:.1f} / {rep.wall_seconds:.1f}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"finding: {f}" for f in rep.findings]
    lines += [f"clean: {e}" for e in rep.clean_errors]
    lines += [f"traceback: {t}" for t in rep.tracebacks[:SHOWN]]
    return "\n".join(lines)


async def run_fuzzlive_bench(
    *,
    sessions: int,
    requests: int,
    concurrency: int = 16,
    seed: int = 1,
    clip_seconds: float = 10.0,
    json_out: str = "",
) -> int:
    with tempfile.TemporaryDirectory(prefix="mediagw-fuzzlive-") as tmp:
        rep = await fuzz_live(
            Path(tmp), sessions=sessions, requests=requests, concurrency=concurrency,
            seed=seed, clip_seconds=clip_seconds,
        )  # fmt: skip
    print(format_report(rep))
    if json_out:
        doc = json.dumps(rep.as_dict(), indent=2, default=str) + "\n"
        await asyncio.to_thread(Path(json_out).write_text, doc)
    if rep.failures:
        print("failures: " + "; ".join(rep.failures), file=sys.stderr)
        return 1
    return 0
