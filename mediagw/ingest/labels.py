"""What a publisher asks for, from its grant and its URL query (RTMP and WHIP alike).

?pipeline=MODEL&params=JSON     live AI instead of transcoding
?regions=eu-west,us-east        orchestrator regions to prefer for this stream
?streamId=ID                    the stream's id for the live AI heartbeat and status API
?rtmpOutput=rtmp://...[,...]    live AI: also push the AI output to these RTMP servers

The live AI auth webhook's pipeline and params (in the grant) win over the query's.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError, PublishRejected
from ..pipelines.live_ai.manager import parse_params
from ..platform.stream_auth import StreamGrant
from ..publish.rtmp_out import parse_rtmp_outputs

__all__ = ["stream_labels"]


def stream_labels(grant: StreamGrant, query: Mapping[str, str]) -> dict[str, object]:
    labels: dict[str, object] = dict(grant.labels)
    if grant.profiles is not None:
        labels["profiles"] = grant.profiles
    if grant.presets:
        labels["presets"] = grant.presets
    pipeline = grant.pipeline or query.get("pipeline")
    if pipeline:
        labels["pipeline"] = pipeline
        try:
            labels["params"] = (
                grant.params if grant.params is not None else parse_params(query.get("params"))
            )
        except ConfigError as exc:
            raise PublishRejected(str(exc), "NetStream.Publish.BadName") from None
    for key, label in (("streamId", "streamID"), ("rtmpOutput", "rtmpOutput")):
        if query.get(key) and label not in labels:  # an auth webhook's answer wins
            labels[label] = query[key]
    if labels.get("rtmpOutput"):
        try:
            parse_rtmp_outputs(str(labels["rtmpOutput"]))
        except ValueError as exc:
            raise PublishRejected(f"rtmpOutput: {exc}", "NetStream.Publish.BadName") from None
    if query.get("regions"):
        labels["regions"] = [r.strip() for r in query["regions"].split(",") if r.strip()]
    return labels
