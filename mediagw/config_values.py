"""The value parsers of the settings: each turns the text of a flag, an environment variable or
a TOML value into the typed value ``Settings`` holds, or raises ``ValueError`` saying what it
expected (``config.py`` adds where the value came from)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

__all__ = [
    "choice",
    "non_negative_int",
    "parse_addr",
    "parse_bool",
    "parse_duration",
    "parse_headers",
    "parse_key_map",
    "parse_list",
    "parse_node_id",
    "parse_node_url",
    "parse_rate",
    "parse_redis_url",
    "part_target",
    "positive_float",
    "positive_int",
    "read_hold",
    "share",
]


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_key_map(text: str) -> dict[str, str]:
    """``key1=play1,key2=play2`` -> mapping of secret stream key to public playback id."""
    out: dict[str, str] = {}
    for item in parse_list(text):
        key, sep, playback = item.partition("=")
        if not sep or not key.strip() or not playback.strip():
            raise ValueError(f"expected KEY=PLAYBACK_ID, got {item!r}")
        out[key.strip()] = playback.strip()
    return out


def parse_headers(text: str) -> dict[str, str]:
    """``k:v,k2:v2`` (go-livepeer's -remoteSignerHeaders)."""
    out: dict[str, str] = {}
    for item in parse_list(text):
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME:VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def parse_addr(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return f"{host or '0.0.0.0'}:{port}"


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"must be > 0, got {text!r}")
    return value


def share(text: str) -> float:
    """A share from 0 to 1; ``all`` = 1, ``off`` = 0."""
    word = text.strip().lower()
    if word in ("all", "on", "true"):
        return 1.0
    if word in ("off", "none", "false"):
        return 0.0
    value = float(word)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be 0 to 1 (or all, off), got {text!r}")
    return value


def part_target(text: str) -> float:
    value = float(text)
    if not 0.1 <= value <= 2.0:
        raise ValueError(f"must be 0.1 to 2 seconds (LL-HLS parts), got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be > 0, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be >= 0, got {text!r}")
    return value


def parse_redis_url(text: str) -> str:
    if text and not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"give redis://HOST:PORT/DB, rediss:// or unix://, not {text[:100]!r}")
    return text


def parse_node_id(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{0,64}", text):
        raise ValueError(f"give up to 64 letters, digits, '.', '_' or '-', not {text[:100]!r}")
    return text


def parse_node_url(text: str) -> str:
    if text and not re.fullmatch(r"https?://[^/\s?#]+", text):
        raise ValueError(f"give http://HOST:PORT (no path), not {text[:100]!r}")
    return text


def parse_duration(text: str) -> float:
    """Seconds: ``5``, ``5s``, ``500ms``, ``2m`` (go-livepeer's flags take Go durations)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if match is None:
        raise ValueError(f"expected a duration like 5s or 500ms, got {text!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    value = float(match.group(1)) * scale
    if value <= 0:
        raise ValueError(f"must be > 0, got {text!r}")
    return value


def read_hold(text: str) -> float:
    """``-rtmpReadHold``: a duration up to 150 ms, or ``0``/``off``. No read is held from 200 ms
    before an expected keyframe (``stream.publisher.HOLD_LEAD``): the last hold before it, and
    its tick, end before it is due."""
    if text.strip().lower() in ("0", "off"):
        return 0.0
    value = parse_duration(text)
    if value > 0.15:
        raise ValueError(
            f"must be at most 150ms (a keyframe not foretold waits up to this long), got {text!r}"
        )
    return value


def parse_rate(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise ValueError(f"expected a decimal number like 2500.50, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"must be a number >= 0, got {text!r}")
    return value


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}; got {text!r}")
        return text

    return parse
