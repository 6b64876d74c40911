"""Live pipeline params (live-AI spec §12) and the per-pixel effects they select. Sans-IO.

Every pipeline takes the ai-runner base params: ``width``/``height`` (int, 384..1024, multiple
of 64) and ``show_reloading_frame`` (bool); unknown keys are ignored, as pydantic does for the
runner's models. The built-in pipelines:

=========  ==================================================  ================================
model      params                                              output
=========  ==================================================  ================================
``noop``   base only                                           the input segment, byte for byte
``invert`` ``strength`` 0..1 (default 1)                       Y/U/V -> v + s x (255 - 2v)
``tint``   ``color`` [r, g, b] 0..255 (default red),           every pixel blended toward the
           ``strength`` 0..1 (default 0.5)                     colour by ``strength``
=========  ==================================================  ================================

Any other configured model id runs ``noop``. ``width``/``height``, when given, scale the output
of ``invert`` and ``tint`` (``noop`` passes the input through and ignores them). An update
replaces the whole params object (as the runner's ``update_params`` does): keys left out go back
to their defaults.

The effects are per-plane lookup tables on YUV 4:2:0 (BT.601 limited range for the colour), so
the worker applies them with ``bytes.translate`` and no numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import LiveParamsError

__all__ = [
    "DEFAULT_TINT",
    "EFFECT_MODELS",
    "Luts",
    "PipelineParams",
    "params_hash",
    "parse_params",
]

EFFECT_MODELS = ("invert", "tint")
DEFAULT_TINT = (255, 0, 0)
MIN_SIZE, MAX_SIZE, SIZE_STEP = 384, 1024, 64
Luts = tuple[bytes, bytes, bytes]  # Y, U, V translation tables


@dataclass(frozen=True, slots=True)
class PipelineParams:
    model: str
    raw: dict[str, Any]  # as received (reported back as last_params)
    width: int | None = None
    height: int | None = None
    strength: float = 1.0
    color: tuple[int, int, int] = DEFAULT_TINT

    @property
    def passthrough(self) -> bool:
        return self.model not in EFFECT_MODELS

    @property
    def size(self) -> tuple[int, int] | None:
        """Output size asked for (either missing: keep the input's in that dimension)."""
        if self.width is None and self.height is None:
            return None
        return (self.width or 0, self.height or 0)

    def luts(self) -> Luts | None:
        if self.model == "invert":
            table = _table(lambda v: v + self.strength * (255 - 2 * v))
            return (table, table, table)
        if self.model == "tint":
            s = self.strength
            y, u, v = _yuv(self.color)
            return (
                _table(lambda p: p * (1 - s) + y * s),
                _table(lambda p: p * (1 - s) + u * s),
                _table(lambda p: p * (1 - s) + v * s),
            )
        return None


def _table(fn: Any) -> bytes:
    return bytes(min(255, max(0, round(fn(v)))) for v in range(256))


def _yuv(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """BT.601 limited range, as libswscale converts yuv420p by default."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


def _size(raw: dict[str, Any], key: str) -> int | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise LiveParamsError(f"{key}: input should be a valid integer, got {value!r}")
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise LiveParamsError(f"{key}: must be between {MIN_SIZE} and {MAX_SIZE}, got {value}")
    if value % SIZE_STEP:
        raise LiveParamsError(f"{key}: must be a multiple of {SIZE_STEP}, got {value}")
    return value


def _unit(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LiveParamsError(f"{key}: input should be a number, got {value!r}")
    if not 0 <= value <= 1:
        raise LiveParamsError(f"{key}: must be between 0 and 1, got {value}")
    return float(value)


def _color(raw: dict[str, Any]) -> tuple[int, int, int]:
    value = raw.get("color", list(DEFAULT_TINT))
    if (
        not isinstance(value, list)
        or len(value) != 3
        or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 255 for c in value)
    ):
        raise LiveParamsError(f"color: expected [r, g, b] with integers 0..255, got {value!r}")
    return (value[0], value[1], value[2])


def parse_params(model: str, raw: object) -> PipelineParams:
    """Validate ``raw`` (a JSON object; None = {}) for ``model``; raises LiveParamsError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise LiveParamsError(f"params must be a JSON object, got {type(raw).__name__}")
    width, height = _size(raw, "width"), _size(raw, "height")
    reloading = raw.get("show_reloading_frame", True)
    if not isinstance(reloading, bool):
        raise LiveParamsError(f"show_reloading_frame: input should be a boolean, got {reloading!r}")
    strength, color = 1.0, DEFAULT_TINT
    if model == "invert":
        strength = _unit(raw, "strength", 1.0)
    elif model == "tint":
        strength = _unit(raw, "strength", 0.5)
        color = _color(raw)
    return PipelineParams(model, dict(raw), width, height, strength, color)


def params_hash(raw: dict[str, Any]) -> str:
    """ai-runner's last_params_hash: md5 of the JSON with sorted keys."""
    return hashlib.md5(json.dumps(raw, sort_keys=True).encode()).hexdigest()
