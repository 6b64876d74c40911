"""Transcoding on the Livepeer network, per stream: ``TranscodeManager`` (a hub listener) runs a
``TranscodePipeline`` per publish session (segments in order, gaps, end of the renditions), whose
segments go to the gateway-wide ``LivepeerTranscoder`` (pick an orchestrator, pay, submit,
download, retry)."""

from .manager import TranscodeManager, ladder_for
from .pipeline import (
    RenditionData,
    SegmentTranscoder,
    TranscodeJob,
    TranscodeOutcome,
    TranscodePipeline,
)
from .transcoder import LivepeerTranscoder

__all__ = [
    "LivepeerTranscoder",
    "RenditionData",
    "SegmentTranscoder",
    "TranscodeJob",
    "TranscodeManager",
    "TranscodeOutcome",
    "TranscodePipeline",
    "ladder_for",
]
