"""Configuration of the reference orchestrator: one dataclass, plus the fault switches.

Time and randomness are injected (``clock``, ``rand``, ``monotonic``) so auth-token expiry,
ticket expiry, seeds and live accounting are testable. ``faults`` is a live object: tests may
flip its switches between requests.

Live video-to-video (capability 35) is off unless ``live_models`` names models: then the O
advertises them in GetOrchestrator, serves ``POST /live-video-to-video`` and trickle channels
under ``/ai/trickle/``. ``DEFAULT_LIVE_MODELS`` is a convenient value for it.

Prices (priced mode) are in wei per ``pixels_per_unit`` pixels: ``price_per_unit`` for
transcoding, and per live model ``live_model_prices[model]``, else ``live_price_per_unit``, else
``price_per_unit`` (go-livepeer's fallback for a model configured without a price). How a
request is priced from them is in ``pricing``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

__all__ = [
    "DEFAULT_LIVE_MODELS",
    "DEFAULT_PORT",
    "DEFAULT_TICKET_EV",
    "Clock",
    "Faults",
    "OrchestratorConfig",
    "RandomBytes",
]

Clock = Callable[[], float]  # unix seconds
RandomBytes = Callable[[int], bytes]

DEFAULT_PORT = 8935
DEFAULT_TICKET_EV = 8_000_000_000  # go-livepeer -ticketEV default, wei
DEFAULT_LIVE_MODELS: dict[str, bool] = {"noop": True, "invert": True, "tint": True}


@dataclass
class Faults:
    """Misbehaviour for failover tests. The transcode switches act on ``/segment`` requests
    only once ``after_segments`` requests have been seen (0 = from the first one);
    ``price_factor`` multiplies the advertised price in every OrchestratorInfo built from then
    on. The ``live_*`` switches act on live video-to-video sessions; they are read at each use,
    so flipping one affects running sessions too. ``live_stream`` narrows the switches that act
    on running sessions (all but the start ones) to the session started for that stream id;
    the ``*_after`` counts are per session, the ``live_output_*`` counts are counted down
    across sessions (the next N requests)."""

    after_segments: int = 0
    fail_segments: bool = False  # 200, then TranscodeResult.error = error_text
    # the same for these segments only (SegData seq), whatever ``after_segments`` says: one
    # segment that fails on every orchestrator configured alike
    fail_seqs: frozenset[int] = frozenset()
    error_text: str = "injected fault: transcode failed"
    http_500: bool = False  # 500 Internal Server Error instead of the early 200
    stall: bool = False  # never answer (until the client goes away or we stop)
    delay_headers: float = 0.0  # seconds to wait before the early 200
    delay_result: float = 0.0  # seconds to wait between the 200 and the result
    drop_connection: bool = False  # 200, half of the result, then the TCP connection is cut
    garbage: bool = False  # 200, then bytes that are not a TranscodeResult
    bad_result_sig: bool = False  # the result's signature covers other bytes (tampering)
    price_factor: float = 1.0
    # live video-to-video (they ignore ``after_segments``; counts are per session)
    live_reject_start: bool = False  # POST /live-video-to-video -> 503 insufficient capacity
    live_empty_reply: bool = False  # ... -> 200 with an empty body (GL's validator quirk)
    live_stall_after: int | None = None  # no more output segments after this many
    live_close_after: int | None = None  # close all four channels after this many inputs
    live_no_events: bool = False  # write nothing on <mid>-events
    # the gateway's GETs of <mid>-out: the next N answered 470 "segment not available"
    # (Lp-Trickle-Latest = the channel's next write: "jump to latest"), or 404 "Stream not
    # found" (channel gone); None = off, -1 = every request until switched off
    live_output_470: int | None = None
    live_output_404: int | None = None
    live_stream: str = ""  # "" = every session; else only the session of this stream id
    # (seq, n): the POST of each session's input segment seq gets n bytes of its body through,
    # then its connection is killed (a publisher or network dying mid-segment); None = off
    live_cut_input: tuple[int, int] | None = None

    def live_applies(self, stream_id: str) -> bool:
        """Whether the running-session switches act on the session of ``stream_id``."""
        return not self.live_stream or self.live_stream == stream_id

    def take_live_output(self, name: str) -> bool:
        """Count down ``live_output_470`` / ``live_output_404`` (``name``); True while on."""
        left: int | None = getattr(self, name)
        if left is None or left == 0:
            return False
        if left > 0:
            setattr(self, name, left - 1)
        return True

    def active(self, segments_seen: int) -> bool:
        return segments_seen >= self.after_segments


@dataclass
class OrchestratorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = ephemeral
    service_uri: str | None = None  # default: https://host:port (http:// = plaintext + h2c)
    plaintext: bool = False  # without service_uri: serve http:// (h2c + HTTP/1.1), no TLS
    priced: bool = False  # on-chain behaviour: price, tickets, signatures
    private_key: bytes | None = None  # priced mode; None = a throwaway key
    price_per_unit: int = 0  # wei
    pixels_per_unit: int = 1
    ticket_ev: int = DEFAULT_TICKET_EV
    max_sessions: int = 10
    faults: Faults = field(default_factory=Faults)
    work_dir: Path | None = None  # cert.pem / key.pem; None = a temporary directory
    clock: Clock = time.time
    rand: RandomBytes = os.urandom
    version: str = "0.9.1"  # Capabilities.version we report
    # the stand-in chain (there is no chain here): L1 block = base_block + now // block_time
    block_time: float = 12.0
    base_block: int = 0
    round_length: int = 5760  # L1 blocks per round
    redeem_gas: int = 1_200_000
    gas_price: int = 0  # wei; 0 makes faceValue = ticket_ev x 100
    # limits
    max_segment_bytes: int = 300_000_000
    session_idle_timeout: float = 70.0
    session_queue_depth: int = 4
    transcode_workers: int = 2
    x264_preset: str = "veryfast"
    # live video-to-video (capability 35); no models = off
    live_models: dict[str, bool] = field(default_factory=dict)  # model id -> warm
    live_price_per_unit: int | None = None  # every live model; None: price_per_unit
    live_model_prices: dict[str, int] = field(default_factory=dict)  # model id -> price
    live_capacity: int = 2  # idle "containers" per model
    live_runner_version: str = "0.14.1"  # ModelConstraint.runnerVersion we report
    live_payment_interval: float = 5.0  # seconds between debits (go-livepeer default)
    live_status_interval: float = 10.0  # seconds between status events
    live_trickle_idle_timeout: float = 300.0  # close channels without a write for this long
    live_trickle_sweep_interval: float = 60.0
    live_workers: int = 2  # threads decoding/encoding live segments
    live_x264_preset: str = "superfast"
    live_max_control_bytes: int = 1 << 20
    monotonic: Clock = time.monotonic  # live accounting and status times
    # benchmarks only: answer at once, each rendition being the input bytes (no transcoding);
    # pixels are reported as width x height x duration x fps of each profile
    instant: bool = False

    def live_price(self, model: str) -> Fraction | None:
        """Wei per pixel of a live model; None for a model this O does not offer."""
        if model not in self.live_models:
            return None
        per_unit = self.live_model_prices.get(model, self.live_price_per_unit)
        if per_unit is None:
            per_unit = self.price_per_unit
        return Fraction(per_unit, self.pixels_per_unit)
