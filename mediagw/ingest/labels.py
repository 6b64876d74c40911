"""What a publisher asks for, from its grant and its URL query (RTMP and WHIP alike).

?pipeline=MODEL&params=JSON     live AI instead of transcoding
?regions=eu-west,us-east        orchestrator regions to prefer for this stream
?streamId=ID                    the stream's id for the live AI heartbeat and status API
?rtmpOutput=rtmp://...[,...]    live AI: also push the AI output to these RTMP servers

The live AI auth webhook's pipeline and params (in the grant) win over the query's. Names and
ids are bounded (``pipelines.live_ai.inputs``): a bad one refuses the publish, saying which.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError, PublishRejected
from ..pipelines.live_ai.inputs import check_id, check_pipeline, parse_params
from ..platform.stream_auth import StreamGrant
from ..publish.rtmp_out import parse_rtmp_outputs

__all__ = ["MAX_REGIONS", "stream_labels"]

MAX_REGIONS = 16


def stream_labels(grant: StreamGrant, query: Mapping[str, str]) -> dict[str, object]:
    labels: dict[str, object] = dict(grant.labels)
    if grant.profiles is not None:
        labels["profiles"] = grant.profiles
    if grant.presets:
        labels["presets"] = grant.presets
    try:
        pipeline = grant.pipeline or (check_pipeline(query["pipeline"]) if query.get("pipeline")
                                      else None)  # fmt: skip
        if pipeline:
            labels["pipeline"] = pipeline
            labels["params"] = (
                grant.params if grant.params is not None else parse_params(query.get("params"))
            )
        if query.get("streamId") and "streamID" not in labels:  # the webhook's answer wins
            labels["streamID"] = check_id(query["streamId"], "streamId")
        if query.get("regions"):
            regions = [r.strip() for r in query["regions"].split(",") if r.strip()]
            if len(regions) > MAX_REGIONS:
                raise ConfigError(f"regions: at most {MAX_REGIONS}")
            labels["regions"] = [check_id(r, "region") for r in regions]
    except ConfigError as exc:
        raise PublishRejected(str(exc), "NetStream.Publish.BadName") from None
    if query.get("rtmpOutput") and "rtmpOutput" not in labels:
        labels["rtmpOutput"] = query["rtmpOutput"]
    if labels.get("rtmpOutput"):
        try:
            parse_rtmp_outputs(str(labels["rtmpOutput"]))
        except ValueError as exc:
            raise PublishRejected(f"rtmpOutput: {exc}", "NetStream.Publish.BadName") from None
    return labels
