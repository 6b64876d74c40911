"""The orchestrator's result signature (transcode spec §5.10), against real priced reference
orchestrators: a result whose signature does not verify is refused and the segment goes to
another orchestrator; ``-verifyResults`` checks a share of results (each rendition hashed), an
orchestrator session's first ones always."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from mediatools import ClipMaker
from transcoder_testkit import livepeer_transcoder

from mediagw.eth.crypto import keccak256
from mediagw.livepeer.profiles import PRESETS
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.orchestrator.config import Faults
from mediagw.pipelines.transcode import LivepeerTranscoder, TranscodeJob, TranscodeOutcome
from mediagw.pipelines.transcode import transcoder as transcoder_mod

PROFILES = (PRESETS["P144p30fps16x9"],)


@dataclass
class Run:
    transcoder: LivepeerTranscoder
    segment: bytes
    hashed: list[int]  # the size of every rendition the gateway hashed

    async def segments(self, count: int, first: int = 0) -> list[TranscodeOutcome]:
        return [
            await self.transcoder.transcode(TranscodeJob("sig", seq, self.segment, 2.0, PROFILES))
            for seq in range(first, first + count)
        ]


@contextlib.asynccontextmanager
async def gateway(
    make_clip: ClipMaker,
    monkeypatch: pytest.MonkeyPatch,
    urls: list[str],
    share: float,
    rand: Callable[[], float] = lambda: 0.0,
) -> AsyncIterator[Run]:
    hashed: list[int] = []

    def counting(data: bytes) -> bytes:
        hashed.append(len(data))
        return keccak256(data)

    monkeypatch.setattr(transcoder_mod, "keccak256", counting)  # the renditions' hashes
    async with livepeer_transcoder(
        urls, max_attempts=2, verify_results=share, rand=rand
    ) as transcoder:
        yield Run(transcoder, make_clip(seconds=2, fmt="mpegts").read_bytes(), hashed)


def priced(faults: Faults | None = None) -> OrchestratorConfig:
    return OrchestratorConfig(
        priced=True, price_per_unit=1, x264_preset="ultrafast", faults=faults or Faults()
    )


async def test_a_result_that_does_not_verify_is_refused_and_goes_to_the_other(
    make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        ReferenceOrchestrator(priced(Faults(bad_result_sig=True))) as bad,
        ReferenceOrchestrator(priced()) as good,
    ):
        async with gateway(make_clip, monkeypatch, [bad.url], share=1.0) as run:
            (alone,) = await run.segments(1)
        assert not alone.ok and "result signature does not verify" in (alone.error or "")
        assert bad.stats.segments_transcoded >= 1  # it did the work; its result was refused

        async with gateway(make_clip, monkeypatch, [bad.url, good.url], share=1.0) as run:
            outcomes = await run.segments(4)
        assert all(o.ok and o.orchestrator == good.url for o in outcomes), outcomes
        assert good.stats.segments_transcoded == 4


async def test_a_share_of_results_is_checked_after_each_sessions_first_three(
    make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = itertools.cycle([0.05, 0.5])  # checked, not checked, ...
    async with ReferenceOrchestrator(priced()) as orch:
        async with gateway(make_clip, monkeypatch, [orch.url], 0.1, lambda: next(draws)) as run:
            outcomes = await run.segments(7)
        assert all(o.ok for o in outcomes), outcomes
        # 3 always, then 2 of the next 4: 5 results, 1 rendition each
        assert len(run.hashed) == 5 and all(size > 0 for size in run.hashed), run.hashed

        async with gateway(make_clip, monkeypatch, [orch.url], 0.0) as run:
            assert all(o.ok for o in await run.segments(3))
        assert run.hashed == []  # off: no rendition hashed

        async with gateway(make_clip, monkeypatch, [orch.url], 1.0, lambda: 0.99) as run:
            assert all(o.ok for o in await run.segments(5))
        assert len(run.hashed) == 5  # all: every result, whatever the draw


async def test_a_tampering_orchestrator_is_caught_in_its_first_results_when_sampling(
    make_clip: ClipMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        ReferenceOrchestrator(priced(Faults(bad_result_sig=True))) as bad,
        gateway(make_clip, monkeypatch, [bad.url], 0.01, lambda: 0.99) as run,
    ):
        (outcome,) = await run.segments(1)
    assert not outcome.ok and "result signature does not verify" in (outcome.error or "")
