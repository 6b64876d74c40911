"""Waiting for SIGINT/SIGTERM in the long-running commands (gateway, orchestrator, signer)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["wait_for_stop_signal"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def wait_for_stop_signal() -> None:
    """Return when the process is asked to stop; the handlers are removed again afterwards."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        for sig in _SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
