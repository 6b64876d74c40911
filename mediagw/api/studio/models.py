"""The bodies the Studio-compatible routes accept, as pydantic models (Studio's field names).

They check shape, types and bounds and refuse unknown fields; the services in
``mediagw/platform`` check what needs the store or the network (a stream id that exists, a
webhook URL's address). The OpenAPI document is generated from these same classes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...platform import stream_input as si
from .base import Body

__all__ = [
    "MultistreamTargetCreate",
    "MultistreamTargetPatch",
    "SigningKeyCreate",
    "SigningKeyPatch",
    "StreamCreate",
    "StreamPatch",
    "WebhookCreate",
]

Name = Annotated[str, Field(min_length=1, max_length=si.MAX_NAME)]
Url = Annotated[str, Field(min_length=1, max_length=si.MAX_URL)]
TagValue = str | int | float | bool | None
UserTags = Annotated[dict[str, TagValue], Field(max_length=si.MAX_USER_TAGS_KEYS)]


class Profile(Body):
    """One rendition of the ladder (Studio's ``ffmpeg-profile``); the stream service checks
    the rest (even sizes, unique names, the gop's form)."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    width: int = Field(ge=2, le=si.MAX_WIDTH)
    height: int = Field(ge=2, le=si.MAX_HEIGHT)
    bitrate: int = Field(ge=1, le=si.MAX_BITRATE, description="bits per second")
    fps: int = Field(ge=0, le=si.MAX_FPS, description="0: the source's frame rate")
    fps_den: int | None = Field(default=None, ge=1, le=si.MAX_FPS_DEN)
    gop: str | None = Field(default=None, max_length=20, description='seconds, or "intra"')
    profile: Literal["H264Baseline", "H264Main", "H264High", "H264ConstrainedHigh"] | None = None


class TargetSpec(Body):
    name: Annotated[str, Field(max_length=si.MAX_NAME)] | None = None
    url: Url


class StreamTarget(Body):
    """A multistream target of a stream: an existing target (``id``) or a new one (``spec``)."""

    profile: Annotated[str, Field(min_length=1, max_length=64)]
    video_only: bool = False
    id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    spec: TargetSpec | None = None


class Multistream(Body):
    targets: list[StreamTarget] = Field(default=[], max_length=si.MAX_TARGETS)


class PlaybackPolicy(Body):
    type: Literal["public", "jwt", "webhook"]
    webhook_id: Annotated[str, Field(max_length=100)] | None = None
    webhook_context: dict[str, Any] | None = None
    refresh_interval: int | None = Field(default=None, ge=1, le=86_400)
    allowed_origins: list[Annotated[str, Field(max_length=300)]] | None = Field(
        default=None, max_length=50
    )


class StreamCreate(Body):
    name: Name
    profiles: list[Profile] | None = Field(default=None, max_length=si.MAX_PROFILES)
    record: bool = False
    multistream: Multistream | None = None
    playback_policy: PlaybackPolicy | None = None
    suspended: bool = False
    user_tags: UserTags | None = None
    pipeline: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="mediagw: run this live AI pipeline on the stream"
    )
    pipeline_params: dict[str, Any] | None = Field(
        default=None, description="mediagw: the live AI pipeline's parameters"
    )


class StreamPatch(Body):
    """Only the fields sent change; ``null`` clears an optional one."""

    name: Name | None = None
    profiles: list[Profile] | None = Field(default=None, max_length=si.MAX_PROFILES)
    record: bool | None = None
    suspended: bool | None = None
    multistream: Multistream | None = None
    playback_policy: PlaybackPolicy | None = None
    user_tags: UserTags | None = None
    pipeline: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    pipeline_params: dict[str, Any] | None = None


class MultistreamTargetCreate(Body):
    name: Annotated[str, Field(max_length=500)] | None = None
    url: Url
    disabled: bool = False


class MultistreamTargetPatch(Body):
    name: Annotated[str, Field(max_length=500)] | None = None
    url: Url | None = None
    disabled: bool | None = None


class WebhookCreate(Body):
    name: Name
    url: Url
    events: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=20)
    shared_secret: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    stream_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    project_id: Any = None  # Studio's; accepted and ignored


class SigningKeyCreate(Body):
    name: Annotated[str, Field(max_length=500)] | None = None
    project_id: Any = None


class SigningKeyPatch(Body):
    name: Annotated[str, Field(max_length=500)] | None = None
    disabled: bool | None = None


class Document(BaseModel):
    """An answer documented by its main fields; more may come."""

    model_config = ConfigDict(extra="allow")


class StreamOut(Document):
    id: str
    name: str
    streamKey: str | None = None
    playbackId: str
    isActive: bool
    createdAt: int
    lastSeen: int | None = None
    statusReason: str | None = None  # why a limit last ended it ("quota_exhausted"), if known


class SessionOut(Document):
    id: str
    parentId: str
    createdAt: int
    recordingUrl: str | None = None


class PlaybackSource(BaseModel):
    hrn: str
    type: str
    url: str


class PlaybackMeta(BaseModel):
    live: int
    playbackPolicy: dict[str, Any] | None = None
    source: list[PlaybackSource]


class PlaybackOut(BaseModel):
    type: Literal["live", "vod", "recording"]
    meta: PlaybackMeta


class WebhookOut(Document):
    id: str
    name: str
    url: str
    events: list[str]
    createdAt: int


class TargetOut(Document):
    id: str
    name: str | None = None
    createdAt: int


class SigningKeyOut(Document):
    id: str
    name: str | None = None
    publicKey: str
    createdAt: int
    disabled: bool
