"""The report of ``mediagw bench fuzzlive`` (:mod:`.fuzzlive`): its figures, its failures, its
table, and what the gateway's log (JSON lines) says."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fuzzlive_clean import ProcStats

__all__ = ["SHOWN", "LiveFuzzReport", "format_report", "read_log"]

SHOWN = 5  # reproducers shown per finding kind


@dataclass
class LiveFuzzReport:
    sessions: int = 0
    requests: int = 0
    rtmp_strategies: Counter[str] = field(default_factory=Counter)
    rtmp_outcomes: Counter[str] = field(default_factory=Counter)
    http_kinds: Counter[str] = field(default_factory=Counter)
    http_answers: Counter[str] = field(default_factory=Counter)  # "2xx" .. "5xx", "closed", ..
    http_statuses: Counter[int] = field(default_factory=Counter)
    raw_requests: int = 0
    http_timeouts: Counter[str] = field(default_factory=Counter)  # request kind -> no answer
    findings: list[str] = field(default_factory=list)  # 500s, with a reproducer
    gateway_up: bool = False
    gateway_exit: int | None = None
    before: ProcStats = field(default_factory=ProcStats)
    peak: ProcStats = field(default_factory=ProcStats)
    after: ProcStats = field(default_factory=ProcStats)
    rss_quarters: list[float] = field(default_factory=list)  # MB at 25/50/75/100 % of sessions
    rss_progress: list[tuple[float, int, float]] = field(default_factory=list)  # s, sessions, MB
    rss_swept: float | None = None  # MB once the fuzz's ended streams were swept (short TTL)
    ended_ttl: float | None = None  # the gateway's -endedStreamTtl (None: its default)
    log_errors: int = 0
    tracebacks: list[str] = field(default_factory=list)
    stuck_live: list[str] = field(default_factory=list)
    clean_publishes: int = 0
    frames_expected: tuple[int, int] = (0, 0)
    frames_got: tuple[int, int] = (0, 0)
    clean_errors: list[str] = field(default_factory=list)
    fuzz_seconds: float = 0.0
    rtmp_seconds: float = 0.0  # until the last fuzzed session ended
    http_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def http_500(self) -> int:
        return self.http_statuses[500]

    @property
    def failures(self) -> list[str]:
        out = []
        if self.http_500:
            out.append(f"{self.http_500} HTTP 500 answers")
        if not self.gateway_up:
            out.append("the gateway died during the fuzz")
        if self.gateway_exit != 0:
            out.append(f"the gateway did not stop cleanly (exit {self.gateway_exit})")
        if self.tracebacks or self.log_errors:
            out.append(f"{self.log_errors} errors, {len(self.tracebacks)} tracebacks logged")
        if self.stuck_live:
            out.append(f"streams left live: {self.stuck_live[:5]}")
        if self.rtmp_outcomes["unclosed"]:
            out.append(f"{self.rtmp_outcomes['unclosed']} RTMP sessions left open after FIN")
        if self.frames_got != self.frames_expected or self.clean_errors:
            out.append(f"clean stream: frames {self.frames_got} of {self.frames_expected}")
        return out

    def as_dict(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if k not in ("before", "peak", "after")}
        for k in ("before", "peak", "after"):
            doc[k] = getattr(self, k).__dict__
        doc["http_500"] = self.http_500
        doc["failures"] = self.failures
        return doc


def read_log(path: Path, rep: LiveFuzzReport) -> None:
    for line in path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            if line.startswith("Traceback"):  # an uncaught one, outside logging
                rep.tracebacks.append(line)
            continue
        if not isinstance(doc, dict):
            continue
        if doc.get("level") in ("error", "critical"):
            rep.log_errors += 1
        if doc.get("exc"):
            rep.tracebacks.append(f"{doc.get('msg', '')}: {str(doc['exc'])[-3000:]}")


def format_report(rep: LiveFuzzReport) -> str:
    secs = rep.fuzz_seconds or 1.0

    def counts(c: Counter[Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: str(kv[0])))

    rows = [
        ("RTMP sessions", f"{rep.sessions} in {rep.rtmp_seconds:.1f} s "
                          f"({rep.sessions / (rep.rtmp_seconds or secs):.0f}/s)"),
        ("  by strategy", counts(rep.rtmp_strategies)),
        ("  how they ended", counts(rep.rtmp_outcomes)),
        ("HTTP requests", f"{rep.requests} in {rep.http_seconds:.1f} s "
                          f"({rep.requests / (rep.http_seconds or secs):.0f}/s), "
                          f"{rep.raw_requests} over raw sockets"),
        ("  answers", counts(rep.http_answers)),
        ("  statuses", counts(rep.http_statuses)),
        ("  routes", f"{len(rep.http_kinds)} request kinds"),
        ("  no answer (3 s raw, 10 s)", counts(rep.http_timeouts) or "none"),
        ("HTTP 500", str(rep.http_500)),
        ("other 5xx", str(sum(n for s, n in rep.http_statuses.items() if s > 500))),
        ("gateway stayed up", "yes" if rep.gateway_up else "NO"),
        ("gateway stopped", "cleanly" if rep.gateway_exit == 0 else f"exit {rep.gateway_exit}"),
        ("threads before/peak/after",
         f"{rep.before.threads}/{rep.peak.threads}/{rep.after.threads}"),
        ("RSS MB before/peak/after",
         f"{rep.before.rss_mb:.0f}/{rep.peak.rss_mb:.0f}/{rep.after.rss_mb:.0f}"),
        ("RSS MB at 25/50/75/100 % of sessions",
         "/".join(f"{mb:.0f}" for mb in rep.rss_quarters) or "-"),
        ("RSS MB once the ended were swept",
         f"{rep.rss_swept:.0f} (ended TTL {rep.ended_ttl:g} s)" if rep.rss_swept is not None
         else "-"),
        ("open files before/peak/after", f"{rep.before.fds}/{rep.peak.fds}/{rep.after.fds}"),
        ("log errors / tracebacks", f"{rep.log_errors} / {len(rep.tracebacks)}"),
        ("streams left live", str(len(rep.stuck_live))),
        ("clean publishes", str(rep.clean_publishes)),
        ("clean frames expected",
         f"{rep.frames_expected[0]} video, {rep.frames_expected[1]} audio"),
        ("clean frames got", f"{rep.frames_got[0]} video, {rep.frames_got[1]} audio"),
        ("fuzz / wall seconds", f"{rep.fuzz_seconds:.1f} / {rep.wall_seconds:.1f}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += [f"finding: {f}" for f in rep.findings]
    lines += [f"clean: {e}" for e in rep.clean_errors]
    lines += [f"traceback: {t}" for t in rep.tracebacks[:SHOWN]]
    return "\n".join(lines)
