"""The orchestrator core: identity, prices, OrchestratorInfo, credential and payment checks,
the gRPC methods and the transcode jobs; live video-to-video sessions live in ``self.live``.
HTTP framing lives in ``handlers``; sockets in ``server``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar
from urllib.parse import quote

from coincurve import PrivateKey
from google.protobuf.message import DecodeError

from mediagw.eth.crypto import (
    SignatureError,
    address_of,
    checksum,
    keccak256,
    recover_address,
    sign_digest_with,
)
from mediagw.livepeer.proto import net
from mediagw.payments.errors import InsufficientSenderReserve

from .authtoken import AuthTokens
from .balances import Balances
from .caps import (
    LIVE_VIDEO_TO_VIDEO,
    compatible,
    live_models_asked,
    orchestrator_capabilities,
)
from .chain import DevChain
from .config import OrchestratorConfig
from .errors import RequestRejected, RPCError
from .grpc_asgi import GRPC_INTERNAL
from .live.manager import LiveManager
from .pricing import job_price, listed_price
from .recipient import Recipient, ticket_signers, to_address
from .segcreds import SegCreds, flatten, parse_segdata
from .sessions import ORCHESTRATOR_CAPPED, TranscodeSessions
from .stats import OrchestratorStats
from .store import RenditionStore
from .transcode import Clip, Output, transcode

__all__ = ["Job", "JobResult", "OrchestratorNode"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Job:
    creds: SegCreds
    data: bytes


@dataclass(frozen=True, slots=True)
class JobResult:
    segments: list[net.TranscodedSegmentData]
    sig: bytes
    pixels: int


def _instant(data: bytes, creds: SegCreds) -> list[Output]:
    """Benchmark mode: every rendition is the input, pixels as if it had been transcoded."""
    seconds = (creds.segdata.duration or 2000) / 1000
    outputs = []
    for r in creds.renditions:
        frames = round(seconds * (r.fps / (r.fps_den or 1) if r.fps else 30))
        outputs.append(Output(data, r.width * r.height * frames, r.width, r.height, frames))
    return outputs


def _transcode_and_sign(
    data: bytes, creds: SegCreds, preset: str, key: PrivateKey | None, instant: bool = False
) -> tuple[list[Output], bytes]:
    """Worker thread: transcode, then sign keccak(keccak(r0) || keccak(r1) || ...) if priced."""
    clip = None
    if creds.segdata.HasField("segment_parameters"):
        p = creds.segdata.segment_parameters
        clip = Clip(getattr(p, "from"), p.to)
    if instant:
        outputs = _instant(data, creds)
    else:
        outputs = transcode(data, creds.renditions, preset=preset, clip=clip)
    sig = b""
    if key is not None:
        if instant:  # every rendition is the input: hash it once
            digest = keccak256(keccak256(data) * len(outputs))
        else:
            digest = keccak256(b"".join(keccak256(o.data) for o in outputs))
        sig = sign_digest_with(key, digest)
    return outputs, sig


def _signed_by(address: bytes, message: bytes, sig: bytes) -> bool:
    """go-livepeer VerifySig: recover over keccak256(message), compare addresses."""
    try:
        return recover_address(keccak256(message), sig) == address
    except SignatureError:
        return False


class OrchestratorNode:
    def __init__(self, config: OrchestratorConfig, service_uri: str) -> None:
        self.config = config
        self.service_uri = service_uri.rstrip("/")
        self.stats = OrchestratorStats()
        self.store = RenditionStore()
        self.balances = Balances()
        self.chain = DevChain(
            config.clock, config.block_time, config.base_block, config.round_length
        )
        self.tokens = AuthTokens(config.rand(32), config.clock, config.rand)
        self.capabilities = orchestrator_capabilities(
            config.version,
            config.live_models,
            live_capacity=config.live_capacity,
            runner_version=config.live_runner_version,
        )
        self.key: bytes | None = None
        self.signing_key: PrivateKey | None = None  # built once (it derives the public key)
        self.address = b""
        self.recipient: Recipient | None = None
        if config.priced:
            self.key = config.private_key or config.rand(32)
            self.signing_key = PrivateKey(self.key)
            self.address = address_of(self.signing_key.public_key)
            self.recipient = Recipient(
                address=self.address,
                secret=config.rand(32),
                chain=self.chain,
                ticket_ev=config.ticket_ev,
                redeem_gas=config.redeem_gas,
                gas_price=config.gas_price,
                rand=config.rand,
                balances=self.balances,
                stats=self.stats,
            )
        self.sessions: TranscodeSessions[Job, JobResult] = TranscodeSessions(
            self._run_job,
            max_sessions=config.max_sessions,
            queue_depth=config.session_queue_depth,
            idle_timeout=config.session_idle_timeout,
            stats=self.stats,
        )
        self._media = ThreadPoolExecutor(config.transcode_workers, "orch-transcode")
        self._crypto = ThreadPoolExecutor(2, "orch-crypto")
        self.live = LiveManager(config, self.stats, self.balances, self.service_uri)

    async def start(self) -> None:
        await self.live.start()

    async def close(self) -> None:
        await self.live.close()
        await self.sessions.close()
        self._media.shutdown(wait=False, cancel_futures=True)
        self._crypto.shutdown(wait=False, cancel_futures=True)

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._crypto, fn, *args)

    # --- price and OrchestratorInfo ---------------------------------------------------------

    def price(
        self, sender: bytes, key: str | None, caps: net.Capabilities | None = None
    ) -> Fraction:
        """The price quoted to ``sender``: the one fixed for (sender, ``key``), else the one
        for the job capabilities ``caps`` (None: none, the transcoding price); see pricing."""
        fixed = self.balances.fixed_price(sender, key) if key is not None else None
        if fixed is not None:
            price = fixed
        else:
            transcoding = Fraction(self.config.price_per_unit, self.config.pixels_per_unit)
            price = transcoding if caps is None else job_price(caps, self._model_price)
            if not price:
                price = transcoding
        return price * self._price_factor()

    def _model_price(self, capability: int, model: str) -> Fraction | None:
        if capability != LIVE_VIDEO_TO_VIDEO:
            return None
        return self.config.live_price(model)

    def _price_factor(self) -> Fraction:
        faults = self.config.faults
        if faults.price_factor != 1 and faults.active(self.stats.segments_received):
            return Fraction(str(faults.price_factor))
        return Fraction(1)

    def capabilities_prices(self) -> list[net.PriceInfo]:
        """What an info built without job capabilities lists: one entry per live model."""
        factor = self._price_factor()
        listed = []
        for model in sorted(self.config.live_models):
            price = self.config.live_price(model)
            if price is not None:
                listed.append(listed_price(LIVE_VIDEO_TO_VIDEO, model, price * factor))
        return listed

    def info(
        self,
        sender: bytes,
        *,
        key: str | None,
        auth_token: net.AuthToken | None,
        caps: net.Capabilities | None = None,
    ) -> net.OrchestratorInfo:
        """OrchestratorInfo for ``sender`` and the job capabilities ``caps`` (None: none);
        a new auth token unless one is given. Raises InsufficientSenderReserve (priced mode)."""
        info = net.OrchestratorInfo(transcoder=self.service_uri)
        info.capabilities.CopyFrom(self.capabilities)
        self.live.annotate(info.capabilities)
        info.auth_token.CopyFrom(auth_token if auth_token is not None else self.tokens.issue())
        if self.recipient is not None:
            price = self.price(sender, key, caps)
            info.price_info.pricePerUnit = price.numerator
            info.price_info.pixelsPerUnit = price.denominator
            info.ticket_params.CopyFrom(self.recipient.ticket_params(sender, price))
            info.address = self.address
            if caps is None:
                info.capabilities_prices.extend(self.capabilities_prices())
        return info

    # --- gRPC -------------------------------------------------------------------------------

    async def get_orchestrator(self, raw: bytes) -> bytes:
        req = _parse(net.OrchestratorRequest, raw)
        sender = to_address(req.address)
        if self.key is not None and not await self._off_loop(
            _signed_by, sender, checksum(sender).encode(), req.sig
        ):
            raise RPCError("Invalid orchestrator request: orchestrator req sig check failed")
        if not self.sessions.has_capacity(""):
            raise RPCError(f"Invalid orchestrator request: {ORCHESTRATOR_CAPPED}")
        models = live_models_asked(req.capabilities if req.HasField("capabilities") else None)
        if (
            models is not None
            and not req.ignoreCapacityCheck
            and not any(self.live.has_capacity(m) for m in models)
        ):  # live-AI model capacity (transcode spec §4.3 row 4)
            raise RPCError(f"Invalid orchestrator request: {ORCHESTRATOR_CAPPED}")
        try:
            caps = req.capabilities if req.HasField("capabilities") else None
            info = self.info(sender, key=None, auth_token=None, caps=caps)
        except InsufficientSenderReserve as exc:
            raise RPCError(str(exc)) from None
        self.stats.get_orchestrator += 1
        return info.SerializeToString()

    async def end_transcoding_session(self, raw: bytes) -> bytes:
        req = _parse(net.EndTranscodingSessionRequest, raw)
        if not self.tokens.authentic(req.auth_token):
            raise RPCError("Invalid auth token")
        self.sessions.end(req.auth_token.session_id)
        return net.EndTranscodingSessionResponse().SerializeToString()

    async def ping(self, raw: bytes) -> bytes:
        req = _parse(net.PingPong, raw)
        value = b""
        if self.signing_key is not None:
            value = await self._off_loop(sign_digest_with, self.signing_key, keccak256(req.value))
        return net.PingPong(value=value).SerializeToString()

    # --- /segment and /payment checks -------------------------------------------------------

    async def seg_creds(self, header: str, sender: bytes) -> SegCreds:
        """verifySegCreds: decode, signature, capabilities, auth token, capacity (all 403)."""
        creds = parse_segdata(header)
        sd = creds.segdata
        if self.key is not None:
            message = flatten(sd.manifestId, sd.seq, sd.hash, creds.names)
            if not await self._off_loop(_signed_by, sender, message, sd.sig):
                raise RequestRejected(403, "ErrSegSig")
        job_caps = sd.capabilities if sd.HasField("capabilities") else None
        if not compatible(job_caps, self.capabilities):
            raise RequestRejected(403, "incompatible capabilities")
        token = self.tokens.check(sd)
        if not self.sessions.has_capacity(token.session_id):
            raise RequestRejected(403, ORCHESTRATOR_CAPPED)
        return creds

    async def keccak(self, data: bytes) -> bytes:
        """keccak256 of a segment, off the loop (segments may be large)."""
        return await self._off_loop(keccak256, data)

    async def process_payment(self, payment: net.Payment, key: str) -> None:
        if self.recipient is None:
            return  # off-chain: ProcessPayment is a no-op
        signers = await self._off_loop(ticket_signers, payment)
        self.recipient.process_payment(payment, key, signers)

    def sufficient_balance(self, sender: bytes, key: str) -> bool:
        if self.recipient is None:
            return True
        balance = self.balances.balance(sender, key)
        return balance is not None and balance >= self.recipient.ticket_ev

    def debit(self, sender: bytes, key: str, price: net.PriceInfo, pixels: int) -> None:
        if self.recipient is None or price.pixelsPerUnit == 0:
            return
        fee = Fraction(price.pricePerUnit, price.pixelsPerUnit) * pixels
        self.balances.debit(sender, key, fee)
        self.stats.fees_debited += fee

    # --- transcoding ------------------------------------------------------------------------

    async def _run_job(self, job: Job) -> JobResult:
        loop = asyncio.get_running_loop()
        outputs, sig = await loop.run_in_executor(
            self._media,
            _transcode_and_sign,
            job.data,
            job.creds,
            self.config.x264_preset,
            self.signing_key,
            self.config.instant,
        )
        sd = job.creds.segdata
        session_id = sd.auth_token.session_id
        segments = []
        for rendition, output in zip(job.creds.renditions, outputs, strict=True):
            name = f"{sd.seq}{rendition.extension}"
            self.store.put(f"{session_id}/{rendition.name}", name, output.data)
            url = f"{self.service_uri}/stream/{session_id}/{quote(rendition.name)}/{name}"
            segments.append(net.TranscodedSegmentData(url=url, pixels=output.pixels))
        return JobResult(segments, sig, sum(o.pixels for o in outputs))


M = TypeVar("M", net.OrchestratorRequest, net.EndTranscodingSessionRequest, net.PingPong)


def _parse(cls: type[M], raw: bytes) -> M:
    message = cls()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise RPCError(f"grpc: error unmarshalling request: {exc}", GRPC_INTERNAL) from None
    return message
