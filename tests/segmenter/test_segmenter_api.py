"""The segmenter library's public API is what it says (its layering: tests/test_layers.py)."""

from __future__ import annotations


def test_public_api() -> None:
    import segmenter

    for name in segmenter.__all__:
        assert hasattr(segmenter, name)
