"""What this gateway node knows about each orchestrator, for every stream: ``OrchNotes``.

A stream's pool suspends a failed O for a number of refresh cycles (``suspension``): that stays
the stream's own rule. The notes add a node-wide view, shared with the other nodes of a
deployment (``-redisUrl``: ``platform/shared/orchestrators``) so that what one node learns is
used by all:

- a **penalty**: the O failed (its fault) somewhere, so new discoveries and selections on every
  node avoid it until a wall-clock time. A pool's penalty of ``n`` refresh cycles counts as
  ``n x cycle_s`` seconds (transcoding: one minute per cycle; live AI: its 6-minute refresh);
  a penalised O is still used when nothing else is left, as a suspended one is;
- a **latency score** (transcode spec §5.8): an EWMA per O of the scores this node measured,
  and the last one another node published. A stream that has not tried an O yet tries the
  fastest-known first and the slow-known ones last.

Keys are discovery URLs. Sans-IO: the wall clock is given; nothing here waits or does I/O (the
per-segment calls only update dicts). What changed here is kept for ``take_penalties`` and
``take_latencies``, which the sharing side calls in the background (latencies coalesced: at
most every few seconds).
Without sharing the notes are not made: the pools behave as on a single node.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["EWMA_ALPHA", "TRANSCODE_CYCLE_S", "OrchNotes", "Penalty"]

#: Weight of a new latency score in the EWMA.
EWMA_ALPHA = 0.2
#: A transcoding pool's refresh cycle, as time, for the shared penalty.
TRANSCODE_CYCLE_S = 60.0
#: At most this many orchestrators are noted (the least recently noted goes first).
MAX_NOTED = 1024


@dataclass(frozen=True, slots=True)
class Penalty:
    until: float  # wall-clock seconds
    node: str  # the node that suspended the O ("" when it was this one)


class OrchNotes:
    def __init__(self, wall: Callable[[], float], *, max_noted: int = MAX_NOTED) -> None:
        self._wall = wall
        self._max = max_noted
        self._penalties: OrderedDict[str, Penalty] = OrderedDict()
        self._ewma: OrderedDict[str, float] = OrderedDict()  # measured here
        self._remote: OrderedDict[str, float] = OrderedDict()  # published by another node
        self._out_penalties: dict[str, float] = {}
        self._out_latencies: set[str] = set()
        #: Called (synchronously, cheaply) when something is waiting for ``take_outgoing``.
        self.on_change: Callable[[], None] = lambda: None

    # -- what a pool reports (this node) ---------------------------------------------------------
    def suspend(self, url: str, seconds: float) -> None:
        """This node suspended ``url`` for its fault: every node avoids it for ``seconds``."""
        if not url or seconds <= 0:
            return
        until = self._wall() + seconds
        current = self._penalties.get(url)
        if current is not None and current.until >= until:
            return
        _put(self._penalties, url, Penalty(until, ""), self._max)
        self._out_penalties[url] = until
        self.on_change()

    def observe(self, url: str, score: float) -> None:
        """A segment completed on ``url`` with this latency score (per segment: a dict update)."""
        if not url:
            return
        old = self._ewma.get(url)
        value = score if old is None else old + EWMA_ALPHA * (score - old)
        _put(self._ewma, url, value, self._max)
        if not self._out_latencies:
            self.on_change()  # once until taken: not per segment
        self._out_latencies.add(url)

    # -- what another node published ------------------------------------------------------------
    def learn_penalty(self, url: str, until: float, node: str) -> None:
        current = self._penalties.get(url)
        if until <= self._wall() or (current is not None and current.until >= until):
            return
        _put(self._penalties, url, Penalty(until, node), self._max)

    def learn_latency(self, url: str, score: float) -> None:
        _put(self._remote, url, score, self._max)

    def take_penalties(self) -> dict[str, float]:
        """The penalties given here since the last call: url -> until (wall)."""
        out, self._out_penalties = self._out_penalties, {}
        return out

    def take_latencies(self) -> dict[str, float]:
        """This node's EWMA of each O measured since the last call."""
        out = {u: self._ewma[u] for u in self._out_latencies if u in self._ewma}
        self._out_latencies = set()
        return out

    @property
    def latencies_pending(self) -> bool:
        return bool(self._out_latencies)

    # -- what selection asks ----------------------------------------------------------------------
    def penalty(self, url: str) -> Penalty | None:
        """The node-wide penalty of ``url`` in force now, or None."""
        found = self._penalties.get(url)
        if found is None:
            return None
        if found.until <= self._wall():
            del self._penalties[url]
            return None
        return found

    def penalized(self, url: str) -> bool:
        return self.penalty(url) is not None

    def latency(self, url: str) -> float | None:
        """The latency score of ``url``: this node's EWMA, else another node's, else None."""
        own = self._ewma.get(url)
        return own if own is not None else self._remote.get(url)

    def penalties(self) -> dict[str, Penalty]:
        """Every penalty in force now (for the dashboard)."""
        return {u: p for u in list(self._penalties) if (p := self.penalty(u)) is not None}


_V = TypeVar("_V")


def _put(table: OrderedDict[str, _V], key: str, value: _V, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
