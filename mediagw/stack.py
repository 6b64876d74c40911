"""Build the Livepeer transcoding stack from settings (used by the gateway and the benchmark)."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field

from .clock import SYSTEM, Clock
from .config import Settings
from .errors import ConfigError
from .eth.signer import Signer
from .livepeer.profiles import Profile, load_ladder, parse_transcoding_options
from .livepeer.rpc import OrchestratorRequests, OrchestratorRPC, normalize_orch_addr
from .livepeer.segment import SegmentClient
from .livepeer.tls import PinStore
from .metrics import NULL_METRICS, Metrics
from .payments.chain import JsonRpcChain
from .payments.remote import RemoteSigner, SignerError
from .payments.sender import PaymentSender
from .payments.signer import OffchainSigner, load_keystore_async
from .pipelines.sources import SignerDiscoverySource
from .pipelines.transcode import LivepeerTranscoder
from .pool.notes import OrchNotes
from .pool.prices import PriceCaps
from .pool.sources import Blocklist, Source, StaticSource, WebhookSource
from .usage import UsageSink

log = logging.getLogger("mediagw.livepeer")

__all__ = ["TranscodeStack", "build_transcoder", "default_ladder"]


@dataclass(eq=False)
class TranscodeStack:
    transcoder: LivepeerTranscoder
    rpc: OrchestratorRPC
    segments: SegmentClient
    signer: Signer
    chain: JsonRpcChain | None = None
    remote_signer: RemoteSigner | None = None
    pins: PinStore | None = None
    sources: list[Source] = field(default_factory=list)
    caps: PriceCaps | None = None
    blocklist: Blocklist | None = None
    requests: OrchestratorRequests | None = None  # GetOrchestrator, shared with live AI
    notes: OrchNotes | None = None  # node-wide orchestrator penalties and latency (-redisUrl)

    async def close(self) -> None:
        await self.transcoder.close()
        await self.segments.close()
        await self.rpc.close()
        if self.chain is not None:
            await self.chain.aclose()
        if self.remote_signer is not None:
            await self.remote_signer.close()


def default_ladder(settings: Settings) -> list[Profile]:
    """``-transcodingOptions``: preset names, a JSON profile file, or a ladder name."""
    value = settings.transcoding_options.strip()
    if not value:
        return []
    if "," not in value and not value.endswith(".json") and not value.startswith("P"):
        return load_ladder(value)  # a named ladder from transcode_profiles/
    return parse_transcoding_options(value)


async def build_transcoder(
    settings: Settings,
    executor: Executor | None = None,
    usage: UsageSink | None = None,
    clock: Clock = SYSTEM,
    metrics: Metrics = NULL_METRICS,
    *,
    shared: bool = False,
) -> TranscodeStack | None:
    """The transcoder for ``-orchAddr`` / ``-orchWebhookUrl``, or None when neither is set.
    ``shared``: several nodes share what they learn of orchestrators (``notes``)."""
    sources: list[Source] = []
    if settings.orch_addr:
        sources.append(StaticSource(settings.orch_addr, normalize_orch_addr))
    if settings.orch_webhook_url:
        sources.append(
            WebhookSource(
                settings.orch_webhook_url, clock=clock.monotonic, normalize=normalize_orch_addr
            )
        )
    remote: RemoteSigner | None = None
    credentials: tuple[bytes, bytes] | None = None
    if settings.remote_signer_url:
        remote = RemoteSigner(settings.remote_signer_url, headers=settings.remote_signer_headers)
        try:  # fail fast: a gateway that cannot get its credentials must not start
            credentials = await remote.sign_orchestrator_info()
        except SignerError as exc:
            await remote.close()
            raise ConfigError(
                f"remote signer {settings.remote_signer_url} failed: {exc}: "
                "check -remoteSignerUrl and -remoteSignerHeaders"
            ) from None
        log.info("remote signer ready", extra={"address": "0x" + credentials[0].hex()})
        if not sources:
            sources.append(SignerDiscoverySource(remote, normalize=normalize_orch_addr))
    if not sources:
        return None
    signer: Signer
    if settings.eth_keystore_path:
        if not settings.eth_password:
            raise ConfigError("-ethKeystorePath needs -ethPassword (the password or a file)")
        signer = await load_keystore_async(
            settings.eth_keystore_path, settings.eth_password, executor=executor
        )
        log.info("paying with a local key", extra={"address": "0x" + signer.address.hex()})
    else:
        signer = OffchainSigner()
        log.info("no -ethKeystorePath: off-chain mode (empty Livepeer-Payment)")
    caps = PriceCaps.from_flags(
        settings.max_price_per_unit, settings.pixels_per_unit, settings.max_price_per_capability
    )
    chain = JsonRpcChain(settings.eth_url) if settings.eth_url else None
    if chain is not None:
        chain.start()
    pins = PinStore(insecure=settings.orch_skip_verify)
    notes = OrchNotes(clock.wall) if shared else None
    rpc = OrchestratorRPC(pins)
    segments = SegmentClient(pins)
    transcoder = LivepeerTranscoder(
        usage=usage,
        metrics=metrics,
        clock=clock.wall,
        monotonic=clock.monotonic,
        rpc=rpc,
        segments=segments,
        sources=sources,
        signer=signer,
        payments=PaymentSender(
            signer, max_ticket_ev=settings.max_ticket_ev, max_total_ev=settings.max_total_ev
        ),
        caps=caps,
        blocklist=Blocklist(settings.orch_blocklist),
        max_attempts=settings.max_attempts,
        min_version=settings.orch_min_version,
        verify_results=settings.verify_results,
        chain=chain,
        requests=OrchestratorRequests(
            rpc, signer=None if signer.offchain else signer, credentials=credentials
        ),
        notes=notes,
    )
    return TranscodeStack(
        transcoder,
        rpc,
        segments,
        signer,
        chain,
        remote,
        pins=pins,
        sources=sources,
        caps=caps,
        blocklist=transcoder.blocklist,
        requests=transcoder.requests,
        notes=notes,
    )
