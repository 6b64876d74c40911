"""Client-side trickle rules (spec §4.4-§4.6), sans-IO: what a subscriber asks next, and what a
publisher does with a failed segment. The adapters sleep for ``delay`` and do the request.

Subscriber (one position per subscriber; ``seq`` is the segment to ask for next):

| Answer                                  | Step       | Next seq          | Delay         |
|-----------------------------------------|------------|-------------------|---------------|
| any status + ``Lp-Trickle-Closed``      | END        | -                 | -             |
| 404                                     | END        | -                 | -             |
| 200 with bytes                          | DELIVER    | Lp-Trickle-Seq+1  | 0 (preconnect)|
| 200 empty                               | SKIP       | Lp-Trickle-Seq+1  | 0             |
| 470, Latest >= asked (or asked < 0)     | JUMP       | Latest            | 0 (*)         |
| 470, Latest < asked                     | WAIT       | asked             | 0.25 s        |
| 470 without a usable Latest             | JUMP       | -1 (next)         | 0 (*)         |
| other status, transport error, timeout  | RETRY      | asked             | 0.3 s         |
| more than ``max_errors`` errors in a row| FAIL       | -                 | -             |

(*) after ``spin_after`` 470 answers in a row the jump waits ``ahead_delay`` too, so a server
that keeps answering 470 is asked at most 4 times a second. A 200 or a 470 resets the error
count; only a 200 resets the 470 count. The asked seq never decreases once it is >= 0.

Publisher, for one segment (go-livepeer ``server/ai_live_video.go`` retry policy):

| Outcome                                            | Step                      |
|----------------------------------------------------|---------------------------|
| ``Lp-Trickle-Closed``                              | CLOSED (terminal)         |
| 404                                                | GONE (terminal)           |
| 200 after the whole body was sent                  | DONE                      |
| 413                                                | DROP                      |
| anything else, no byte sent, first attempt, next   | RETRY after 0.25 s        |
|   segment not started                              |                           |
| anything else                                      | DROP (close + DELETE seq) |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "PublishStep",
    "Step",
    "SubscriberPosition",
    "Verdict",
    "publish_step",
]

STATUS_UNAVAILABLE = 470


class Step(Enum):
    DELIVER = "deliver"  # hand the segment to the consumer, preconnect ``seq``
    SKIP = "skip"  # empty segment, go on with ``seq``
    JUMP = "jump"  # 470: continue at ``seq`` (the server's latest)
    WAIT = "wait"  # 470 ahead of the writer: ask the same seq again after ``delay``
    RETRY = "retry"  # error: ask the same seq again after ``delay``
    END = "end"  # channel closed or gone: the subscription ends cleanly
    FAIL = "fail"  # too many errors in a row


@dataclass(frozen=True, slots=True)
class Verdict:
    step: Step
    seq: int  # the seq to ask for next (for DELIVER/SKIP: the one after the answered seq)
    delay: float = 0.0
    answered: int = -1  # DELIVER/SKIP: the seq the server answered with

    @property
    def terminal(self) -> bool:
        return self.step in (Step.END, Step.FAIL)


class SubscriberPosition:
    """The position of one subscriber in a channel."""

    def __init__(
        self,
        start_seq: int = -1,
        *,
        max_errors: int = 5,
        retry_delay: float = 0.3,
        ahead_delay: float = 0.25,
        spin_after: int = 3,
    ) -> None:
        if start_seq < -2:
            raise ValueError(f"start seq must be >= -2, got {start_seq}")
        self.seq = start_seq
        self.errors = 0  # consecutive errors
        self.unavailable = 0  # consecutive 470 answers
        self.max_errors = max_errors
        self.retry_delay = retry_delay
        self.ahead_delay = ahead_delay
        self.spin_after = spin_after
        self.ended = False

    def on_answer(
        self,
        status: int,
        *,
        seq: int | None = None,
        latest: int | None = None,
        closed: bool = False,
        empty: bool = False,
    ) -> Verdict:
        """A response arrived for ``self.seq``. ``empty``: a 200 whose body has no byte."""
        if self.ended:
            raise RuntimeError("subscription already ended")
        asked = self.seq
        if closed or status == 404:
            self.ended = True
            return Verdict(Step.END, asked)
        if status == 200:
            self.errors = 0
            self.unavailable = 0
            answered = seq if seq is not None and seq >= 0 else asked
            if answered < 0:  # no usable Lp-Trickle-Seq for a -1/-2 ask: keep asking the next
                self.seq = -1
                return Verdict(Step.SKIP if empty else Step.DELIVER, -1, answered=-1)
            if asked >= 0:
                answered = max(answered, asked)  # never go back
            self.seq = answered + 1
            return Verdict(Step.SKIP if empty else Step.DELIVER, self.seq, answered=answered)
        if status == STATUS_UNAVAILABLE:
            self.errors = 0
            self.unavailable += 1
            spin = self.ahead_delay if self.unavailable > self.spin_after else 0.0
            if latest is None or latest < 0:
                self.seq = -1
                return Verdict(Step.JUMP, -1, spin)
            if asked >= 0 and latest < asked:
                return Verdict(Step.WAIT, asked, self.ahead_delay)
            self.seq = latest
            return Verdict(Step.JUMP, latest, spin)
        return self.on_error()

    def on_error(self) -> Verdict:
        """The request failed: transport error, timeout, or an unexpected status."""
        if self.ended:
            raise RuntimeError("subscription already ended")
        self.errors += 1
        if self.errors > self.max_errors:
            self.ended = True
            return Verdict(Step.FAIL, self.seq)
        return Verdict(Step.RETRY, self.seq, self.retry_delay)


class PublishStep(Enum):
    DONE = "done"
    RETRY = "retry"
    DROP = "drop"
    GONE = "gone"
    CLOSED = "closed"


def publish_step(
    status: int | None,
    *,
    closed: bool = False,
    body_sent: bool = True,
    bytes_sent: int = 0,
    attempt: int = 1,
    next_started: bool = False,
) -> PublishStep:
    """What to do with a segment whose POST ended. ``status`` None: transport failure;
    ``body_sent``: the whole body went out before the answer (a 200 that arrives before that
    means the server ended the POST early, e.g. the segment was closed under it)."""
    if closed:
        return PublishStep.CLOSED
    if status == 404:
        return PublishStep.GONE
    if status == 200 and body_sent:
        return PublishStep.DONE
    if status == 413:
        return PublishStep.DROP
    if bytes_sent == 0 and attempt == 1 and not next_started:
        return PublishStep.RETRY
    return PublishStep.DROP
