"""Live AI video-to-video (live-ai spec): the gateway's side of a live stream on orchestrators.

caps        job capabilities (bit 35 + model constraint)
selection   OrchestratorRequests (GetOrchestrator) and LiveSelector (pool, price cap,
            latency order, warm/cold, suspension, drop)
start       POST /live-video-to-video (prepayment, empty-segment SegData, host rewrite)
transport   LiveHTTP: one aiohttp session, TOFU-pinned TLS to orchestrators
control     the control channel (params, replay, keepalive)
events      events channel parsing and status coalescing
payer       live payments (/payment every ~5 s of input; 480/481/482)
monitor     health rules (slow O, output watchdog, events heartbeat, payments) and swap limit
attachment  one run on one orchestrator (four channels, payments, health)
connect     pick + start + retry rules -> Attachment
session     LiveSession: input queue, output hand-off, update, swaps, status
state       SessionState: the states of a session
status / stats / config / errors
"""

from .caps import DEFAULT_MODEL, PIPELINE, lv2v_capabilities
from .config import LiveConfig
from .errors import LiveAIError, NoOrchestrator, StartAction, StartRejected
from .selection import LiveSelector, OrchestratorRequests
from .session import LiveSession, OutputCallback
from .start import LiveChannels, start_live_video
from .state import SessionState
from .transport import LiveHTTP

__all__ = [
    "DEFAULT_MODEL",
    "PIPELINE",
    "LiveAIError",
    "LiveChannels",
    "LiveConfig",
    "LiveHTTP",
    "LiveSelector",
    "LiveSession",
    "NoOrchestrator",
    "OrchestratorRequests",
    "OutputCallback",
    "SessionState",
    "StartAction",
    "StartRejected",
    "lv2v_capabilities",
    "start_live_video",
]
