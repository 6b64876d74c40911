"""A gateway's Livepeer transcoder on its own, for tests against reference orchestrators over
real sockets: its pins, gRPC and segment clients, a paying key, closed whole on leaving."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mediagw.livepeer.rpc import OrchestratorRPC, normalize_orch_addr
from mediagw.livepeer.segment import SegmentClient
from mediagw.livepeer.tls import PinStore
from mediagw.payments.sender import PaymentSender
from mediagw.payments.signer import LocalSigner
from mediagw.pipelines.transcode import LivepeerTranscoder
from mediagw.pool.prices import PriceCaps
from mediagw.pool.sources import StaticSource


@contextlib.asynccontextmanager
async def livepeer_transcoder(
    urls: Sequence[str],
    signer: LocalSigner | None = None,
    *,
    max_total_ev: int = 10**15,
    **options: Any,
) -> AsyncIterator[LivepeerTranscoder]:
    """A ``LivepeerTranscoder`` over the orchestrators at ``urls``, paying with ``signer`` (a
    fresh key when None; tickets of at most 1e13 wei EV); ``options`` go to it as they are."""
    signer = signer or LocalSigner(os.urandom(32))
    pins = PinStore()
    rpc, segments = OrchestratorRPC(pins), SegmentClient(pins)
    transcoder = LivepeerTranscoder(
        rpc=rpc,
        segments=segments,
        sources=[StaticSource(list(urls), normalize_orch_addr)],
        signer=signer,
        payments=PaymentSender(signer, max_ticket_ev=10**13, max_total_ev=max_total_ev),
        caps=PriceCaps(),
        **options,
    )
    try:
        yield transcoder
    finally:
        await transcoder.close()
        await segments.close()
        await rpc.close()
