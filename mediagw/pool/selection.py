"""Per-stream orchestrator selection (transcode spec §9.1-9.3), plus region steering.

One :class:`StreamSelector` is one pool of one stream (go-livepeer keeps a trusted and an
untrusted pool per stream: build one selector for each). Off-chain rules of go-livepeer's
``MinLSSelector`` with threshold 1.0:

* Known sessions (at least one segment completed) are ranked by latency score; the best is
  reused if its score is <= 1.0 or no unknown session is left.
* Otherwise the first unknown session (lowest discovery latency) is tried.
* Sticky session: the last session is kept if nothing is in flight on it and its score is
  <= 1.0, or if its oldest segment in flight is younger than max(1.5 s, 1x segment duration);
  2x when nothing else is available.

Region steering: sessions whose region is in ``preferred_regions`` are preferred in that order;
the selector falls back to the next tier (finally: any region) when a tier has no session left
in the pool. The sticky rule never keeps a session from a worse tier than the best available.

A session is out of the pool of idle sessions while it has segments in flight; ``complete``
puts it back with its latency score. ``fail(retryable=True)`` (the O's fault) suspends the O and
removes it from the pool; ``fail(retryable=False)`` (the input's fault: the segment would fail
anywhere) returns it untouched.

With node-wide ``notes`` (``pool/notes``, shared by the nodes of a deployment): a suspension here
is noted for every node (``penalty x TRANSCODE_CYCLE_S`` seconds) and every completion's latency
score too; a session another node penalised is avoided while another is usable (and counts as
suspended for discovery), and sessions not tried yet are tried in order of their noted latency
score: known-fast first, unknown next, known-slow (score above the threshold) last.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Collection, Sequence

from .notes import TRANSCODE_CYCLE_S, OrchNotes
from .session import OrchSession
from .suspension import Suspensions, penalty_for

__all__ = [
    "LATENCY_SCORE_THRESHOLD",
    "MIN_STICKY_WINDOW",
    "StreamSelector",
    "latency_score",
]

log = logging.getLogger(__name__)

#: go-livepeer ``SELECTOR_LATENCY_SCORE_THRESHOLD``.
LATENCY_SCORE_THRESHOLD = 1.0
#: Floor of the sticky window and of the latency-score denominator, seconds.
MIN_STICKY_WINDOW = 1.5
#: Refresh when fewer than min(num_orchs, ceil(pool_size / 2)) sessions remain; num_orchs default.
DEFAULT_NUM_ORCHS = 8


def latency_score(elapsed: float, segment_duration: float) -> float:
    """Transcode spec §5.8: request start -> body read, over max(1.5 s, segment duration)."""
    return elapsed / max(MIN_STICKY_WINDOW, segment_duration)


class StreamSelector:
    """The orchestrator sessions one stream may use, and which to use next."""

    def __init__(
        self,
        preferred_regions: Sequence[str] = (),
        *,
        clock: Callable[[], float],
        num_orchs: int = DEFAULT_NUM_ORCHS,
        pool_size: int = 0,
        max_attempts: int = 3,
        threshold: float = LATENCY_SCORE_THRESHOLD,
        notes: OrchNotes | None = None,
    ) -> None:
        self._regions = [r.strip().lower() for r in preferred_regions if r.strip()]
        self._clock = clock
        self.num_orchs = num_orchs
        #: Number of candidates discovery saw; sets the suspension penalty and refresh point.
        self.pool_size = pool_size
        self.max_attempts = max_attempts
        self._threshold = threshold
        self._pool: dict[OrchSession, None] = {}  # every usable session, in arrival order
        self._unknown: list[OrchSession] = []  # idle, never completed, discovery order
        self._known: dict[OrchSession, int] = {}  # idle, completed -> tie-break stamp
        self._stamp = itertools.count()
        self._last: OrchSession | None = None
        self._refreshed = False
        self.suspensions = Suspensions()
        self.notes = notes

    # -- pool ----------------------------------------------------------------------------------

    @property
    def sessions(self) -> list[OrchSession]:
        """Every session in the pool (idle or busy), e.g. to end them at stream end."""
        return list(self._pool)

    def __len__(self) -> int:
        return len(self._pool)

    def suspended(self, url: str) -> int:
        """Remaining penalty of an O (0: not suspended); pass to ``discover(suspended=...)``.
        An O penalised node-wide (``notes``) counts as suspended for one more refresh."""
        penalty = self.suspensions.penalty(url)
        if penalty == 0 and self.notes is not None and self.notes.penalized(url):
            return 1
        return penalty

    def needs_refresh(self) -> bool:
        """True before the first refresh and when fewer than min(num_orchs, ceil(pool/2)) remain."""
        if not self._refreshed:
            return True
        return len(self._pool) < min(self.num_orchs, math.ceil(self.pool_size / 2))

    def refresh(self, sessions: Sequence[OrchSession], *, pool_size: int | None = None) -> int:
        """Add a discovery round's sessions; returns how many were new.

        Counts one refresh cycle (suspensions age by one). Sessions already in the pool (same
        ``transcoder`` or discovery URL) are kept as they are, duplicates are dropped.
        """
        self._refreshed = True
        self.suspensions.signal_refresh()
        if pool_size is not None:
            self.pool_size = pool_size
        have = {s.transcoder for s in self._pool} | {s.url for s in self._pool}
        added = 0
        for session in sessions:
            if session.transcoder in have or session.url in have:
                continue
            have.update((session.transcoder, session.url))
            self._pool[session] = None
            self._unknown.append(session)
            added += 1
        return added

    def exhausted(self, attempts: int) -> bool:
        """True once ``attempts`` tries of one segment reach ``max_attempts``."""
        return attempts >= self.max_attempts

    # -- selection -----------------------------------------------------------------------------

    def select(
        self, *, exclude: Collection[str] = (), segment_duration: float = 2.0
    ) -> OrchSession | None:
        """The session for the next segment, or None when none is usable.

        ``exclude`` holds discovery URLs or transcoder URLs already tried for this segment.
        The chosen session is marked in flight; report back with ``complete`` or ``fail``.
        """
        now = self._clock()
        idle = [s for s in (*self._unknown, *self._known) if not _excluded(s, exclude)]
        if self.notes is not None:  # penalised on some node: only when nothing else is left
            notes = self.notes
            avoid = {s.url for s in self._pool if notes.penalized(s.url)}
            if avoid and any(s.url not in avoid for s in idle):
                exclude = {*exclude, *avoid}
                idle = [s for s in idle if s.url not in avoid]
        best_tier = min((self._tier(s) for s in idle), default=None)
        chosen = self._sticky(now, exclude, segment_duration, 1, best_tier)
        if chosen is None and best_tier is not None:
            chosen = self._pick([s for s in idle if self._tier(s) == best_tier])
        if chosen is None:
            chosen = self._sticky(now, exclude, segment_duration, 2, None)
        if chosen is None:
            return None
        self._take(chosen)
        chosen.begin(now)
        self._last = chosen
        return chosen

    def complete(self, session: OrchSession, latency_score: float) -> None:
        """A segment succeeded on ``session`` with this latency score."""
        session.end()
        session.latency_score = latency_score
        if self.notes is not None:
            self.notes.observe(session.url, latency_score)
        self._release(session)

    def fail(self, session: OrchSession, *, retryable: bool) -> None:
        """A segment failed on ``session``.

        ``retryable=True``: the O is at fault; suspend it for ceil(pool_size / num_orchs)
        refreshes and remove it from the pool. ``retryable=False``: the input is at fault
        (non-retryable error); the session goes back to the pool unchanged.
        """
        session.end()
        if not retryable:
            self._release(session)
            return
        penalty = penalty_for(self.pool_size, self.num_orchs)
        release_at = self.suspensions.suspend(session.url, penalty)
        if self.notes is not None:
            self.notes.suspend(session.url, penalty * TRANSCODE_CYCLE_S)
        log.info(
            "orchestrator suspended",
            extra={"orch": session.url, "penalty": penalty, "release_at": release_at},
        )
        self._remove(session)

    # -- internals -----------------------------------------------------------------------------

    def _tier(self, session: OrchSession) -> int:
        region = session.region.lower()
        try:
            return self._regions.index(region) if region else len(self._regions)
        except ValueError:
            return len(self._regions)

    def _sticky(
        self,
        now: float,
        exclude: Collection[str],
        segment_duration: float,
        multiplier: int,
        best_tier: int | None,
    ) -> OrchSession | None:
        last = self._last
        if last is None or last not in self._pool or _excluded(last, exclude):
            return None
        if best_tier is not None and self._tier(last) > best_tier:
            return None
        oldest = last.oldest_in_flight
        if oldest is None:
            score = last.latency_score
            return last if score is not None and score <= self._threshold else None
        window = max(MIN_STICKY_WINDOW, multiplier * segment_duration)
        return last if now - oldest < window else None

    def _pick(self, idle: list[OrchSession]) -> OrchSession | None:
        known = [s for s in idle if s in self._known]
        unknown = [s for s in idle if s not in self._known]
        if known:
            best = min(known, key=lambda s: (s.latency_score or 0.0, self._known[s]))
            score = best.latency_score or 0.0
            if score <= self._threshold or not unknown:
                return best
        if unknown and self.notes is not None:
            unknown.sort(key=self._noted)  # stable: discovery order among equals
        return unknown[0] if unknown else None

    def _noted(self, session: OrchSession) -> tuple[int, float]:
        """Order of untried sessions by their noted latency: fast, unknown, slow."""
        score = self.notes.latency(session.url) if self.notes is not None else None
        if score is None:
            return (1, 0.0)
        return (0, score) if score <= self._threshold else (2, score)

    def _take(self, session: OrchSession) -> None:
        self._known.pop(session, None)
        if session in self._unknown:
            self._unknown.remove(session)

    def _release(self, session: OrchSession) -> None:
        """Put a session back among the idle ones once nothing is in flight on it."""
        if session not in self._pool or session.in_flight:
            return
        if session in self._known or session in self._unknown:
            return
        if session.latency_score is None:
            self._unknown.insert(0, session)
        else:
            self._known[session] = next(self._stamp)

    def _remove(self, session: OrchSession) -> None:
        self._take(session)
        self._pool.pop(session, None)
        if self._last is session:
            self._last = None


def _excluded(session: OrchSession, exclude: Collection[str]) -> bool:
    return session.url in exclude or (bool(session.transcoder) and session.transcoder in exclude)
