"""Gateway-side helpers for the reference orchestrator tests: a real grpcio client over TLS,
SegData/Payment builders (tickets made with ``Ticket`` + ``sign_digest``), and /segment posts
with aiohttp."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import av
import grpc
from coincurve import PrivateKey

from mediagw.eth.crypto import address_of, checksum, keccak256, sign_digest
from mediagw.livepeer.proto import net
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.orchestrator.segcreds import flatten
from mediagw.payments.tickets import Ticket

GATEWAY_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
GATEWAY_ADDRESS = address_of(PrivateKey(GATEWAY_KEY).public_key)
ORCH_KEY = keccak256(b"mediagw reference orchestrator test key")
JOB_CAPS = 67112963  # bits {0, 1, 12, 26}: H.264 -> TS over HTTP push

P240 = ("P240p30fps16x9", 426, 240, 600_000, 30)
P360 = ("P360p30fps16x9", 640, 360, 1_200_000, 30)
P144 = ("P144p30fps16x9", 256, 144, 400_000, 30)


def grpc_channel(orch: ReferenceOrchestrator) -> grpc.aio.Channel:
    target = f"127.0.0.1:{orch.port}"
    if not orch.tls:
        return grpc.aio.insecure_channel(target)
    assert orch.certificate is not None
    creds = grpc.ssl_channel_credentials(root_certificates=orch.certificate.cert_pem)
    return grpc.aio.secure_channel(
        target, creds, options=[("grpc.ssl_target_name_override", "127.0.0.1")]
    )


def request_for(key: bytes | None, *, sig: bytes | None = None) -> net.OrchestratorRequest:
    """OrchestratorRequest signed as the gateway does: personal_sign(keccak(EIP-55 string))."""
    if key is None:
        return net.OrchestratorRequest(address=bytes(20))
    address = address_of(PrivateKey(key).public_key)
    if sig is None:
        sig = sign_digest(key, keccak256(checksum(address).encode()))
    return net.OrchestratorRequest(address=address, sig=sig)


async def get_orchestrator(
    orch: ReferenceOrchestrator, request: net.OrchestratorRequest
) -> net.OrchestratorInfo:
    async with grpc_channel(orch) as channel:
        call = channel.unary_unary(
            "/net.Orchestrator/GetOrchestrator",
            request_serializer=net.OrchestratorRequest.SerializeToString,
            response_deserializer=net.OrchestratorInfo.FromString,
        )
        result: net.OrchestratorInfo = await call(request, timeout=10)
        return result


async def end_session(orch: ReferenceOrchestrator, token: net.AuthToken) -> None:
    async with grpc_channel(orch) as channel:
        call = channel.unary_unary(
            "/net.Orchestrator/EndTranscodingSession",
            request_serializer=net.EndTranscodingSessionRequest.SerializeToString,
            response_deserializer=net.EndTranscodingSessionResponse.FromString,
        )
        await call(net.EndTranscodingSessionRequest(auth_token=token), timeout=10)


def segdata(
    info: net.OrchestratorInfo,
    data: bytes,
    *,
    seq: int = 0,
    key: bytes | None = None,
    profiles: Sequence[tuple[str, int, int, int, int]] = (P240, P360),
    manifest_id: bytes = b"manifest",
    duration: int = 2000,
    caps: int | None = JOB_CAPS,
) -> net.SegData:
    sd = net.SegData(
        manifestId=manifest_id,
        seq=seq,
        hash=keccak256(data),
        profiles=b"invalid" if profiles else b"",  # GL: "invalid" next to fullProfiles
        duration=duration,
    )
    if caps is not None:
        sd.capabilities.bitstring.append(caps)
        sd.capabilities.constraints.SetInParent()
    sd.auth_token.CopyFrom(info.auth_token)
    for name, width, height, bitrate, fps in profiles:
        sd.fullProfiles.add(name=name, width=width, height=height, bitrate=bitrate, fps=fps)
    if key is not None:
        names = [p[0] for p in profiles]
        sd.sig = sign_digest(key, keccak256(flatten(manifest_id, seq, sd.hash, names)))
    return sd


def payment(
    info: net.OrchestratorInfo,
    key: bytes | None = GATEWAY_KEY,
    nonces: Sequence[int] = (1,),
    *,
    price: net.PriceInfo | None = None,
) -> net.Payment:
    """A Payment echoing ``info``'s params, one signed ticket per nonce."""
    if key is None:
        return net.Payment()
    sender = address_of(PrivateKey(key).public_key)
    pay = net.Payment(sender=sender)
    pay.expected_price.CopyFrom(price if price is not None else info.price_info)
    if not nonces:
        return pay
    tp = info.ticket_params
    pay.ticket_params.CopyFrom(tp)
    pay.ticket_params.ClearField("expiration_params")
    pay.expiration_params.CopyFrom(tp.expiration_params)
    for nonce in nonces:
        ticket = ticket_of(pay, nonce)
        pay.ticket_sender_params.add(sender_nonce=nonce, sig=sign_digest(key, ticket.hash))
    return pay


def ticket_of(pay: net.Payment, nonce: int) -> Ticket:
    tp = pay.ticket_params
    return Ticket(
        recipient=tp.recipient,
        sender=pay.sender,
        face_value=int.from_bytes(tp.face_value, "big"),
        win_prob=int.from_bytes(tp.win_prob, "big"),
        sender_nonce=nonce,
        recipient_rand_hash=tp.recipient_rand_hash,
        creation_round=pay.expiration_params.creation_round,
        creation_round_block_hash=pay.expiration_params.creation_round_block_hash,
    )


def headers(sd: net.SegData | None, pay: net.Payment | None) -> dict[str, str]:
    return {
        "Livepeer-Segment": base64.b64encode(sd.SerializeToString()).decode() if sd else "",
        "Livepeer-Payment": base64.b64encode(pay.SerializeToString()).decode() if pay else "",
        "Content-Type": "video/MP2T",
    }


@dataclass
class Reply:
    status: int
    body: bytes
    text: str

    @property
    def result(self) -> net.TranscodeResult:
        assert self.status == 200, (self.status, self.text)
        return net.TranscodeResult.FromString(self.body)


async def post(
    http: aiohttp.ClientSession,
    orch: ReferenceOrchestrator,
    path: str,
    hdrs: dict[str, str],
    body: bytes = b"",
) -> Reply:
    async with http.post(orch.url + path, data=io.BytesIO(body), headers=hdrs, ssl=False) as resp:
        raw = await resp.read()
        return Reply(resp.status, raw, raw.decode("utf-8", "replace"))


async def fetch(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url, ssl=False) as resp:
        assert resp.status == 200, (url, resp.status)
        return await resp.read()


def probe(data: bytes) -> tuple[int, int, int, bool]:
    """(width, height, video frames, has audio) of a rendition, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        width, height = stream.codec_context.width, stream.codec_context.height
    with av.open(io.BytesIO(data)) as container:
        has_audio = bool(container.streams.audio)
    return width, height, frames, has_audio
