"""Trickle wire facts (spec §4.1, §4.3): header names, statuses, bodies, seq parsing. Sans-IO.

Shared by the clients here and the server (``mediagw.orchestrator.trickle``, whose ``routes``
parses request paths)."""

from __future__ import annotations

import re

__all__ = [
    "CLOSED_VALUE",
    "H_CLOSED",
    "H_EXPECT_CONTENT",
    "H_LATEST",
    "H_RESET",
    "H_SEQ",
    "NOT_FOUND_BODY",
    "STATUS_UNAVAILABLE",
    "parse_int",
]

H_SEQ = "Lp-Trickle-Seq"
H_LATEST = "Lp-Trickle-Latest"
H_CLOSED = "Lp-Trickle-Closed"
H_RESET = "Lp-Trickle-Reset"
H_EXPECT_CONTENT = "Expect-Content"
CLOSED_VALUE = "terminated"
STATUS_UNAVAILABLE = 470
NOT_FOUND_BODY = b"Entry not found"

MAX_SEQ_DIGITS = 15  # far beyond any live stream, far below int64
_INT = re.compile(rf"[+-]?[0-9]{{1,{MAX_SEQ_DIGITS}}}")


def parse_int(text: str | None) -> int | None:
    """An integer header or path value as Go's ``strconv.Atoi`` reads it, bounded; else None."""
    if text is None:
        return None
    text = text.strip()
    if not _INT.fullmatch(text):
        return None
    return int(text)
