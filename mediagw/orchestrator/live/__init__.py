"""Live video-to-video in the reference orchestrator (live-AI spec §2-§9, §12).

- ``http``: ``POST /live-video-to-video``, step by step as go-livepeer;
- ``manager``: ``LiveManager``: the trickle server at ``/ai/trickle/``, per-model capacity,
  the running sessions;
- ``session``: one session's tasks (input + accounting, worker, control, status);
- ``media``: one segment through a pipeline with PyAV (blocking, thread pool);
- ``params`` / ``events`` / ``accounting``: sans-IO params validation and effects, event
  messages and status, live payment accounting.
"""

from .manager import TRICKLE_PATH, LiveManager
from .params import EFFECT_MODELS, PipelineParams, parse_params
from .session import KEEPALIVE, LiveSession, channel_names

__all__ = [
    "EFFECT_MODELS",
    "KEEPALIVE",
    "TRICKLE_PATH",
    "LiveManager",
    "LiveSession",
    "PipelineParams",
    "channel_names",
    "parse_params",
]
