"""``mediagw bench faults``: each fault against a live stream, and what it cost.

For each fault a fresh in-process gateway transcodes (one rendition, ``LADDER``) a live-paced
RTMP push (the ffmpeg CLI) on in-process reference orchestrators: two where another orchestrator
exists for the fault, else one. Once the first transcoded segment is listed the fault is
injected (:mod:`.fault_cases`: the reference orchestrator's fault switches, a stop, a restart, a
clock jump, a cut TCP proxy, a failing write) and stays on until the push ends. Reported per
fault:

- segments lost: source segments with no transcoded segment listed for them (a gap slot);
- output gap: the longest time without a new transcoded segment listed, from the first one to
  the last (or to the end of the push when none came after the fault);
- recovery: from the fault to the first transcoded segment listed after it;
- status / logs: whether the gateway's status (the orchestrator scoreboard, the stream's
  status, the API's stream status, the webhooks' status) and its log lines (INFO and up, its
  default level, after the fault) name the cause.

Needs the ffmpeg CLI. Progress goes to stderr; the table to stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from ..gateway import Gateway
from ..log import TextFormatter
from .fault_cases import CASES, LADDER, FaultCase, Rig, Skipped
from .ingest import make_clip, push_clip

__all__ = ["FAULTS", "LADDER", "FaultResult", "format_table", "run_faults_bench"]

FAULTS = tuple(CASES)
FINISH_TIMEOUT = 60.0  # seconds for the stream's pipeline to finish after the push


@dataclass
class FaultResult:
    fault: str
    orchestrators: int
    segments_lost: int | None
    source_segments: int
    output_gap_s: float | None
    recovery_s: float | None
    status_cause: str  # the status text that names the cause, "" = none does
    log_cause: str  # the log line that names it, "" = none does
    how: str
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


class _Logs(logging.Handler):
    """The gateway's log lines (INFO and up: its default level), formatted."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[float, str]] = []
        self.setFormatter(TextFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append((time.monotonic(), self.format(record)))

    def find(self, needles: Sequence[str], since: float) -> str:
        for at, line in self.lines:
            if at >= since and any(n.lower() in line.lower() for n in needles):
                return line
        return ""


class _Watch:
    """Polls the HLS store: when each source and transcoded seq was first listed."""

    def __init__(self, gw: Gateway, stream: str, output: str, rendition: str) -> None:
        self.gw, self.stream, self.output_stream, self.rendition = gw, stream, output, rendition
        self.source: dict[int, float] = {}
        self.output: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    def _poll(self) -> None:
        now = time.monotonic()
        for stream, name, seen in (
            (self.stream, "source", self.source),
            (self.output_stream, self.rendition, self.output),
        ):
            rend = self.gw.hls.rendition(stream, name)
            if rend is not None:
                for seq in rend.segments:
                    seen.setdefault(seq, now)

    async def _run(self) -> None:
        while True:
            self._poll()
            await asyncio.sleep(0.05)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._poll()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def _rig(work: Path, case: FaultCase, postgres: str) -> AsyncIterator[Rig]:
    from ..orchestrator import OrchestratorConfig, ReferenceOrchestrator

    rig = Rig(work=work, postgres=postgres)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(case.orchestrators):
            config = OrchestratorConfig(x264_preset="ultrafast", **case.orchestrator(rig))
            orch = ReferenceOrchestrator(config)
            rig.orchs.append(orch)
            await orch.start()
        stack.push_async_callback(rig.stop_all)
        stack.push_async_callback(case.heal, rig)
        extra = await case.prepare(rig, stack)
        fields: dict[str, Any] = {
            "rtmp_addr": "127.0.0.1:0", "http_addr": "127.0.0.1:0",
            "orch_addr": tuple(o.url for o in rig.orchs), "transcoding_options": LADDER,
            "data_dir": str(work / "data"),
        }  # fmt: skip
        settings = Settings(**{**fields, **extra})
        gw = Gateway(settings)
        await gw.start()
        stack.push_async_callback(gw.stop)
        rig.gw = gw
        await case.ready(rig)
        yield rig


async def _finished(gw: Gateway, stream: str, live: bool) -> None:
    deadline = time.monotonic() + FINISH_TIMEOUT
    while time.monotonic() < deadline:
        hub_stream = gw.hub.get(stream)
        transcodes = gw.transcodes
        live_ai = gw.live_ai
        if (
            (hub_stream is None or not hub_stream.live)
            and (
                transcodes is None
                or (stream not in transcodes.pipelines and not transcodes._closing)
            )
            and (not live or (live_ai is not None and stream in live_ai.finished))
        ):
            return
        await asyncio.sleep(0.1)


def _gap(times: list[float], inject: float, end: float) -> float | None:
    if not times:
        return None
    marks = sorted(times)
    if marks[-1] < inject:  # nothing came after the fault: the gap runs to the push's end
        marks.append(end)
    return max((b - a for a, b in pairwise(marks)), default=0.0)


async def _run_case(
    case: FaultCase, work: Path, clip: Path, ffmpeg: str, seconds: float, postgres: str
) -> FaultResult:
    logs = _Logs()
    root = logging.getLogger("mediagw")
    level, propagate = root.level, root.propagate
    root.addHandler(logs)  # the gateway's lines go there only (stderr: the bench's progress)
    root.setLevel(logging.INFO)
    root.propagate = False
    stream = "live"  # not the fault's name: its words would match a needle
    result = FaultResult(case.name, case.orchestrators, None, 0, None, None, "", "", case.how)
    try:
        async with _rig(work, case, postgres) as rig:
            assert rig.gw is not None
            stream = rig.stream = rig.stream or stream
            output = stream + rig.output_suffix
            watch = _Watch(rig.gw, stream, output, rig.rendition)
            watch.start()
            key = rig.stream_key or stream
            url = f"rtmp://127.0.0.1:{rig.gw.rtmp_port}/live/{key}{rig.publish_query}"
            started = time.monotonic()
            pusher = asyncio.create_task(push_clip(ffmpeg, clip, url, 0))
            while not watch.output and not pusher.done():
                if time.monotonic() - started > seconds:
                    break
                await asyncio.sleep(0.05)
            inject = time.monotonic()
            await case.inject(rig)
            code = await pusher
            end = time.monotonic()
            await _finished(rig.gw, stream, live=bool(rig.output_suffix))
            await watch.stop()
            if code:
                result.notes.append(f"publisher exit code {code}")
            counted = case.counted(rig)
            if counted is not None:
                result.segments_lost, result.source_segments = counted
            else:
                result.source_segments = len(watch.source)
                result.segments_lost = len(set(watch.source) - set(watch.output))
            result.output_gap_s = _gap(list(watch.output.values()), inject, end)
            after = [t for t in watch.output.values() if t >= inject]
            result.recovery_s = min(after) - inject if after else None
            status = await case.status(rig)
            result.status_cause = _find(status, case.status_needles)
            result.log_cause = logs.find(case.log_needles, inject)
    except Skipped as exc:
        result.error = f"skipped: {exc}"
    except Exception as exc:  # a fault that breaks the bench itself is reported, not raised
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
        root.propagate = propagate
    return result


def _find(texts: Sequence[str], needles: Sequence[str]) -> str:
    for text in texts:
        if any(n.lower() in text.lower() for n in needles):
            return text
    return ""


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _yes(text: str) -> str:
    return "no" if not text else "yes: " + (text if len(text) <= 60 else text[:57] + "...")


def format_table(results: Sequence[FaultResult]) -> str:
    head = ("fault", "Os", "segments lost", "output gap", "recovery", "status", "logs", "how")
    rows = [head]
    for r in results:
        lost = "error" if r.segments_lost is None else f"{r.segments_lost}/{r.source_segments}"
        rows.append(
            (r.fault, str(r.orchestrators), lost, _secs(r.output_gap_s), _secs(r.recovery_s),
             "yes" if r.status_cause else "no", "yes" if r.log_cause else "no", r.how)
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    for r in results:
        if r.error:
            lines.append(f"{r.fault}: bench error: {r.error}")
        for note in r.notes:
            lines.append(f"{r.fault}: {note}")
    return "\n".join(lines)


async def run_faults_bench(
    *, faults: Sequence[str] = FAULTS, seconds: float = 12.0, postgres: str = "",
    json_out: str = "",
) -> int:  # fmt: skip
    unknown = [f for f in faults if f not in CASES]
    if unknown:
        raise ConfigError(f"unknown fault(s) {', '.join(unknown)}: choose from {', '.join(CASES)}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ConfigError("the ffmpeg CLI is needed for the benchmark: apt-get install ffmpeg")
    results = []
    with tempfile.TemporaryDirectory(prefix="mediagw-bench-faults-") as tmp:
        work = Path(tmp)
        clip = work / "clip.flv"
        print(f"encoding a {seconds:g} s test clip ...", file=sys.stderr, flush=True)
        await asyncio.to_thread(make_clip, clip, seconds, "320x180", 30, ffmpeg)
        for name in faults:
            print(f"fault {name} ...", file=sys.stderr, flush=True)
            case = CASES[name]
            result = await _run_case(case, work / name, clip, ffmpeg, seconds, postgres)
            results.append(result)
    print(format_table(results))
    if json_out:
        out = {"seconds": seconds, "faults": [r.as_dict() for r in results]}
        await asyncio.to_thread(Path(json_out).write_text, json.dumps(out, indent=2))
    lost = [r for r in results if r.orchestrators > 1 and r.segments_lost != 0]
    return 1 if lost or any(r.error for r in results) else 0
