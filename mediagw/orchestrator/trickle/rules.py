"""Sequencing rules of one trickle channel on the server (spec §4.2, §4.3), sans-IO.

No bytes and no clock live here: the adapter tells the rules what happened (a POST or GET
arrived, the first byte of a segment came in, a body ended) and gets back what to do. Time is
passed in (``now``) only to remember the last write for the idle sweep.

State: ``next_write`` (starts at 0), ``closed``, and a window of ``WINDOW`` = 5 slots; the
segment ``seq`` lives in slot ``seq % 5``.

| Event                        | Rule                                                            |
|------------------------------|-----------------------------------------------------------------|
| POST seq = -1                | seq := next_write                                               |
| POST seq < -1                | BAD (400)                                                       |
| POST on a closed channel     | CLOSED                                                          |
| POST seq, slot holds seq,    | reuse it (a GET or an earlier POST waits on it)                 |
|   not started, not closed    |                                                                 |
| POST seq, anything else      | the slot's record is closed and evicted; a fresh record is made |
| POST with Lp-Trickle-Reset   | also close every held record with a smaller seq                 |
| first byte of seq            | next_write := seq + 1, last_write := now (ignored when closed)  |
| body ends with no byte       | next_write := seq + 1, last_write := now; the record closes     |
| body ends                    | the record closes                                               |
| GET seq = -1                 | seq := next_write                                               |
| GET seq = -2                 | seq := next_write - 1, or 0 when nothing was written            |
| GET seq < -2                 | BAD (400)                                                       |
| GET, slot holds seq          | SERVE (stream it, even when closed)                             |
| GET, open channel and        | a waiting record is made (evicting the slot) -> SERVE           |
|   seq == next_write, or      |                                                                 |
|   seq == 1 and next_write 0  |                                                                 |
| GET, closed channel          | CLOSED (200 "Entry not found" + Lp-Trickle-Closed)              |
| GET, anything else           | UNAVAILABLE (470 with Lp-Trickle-Latest = next_write)           |
| DELETE seq                   | the held record seq closes; none held -> None (400)             |
| close                        | channel closed, every held record closes                        |

The ``Lp-Trickle-Latest`` header goes with the first byte of a GET answer only when the segment
served is not the one that was ``next_write`` when the GET came in (GET of a segment not yet
started carries none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

__all__ = [
    "SEQ_CURRENT",
    "SEQ_NEXT",
    "WINDOW",
    "ChannelRules",
    "GetOutcome",
    "GetPlan",
    "PostOutcome",
    "PostPlan",
    "SegmentRecord",
]

WINDOW = 5
SEQ_NEXT = -1  # POST: the server's next_write; GET: the next segment to be written
SEQ_CURRENT = -2  # GET only: the segment being written (next_write - 1)


class SegmentRecord:
    """What the rules know of one held segment. Adapters subclass it to carry the bytes and
    override ``close``/``evict`` to wake their readers (both return True on the first call)."""

    __slots__ = ("closed", "evicted", "seq", "started")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.started = False  # its first byte arrived
        self.closed = False  # no more bytes will be accepted
        self.evicted = False  # it left the window (implies closed)

    def close(self) -> bool:
        if self.closed:
            return False
        self.closed = True
        return True

    def evict(self) -> bool:
        self.close()
        if self.evicted:
            return False
        self.evicted = True
        return True

    def __repr__(self) -> str:
        flags = "".join(
            c for c, on in (("s", self.started), ("c", self.closed), ("e", self.evicted)) if on
        )
        return f"<{type(self).__name__} {self.seq} {flags}>"


S = TypeVar("S", bound=SegmentRecord)


class PostOutcome(Enum):
    WRITE = "write"  # stream the body into ``segment``
    BAD = "bad"  # 400 bad seq
    CLOSED = "closed"  # the channel is closed


class GetOutcome(Enum):
    SERVE = "serve"  # stream ``segment`` (waiting for it when it has not started)
    UNAVAILABLE = "unavailable"  # 470
    CLOSED = "closed"  # 200 + Lp-Trickle-Closed, "Entry not found"
    BAD = "bad"  # 400 bad seq


@dataclass(frozen=True, slots=True)
class PostPlan(Generic[S]):
    outcome: PostOutcome
    seq: int  # effective seq (the asked one when BAD)
    segment: S | None = None
    reused: bool = False  # a waiting record was taken over
    closed: tuple[S, ...] = ()  # records this POST closed (eviction or reset)


@dataclass(frozen=True, slots=True)
class GetPlan(Generic[S]):
    outcome: GetOutcome
    seq: int  # effective seq
    latest: int  # next_write when the GET arrived
    segment: S | None = None
    created: bool = False  # a waiting record was made for this GET

    @property
    def send_latest(self) -> bool:
        """Whether the first byte of the answer carries ``Lp-Trickle-Latest``."""
        return self.seq != self.latest


class ChannelRules(Generic[S]):
    """The window, ``next_write`` and the open/closed state of one channel."""

    def __init__(self, new_record: Callable[[int], S], now: float) -> None:
        self._new = new_record
        self._slots: list[S | None] = [None] * WINDOW
        self.next_write = 0
        self.closed = False
        self.last_write = now

    # --- queries ----------------------------------------------------------------------------

    def held(self) -> list[S]:
        """Records in the window, oldest seq first."""
        return sorted((r for r in self._slots if r is not None), key=lambda r: r.seq)

    def record(self, seq: int) -> S | None:
        if seq < 0:
            return None
        rec = self._slots[seq % WINDOW]
        return rec if rec is not None and rec.seq == seq else None

    def idle(self, now: float, timeout: float) -> bool:
        return now - self.last_write > timeout

    # --- publisher side ---------------------------------------------------------------------

    def post(self, seq: int, *, reset: bool = False) -> PostPlan[S]:
        if seq == SEQ_NEXT:
            seq = self.next_write
        if seq < 0:
            return PostPlan(PostOutcome.BAD, seq)
        if self.closed:
            return PostPlan(PostOutcome.CLOSED, seq)
        closed: list[S] = []
        slot = seq % WINDOW
        rec = self._slots[slot]
        reused = rec is not None and rec.seq == seq and not rec.started and not rec.closed
        if not reused:
            if rec is not None and rec.evict():
                closed.append(rec)
            rec = self._new(seq)
            self._slots[slot] = rec
        assert rec is not None
        if reset:
            for other in self._slots:
                if other is not None and other.seq < seq and other.close():
                    closed.append(other)
        return PostPlan(PostOutcome.WRITE, seq, rec, reused, tuple(closed))

    def first_byte(self, rec: S, now: float) -> bool:
        """The first byte of ``rec`` arrived. False: the record is closed, drop the bytes."""
        if rec.closed:
            return False
        if not rec.started:
            rec.started = True
            self.next_write = rec.seq + 1
            self.last_write = now
        return True

    def end_post(self, rec: S, now: float) -> bool:
        """The body of ``rec`` ended (or its POST was woken by a close before any byte).
        Returns True when this call closed the record."""
        if not rec.started:
            # a preconnect that ends empty still moves the channel on (go-livepeer)
            self.next_write = rec.seq + 1
            self.last_write = now
        return rec.close()

    # --- subscriber side --------------------------------------------------------------------

    def get(self, seq: int) -> GetPlan[S]:
        latest = self.next_write
        if seq == SEQ_NEXT:
            seq = latest
        elif seq == SEQ_CURRENT:
            seq = max(latest - 1, 0)
        if seq < 0:
            return GetPlan(GetOutcome.BAD, seq, latest)
        rec = self.record(seq)
        if rec is not None:
            return GetPlan(GetOutcome.SERVE, seq, latest, rec)
        if self.closed:
            return GetPlan(GetOutcome.CLOSED, seq, latest)
        if seq == latest or (latest == 0 and seq == 1):
            slot = seq % WINDOW
            old = self._slots[slot]
            if old is not None:
                old.evict()
            rec = self._new(seq)
            self._slots[slot] = rec
            return GetPlan(GetOutcome.SERVE, seq, latest, rec, created=True)
        return GetPlan(GetOutcome.UNAVAILABLE, seq, latest)

    # --- deletes ----------------------------------------------------------------------------

    def drop(self, seq: int) -> S | None:
        """``DELETE /{ch}/{seq}``: close the held record ``seq`` (None: not held -> 400)."""
        rec = self.record(seq)
        if rec is not None:
            rec.close()
        return rec

    def close(self) -> list[S]:
        """Close the channel and every held record; returns the records this closed."""
        self.closed = True
        return [r for r in self._slots if r is not None and r.close()]
