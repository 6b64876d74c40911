"""Failed-authentication throttling per client address: a sans-IO table, time is an argument.

NaaP's numbers are the defaults: 10 failures within 60 s from one address block it for 300 s.
Only failures count; a success neither resets nor extends a block (an attacker with one good
key would otherwise clear the counter between guesses). A blocked address is refused before
its key is even looked at, so a block costs no store query.

Memory is bounded: at most ``max_addresses`` entries; when full, the entry whose newest failure
is the oldest is dropped (a flood of addresses forgets the quietest, never the blocked ones
first: a blocked entry's last failure is recent by construction).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["FailureThrottle"]


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0


class FailureThrottle:
    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 60.0,
        block: float = 300.0,
        max_addresses: int = 10_000,
    ) -> None:
        if limit < 1 or window <= 0 or block <= 0 or max_addresses < 1:
            raise ValueError("limit, window, block and max_addresses must be positive")
        self.limit = limit
        self.window = window
        self.block = block
        self.max_addresses = max_addresses
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # oldest last failure first
        self.refused = 0  # answers of retry_after > 0: requests refused while blocked (metrics)

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        entry = self._entries.get(address)
        if entry is None or entry.blocked_until <= now:
            return 0.0
        self.refused += 1
        return entry.blocked_until - now

    def failed(self, address: str, now: float) -> float:
        """Count a failure; the block it starts, in seconds (0: not blocked)."""
        entry = self._entries.pop(address, None) or _Entry()
        self._entries[address] = entry  # now the most recent
        while entry.failures and entry.failures[0] <= now - self.window:
            entry.failures.popleft()
        entry.failures.append(now)
        if len(entry.failures) >= self.limit:
            entry.failures.clear()
            entry.blocked_until = now + self.block
        while len(self._entries) > self.max_addresses:
            self._entries.popitem(last=False)
        return max(0.0, entry.blocked_until - now)

    def __len__(self) -> int:
        return len(self._entries)
