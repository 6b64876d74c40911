"""``POST /live-video-to-video`` (live-AI spec §3.2; go-livepeer StartLiveVideoToVideo).

Steps, in this order, with these answers (plain text, as Go's ``http.Error``):

==  =========================================================  ==============================
 0  fault ``live_empty_reply``: GL's validator quirk           200, empty body
 1  decode the JSON body (``model_id`` a non-empty string,      400
    ``params`` an object or null; ``gateway_request_id`` /
    ``stream_id`` strings, else headers ``requestID`` /
    ``streamID``)
 2  new ``mid`` (8 hex chars)
 3  idle container for the model (fault ``live_reject_start``)  503 ``insufficient capacity``
 4  decode ``Livepeer-Payment``                                 402
 5  SegData credentials (signature vs sender, capabilities,     403
    auth token, capacity)
 6  ProcessPayment credited to (sender, ``mid``)                400
 7  priced payment and balance < ticket EV                      400 ``Insufficient balance``
 8  create ``mid``, ``mid-out``, ``mid-control``, ``mid-events``
 9  accounting (priced O and payment price > 0) and the runner  500 (bad params; channels
                                                                closed)
10  200 JSON ``{publish_url, subscribe_url, control_url,
    events_url, manifest_id}``
==  =========================================================  ==============================
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..asgi import BodyTooLarge, Request, Send, http_error, respond
from ..errors import RequestRejected
from ..payhdr import decode_payment, payment_sender
from ..recipient import price_of

if TYPE_CHECKING:
    from ..node import OrchestratorNode

__all__ = ["MAX_START_BODY", "LiveStartHandler", "StartRequest"]

MAX_START_BODY = 1 << 20
INSUFFICIENT_CAPACITY = "insufficient capacity"


class StartRequest:
    """The parts of ``LiveVideoToVideoParams`` the orchestrator uses."""

    def __init__(self, model_id: str, params: object, request_id: str, stream_id: str) -> None:
        self.model_id = model_id
        self.params = params
        self.request_id = request_id
        self.stream_id = stream_id

    @classmethod
    def parse(cls, raw: bytes, request: Request) -> StartRequest:
        """Raises RequestRejected(400)."""
        try:
            body: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestRejected(400, f"invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise RequestRejected(400, "json: cannot unmarshal into LiveVideoToVideoParams")
        model = body.get("model_id")
        if not isinstance(model, str) or not model:
            raise RequestRejected(400, "model_id is required")
        params = body.get("params")
        if params is not None and not isinstance(params, dict):
            raise RequestRejected(400, "json: cannot unmarshal params into an object")
        ids = []
        for key, header in (("gateway_request_id", "requestID"), ("stream_id", "streamID")):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise RequestRejected(400, f"json: cannot unmarshal {key} into a string")
            ids.append(value or request.header(header))
        return cls(model, params, ids[0], ids[1])


class LiveStartHandler:
    def __init__(self, node: OrchestratorNode) -> None:
        self.node = node

    async def __call__(self, request: Request, send: Send) -> None:
        node = self.node
        if node.config.faults.live_empty_reply:
            node.stats.faults_injected += 1
            await respond(send, 200)
            return
        try:
            reply = await self._start(request)
        except RequestRejected as err:
            node.stats.reject(err.status, err.text)
            await http_error(send, err.status, err.text)
            return
        await respond(send, 200, json.dumps(reply).encode(), content_type="application/json")

    async def _start(self, request: Request) -> dict[str, str]:
        node, live = self.node, self.node.live
        try:
            raw = await request.body(MAX_START_BODY)
        except BodyTooLarge:
            raise RequestRejected(400, "http: request body too large") from None
        start = StartRequest.parse(raw, request)
        mid = live.new_mid()
        if node.config.faults.live_reject_start:
            node.stats.faults_injected += 1
            raise RequestRejected(503, INSUFFICIENT_CAPACITY)
        if not live.reserve(start.model_id):
            raise RequestRejected(503, INSUFFICIENT_CAPACITY)
        try:
            payment = decode_payment(request.header("Livepeer-Payment"))
            sender = payment_sender(payment)
            await node.seg_creds(request.header("Livepeer-Segment"), sender)
            await node.process_payment(payment, mid)
            priced = payment.expected_price.pricePerUnit > 0
            if priced and not node.sufficient_balance(sender, mid):
                raise RequestRejected(400, "Insufficient balance")
            price = None
            if priced and node.recipient is not None:
                price = price_of(payment.expected_price)
            return live.open_session(
                mid=mid,
                model=start.model_id,
                params=start.params,
                sender=sender,
                price=price,
                request_id=start.request_id,
                stream_id=start.stream_id,
            )
        except BaseException:
            live.release(start.model_id)
            raise
