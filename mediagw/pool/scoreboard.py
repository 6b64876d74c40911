"""The orchestrator scoreboard: how each orchestrator has served this gateway, for the operator.

Sans-IO and bounded. The transcoder reports once per segment attempt (never per packet):
``attempt`` with the outcome and how long it took, ``swap`` when a stream moved off an
orchestrator. Per orchestrator (keyed by its transcoder URL) the board keeps the last
``WINDOW`` attempt outcomes and the last ``WINDOW`` successful latencies, from which the
success rate and latency p50/p99 are taken, plus counters of attempts, swaps and suspensions.
At most ``MAX_ORCHESTRATORS`` are kept; the one seen least recently goes first.

What a pool knows now (region, price, whether a stream's pool has it suspended) is merged in by
``rows`` from the sessions the caller passes.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .session import OrchSession

__all__ = ["MAX_ORCHESTRATORS", "WINDOW", "Scoreboard", "percentile"]

WINDOW = 200  # attempts (and successful latencies) per orchestrator
MAX_ORCHESTRATORS = 256


def percentile(values: Iterable[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class _Entry:
    url: str = ""  # discovery URL
    region: str = ""
    price: Fraction | None = None  # wei per pixel
    address: str = ""
    attempts: int = 0
    successes: int = 0
    swaps: int = 0  # times a stream moved off this orchestrator
    suspensions: int = 0  # times a stream's pool suspended it
    last_at: float | None = None  # clock time of the last attempt
    last_error: str | None = None
    results: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))


class Scoreboard:
    def __init__(self, *, max_orchestrators: int = MAX_ORCHESTRATORS) -> None:
        self._max = max_orchestrators
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, transcoder: str) -> _Entry:
        entry = self._entries.get(transcoder)
        if entry is None:
            entry = self._entries[transcoder] = _Entry()
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(transcoder)
        return entry

    def _note(self, entry: _Entry, session: OrchSession) -> None:
        entry.url = session.url
        entry.region = session.region
        entry.price = session.price
        entry.address = "0x" + session.address.hex() if session.address else ""

    def attempt(
        self,
        session: OrchSession,
        *,
        ok: bool,
        seconds: float,
        now: float,
        suspended: bool = False,
        error: str | None = None,
    ) -> None:
        """One segment attempt on ``session``: its outcome, its duration (request -> every
        rendition in, for a success), and whether the stream's pool suspended the O for it."""
        entry = self._entry(session.transcoder)
        self._note(entry, session)
        entry.attempts += 1
        entry.last_at = now
        entry.results.append(ok)
        if ok:
            entry.successes += 1
            entry.latencies.append(seconds)
        else:
            entry.last_error = error
        if suspended:
            entry.suspensions += 1

    def swap(self, transcoder: str) -> None:
        """A stream's segment went to another orchestrator than its previous one."""
        if transcoder in self._entries:
            self._entries[transcoder].swaps += 1

    def rows(
        self,
        pooled: Iterable[OrchSession] = (),
        suspended: Iterable[str] = (),
        *,
        now: float | None = None,
        elsewhere: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """One row per orchestrator, most recently used first, for the dashboard: those the
        board has seen and those in a stream's pool now (``pooled``: one session per stream
        pool holding it), with what the pools know now (region, price); ``suspended``: the
        discovery URL of each O suspended in a stream's pool, once per pool; ``elsewhere``: the
        discovery URLs another node suspended (``pool/notes``), with that node's id."""
        current: dict[str, tuple[OrchSession, int]] = {}  # transcoder -> a session, its pools
        for session in pooled:
            current[session.transcoder] = (
                session,
                current.get(session.transcoder, (session, 0))[1] + 1,
            )
        held: dict[str, int] = {}
        for url in suspended:
            held[url] = held.get(url, 0) + 1
        out = []
        for transcoder in {**dict.fromkeys(reversed(self._entries)), **dict.fromkeys(current)}:
            entry = self._entries.get(transcoder) or _Entry()
            pool = current.get(transcoder)
            if pool is not None:
                entry = _Entry(**{**entry.__dict__})  # a copy: rows never write the board
                self._note(entry, pool[0])
            row = _row(transcoder, entry, pool[1] if pool else 0, held.get(entry.url, 0), now)
            row["suspended_by_node"] = (elsewhere or {}).get(entry.url)
            out.append(row)
        return out


def _row(
    transcoder: str, entry: _Entry, streams: int, suspended_in: int, now: float | None
) -> dict[str, Any]:
    window = len(entry.results)
    ago = None if now is None or entry.last_at is None else _round(now - entry.last_at)
    return {
        "orchestrator": transcoder,
        "url": entry.url,
        "address": entry.address,
        "region": entry.region,
        "price_wei_per_pixel": _price(entry.price),
        "attempts": entry.attempts,
        "successes": entry.successes,
        "success_rate": round(sum(entry.results) / window, 4) if window else None,
        "latency_p50_s": _round(percentile(entry.latencies, 50)),
        "latency_p99_s": _round(percentile(entry.latencies, 99)),
        "window": window,
        "swaps": entry.swaps,
        "suspensions": entry.suspensions,
        "pools": streams,  # streams whose pool holds it now
        "suspended_in": suspended_in,  # streams whose pool has it suspended now
        "last_attempt_ago_s": ago,
        "last_error": entry.last_error,
    }


def _price(price: Fraction | None) -> str | None:
    if price is None:
        return None
    return str(price.numerator) if price.denominator == 1 else f"{float(price):.6g}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
