"""What every fuzz target module shares: the Target record and small input helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures/rtmp/ffmpeg_publish.bin"
Parse = Callable[[bytes], object]


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    parse: Parse
    seeds: Callable[[], list[bytes]]
    expected: tuple[type[BaseException], ...] = field(default=())
    max_len: int = 4096


JSON_MAX = 16384  # room for JSON nested past the interpreter's recursion limit


def fixed_rand(n: int) -> bytes:
    return b"\x5a" * n


def as_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class Request:
    """What the query helpers read of an aiohttp request."""

    query: object
    headers: object
