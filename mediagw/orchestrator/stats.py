"""Counters of what the orchestrator saw, for tests and ``GET /stats``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

__all__ = ["OrchestratorStats", "WinningTicket"]

MAX_WINNERS_KEPT = 1000


@dataclass(frozen=True, slots=True)
class WinningTicket:
    sender: bytes
    sender_nonce: int
    ticket_hash: bytes
    face_value: int


@dataclass
class OrchestratorStats:
    get_orchestrator: int = 0
    segments_received: int = 0  # /segment requests
    segments_rejected: int = 0  # answered 4xx/5xx before the early 200
    segments_accepted: int = 0  # early 200 sent
    segments_transcoded: int = 0  # TranscodeResult with data
    segments_failed: int = 0  # TranscodeResult with error
    payments: int = 0  # /payment requests answered 200
    tickets_received: int = 0
    tickets_accepted: int = 0  # valid and credited
    tickets_rejected: int = 0  # failed a check
    tickets_winning: int = 0
    ev_credited: Fraction = Fraction(0)
    fees_debited: Fraction = Fraction(0)
    pixels: int = 0
    sessions_started: int = 0
    sessions_ended: int = 0
    faults_injected: int = 0
    # live video-to-video
    live_sessions_started: int = 0
    live_sessions_ended: int = 0
    live_segments_in: int = 0  # input segments begun on <mid>
    live_segments_out: int = 0  # segments written to <mid>-out
    live_segments_dropped: int = 0  # input dropped because the worker was behind
    live_segments_broken: int = 0  # output segments broken off: their input broke mid-way
    live_debits: int = 0  # accounting debits (§9.2)
    live_fees_debited: Fraction = Fraction(0)
    live_insufficient_balance: int = 0  # sessions closed for lack of credit
    live_control_updates: int = 0  # params accepted from <mid>-control
    live_keepalives: int = 0
    live_param_errors: int = 0  # control messages refused
    live_errors: int = 0  # error events (params, processing)
    live_events_sent: int = 0
    ticket_errors: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)  # "403 ErrSegSig" -> count
    winners: list[WinningTicket] = field(default_factory=list)

    def reject(self, status: int, text: str) -> None:
        self.rejections[f"{status} {text}"] += 1

    def winner(self, ticket: WinningTicket) -> None:
        self.tickets_winning += 1
        if len(self.winners) < MAX_WINNERS_KEPT:
            self.winners.append(ticket)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in vars(self).items():
            if isinstance(value, Fraction):
                out[name] = str(value)
            elif isinstance(value, Counter):
                out[name] = dict(value)
            elif name == "winners":
                out[name] = [
                    {
                        "sender": "0x" + w.sender.hex(),
                        "nonce": w.sender_nonce,
                        "hash": "0x" + w.ticket_hash.hex(),
                        "face_value": str(w.face_value),
                    }
                    for w in value
                ]
            else:
                out[name] = value
        return out
