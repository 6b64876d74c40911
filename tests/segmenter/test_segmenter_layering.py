"""The segmenter library stays independent: no gateway, WebRTC, Livepeer or HTTP imports."""

from __future__ import annotations

import ast
from pathlib import Path

from segmenter import errors

FORBIDDEN = {"mediagw", "webrtc", "aiohttp", "aiortc", "asyncio", "requests", "httpx"}


def test_segmenter_imports_no_gateway_code() -> None:
    root = Path(errors.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_public_api() -> None:
    import segmenter

    for name in segmenter.__all__:
        assert hasattr(segmenter, name)
