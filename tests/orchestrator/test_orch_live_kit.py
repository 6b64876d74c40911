"""Helpers for the live video-to-video tests of the reference orchestrator (no tests here):
generated 1 s MPEG-TS segments, the gateway's start request (off-chain and priced, with real
signed tickets from ``PaymentSender`` + ``LocalSigner`` and the empty-segment SegData), pixel
measurements of output segments, trickle clients over TLS."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from mediatools import need_tool
from orchestrator.orch_testkit import GATEWAY_KEY, grpc_channel

from mediagw.livepeer.capabilities import Capability, bitstring
from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import segment_header
from mediagw.livepeer.trickle.client import TricklePublisher, TrickleSubscriber
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.payments.live import empty_segdata
from mediagw.payments.params import parse_ticket_params
from mediagw.payments.sender import PaymentSender
from mediagw.payments.signer import LocalSigner

LIVE_MODELS = {"noop": True, "invert": True, "tint": False}
STREAM_MID = "stream-manifest-1"  # the gateway's own manifest ID (start request SegData)


def make_segments(out_dir: Path, count: int = 5) -> list[bytes]:
    """``count`` keyframe-aligned 1 s 320x240 30 fps H.264 + AAC MPEG-TS segments of a dark
    test pattern (mean luma ~40), with continuous timestamps."""
    ffmpeg = need_tool("ffmpeg")
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30,lutyuv=y=val*0.4",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(count),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "0",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts",
        str(out_dir / "seg%d.ts"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=120)
    return [(out_dir / f"seg{i}.ts").read_bytes() for i in range(count)]


@pytest.fixture(scope="session")
def live_segments(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return make_segments(tmp_path_factory.mktemp("live"))


# --- measurements ------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    frames: int
    width: int
    height: int
    first_pts: int | None
    keyframe_first: bool
    luma: float  # mean Y (0..255, full range gray)
    red: float  # mean R of rgb24


def decode(data: bytes) -> Decoded:
    luma = red = 0
    pixels = frames = 0
    first_pts = None
    keyframe_first = False
    width = height = 0
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            if frames == 0:
                first_pts, keyframe_first = frame.pts, frame.key_frame
                width, height = frame.width, frame.height
            gray = frame.reformat(format="gray").planes[0]
            rgb = frame.reformat(format="rgb24").planes[0]
            luma += sum(_rows(gray, 1))
            red += sum(_rows(rgb, 3)[0::3])
            pixels += frame.width * frame.height
            frames += 1
    assert frames, "no video frames decoded"
    return Decoded(frames, width, height, first_pts, keyframe_first, luma / pixels, red / pixels)


def _rows(plane: Any, bpp: int) -> bytes:
    raw, stride, row = bytes(plane), plane.line_size, plane.width * bpp
    return b"".join(raw[i * stride : i * stride + row] for i in range(plane.height))


# --- the gateway side ----------------------------------------------------------------------


def live_caps(
    model: str = "invert", *, warm: bool = True, runner_version: str = ""
) -> net.Capabilities:
    """Job capabilities of a live stream: bit 35 only plus the model constraint (spec §2)."""
    caps = net.Capabilities(bitstring=bitstring([Capability.LIVE_VIDEO_TO_VIDEO]))
    caps.constraints.SetInParent()
    model_constraint = caps.constraints.PerCapability[35].models[model]
    model_constraint.warm = warm
    model_constraint.runnerVersion = runner_version
    return caps


async def orchestrator_info(
    orch: ReferenceOrchestrator,
    caps: net.Capabilities | None = None,
    *,
    ignore_capacity: bool = False,
    key: bytes | None = None,
) -> net.OrchestratorInfo:
    from orchestrator.orch_testkit import request_for

    request = request_for(key)
    if caps is not None:
        request.capabilities.CopyFrom(caps)
    request.ignoreCapacityCheck = ignore_capacity
    async with grpc_channel(orch) as channel:
        call = channel.unary_unary(
            "/net.Orchestrator/GetOrchestrator",
            request_serializer=net.OrchestratorRequest.SerializeToString,
            response_deserializer=net.OrchestratorInfo.FromString,
        )
        info: net.OrchestratorInfo = await call(request, timeout=10)
        return info


async def offchain_headers(
    info: net.OrchestratorInfo, caps: net.Capabilities | None = None, manifest_id: str = STREAM_MID
) -> dict[str, str]:
    seg = await empty_segdata(
        manifest_id=manifest_id,
        auth_token=info.auth_token,
        capabilities=caps if caps is not None else live_caps(),
        sign=None,
    )
    return {"Livepeer-Payment": "", "Livepeer-Segment": segment_header(seg)}


class PricedGateway:
    """Pays with real tickets: ``tickets`` x the params' EV per call (0: ``sender`` and
    ``expected_price`` only, as an on-chain gateway sends when it adds no ticket)."""

    def __init__(self, key: bytes = GATEWAY_KEY) -> None:
        self.signer = LocalSigner(key)
        self.sender = PaymentSender(self.signer)

    async def headers(
        self,
        info: net.OrchestratorInfo,
        *,
        tickets: int,
        manifest_id: str = STREAM_MID,
        caps: net.Capabilities | None = None,
    ) -> dict[str, str]:
        paid = net.OrchestratorInfo()
        paid.CopyFrom(info)
        if not tickets:
            paid.ClearField("ticket_params")
        ev = parse_ticket_params(info.ticket_params).ev
        bundle = await self.sender.build_payment(
            paid, tickets * ev, (info.ticket_params.recipient, manifest_id), Fraction(0)
        )
        assert bundle.num_tickets == tickets
        seg = await empty_segdata(
            manifest_id=manifest_id,
            auth_token=info.auth_token,
            capabilities=caps if caps is not None else live_caps(),
            sign=self.signer.sign,
        )
        return {"Livepeer-Payment": bundle.header, "Livepeer-Segment": segment_header(seg)}


@dataclass
class Started:
    status: int
    text: str

    @property
    def urls(self) -> dict[str, str]:
        assert self.status == 200, (self.status, self.text)
        body: dict[str, str] = json.loads(self.text)
        return body


async def start(
    http: aiohttp.ClientSession,
    orch: ReferenceOrchestrator,
    headers: dict[str, str],
    *,
    model: str = "invert",
    params: dict[str, Any] | None = None,
    body: bytes | None = None,
) -> Started:
    """``POST /live-video-to-video`` as go-livepeer sends it."""
    if body is None:
        payload: dict[str, Any] = {
            "model_id": model,
            "gateway_request_id": "req-1",
            "stream_id": "stream-1",
            "publish_url": "",
            "subscribe_url": "",
        }
        if params is not None:
            payload["params"] = params
        body = json.dumps(payload).encode()
    hdrs = {
        **headers,
        "Content-Type": "application/json",
        "Authorization": "Livepeer-AI-Worker-1.0",
    }
    async with http.post(
        orch.url + "/live-video-to-video", data=body, headers=hdrs, ssl=False
    ) as resp:
        return Started(resp.status, await resp.text())


@dataclass
class Channels:
    """The gateway's four trickle clients of one session."""

    publisher: TricklePublisher
    output: TrickleSubscriber
    control: TricklePublisher
    events: TrickleSubscriber

    async def close(self) -> None:
        for client in (self.publisher, self.output, self.control, self.events):
            await client.close()


def channels(http: aiohttp.ClientSession, urls: dict[str, str]) -> Channels:
    return Channels(
        TricklePublisher(urls["publish_url"], session=http, ssl=False),
        TrickleSubscriber(urls["subscribe_url"], session=http, ssl=False, start_seq=0),
        TricklePublisher(urls["control_url"], "application/json", session=http, ssl=False),
        TrickleSubscriber(urls["events_url"], session=http, ssl=False, start_seq=0),
    )


async def next_segment(sub: AsyncIterator[Any], timeout: float = 10.0) -> bytes:
    segment = await asyncio.wait_for(anext(sub), timeout)
    data: bytes = await asyncio.wait_for(segment.read(), timeout)
    return data


async def collect_events(sub: TrickleSubscriber, seconds: float) -> list[dict[str, Any]]:
    """Every event message read within ``seconds``."""
    out: list[dict[str, Any]] = []

    async def read() -> None:
        async for segment in sub:
            out.append(json.loads(await segment.read()))

    try:
        await asyncio.wait_for(read(), seconds)
    except TimeoutError:
        pass
    return out


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
