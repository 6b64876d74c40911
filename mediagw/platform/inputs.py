"""What a publisher or user may ask for, checked once (the RTMP/WHIP query, ``/start``,
``/update``): by admission (``admission.py``) and the live AI API.

Pipeline (model) names and ids are shown in ``/streams``, logs and status, and are sent to
orchestrators and webhooks: they are bounded in size and charset. Params are a JSON object of
at most ``MAX_PARAMS_BYTES`` and ``MAX_PARAMS_DEPTH`` levels. RTMP outputs are at most
``MAX_OUTPUTS`` ``rtmp://`` / ``rtmps://`` URLs, regions at most ``MAX_REGIONS`` names. Every
refusal is a ``ConfigError`` whose text names the field and the limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ConfigError

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_OUTPUTS",
    "MAX_PARAMS_BYTES",
    "MAX_PARAMS_DEPTH",
    "MAX_REGIONS",
    "check_id",
    "check_params",
    "check_pipeline",
    "parse_json_object",
    "parse_params",
    "parse_regions",
    "parse_rtmp_outputs",
]

MAX_PARAMS_BYTES = 1024 * 1024
MAX_PARAMS_DEPTH = 32
MAX_ID_LENGTH = 128
MAX_REGIONS = 16
MAX_OUTPUTS = 4
MAX_OUTPUT_URL = 2048
# model ids such as "streamdiffusion", "org/model:v2"
_PIPELINE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+\-]*")
_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]+")  # stream ids, pipeline ids, region names


def _check(value: object, what: str, pattern: re.Pattern[str], chars: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= MAX_ID_LENGTH or not pattern.fullmatch(value):
        shown = f"{len(value)} characters" if len(value) > 40 else repr(value)
        raise ConfigError(f"{what} must be 1-{MAX_ID_LENGTH} of {chars} (got {shown})")
    return value


def check_pipeline(value: object) -> str:
    """A pipeline (model) name, e.g. ``noop`` or ``org/model``."""
    return _check(value, "pipeline", _PIPELINE_RE, "A-Z a-z 0-9 _ . : / + -")


def check_id(value: object, what: str) -> str:
    """An identifier the user chose (``streamId``, a region)."""
    return _check(value, what, _ID_RE, "A-Z a-z 0-9 _ . : -")


def _depth(value: object) -> int:
    """Nesting depth of decoded JSON, without recursion."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        children: Any = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_PARAMS_DEPTH:
                level.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_object(raw: str | bytes, what: str) -> dict[str, Any]:
    """A JSON object of at most ``MAX_PARAMS_BYTES`` and ``MAX_PARAMS_DEPTH`` levels."""
    if len(raw) > MAX_PARAMS_BYTES:
        raise ConfigError(f"{what}: larger than {MAX_PARAMS_BYTES} bytes")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what}: not UTF-8 (byte {exc.start}): send UTF-8 JSON") from None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ConfigError(f"{what}: JSON nested deeper than {MAX_PARAMS_DEPTH} levels") from None
    except ValueError as exc:
        raise ConfigError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a JSON object")
    if _depth(value) > MAX_PARAMS_DEPTH:
        raise ConfigError(f"{what}: JSON nested deeper than {MAX_PARAMS_DEPTH} levels")
    return value


def parse_params(raw: str | bytes | None) -> dict[str, Any]:
    """Pipeline params: a JSON object (at most 1 MiB; go-livepeer's limit does not work)."""
    if not raw:
        return {}
    return parse_json_object(raw, "params")


def check_params(value: object) -> dict[str, Any]:
    """Params given as a decoded value (a JSON body's ``params``): an object, or a string
    holding one."""
    if isinstance(value, str):
        return parse_params(value)
    if not isinstance(value, dict):
        raise ConfigError(f"params must be a JSON object, not {type(value).__name__}")
    if _depth(value) > MAX_PARAMS_DEPTH:
        raise ConfigError(f"params: JSON nested deeper than {MAX_PARAMS_DEPTH} levels")
    return value


def parse_regions(text: str) -> tuple[str, ...]:
    """``eu-west,us-east`` -> region names (ids), at most ``MAX_REGIONS``."""
    regions = [r.strip() for r in text.split(",") if r.strip()]
    if len(regions) > MAX_REGIONS:
        raise ConfigError(f"regions: at most {MAX_REGIONS}")
    return tuple(check_id(r, "region") for r in regions)


def parse_rtmp_outputs(text: str) -> list[str]:
    """``rtmp://a/x,rtmps://b/y`` -> URLs; ``ValueError`` for anything but rtmp(s) URLs. The
    error names the output by its position and scheme, never its path (it holds the stream key
    of the destination)."""
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if len(urls) > MAX_OUTPUTS:
        raise ValueError(f"at most {MAX_OUTPUTS} RTMP outputs")
    for n, url in enumerate(urls, 1):
        if len(url) > MAX_OUTPUT_URL:
            raise ValueError(f"RTMP output {n} is longer than {MAX_OUTPUT_URL} characters")
        if not url.startswith(("rtmp://", "rtmps://")):
            scheme = url.partition("://")[0][:16] if "://" in url else "no scheme"
            raise ValueError(f"RTMP output {n} must be an rtmp:// or rtmps:// URL, not {scheme}")
        if any(c.isspace() for c in url):
            raise ValueError("RTMP output URL has spaces")
    return urls
