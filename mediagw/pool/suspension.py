"""Suspension of failed orchestrators, counted in pool refresh cycles (transcode spec §9.2-9.3).

A failed O is suspended for ``penalty`` refresh cycles: it is released once the pool has
refreshed ``penalty`` more times. go-livepeer adds the penalty to the stored value (starting at
0) instead of to the current refresh count, so once a pool has refreshed more often than the
penalty a new suspension has already expired (DON'T COPY, §9.3). Here the release point is
absolute, ``release_at = refresh_count + penalty``, and suspending again keeps the later point.

Sans-IO: the caller signals each refresh.
"""

from __future__ import annotations

import math

__all__ = ["Suspensions", "penalty_for"]


def penalty_for(pool_size: int, num_orchs: int) -> int:
    """``ceil(pool size / numOrchs)`` refresh cycles (§9.2), at least 1."""
    return math.ceil(max(1, pool_size) / max(1, num_orchs))


class Suspensions:
    """Per stream and per pool: which Os are suspended, until which refresh count."""

    def __init__(self) -> None:
        self._refresh_count = 0
        self._release_at: dict[str, int] = {}

    @property
    def refresh_count(self) -> int:
        return self._refresh_count

    def signal_refresh(self) -> None:
        """The pool refreshed once: one cycle of every penalty has passed."""
        self._refresh_count += 1
        count = self._refresh_count
        for key in [k for k, at in self._release_at.items() if at <= count]:
            del self._release_at[key]

    def suspend(self, key: str, penalty: int) -> int:
        """Suspend ``key`` for ``penalty`` more refreshes; returns the release point.

        Suspending an already suspended O keeps whichever release point is later.
        """
        if penalty <= 0:
            return self._release_at.get(key, self._refresh_count)
        release_at = max(self._release_at.get(key, 0), self._refresh_count + penalty)
        self._release_at[key] = release_at
        return release_at

    def penalty(self, key: str) -> int:
        """Refreshes left before ``key`` is released; 0 when it is not suspended."""
        return max(0, self._release_at.get(key, 0) - self._refresh_count)

    def suspended(self) -> list[str]:
        """The keys suspended now."""
        return [key for key in self._release_at if self.penalty(key) > 0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.penalty(key) > 0

    def __len__(self) -> int:
        return sum(1 for key in self._release_at if self.penalty(key) > 0)
