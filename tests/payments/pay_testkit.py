"""Shared helpers of the payments tests: the conformance vectors and small converters."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from vectors import vectors


def section(name: str) -> list[dict[str, Any]]:
    value = vectors()[name]
    assert isinstance(value, list)
    return value


def ids(name: str) -> list[str]:
    return [
        c.get("id", c.get("function", c.get("name", str(i)))) for i, c in enumerate(section(name))
    ]


def hx(value: str) -> bytes:
    assert value.startswith("0x")
    return bytes.fromhex(value[2:])


def rat(value: dict[str, str]) -> Fraction:
    return Fraction(int(value["num"]), int(value["den"]))


def key_of_vectors() -> bytes:
    return hx(vectors()["test_key"]["private_key"])


def address_of_vectors() -> bytes:
    return hx(vectors()["test_key"]["address"])
