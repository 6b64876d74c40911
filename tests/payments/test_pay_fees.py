"""Fee estimate, ticket count and live units (payments spec §8.2, §8.3; live-AI spec §9)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import pytest
from payments.pay_testkit import ids, rat, section

from mediagw.errors import ConfigError
from mediagw.payments.fees import (
    LIVE_PIXELS_PER_SECOND,
    LIVE_PREPAY_PIXELS,
    PIXEL_ESTIMATE_MULTIPLIER,
    estimate_fee,
    live_fee,
    live_units,
    segment_pixels,
    ticket_count,
    transcode_fee,
)
from mediagw.payments.tickets import expected_value


def test_multiplier_is_the_exact_double() -> None:
    assert Fraction(1.02) == PIXEL_ESTIMATE_MULTIPLIER
    for case in section("fee_estimate"):
        assert rat(case["multiplier"]) == PIXEL_ESTIMATE_MULTIPLIER


@pytest.mark.parametrize("case", section("fee_estimate"), ids=ids("fee_estimate"))
def test_fee_estimate(case: dict) -> None:
    profiles = [(p["width"], p["height"], p["fps"], p["fps_den"]) for p in case["profiles"]]
    duration = float(case["segment_duration_seconds"])
    est = transcode_fee(profiles, duration, rat(case["price_per_pixel"]))
    assert est.pixels == int(case["expected_pixels"])
    assert est.fee == rat(case["expected_fee"])
    # the same with a Fraction duration and with profile objects
    assert segment_pixels(profiles, Fraction(case["segment_duration_seconds"])) == est.pixels

    @dataclass
    class P:
        width: int
        height: int
        fps: int
        fps_den: int

    assert segment_pixels([P(*p) for p in profiles], duration) == est.pixels


@pytest.mark.parametrize(
    "bad",
    [(-1, 144, 30, 0), (256, 144, -30, 0), (256, 144, 30, -1), (1 << 20, 1, 1, 1), (1.5, 1, 1, 1)],
)
def test_bad_profiles_are_config_errors(bad: tuple) -> None:
    with pytest.raises(ConfigError):
        segment_pixels([bad], 2.0)


def test_bad_duration() -> None:
    with pytest.raises(ConfigError):
        segment_pixels([(1, 1, 1, 1)], -1.0)
    with pytest.raises(ConfigError):
        segment_pixels([(1, 1, 1, 1)], float("inf"))
    with pytest.raises(ConfigError):
        segment_pixels([(1, 1, 1, 1)] * 65, 1.0)


@pytest.mark.parametrize("case", section("ticket_count"), ids=ids("ticket_count"))
def test_ticket_count(case: dict) -> None:
    ev = expected_value(int(case["face_value"]), int(case["win_prob"]))
    assert ev == rat(case["ticket_ev"])
    fee, existing = rat(case["fee"]), rat(case["existing_credit"])
    assert max(fee, ev) == rat(case["expected_min_credit"])
    n, new_credit = ticket_count(fee, ev, existing)
    assert n == case["expected_num_tickets"]
    assert new_credit == rat(case["expected_new_credit"])


def test_ticket_count_edges() -> None:
    assert ticket_count(Fraction(100), Fraction(0), Fraction(0)) == (0, 0)  # price 0: no tickets
    assert ticket_count(Fraction(10), Fraction(5), Fraction(0)) == (2, 10)  # exact multiple
    assert ticket_count(Fraction(10), Fraction(5), Fraction(-3)) == (3, 15)  # negative balance
    assert ticket_count(Fraction(1), Fraction(5), Fraction(5)) == (0, 0)


def test_live_payment_units() -> None:
    cases = {c["id"]: c for c in section("live_payment_units")}
    assert int(cases["pixels_per_second"]["expected"]) == LIVE_PIXELS_PER_SECOND
    assert int(cases["start_prepayment_pixels"]["expected"]) == LIVE_PREPAY_PIXELS
    five = cases["five_seconds"]
    assert live_units(int(five["seconds"])) == int(five["expected"])
    assert live_units(Fraction(1, 3)) == 9_216_000
    assert live_units(0) == live_units(-1) == 0
    assert live_fee(LIVE_PREPAY_PIXELS, Fraction(3, 2)) == Fraction(LIVE_PREPAY_PIXELS * 3, 2)
    with pytest.raises(ConfigError):
        live_fee(-1, Fraction(1))


def test_estimate_fee_alias_without_price() -> None:
    profiles = [(256, 144, 30, 0)]
    pixels, per_price = estimate_fee(profiles, 2.0)
    assert pixels == 2211840 and per_price == pixels * PIXEL_ESTIMATE_MULTIPLIER
    assert per_price * 3 == transcode_fee(profiles, 2.0, Fraction(3)).fee
