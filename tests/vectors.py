"""The Livepeer conformance vectors, importable as ``vectors`` (tests/ is on the path).

Every test reads ``fixtures/vectors/livepeer-vectors.json`` through :func:`vectors`, so a clone runs
its tests alone. The file and its README are verbatim copies of the project's shared vectors; where
they came from and how to refresh them is in ``fixtures/vectors/SOURCE.md``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).resolve().parents[1] / "fixtures/vectors/livepeer-vectors.json"


@cache
def vectors() -> dict[str, Any]:
    """The parsed vectors, read once per session; callers must not mutate them."""
    return json.loads(VECTORS_PATH.read_text())  # type: ignore[no-any-return]
