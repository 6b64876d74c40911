"""``mediagw bench transcode``: the gateway's own cost per segment on the transcode path.

An in-process priced reference orchestrator in ``instant`` mode answers every /segment at once
(it returns the input as each rendition, so downloads are, if anything, larger than real). Each
segment then costs the gateway: fee estimate, ticket signing, SegData signing, the TLS upload,
the early 200 + result, 3 rendition downloads, the result-signature check and publication to the
HLS playlists. That time is compared with a bare HTTPS POST of the same bytes to a trivial
server in the same process (the baseline), as p50/p99 and as a ratio. The gateway's CPU time per
segment (``getrusage`` of this process, all threads, over the measured segments only; the
orchestrator is a child process, not counted) is reported per run (``--runs``), with every
result's signature checked (``-verifyResults all``, the default: the 3 renditions hashed), then
for as many runs with only a share checked (``--sampled``, default 0.1). Ticket
signatures per second (one thread) and tickets built and signed per second are measured with
the same signer.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from ..config import Settings
from ..errors import ConfigError
from ..eth.account import account_api
from ..eth.crypto import keccak256
from ..livepeer.profiles import PRESETS
from ..livepeer.proto import net
from ..payments.params import parse_ticket_params
from ..payments.sender import PaymentSender
from ..payments.signer import LocalSigner
from ..pipelines.transcode import TranscodeJob
from ..publish.hls import HLSPublisher
from ..stack import TranscodeStack, build_transcoder

LADDER = ("P240p30fps16x9", "P360p30fps16x9", "P720p30fps16x9")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _make_segment(path: Path, ffmpeg: str) -> bytes:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
         "-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-b:v", "3000k",
         "-c:a", "aac", "-f", "mpegts", str(path)],
        check=True, timeout=300,
    )  # fmt: skip
    return path.read_bytes()


async def _baseline_server(cert: Path, key: Path) -> tuple[web.AppRunner, int]:
    async def sink(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/sink", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, int(port)


async def _start_orchestrator(datadir: Path) -> tuple[asyncio.subprocess.Process, str]:
    """``mediagw orchestrator -priced -instant`` in a child process; returns it and its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediagw.cli", "orchestrator", "-httpAddr", f"127.0.0.1:{port}",
        "-priced", "-pricePerUnit", "1", "-instant", "-datadir", str(datadir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if b"listening on" not in line:
        proc.kill()
        raise RuntimeError(f"orchestrator did not start: {line!r}")
    return proc, f"https://127.0.0.1:{port}"


def _cpu_seconds() -> float:
    """User + system CPU of this process (all its threads; not the orchestrator child)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _one_segment(
    stack: TranscodeStack, hls: HLSPublisher, seq: int, data: bytes, profiles: tuple[Any, ...]
) -> None:
    outcome = await stack.transcoder.transcode(TranscodeJob("bench", seq, data, 2.0, profiles))
    if not outcome.ok:
        raise RuntimeError(f"segment {seq} failed: {outcome.error}")
    for r in outcome.renditions:
        hls.publish("bench", r.profile.name, seq, r.data, 2.0)


async def _measured_run(
    stack: TranscodeStack,
    hls: HLSPublisher,
    first: int,
    segments: int,
    data: bytes,
    profiles: tuple[Any, ...],
) -> tuple[list[float], float]:
    """``segments`` segments one after another: their wall times and the gateway process's CPU
    ms per segment over exactly that window (nothing else of the bench runs meanwhile)."""
    walls: list[float] = []
    cpu0 = _cpu_seconds()
    for seq in range(first, first + segments):
        started = time.perf_counter()
        await _one_segment(stack, hls, seq, data, profiles)
        walls.append(time.perf_counter() - started)
    return walls, (_cpu_seconds() - cpu0) * 1000 / segments


async def _signing_figures(signer: LocalSigner, count: int = 4000) -> dict[str, int]:
    """Ticket signing on ONE core: ``sign_many`` signs a batch in one executor thread while the
    loop waits, so the process's CPU time is that thread's. Then the gateway's whole per-ticket
    path (``PaymentSender.sign_tickets``: Ticket objects, their keccak hashes on the loop, the
    signatures in the thread, the Payment message), in batches of 50 tickets, one at a time."""
    digests = [keccak256(i.to_bytes(8, "big")) for i in range(count)]
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    await signer.sign_many(digests)
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    raw = net.TicketParams(
        recipient=bytes(range(20)), face_value=(10**15).to_bytes(7, "big"),
        win_prob=(2**200).to_bytes(26, "big"), recipient_rand_hash=keccak256(b"rand"),
        seed=b"\x01", expiration_block=b"\x10",
    )  # fmt: skip
    params = parse_ticket_params(raw)
    sender = PaymentSender(signer)
    batch = 50
    t_wall0, t_cpu0 = time.perf_counter(), _cpu_seconds()
    for first in range(1, count + 1, batch):
        payment = net.Payment(sender=signer.address)
        nonces = tuple(range(first, first + batch))
        await sender.sign_tickets(payment, raw, params, nonces, None)
    t_wall, t_cpu = time.perf_counter() - t_wall0, _cpu_seconds() - t_cpu0
    return {
        "ticket_signatures_per_s": round(count / wall),
        "ticket_signatures_per_cpu_s": round(count / cpu),
        "tickets_built_signed_per_s": round(count / t_wall),
        "tickets_built_signed_per_cpu_s": round(count / t_cpu),
    }


class _Measured(NamedTuple):
    ours: list[float]  # wall seconds per segment, every run
    cpu_ms: list[float]  # gateway CPU ms per segment, per run
    sampled_ms: list[float]  # the same with -verifyResults at the sampled share
    base: list[float]  # bare HTTPS POSTs
    signing: dict[str, int]
    tickets: int
    rejected: int


async def _measure(
    work: Path, data: bytes, orch_url: str, segments: int, runs: int, sampled: float
) -> _Measured:
    """The gateway's transcode stack against the orchestrator at ``orch_url``: every figure."""
    key = os.urandom(32)
    keystore = work / "key.json"
    keystore.write_text(json.dumps(account_api().encrypt(key, "pw", iterations=2)))
    settings = Settings(orch_addr=(orch_url,), eth_keystore_path=str(keystore), eth_password="pw")
    stack = await build_transcoder(settings)
    assert stack is not None
    try:
        return await _measure_stack(stack, work, data, orch_url, segments, runs, sampled)
    finally:
        await stack.close()


async def _measure_stack(
    stack: TranscodeStack,
    work: Path,
    data: bytes,
    orch_url: str,
    segments: int,
    runs: int,
    sampled: float,
) -> _Measured:
    hls = HLSPublisher()
    profiles = tuple(PRESETS[n] for n in LADDER)
    print(f"{segments} segments of 2 s 720p ({len(data)} bytes), 3 renditions ...",
          file=sys.stderr, flush=True)  # fmt: skip
    for seq in range(5):  # warm up connections and sessions
        await _one_segment(stack, hls, seq, data, profiles)
    ours: list[float] = []
    cpu_ms: list[float] = []
    for run in range(runs):
        first = 5 + run * segments
        walls, cpu = await _measured_run(stack, hls, first, segments, data, profiles)
        ours.extend(walls)
        cpu_ms.append(cpu)
        print(f"run {run + 1}: gateway CPU {cpu:.2f} ms/segment", file=sys.stderr, flush=True)
    sampled_ms: list[float] = []
    if 0 < sampled < 1:  # the same, checking that share of the results (-verifyResults)
        stack.transcoder.verify_results = sampled
        for run in range(runs):
            first = 5 + (runs + run) * segments
            _, cpu = await _measured_run(stack, hls, first, segments, data, profiles)
            sampled_ms.append(cpu)
            print(f"run {run + 1}, {sampled:g} of the results checked: gateway CPU "
                  f"{cpu:.2f} ms/segment", file=sys.stderr, flush=True)  # fmt: skip
        stack.transcoder.verify_results = 1.0

    runner, port = await _baseline_server(work / "o" / "cert.pem", work / "o" / "key.pem")
    base: list[float] = []
    no_verify = ssl.create_default_context()
    no_verify.check_hostname = False
    no_verify.verify_mode = ssl.CERT_NONE
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=no_verify)) as s:
        for i in range(segments + 5):
            started = time.perf_counter()
            async with s.post(f"https://127.0.0.1:{port}/sink", data=data) as resp:
                await resp.read()
            if i >= 5:
                base.append(time.perf_counter() - started)
    await runner.cleanup()

    signer = stack.signer
    assert isinstance(signer, LocalSigner)
    signing = await _signing_figures(signer)
    connector = aiohttp.TCPConnector(ssl=no_verify)
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.get(f"{orch_url}/stats") as sr,
    ):
        stats = await sr.json()
    tickets, rejected = stats["tickets_accepted"], stats["tickets_rejected"]
    return _Measured(ours, cpu_ms, sampled_ms, base, signing, tickets, rejected)


async def run_transcode_bench(
    *, segments: int, runs: int = 3, sampled: float = 0.1, json_out: str = ""
) -> int:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-") as tmp:
        work = Path(tmp)
        data = await asyncio.to_thread(_make_segment, work / "seg.ts", ffmpeg)
        # The orchestrator runs in its own process so its work never shares our event loop.
        orch_proc, orch_url = await _start_orchestrator(work / "o")
        try:
            m = await _measure(work, data, orch_url, segments, runs, sampled)
        finally:  # also when a segment failed: never leave the orchestrator running
            if orch_proc.returncode is None:
                orch_proc.terminate()
            await orch_proc.wait()
        ours, cpu_ms, sampled_ms, base, signing, tickets, rejected = m

    result: dict[str, Any] = {
        "segments": segments,
        "runs": runs,
        "gateway_overhead_ms_p50": round(_pct(ours, 0.5) * 1000, 2),
        "gateway_overhead_ms_p99": round(_pct(ours, 0.99) * 1000, 2),
        "bare_post_ms_p50": round(_pct(base, 0.5) * 1000, 2),
        "bare_post_ms_p99": round(_pct(base, 0.99) * 1000, 2),
        "ratio_p50": round(_pct(ours, 0.5) / _pct(base, 0.5), 2),
        "ratio_p99": round(_pct(ours, 0.99) / _pct(base, 0.99), 2),
        "mean_ms": round(statistics.mean(ours) * 1000, 2),
        "gateway_cpu_ms_per_segment": round(statistics.median(cpu_ms), 2),
        "gateway_cpu_ms_per_segment_runs": [round(c, 2) for c in cpu_ms],
        **(
            {
                "sampled_share": sampled,
                "gateway_cpu_ms_per_segment_sampled": round(statistics.median(sampled_ms), 2),
                "gateway_cpu_ms_per_segment_sampled_runs": [round(c, 2) for c in sampled_ms],
            }
            if sampled_ms
            else {}
        ),
        **signing,
        "tickets_accepted": tickets,
        "tickets_rejected": rejected,
    }
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if json_out:
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(result, indent=2) + "\n")
    return 0 if rejected == 0 else 1
