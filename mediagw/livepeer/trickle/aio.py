"""Small asyncio helpers of the trickle package."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_quietly"]


async def cancel_quietly(task: asyncio.Future[Any]) -> Any:
    """Cancel ``task`` and wait for it; returns its result if it had finished, else None.
    A cancellation of the calling task itself is never swallowed."""
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        return None
