"""The start request: ``POST {transcoder}/live-video-to-video`` (live-ai spec §3).

    headers  Content-Type: application/json, Authorization: Livepeer-AI-Worker-1.0,
             Livepeer-Payment (prepayment; "" off-chain), Livepeer-Segment (SegData of an empty
             segment, manifestId = our stream id, job capabilities, O's auth token)
    body     {model_id, params, gateway_request_id, stream_id, publish_url: "", subscribe_url: ""}
    answer   200 JSON {publish_url, subscribe_url, control_url, events_url, manifest_id}; the
             hosts are replaced with the transcoder's (go-livepeer AppendHostname)

A 200 without valid JSON is a failure (O's request validator only logs). 5 s timeout.
The prepayment comes from the ``LivePaymentSource`` (local key or remote signer; its first call,
without state); without one (off-chain) the payment header is empty and the SegData unsigned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import aiohttp

from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import segment_header
from mediagw.livepeer.tls import pin_error_from
from mediagw.payments.live import (
    LivePaymentSource,
    LiveState,
    NoPaymentNeeded,
    empty_segdata,
    payment_value,
)

from ...clock import SYSTEM
from ...httpbody import read_prefix
from .errors import StartRejected
from .transport import LiveHTTP, with_host_of

__all__ = [
    "AUTHORIZATION",
    "LiveChannels",
    "StartOutcome",
    "prepayment_headers",
    "start_live_video",
]

AUTHORIZATION = "Livepeer-AI-Worker-1.0"
START_TIMEOUT = 5.0
MAX_ANSWER_BYTES = 64 * 1024
_URL_KEYS = ("publish_url", "subscribe_url", "control_url", "events_url")


@dataclass(frozen=True, slots=True)
class LiveChannels:
    """The four trickle channels of one run on one orchestrator, and its request id (``mid``)."""

    publish_url: str  # input, video/MP2T
    subscribe_url: str  # output, video/MP2T
    control_url: str  # params, application/json
    events_url: str  # runner events, application/json
    manifest_id: str  # SegData.manifestId of every later /payment

    @classmethod
    def parse(cls, doc: Any, transcoder: str) -> LiveChannels:
        if not isinstance(doc, dict):
            raise ValueError("answer is not a JSON object")
        urls: list[str] = []
        for key in _URL_KEYS:
            value = doc.get(key)
            if not isinstance(value, str) or not value:
                raise ValueError(f"answer has no {key}")
            urls.append(with_host_of(value, transcoder))
        mid = doc.get("manifest_id")
        if not isinstance(mid, str) or not mid or len(mid) > 256:
            raise ValueError("answer has no usable manifest_id")
        publish, subscribe, control, events = urls
        return cls(publish, subscribe, control, events, mid)


@dataclass(frozen=True, slots=True)
class StartOutcome:
    channels: LiveChannels
    payment_state: LiveState | None  # the payment source's state: pass it to the next payment
    elapsed: float  # seconds, request to parsed answer
    tickets: int = 0  # of the prepayment
    ev: Fraction = Fraction(0)  # their expected value, wei


async def prepayment_headers(
    info: net.OrchestratorInfo,
    *,
    manifest_id: str,
    capabilities: net.Capabilities,
    payments: LivePaymentSource | None,
    max_price: Fraction | None = None,
) -> tuple[str, str, LiveState | None]:
    """(Livepeer-Payment, Livepeer-Segment, payment state) for the start request. Payment
    errors (``NeedsRefresh``, ``PriceRejected``, ...) propagate to the caller."""
    payment, segment, state = "", "", None
    if payments is not None:
        try:
            paid = await payments.generate_live_payment(
                info,
                state=None,
                manifest_id=manifest_id,
                capabilities=capabilities,
                max_price=max_price,
            )
            payment, segment, state = paid.payment_header, paid.segment_header, paid.state
        except NoPaymentNeeded:
            pass
    if not segment:
        seg = await empty_segdata(
            manifest_id=manifest_id,
            auth_token=info.auth_token if info.HasField("auth_token") else None,
            capabilities=capabilities,
            sign=None,
        )
        segment = segment_header(seg)
    return payment, segment, state


async def start_live_video(
    http: LiveHTTP,
    info: net.OrchestratorInfo,
    *,
    model: str,
    params: Mapping[str, Any],
    stream_id: str,
    request_id: str,
    capabilities: net.Capabilities,
    payments: LivePaymentSource | None,
    max_price: Fraction | None = None,
    timeout: float = START_TIMEOUT,
    clock: Callable[[], float] = SYSTEM.monotonic,
) -> StartOutcome:
    """Start the run on ``info.transcoder``; raises ``StartRejected`` (with its ``action``)
    and the payment source's errors."""
    transcoder = info.transcoder.rstrip("/")
    url = transcoder + "/live-video-to-video"
    started = clock()
    payment, segment, state = await prepayment_headers(
        info,
        manifest_id=stream_id,
        capabilities=capabilities,
        payments=payments,
        max_price=max_price,
    )
    body = {
        "model_id": model,
        "params": dict(params),
        "gateway_request_id": request_id,
        "stream_id": stream_id,
        "publish_url": "",
        "subscribe_url": "",
    }
    headers = {
        "Content-Type": "application/json",
        "Authorization": AUTHORIZATION,
        "Livepeer-Payment": payment,
        "Livepeer-Segment": segment,
    }
    try:
        async with asyncio.timeout(timeout):
            async with http.session.post(
                url,
                data=json.dumps(body, separators=(",", ":")).encode(),
                headers=headers,
                ssl=http.ssl_for(url),
                allow_redirects=False,
            ) as resp:
                raw = await read_prefix(resp.content, MAX_ANSWER_BYTES + 1)
                status = resp.status
    except TimeoutError:
        raise StartRejected(f"no answer within {timeout:g} s", 0, transcoder) from None
    except (aiohttp.ClientError, OSError) as exc:
        pin = pin_error_from(exc)
        reason = str(pin) if pin is not None else f"{type(exc).__name__}: {exc}"
        raise StartRejected(reason, 0, transcoder) from None
    text = raw[:500].decode("utf-8", "replace").strip()
    if status != 200:
        raise StartRejected(text or "(empty body)", status, transcoder)
    if len(raw) > MAX_ANSWER_BYTES:
        raise StartRejected(f"answer larger than {MAX_ANSWER_BYTES} bytes", 200, transcoder)
    channels = parse_start_answer(raw, transcoder)
    tickets, ev = payment_value(payment)
    return StartOutcome(channels, state, clock() - started, tickets, ev)


def parse_start_answer(raw: bytes, transcoder: str) -> LiveChannels:
    """The channels of a 200 answer to ``/live-video-to-video``; StartRejected if unusable."""
    try:
        return LiveChannels.parse(json.loads(raw), transcoder)
    except ValueError as exc:  # JSONDecodeError included: an empty 200 is a failure
        raise StartRejected(f"unusable answer: {exc}", 200, transcoder) from None
    except RecursionError:
        raise StartRejected("unusable answer: JSON nested too deeply", 200, transcoder) from None
