"""Price caps: flag parsing (every error is a clear ConfigError), price_of, the cap filter."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pool.pool_testkit import make_info

from mediagw.errors import ConfigError, MediaGWError
from mediagw.pool.prices import (
    PriceCaps,
    parse_max_price_per_unit,
    parse_pixels_per_unit,
    price_jumped,
    price_of,
    price_refusal,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", Fraction(0)),
        ("1200", Fraction(1200)),
        (" 1200 ", Fraction(1200)),
        ("0.5", Fraction(1, 2)),
        ("12.25wei", Fraction(49, 4)),
        ("3WEI", Fraction(3)),
        ("2eth", Fraction(2 * 10**18)),
        ("0.000000001ETH", Fraction(10**9)),
    ],
)
def test_max_price_per_unit_accepts_wei(text: str, value: Fraction) -> None:
    assert parse_max_price_per_unit(text) == value


@pytest.mark.parametrize("text", ["0.5USD", "1usd", "10EUR"])
def test_max_price_currency_is_not_supported_yet(text: str) -> None:
    with pytest.raises(ConfigError, match=r"-maxPricePerUnit.*not supported yet.*give the price"):
        parse_max_price_per_unit(text)


@pytest.mark.parametrize("text", ["", "-1", "abc", "1.", ".5", "1,000", "1 wei", "1_0"])
def test_max_price_malformed(text: str) -> None:
    with pytest.raises(ConfigError, match=r"-maxPricePerUnit: .* is not a price"):
        parse_max_price_per_unit(text)


def test_max_price_exponent_is_named() -> None:
    with pytest.raises(ConfigError, match=r"-maxPricePerUnit: '1e9': write the full wei amount"):
        parse_max_price_per_unit("1e9")


def test_pixels_per_unit() -> None:
    assert parse_pixels_per_unit("1") == 1
    assert parse_pixels_per_unit(" 1000 ") == 1000
    assert parse_pixels_per_unit(7) == 7
    for bad in ("0", "-3", "1.5", "x", ""):
        with pytest.raises(ConfigError, match="-pixelsPerUnit"):
            parse_pixels_per_unit(bad)
    with pytest.raises(ConfigError, match="-pixelsPerUnit"):
        parse_pixels_per_unit(0)


def test_config_error_is_a_mediagw_error() -> None:
    with pytest.raises(MediaGWError):
        PriceCaps.from_flags("bad")


def test_global_cap() -> None:
    assert PriceCaps.from_flags().global_cap is None
    assert PriceCaps.from_flags("0", "5").max_price() is None
    caps = PriceCaps.from_flags("1000", "3")
    assert caps.global_cap == Fraction(1000, 3)
    assert caps.max_price() == Fraction(1000, 3)
    assert caps.max_price("text-to-image", "any") == Fraction(1000, 3)


SPEC_EXAMPLE = {
    "capabilities_prices": [
        {
            "pipeline": "text-to-image",
            "model_id": "stabilityai/sd-turbo",
            "price_per_unit": 1000,
            "pixels_per_unit": 1,
            "currency": "wei",
        }
    ]
}


def test_capability_prices_spec_example_inline() -> None:
    caps = PriceCaps.from_flags("10", "1", json.dumps(SPEC_EXAMPLE))
    assert caps.max_price("text-to-image", "stabilityai/sd-turbo") == 1000
    assert caps.max_price("text-to-image", "other") == 10  # no default entry -> global
    assert caps.max_price() == 10


def test_capability_prices_file(tmp_path: Path) -> None:
    path = tmp_path / "caps.json"
    path.write_text(json.dumps(SPEC_EXAMPLE))
    caps = PriceCaps.from_flags("0", "1", str(path))
    assert caps.max_price("text-to-image", "stabilityai/sd-turbo") == 1000
    assert caps.max_price("text-to-image", "x") is None


def test_capability_prices_defaults() -> None:
    doc = {
        "capabilities_prices": [
            # no model_id -> "default"; no pixels -> -pixelsPerUnit; price with decimals
            {"pipeline": "llm", "price_per_unit": 1.5},
            # no price -> -maxPricePerUnit; pixels <= 0 -> -pixelsPerUnit
            {"pipeline": "upscale", "model_id": "m", "pixels_per_unit": 0},
            # price 0 -> global
            {"pipeline": "image-to-video", "model_id": "zero", "price_per_unit": 0},
            {
                "pipeline": "audio-to-text",
                "model_id": "",
                "price_per_unit": 7,
                "pixels_per_unit": 2,
            },
            {"pipeline": "text-to-speech", "model_id": "e", "price_per_unit": 1, "currency": "ETH"},
        ]
    }
    caps = PriceCaps.from_flags("300", "10", json.dumps(doc))
    assert caps.max_price("llm", "anything") == Fraction(3, 20)  # 1.5 / 10, exact
    assert caps.max_price("llm") == Fraction(3, 20)
    assert caps.max_price("upscale", "m") == Fraction(300, 10)
    assert caps.max_price("image-to-video", "zero") == Fraction(30)
    assert caps.max_price("audio-to-text", "whatever") == Fraction(7, 2)  # "" -> default
    assert caps.max_price("text-to-speech", "e") == Fraction(10**18, 10)


def test_capability_prices_model_beats_default() -> None:
    doc = {
        "capabilities_prices": [
            {"pipeline": "llm", "model_id": "default", "price_per_unit": 5},
            {"pipeline": "llm", "model_id": "big", "price_per_unit": 50},
        ]
    }
    caps = PriceCaps.from_flags("1", "1", json.dumps(doc))
    assert caps.max_price("llm", "big") == 50
    assert caps.max_price("llm", "small") == 5


def test_empty_capability_flag_means_no_table() -> None:
    assert PriceCaps.from_flags("1", "1", "  ").max_price("llm", "x") == 1


def _entries(*entries: object) -> str:
    return json.dumps({"capabilities_prices": list(entries)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"inline JSON is not valid JSON: .* line 1 column 2"),
        ("[]", r'expected an object \{"capabilities_prices"'),
        ('{"prices": []}', r'expected an object \{"capabilities_prices"'),
        ('{"capabilities_prices": {}}', "capabilities_prices must be a list"),
        (_entries(3), r"capabilities_prices\[0\] must be an object"),
        (_entries({"model_id": "x"}), r"\[0\]: 'pipeline' must be a non-empty string"),
        (_entries({"pipeline": "txt2img"}), r"unknown pipeline 'txt2img'; known: audio-to-text"),
        (_entries({"pipeline": "transcode"}), r"set the transcoding cap with -maxPricePerUnit"),
        (_entries({"pipeline": "llm", "price": 3}), r"\[0\]: unknown key\(s\) price"),
        (_entries({"pipeline": "llm", "model_id": 3}), "'model_id' must be a string"),
        (_entries({"pipeline": "llm", "price_per_unit": "3"}), "price_per_unit must be a JSON"),
        (_entries({"pipeline": "llm", "price_per_unit": True}), "price_per_unit must be a JSON"),
        (_entries({"pipeline": "llm", "price_per_unit": -1}), "price_per_unit must not be neg"),
        (_entries({"pipeline": "llm", "pixels_per_unit": 1.5}), "pixels_per_unit must be an int"),
        (_entries({"pipeline": "llm", "price_per_unit": 1, "currency": "USD"}), "not supported"),
        (_entries({"pipeline": "llm", "currency": 1}), "'currency' must be a string"),
        (
            _entries({"pipeline": "llm"}, {"pipeline": "llm", "model_id": "default"}),
            r"\[1\]: duplicate entry for pipeline 'llm' model 'default'",
        ),
        ("/nonexistent/caps.json", r"cannot read file '/nonexistent/caps.json'.*inline JSON"),
    ],
)
def test_capability_prices_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        PriceCaps.from_flags("1", "1", text)
    assert str(info.value).startswith("-maxPricePerCapability")


def test_capability_file_not_json(tmp_path: Path) -> None:
    path = tmp_path / "caps.json"
    path.write_text("nope")
    with pytest.raises(ConfigError, match=rf"file {path} is not valid JSON"):
        PriceCaps.from_flags("1", "1", str(path))


def test_price_of() -> None:
    assert price_of(make_info()) is None  # off-chain: no price_info
    assert price_of(make_info(price=(10, 0))) is None
    assert price_of(make_info(price=(-1, 3))) is None
    assert price_of(make_info(price=(0, 1))) == 0
    assert price_of(make_info(price=(1200, 7))) == Fraction(1200, 7)


def test_price_refusal_messages() -> None:
    caps = PriceCaps.from_flags("100", "1")
    assert price_refusal(make_info(price=(100, 1)), caps) is None
    assert price_refusal(make_info(), caps) is None  # off-chain O, never paid
    reason = price_refusal(make_info(price=(101, 1)), caps)
    assert reason == "price 101 wei per pixel is above the max price 100"
    reason = price_refusal(make_info(price=(5, 0)), caps)
    assert reason is not None
    assert "unusable price 5/0" in reason
    assert price_refusal(make_info(price=(10**12, 1)), PriceCaps()) is None  # no cap


def test_price_jumped() -> None:
    assert not price_jumped(Fraction(10), Fraction(20))
    assert price_jumped(Fraction(10), Fraction(201, 10))
    assert price_jumped(Fraction(0), Fraction(1))
    assert not price_jumped(None, Fraction(1000))
    assert not price_jumped(Fraction(1), None)


@given(
    price_per_unit=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    pixels_per_unit=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    cap_units=st.integers(min_value=1, max_value=10**15),
    cap_pixels=st.integers(min_value=1, max_value=10**6),
)
def test_price_over_cap_is_always_refused(
    price_per_unit: int, pixels_per_unit: int, cap_units: int, cap_pixels: int
) -> None:
    caps = PriceCaps(cap_units, cap_pixels)
    info = make_info(price=(price_per_unit, pixels_per_unit))
    if price_refusal(info, caps) is None:
        price = price_of(info)
        assert price is not None
        assert price <= Fraction(cap_units, cap_pixels)
