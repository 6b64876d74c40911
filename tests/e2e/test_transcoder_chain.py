"""What the chain says about our account gates payments (payments spec §8.1), against a real
priced reference orchestrator; the chain itself is a StaticChain (there is none here)."""

from __future__ import annotations

import os
import time

import pytest
from mediatools import ClipMaker
from transcoder_testkit import livepeer_transcoder

from mediagw.livepeer.profiles import PRESETS
from mediagw.livepeer.segdata import segment_hash
from mediagw.orchestrator import OrchestratorConfig, OrchestratorStats, ReferenceOrchestrator
from mediagw.payments.chain import StaticChain
from mediagw.payments.params import SenderInfo
from mediagw.payments.signer import LocalSigner
from mediagw.pipelines.transcode import TranscodeJob, TranscodeOutcome
from mediagw.pipelines.transcode import transcoder as transcoder_mod


async def _run(
    make_clip: ClipMaker, sender: SenderInfo
) -> tuple[TranscodeOutcome, OrchestratorStats]:
    segment = make_clip(seconds=2, fmt="mpegts").read_bytes()
    async with ReferenceOrchestrator(
        OrchestratorConfig(priced=True, price_per_unit=1, x264_preset="ultrafast")
    ) as orch:
        signer = LocalSigner(os.urandom(32))
        l1 = int(time.time() // 12)  # the reference orchestrator's stand-in L1 clock
        chain = StaticChain(
            l1_block=l1,
            initialized_round=7,
            block_hashes={7: b"\x11" * 32},
            senders={signer.address: sender},
        )
        job = TranscodeJob("chain", 0, segment, 2.0, (PRESETS["P144p30fps16x9"],))
        async with livepeer_transcoder([orch.url], signer, max_total_ev=10**14, chain=chain) as tc:
            outcome = await tc.transcode(job)
        stats = orch.stats
    return outcome, stats


async def test_funded_account_pays_and_transcodes(make_clip: ClipMaker) -> None:
    outcome, stats = await _run(make_clip, SenderInfo(10**18, 0, 10**17, 0))
    assert outcome.ok, outcome.error
    assert stats.tickets_accepted >= 1 and stats.tickets_rejected == 0


async def test_unfunded_account_sends_nothing(make_clip: ClipMaker) -> None:
    outcome, stats = await _run(make_clip, SenderInfo(10**18, 0, 0, 0))  # no reserve
    assert not outcome.ok and "no sender reserve" in (outcome.error or "")
    assert stats.segments_received == 0 and stats.tickets_received == 0


async def test_unlocking_account_sends_nothing(make_clip: ClipMaker) -> None:
    outcome, stats = await _run(make_clip, SenderInfo(10**18, 8, 10**17, 0))  # withdraw round 8
    assert not outcome.ok and "unlock" in (outcome.error or "")
    assert stats.segments_received == 0


async def test_expired_ticket_params_refresh_and_retry_the_same_orchestrator(
    make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No -ethUrl: the gateway cannot see params expire. The orchestrator answers
    'TicketParams expired'; the gateway refreshes them and the same O takes the segment.
    The retry signs a new SegData without hashing the segment again."""
    segment = make_clip(seconds=2, fmt="mpegts").read_bytes()
    hashed: list[int] = []

    async def counting_hash(data: bytes) -> bytes:
        hashed.append(len(data))
        return await segment_hash(data)

    monkeypatch.setattr(transcoder_mod, "segment_hash", counting_hash)
    skew = [0.0]
    config = OrchestratorConfig(
        priced=True,
        price_per_unit=10_000,  # every segment needs fresh tickets
        x264_preset="ultrafast",
        clock=lambda: time.time() + skew[0],
    )
    async with (
        ReferenceOrchestrator(config) as orch,
        livepeer_transcoder([orch.url]) as transcoder,
    ):
        profiles = (PRESETS["P144p30fps16x9"],)
        first = await transcoder.transcode(TranscodeJob("exp", 0, segment, 2.0, profiles))
        assert first.ok, first.error
        skew[0] = 41 * 12.0  # 41 stand-in L1 blocks later: the adopted params have expired
        second = await transcoder.transcode(TranscodeJob("exp", 1, segment, 2.0, profiles))
        assert second.ok, second.error
        assert second.attempts == 2 and second.orchestrator == orch.url
        assert hashed == [len(segment)] * 2  # once per segment, not once per attempt
        assert orch.stats.ticket_errors["TicketParams expired"] >= 1, orch.stats.ticket_errors
        assert orch.stats.segments_transcoded == 2
