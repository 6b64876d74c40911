"""Figures of ``mediagw bench live`` from raw times: glass-to-glass, the stage split, hls.js
players, the swap gap, and the summary of repeated runs.

Clocks. The client (:mod:`.glass`) notes each frame's capture time twice: ``time.monotonic()``
(``captured``: compared with the WHEP viewer's times in the same process and with the gateway's
per-segment times, also monotonic: one clock for every process of the machine on Linux and
macOS) and ``time.time()`` (``captured_wall``: compared with the browser's ``Date.now()``, which
reads the same system wall clock). Each latency is thus a difference of two readings of one clock.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["analyse", "percentiles", "players", "summarise_runs", "swap_figures"]


def percentiles(values: Sequence[float], prefix: str) -> dict[str, float]:
    """``{prefix}_p50/_p95/_p99/_max`` in milliseconds (nearest rank)."""
    ordered = sorted(values)
    out: dict[str, float] = {}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
        v = ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0
        out[f"{prefix}_{name}"] = round(v * 1000, 1)
    return out


def analyse(
    raw: Mapping[str, Any],
    source_listed: Mapping[int, float],
    output_listed: Mapping[int, float],
    segment_durations: Sequence[float] = (),
    input_first_byte: Mapping[int, float] | None = None,
    output_first_byte: Mapping[int, float] | None = None,
) -> dict[str, Any]:
    """Figures from the client's raw times and the gateway's per-segment times (monotonic).

    Per segment, for its first frame (its number read from the output's HLS segment): capture
    -> the segment's first byte on the trickle input channel, that -> the first byte of the
    same output segment back (the orchestrator round trip), that -> the frame shown over WHEP.
    Without per-segment first-byte times (``input_first_byte`` / ``output_first_byte``: input
    or output seq -> monotonic) the split falls back on the segment being listed (source HLS,
    output HLS), which is when whole-segment delivery hands it on; ``g2g_split_marks`` says
    which were used.
    """
    captured: list[float] = raw["captured"]
    shown = {int(n): float(t) for n, t in raw["shown"]}
    g2g = [t - captured[n] for n, t in shown.items() if n < len(captured)]
    hls = [(int(seq), float(at), first) for seq, at, first in raw["hls"]]
    g2hls = [at - captured[first] for _, at, first in hls if first is not None
             and first < len(captured)]  # fmt: skip
    in_marks = input_first_byte or source_listed
    out_marks = output_first_byte or output_listed
    to_input, round_trip, to_whep = [], [], []
    for seq, _, first in hls:
        if first is None or first >= len(captured) or seq not in in_marks:
            continue
        to_input.append(in_marks[seq] - captured[first])
        if seq in out_marks:
            round_trip.append(out_marks[seq] - in_marks[seq])
            if first in shown:
                to_whep.append(shown[first] - out_marks[seq])
    result: dict[str, Any] = {
        "g2g_frames_sent": len(captured),
        "g2g_frames_matched": len(g2g),
        "g2g_frames_unreadable": int(raw.get("unreadable", 0)),
        **percentiles(g2g, "g2g_whep_ms"),
        "g2g_hls_segments": len(g2hls),
        **percentiles(g2hls, "g2g_hls_first_frame_ms"),
    }
    if segment_durations:
        result["g2g_segment_duration_ms_mean"] = round(
            1000 * sum(segment_durations) / len(segment_durations), 1
        )
    result["g2g_split_marks"] = (
        ("first byte in" if input_first_byte else "source listed")
        + " / "
        + ("first byte out" if output_first_byte else "output listed")
    )
    for name, values in (
        ("capture_to_input", to_input),
        ("orchestrator_round_trip", round_trip),
        ("output_to_whep_shown", to_whep),
    ):
        p = percentiles(values, "")
        result[f"g2g_part_{name}_ms_p50"] = p["_p50"]
        result[f"g2g_part_{name}_ms_max"] = p["_max"]
    return result


def players(captured_wall: Sequence[float], reported: Mapping[str, Any]) -> dict[str, Any]:
    """Glass-to-player figures of the hls.js players of a page: per player (``ts``, ``ll``),
    shown (``Date.now()``, ms) - captured (``time.time()``, s) for every frame first shown."""
    result: dict[str, Any] = {}
    for label, player in sorted(reported.get("players", {}).items()):
        latencies = [ms / 1000 - captured_wall[n] for n, ms in player.get("shown", [])
                     if 0 <= n < len(captured_wall)]  # fmt: skip
        result[f"hlsjs_{label}_frames"] = len(latencies)
        result[f"hlsjs_{label}_unreadable"] = int(player.get("unreadable", 0))
        result.update(percentiles(latencies, f"hlsjs_{label}_ms"))
        fatal = [e for e in player.get("errors", []) if e.endswith(":true")]
        if fatal:
            result[f"hlsjs_{label}_errors"] = fatal[:5]
    return result


def swap_figures(
    shown: Sequence[Sequence[float]],
    swap_gaps: Sequence[float],
    segment_durations: Sequence[float],
    steady_gap: float = 0.0,
) -> dict[str, Any]:
    """The output gap across an orchestrator swap: the session's own (``swap_output_gaps``:
    between the last output segment of the old orchestrator and the first of the new one), and
    the longest pause between two frames the WHEP viewer showed, against the segment duration
    and ``steady_gap`` (the mean gap between output segments: one segment when all is well)."""
    times = sorted(float(t) for _, t in shown)
    pauses = [b - a for a, b in itertools.pairwise(times)]
    segment = sum(segment_durations) / len(segment_durations) if segment_durations else 0.0
    gap = max(swap_gaps, default=0.0)
    return {
        "swaps": len(swap_gaps),
        "swap_output_gap_ms": round(1000 * gap, 1),
        "swap_viewer_longest_pause_ms": round(1000 * max(pauses, default=0.0), 1),
        "swap_segment_duration_ms": round(1000 * segment, 1),
        "swap_steady_output_gap_ms": round(1000 * steady_gap, 1),
        "swap_gap_within_one_segment": bool(swap_gaps) and gap <= segment,
    }


def summarise_runs(runs: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """The median over the runs of each of ``keys`` (the runs that have it)."""
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if values:
            out[key] = round(statistics.median(values), 1)
    return out
