"""HTTP routes of the orchestrator port: ``/segment``, ``/payment``, ``/stream/...``, ``/stats``,
``/live-video-to-video`` (``live.http``; the trickle routes are mounted in ``app``).

``/segment`` follows go-livepeer ServeSegment step by step (transcode spec §5.5): 402 payment
decode, 403 SegData credentials, 500 info, 400 ProcessPayment, 400 balance, body, 403 hash, then
an early 200 flushed at once and the TranscodeResult as the rest of the body. The fault switches
(``config.faults``) are applied here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp

from mediagw.livepeer.proto import net
from mediagw.payments.errors import InsufficientSenderReserve

from .asgi import BodyTooLarge, Disconnected, Request, Send, http_error, respond
from .errors import AbortConnection, RequestRejected, TranscodeError
from .live.http import LiveStartHandler
from .node import Job, JobResult, OrchestratorNode
from .payhdr import decode_payment
from .payhdr import payment_sender as _sender
from .pricing import segdata_capabilities

__all__ = ["HTTPRoutes", "decode_payment"]

URI_CONTENT_TYPE = "application/vnd+livepeer.uri"
URI_FETCH_TIMEOUT = 8.0  # O gives up on a segment URL after 8 s (400 BadRequest)
GARBAGE = b"\xff\xfe not a TranscodeResult \x00\x01\x02"
Abort = Callable[[Request], None]


class HTTPRoutes:
    def __init__(self, node: OrchestratorNode, abort: Abort, stopping: asyncio.Event) -> None:
        self.node = node
        self._abort = abort
        self._stopping = stopping
        self.live_start = LiveStartHandler(node)

    async def __call__(self, request: Request, send: Send) -> None:
        path = request.path
        try:
            if path == "/segment":
                await self.segment(request, send)
            elif path == "/payment":
                await self.payment(request, send)
            elif path == "/live-video-to-video" and request.method == "POST":
                await self.live_start(request, send)
            elif path.startswith("/stream/") and request.method in ("GET", "HEAD"):
                await self.stream(path.removeprefix("/stream/"), send)
            elif path == "/stats" and request.method == "GET":
                body = json.dumps(self.stats_json()).encode()
                await respond(send, 200, body, content_type="application/json")
            else:
                await http_error(send, 404, "404 page not found")
        except AbortConnection:
            self._abort(request)
        except Disconnected:
            pass
        finally:
            await request.close()

    def stats_json(self) -> dict[str, object]:
        out = self.node.stats.as_json()
        out["sessions_active"] = self.node.sessions.active
        out["live_sessions_active"] = len(self.node.live.sessions)
        out["stored_objects"] = len(self.node.store)
        out["priced"] = self.node.recipient is not None
        out["address"] = "0x" + self.node.address.hex() if self.node.address else ""
        return out

    async def stream(self, path: str, send: Send) -> None:
        data = self.node.store.get(path)
        if data is None:
            await http_error(send, 404, "404 page not found")
            return
        kind = "video/mp4" if path.endswith(".mp4") else "video/mp2t"
        await respond(send, 200, data, content_type=kind)

    # --- /payment ---------------------------------------------------------------------------

    async def payment(self, request: Request, send: Send) -> None:
        node = self.node
        try:
            payment = decode_payment(request.header("Livepeer-Payment"))
            sender = _sender(payment)
            creds = await node.seg_creds(request.header("Livepeer-Segment"), sender)
            sd = creds.segdata
            try:
                info = node.info(
                    sender,
                    key=sd.auth_token.session_id,
                    auth_token=sd.auth_token,
                    caps=segdata_capabilities(sd),  # priced by the job, as go-livepeer does
                )
            except InsufficientSenderReserve:
                raise RequestRejected(500, "Internal Server Error") from None
            manifest_id = sd.manifestId.decode("utf-8", "surrogateescape")
            await node.process_payment(payment, manifest_id)
        except RequestRejected as err:
            node.stats.reject(err.status, err.text)
            await http_error(send, err.status, err.text)
            return
        node.stats.payments += 1
        await respond(send, 200, net.PaymentResult(info=info).SerializeToString())

    # --- /segment ---------------------------------------------------------------------------

    async def segment(self, request: Request, send: Send) -> None:
        node = self.node
        seen = node.stats.segments_received
        node.stats.segments_received += 1
        faults = node.config.faults
        active = faults.active(seen)
        try:
            payment = decode_payment(request.header("Livepeer-Payment"))
            sender = _sender(payment)
            creds = await node.seg_creds(request.header("Livepeer-Segment"), sender)
            sd = creds.segdata
            session_id = sd.auth_token.session_id
            try:
                info = node.info(sender, key=session_id, auth_token=sd.auth_token)
            except InsufficientSenderReserve:
                raise RequestRejected(500, "Internal Server Error") from None
            await node.process_payment(payment, session_id)
            if payment.expected_price.pricePerUnit > 0 and not node.sufficient_balance(
                sender, session_id
            ):
                raise RequestRejected(400, "Insufficient balance")
            data = await self._segment_bytes(request)
            if await node.keccak(data) != sd.hash[-32:].rjust(32, b"\x00"):
                raise RequestRejected(403, "Forbidden")
        except RequestRejected as err:
            node.stats.segments_rejected += 1
            node.stats.reject(err.status, err.text)
            await http_error(send, err.status, err.text)
            return

        request.watch_disconnect()
        send = request.guard(send)
        if active and await self._fault_before_headers(request, send):
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        node.stats.segments_accepted += 1

        result = net.TranscodeResult(seq=sd.seq)
        outcome = await self._transcode(session_id, Job(creds, data), active)
        pixels = 0
        if isinstance(outcome, JobResult):
            result.data.segments.extend(outcome.segments)
            result.data.sig = outcome.sig
            if active and faults.bad_result_sig and outcome.sig:  # r's low bit flipped
                result.data.sig = bytes([outcome.sig[0] ^ 1]) + outcome.sig[1:]
            pixels = outcome.pixels
            node.stats.segments_transcoded += 1
            node.stats.pixels += pixels
        else:
            result.error = outcome
            node.stats.segments_failed += 1
        node.debit(sender, session_id, payment.expected_price, pixels)
        result.info.CopyFrom(info)
        await self._send_result(request, send, result.SerializeToString(), active)

    async def _segment_bytes(self, request: Request) -> bytes:
        try:
            data = await request.body(self.node.config.max_segment_bytes)
        except BodyTooLarge:
            raise RequestRejected(500, "Internal Server Error") from None
        if request.header("Content-Type") != URI_CONTENT_TYPE:
            return data
        try:
            timeout = aiohttp.ClientTimeout(total=URI_FETCH_TIMEOUT)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(data.decode().strip(), ssl=False) as resp,
            ):
                if resp.status != 200:
                    raise RequestRejected(400, "BadRequest")
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > self.node.config.max_segment_bytes:
                        raise RequestRejected(400, "BadRequest")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeDecodeError):
            raise RequestRejected(400, "BadRequest") from None

    async def _transcode(self, session_id: str, job: Job, active: bool) -> JobResult | str:
        faults = self.node.config.faults
        if (active and faults.fail_segments) or job.creds.segdata.seq in faults.fail_seqs:
            self.node.stats.faults_injected += 1
            return faults.error_text
        try:
            return await self.node.sessions.submit(session_id, job)
        except TranscodeError as err:
            return str(err)

    async def _fault_before_headers(self, request: Request, send: Send) -> bool:
        """Apply 500 / stall / delay; True if the request has been dealt with."""
        faults = self.node.config.faults
        if faults.http_500:
            self.node.stats.faults_injected += 1
            await http_error(send, 500, "Internal Server Error")
            return True
        if faults.stall:
            self.node.stats.faults_injected += 1
            await self._until_gone(request)
            return True
        if faults.delay_headers > 0:
            self.node.stats.faults_injected += 1
            await asyncio.sleep(faults.delay_headers)
        return False

    async def _until_gone(self, request: Request) -> None:
        gone = asyncio.ensure_future(request.wait_disconnect())
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([gone, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            stop.cancel()
        if not request.disconnected:
            self._abort(request)

    async def _send_result(self, request: Request, send: Send, body: bytes, active: bool) -> None:
        faults = self.node.config.faults
        if active and faults.delay_result > 0:
            self.node.stats.faults_injected += 1
            await asyncio.sleep(faults.delay_result)
        if active and faults.garbage:
            self.node.stats.faults_injected += 1
            body = GARBAGE
        if active and faults.drop_connection:
            self.node.stats.faults_injected += 1
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            await asyncio.sleep(0.05)  # let the half body reach the socket first
            raise AbortConnection("injected fault: connection dropped")
        await send({"type": "http.response.body", "body": body, "more_body": False})
