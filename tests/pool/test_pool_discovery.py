"""Discovery rounds: acceptance rules, end conditions and timers (small real timeouts), logging."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pool.pool_testkit import candidate, job_caps, make_info, subset_compatible

from mediagw.livepeer.candidates import Candidate
from mediagw.livepeer.proto import net
from mediagw.pool import Blocklist, OrchSession, PriceCaps, discover, price_of

BLOCKED = bytes.fromhex("ab" * 20)


class FakeFetch:
    """url -> (delay seconds, info or exception). Records cancellations."""

    def __init__(self, table: Mapping[str, tuple[float, net.OrchestratorInfo | Exception]]):
        self.table = dict(table)
        self.called: list[str] = []
        self.cancelled: list[str] = []

    async def __call__(self, url: str) -> net.OrchestratorInfo:
        self.called.append(url)
        delay, outcome = self.table[url]
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled.append(url)
            raise
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def url(name: str) -> str:
    return f"https://{name}:8935"


async def run(
    cands: list[Candidate],
    fetch: FakeFetch,
    *,
    caps: PriceCaps | None = None,
    blocklist: Blocklist | None = None,
    **kw: object,
) -> list[OrchSession]:
    return await discover(
        cands,
        fetch,
        job_caps=job_caps(),
        compatible=subset_compatible,
        caps=caps or PriceCaps(),
        blocklist=blocklist or Blocklist(),
        clock=time.monotonic,
        **kw,  # type: ignore[arg-type]
    )


def refusals(caplog: pytest.LogCaptureFixture) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for rec in caplog.records:
        if rec.levelno >= logging.WARNING and hasattr(rec, "orch"):
            found.setdefault(rec.orch, []).append(rec.reason)
    return found


async def test_acceptance_rules_and_latency_order(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="mediagw.pool")
    fetch = FakeFetch(
        {
            url("slow"): (0.06, make_info("https://slow-t", price=(100, 1))),
            url("fast"): (0.01, make_info("https://fast-t", price=(50, 1))),
            url("mid"): (0.03, make_info("https://mid-t")),  # off-chain: no price
            url("err"): (0.0, ConnectionError("dial tcp: refused")),
            url("blocked"): (0.0, make_info("https://b-t", address=BLOCKED)),
            url("incompat"): (0.0, make_info("https://i-t", bits=0b11)),
            url("notrans"): (0.0, make_info("")),
            url("pricey"): (0.0, make_info("https://p-t", price=(301, 3))),
            url("badprice"): (0.0, make_info("https://bp-t", price=(1, 0))),
        }
    )
    names = [u.removeprefix("https://").removesuffix(":8935") for u in fetch.table]
    cands = [candidate(n, region="eu" if n == "mid" else "") for n in names]
    cands = [Candidate(c.url, 0.0, c.region) if "slow" in c.url else c for c in cands]
    got = await run(
        cands,
        fetch,
        caps=PriceCaps.from_flags("100", "1"),
        blocklist=Blocklist(["0x" + "AB" * 20]),
    )
    assert [s.url for s in got] == [url("fast"), url("mid"), url("slow")]
    assert got[0].discovery_latency < got[1].discovery_latency < got[2].discovery_latency
    assert got[1].region == "eu"
    assert got[0].trusted
    assert not got[2].trusted
    assert got[0].initial_price == 50
    reasons = refusals(caplog)
    assert set(reasons) == {
        url(n) for n in ("err", "blocked", "incompat", "notrans", "pricey", "badprice")
    }
    assert all(len(r) == 1 for r in reasons.values())  # each logged once
    assert reasons[url("err")] == ["ConnectionError: dial tcp: refused"]
    assert reasons[url("blocked")] == [f"address 0x{'ab' * 20} is blocklisted"]
    assert "not compatible" in reasons[url("incompat")][0]
    assert "no transcoder" in reasons[url("notrans")][0]
    assert reasons[url("pricey")] == [
        "price 301/3 (~100.333) wei per pixel is above the max price 100"
    ]
    assert "unusable price 1/0" in reasons[url("badprice")][0]


async def test_ends_at_target_count_and_cancels_the_rest() -> None:
    fetch = FakeFetch(
        {
            url("a"): (0.01, make_info("https://a-t")),
            url("b"): (0.02, make_info("https://b-t")),
            url("c"): (5.0, make_info("https://c-t")),
        }
    )
    started = time.monotonic()
    got = await run([candidate(n) for n in "abc"], fetch, target=2)
    assert time.monotonic() - started < 0.4
    assert [s.url for s in got] == [url("a"), url("b")]
    assert fetch.cancelled == [url("c")]


async def test_ends_when_all_replied() -> None:
    fetch = FakeFetch({url("a"): (0.0, make_info()), url("b"): (0.0, RuntimeError("x"))})
    started = time.monotonic()
    got = await run([candidate("a"), candidate("b")], fetch, soft_timeout=5, hard_timeout=5)
    assert time.monotonic() - started < 0.2
    assert len(got) == 1


async def test_soft_timer_after_first_success() -> None:
    fetch = FakeFetch({url("a"): (0.01, make_info()), url("b"): (3.0, make_info())})
    started = time.monotonic()
    got = await run([candidate("a"), candidate("b")], fetch, soft_timeout=0.1, hard_timeout=2)
    elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < 0.3
    assert [s.url for s in got] == [url("a")]


async def test_soft_timer_doubles_until_a_success() -> None:
    # soft 0.1 expires with nothing -> 0.2 more (until 0.3); a arrives at 0.25 -> end at ~0.3
    fetch = FakeFetch({url("a"): (0.25, make_info()), url("b"): (3.0, make_info())})
    started = time.monotonic()
    got = await run([candidate("a"), candidate("b")], fetch, soft_timeout=0.1, hard_timeout=2)
    elapsed = time.monotonic() - started
    assert 0.28 <= elapsed < 0.5
    assert [s.url for s in got] == [url("a")]


async def test_soft_timer_is_capped() -> None:
    # 0.1, then 0.15 (capped), then 0.15...: a arrives at 0.12 -> end at 0.25
    fetch = FakeFetch({url("a"): (0.12, make_info()), url("b"): (3.0, make_info())})
    started = time.monotonic()
    await run(
        [candidate("a"), candidate("b")],
        fetch,
        soft_timeout=0.1,
        max_soft_timeout=0.15,
        hard_timeout=2,
    )
    assert 0.24 <= time.monotonic() - started < 0.4


async def test_hard_cutoff_logs_each_silent_orchestrator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetch = FakeFetch({url("a"): (5.0, make_info()), url("b"): (5.0, make_info())})
    started = time.monotonic()
    got = await run([candidate("a"), candidate("b")], fetch, soft_timeout=0.05, hard_timeout=0.3)
    assert 0.29 <= time.monotonic() - started < 0.6
    assert got == []
    assert sorted(fetch.cancelled) == [url("a"), url("b")]
    assert refusals(caplog) == {
        url("a"): ["no reply within 0.3 s"],
        url("b"): ["no reply within 0.3 s"],
    }


async def test_suspended_set_aside_used_only_if_too_few() -> None:
    fetch = FakeFetch(
        {
            url("s1"): (0.0, make_info("https://s1-t")),
            url("s2"): (0.01, make_info("https://s2-t")),
            url("ok"): (0.02, make_info("https://ok-t")),
        }
    )
    penalties = {url("s1"): 3, url("s2"): 1}
    cands = [candidate(n) for n in ("s1", "s2", "ok")]

    got = await run(cands, fetch, suspended=lambda u: penalties.get(u, 0), target=1)
    assert [s.url for s in got] == [url("ok")]  # suspended ones did not count for the target

    got = await run(cands, fetch, suspended=lambda u: penalties.get(u, 0), target=2)
    assert [s.url for s in got] == [url("ok"), url("s2")]  # lowest penalty first

    got = await run(cands, fetch, suspended=lambda u: penalties.get(u, 0))
    assert [s.url for s in got] == [url("ok"), url("s2"), url("s1")]


async def test_duplicates_queried_once_and_empty_input() -> None:
    fetch = FakeFetch({url("a"): (0.0, make_info())})
    got = await run([candidate("a"), candidate("a", region="x")], fetch)
    assert fetch.called == [url("a")]
    assert len(got) == 1
    assert await run([], fetch) == []
    assert await run([candidate("a")], fetch, target=0) == []


async def test_shuffled_query_order_does_not_change_result() -> None:
    import random

    names = [f"o{i}" for i in range(6)]
    fetch = FakeFetch(
        {url(n): (0.01 * i, make_info(f"https://{n}-t")) for i, n in enumerate(names)}
    )
    got = await run([candidate(n) for n in names], fetch, rng=random.Random(7))
    assert fetch.called != [url(n) for n in names]
    assert [s.url for s in got] == [url(n) for n in names]


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(
        st.tuples(st.integers(0, 10**12), st.integers(-2, 10**6)), min_size=1, max_size=8
    ),
    cap=st.integers(1, 10**9),
    cap_pixels=st.integers(1, 1000),
)
def test_discovery_never_accepts_over_cap(
    prices: list[tuple[int, int]], cap: int, cap_pixels: int
) -> None:
    fetch = FakeFetch(
        {url(f"o{i}"): (0.0, make_info(f"https://o{i}-t", price=p)) for i, p in enumerate(prices)}
    )
    cands = [candidate(f"o{i}") for i in range(len(prices))]
    caps = PriceCaps(cap, cap_pixels)
    got = asyncio.run(run(cands, fetch, caps=caps))
    limit = Fraction(cap, cap_pixels)
    for s in got:
        price = price_of(s.info)
        assert price is not None
        assert price <= limit
    expected = sum(1 for ppu, px in prices if px > 0 and Fraction(ppu, px) <= limit)
    assert len(got) == expected


async def test_on_error_hears_of_each_failed_and_refused_query_with_a_bounded_code() -> None:
    fetch = FakeFetch(
        {
            url("ok"): (0.0, make_info("https://ok-t")),
            url("down"): (0.0, ConnectionError("refused")),
            url("blocked"): (0.0, make_info("https://b-t", address=BLOCKED)),
        }
    )
    errors: list[tuple[str, str]] = []
    cands = [candidate("ok"), candidate("down"), candidate("blocked")]
    accepted = await run(
        cands,
        fetch,
        blocklist=Blocklist([BLOCKED.hex()]),
        on_error=lambda u, c: errors.append((u, c)),
    )
    assert [s.url for s in accepted] == [url("ok")]
    assert sorted(errors) == [(url("blocked"), "Refused"), (url("down"), "ConnectionError")]
