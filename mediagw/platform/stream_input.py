"""What a Studio-style stream or multistream target body may hold, checked field by field.

Every refusal is ``InvalidInput(field, message)``, ``field`` being the JSON path (``name``,
``profiles.0.width``, ``multistream.targets.1.spec.url``); the API answers 422. The checks:

    name             1..500 characters, any characters (it is only ever a value)
    profiles         at most 10 of {name, width, height, bitrate, fps, fpsDen?, gop?, profile?}:
                     name 1..64 of A-Z a-z 0-9 _ . - (it keys the rendition's URL; not
                     "source"), unique; width 2..7680 and height 2..4320, even (H.264 4:2:0);
                     bitrate 1..50 000 000 bit/s; fps 0..120 (0: the source's), fpsDen 1..1001;
                     gop seconds ("2", "0.5"; up to 3600) or "intra"; profile one of H264Baseline,
                     H264Main, H264High, H264ConstrainedHigh. None given: Studio's default
                     ladder 240p0/360p0/480p0/720p0.
    record, suspended  booleans
    multistream      {targets: [{profile, videoOnly?, id | spec{name?, url}}]}, at most 10;
                     profile "source" or one of the stream's profiles; a target URL is
                     rtmp://, rtmps:// or srt://, at most 2048 characters, no spaces
    playbackPolicy   {type: public | jwt | webhook, webhookId?, webhookContext?,
                     refreshInterval?, allowedOrigins?}; webhook needs webhookId
    userTags         a JSON object of at most 4 KiB (encoded) and 32 keys
    pipeline         a live AI model name (``inputs.check_pipeline``), pipelineParams a JSON
                     object (``inputs.check_params``, at most 1 MiB); params need a pipeline
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError, InvalidInput
from .inputs import check_params, check_pipeline

__all__ = [
    "DEFAULT_PROFILES",
    "MAX_NAME",
    "MAX_PROFILES",
    "MAX_TARGETS",
    "SOURCE",
    "check_bool",
    "check_multistream",
    "check_name",
    "check_pipeline_field",
    "check_pipeline_params",
    "check_playback_policy",
    "check_profiles",
    "check_target_spec",
    "check_target_url",
    "check_user_tags",
    "reject_unknown",
]

MAX_NAME = 500
MAX_PROFILES = 10
MAX_TARGETS = 10
MAX_URL = 2048
MAX_USER_TAGS_BYTES = 4096
MAX_USER_TAGS_KEYS = 32
MAX_WIDTH, MAX_HEIGHT = 7680, 4320
MAX_BITRATE = 50_000_000
MAX_FPS = 120
MAX_FPS_DEN = 1001
ENCODER_PROFILES = ("H264Baseline", "H264Main", "H264High", "H264ConstrainedHigh")
TARGET_SCHEMES = ("rtmp://", "rtmps://", "srt://")
POLICY_TYPES = ("public", "jwt", "webhook")
SOURCE = "source"

# Studio's default ladder (when a stream is created without profiles)
DEFAULT_PROFILES: tuple[dict[str, Any], ...] = (
    {"name": "240p0", "width": 426, "height": 240, "bitrate": 250_000, "fps": 30},
    {"name": "360p0", "width": 640, "height": 360, "bitrate": 800_000, "fps": 30},
    {"name": "480p0", "width": 854, "height": 480, "bitrate": 1_600_000, "fps": 30},
    {"name": "720p0", "width": 1280, "height": 720, "bitrate": 3_000_000, "fps": 30},
)

_GOP = re.compile(r"\+?(\d{1,4}(\.\d{0,3})?|\.\d{1,3})")
MAX_GOP_SECONDS = 3600
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_PROFILE_KEYS = ("name", "width", "height", "bitrate", "fps", "fpsDen", "gop", "profile")
_POLICY_KEYS = ("type", "webhookId", "webhookContext", "refreshInterval", "allowedOrigins")
_TARGET_KEYS = ("profile", "videoOnly", "id", "spec")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def reject_unknown(body: Mapping[str, Any], allowed: Sequence[str], where: str = "") -> None:
    """InvalidInput naming the first key of ``body`` that is not ``allowed``."""
    for key in body:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            raise InvalidInput(path, f"unknown field; allowed: {', '.join(allowed)}")


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(where, f"must be an object, not {_kind(value)}")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = obj[key]
    if type(value) is not int:
        raise InvalidInput(f"{where}.{key}", f"must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise InvalidInput(f"{where}.{key}", f"must be between {low} and {high}, not {value}")
    return value


def check_name(value: object, where: str = "name") -> str:
    if not isinstance(value, str):
        raise InvalidInput(where, f"must be a string, not {_kind(value)}")
    if not 1 <= len(value) <= MAX_NAME:
        raise InvalidInput(where, f"must be 1 to {MAX_NAME} characters, not {len(value)}")
    return value


def check_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(where, f"must be true or false, not {_kind(value)}")
    return value


def _profile(value: object, where: str) -> dict[str, Any]:
    obj = _object(value, where)
    reject_unknown(obj, _PROFILE_KEYS, where)
    for key in ("name", "width", "height", "bitrate", "fps"):
        if key not in obj:
            raise InvalidInput(f"{where}.{key}", "is required")
    name = obj["name"]
    if not isinstance(name, str) or not _PROFILE_NAME.fullmatch(name) or name == SOURCE:
        raise InvalidInput(f"{where}.name", 'must be 1-64 of A-Z a-z 0-9 _ . - (and not "source")')
    out: dict[str, Any] = {"name": name}
    for key, high in (("width", MAX_WIDTH), ("height", MAX_HEIGHT)):
        out[key] = _int(obj, key, where, 2, high)
        if out[key] % 2:
            raise InvalidInput(f"{where}.{key}", f"must be even (H.264 4:2:0), not {out[key]}")
    out["bitrate"] = _int(obj, "bitrate", where, 1, MAX_BITRATE)
    out["fps"] = _int(obj, "fps", where, 0, MAX_FPS)
    if "fpsDen" in obj:
        out["fpsDen"] = _int(obj, "fpsDen", where, 1, MAX_FPS_DEN)
    if "gop" in obj:
        gop = obj["gop"]
        if not isinstance(gop, str) or not (
            gop == "intra" or (_GOP.fullmatch(gop) and 0 < float(gop) <= MAX_GOP_SECONDS)
        ):
            raise InvalidInput(
                f"{where}.gop",
                f'must be seconds as a string ("2", 0..{MAX_GOP_SECONDS}) or "intra"',
            )
        out["gop"] = gop
    if "profile" in obj:
        if obj["profile"] not in ENCODER_PROFILES:
            raise InvalidInput(f"{where}.profile", f"must be one of {', '.join(ENCODER_PROFILES)}")
        out["profile"] = obj["profile"]
    return out


def check_profiles(value: object) -> list[dict[str, Any]]:
    """A Studio profile list, as the transcoder will take it (its own parser runs last)."""
    if not isinstance(value, list):
        raise InvalidInput("profiles", f"must be a list of profiles, not {_kind(value)}")
    if len(value) > MAX_PROFILES:
        raise InvalidInput("profiles", f"at most {MAX_PROFILES} profiles, not {len(value)}")
    profiles = [_profile(p, f"profiles.{n}") for n, p in enumerate(value)]
    seen: set[str] = set()
    for n, p in enumerate(profiles):
        if p["name"] in seen:
            raise InvalidInput(f"profiles.{n}.name", f"{p['name']!r} is used twice")
        seen.add(p["name"])
    return profiles


def check_target_url(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(where, f"must be a string, not {_kind(value)}")
    if len(value) > MAX_URL:
        raise InvalidInput(where, f"must be at most {MAX_URL} characters")
    if not value.startswith(TARGET_SCHEMES) or len(value.split("://", 1)[1]) < 1:
        raise InvalidInput(where, "must be an rtmp://, rtmps:// or srt:// URL")
    if any(c.isspace() for c in value):
        raise InvalidInput(where, "must not contain spaces")
    return value


def check_target_spec(value: object, where: str) -> dict[str, Any]:
    """``{name?, url}`` of a multistream target (the body of ``POST /multistream/target``,
    or an inline ``spec``)."""
    obj = _object(value, where)
    reject_unknown(obj, ("name", "url", "disabled"), where)
    if "url" not in obj:
        raise InvalidInput(f"{where}.url" if where else "url", "is required")
    prefix = f"{where}." if where else ""
    out: dict[str, Any] = {"url": check_target_url(obj["url"], f"{prefix}url")}
    out["name"] = check_name(obj["name"], f"{prefix}name") if "name" in obj else ""
    if "disabled" in obj:
        out["disabled"] = check_bool(obj["disabled"], f"{prefix}disabled")
    return out


def check_multistream(value: object, profiles: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{targets: [...]}``; inline ``spec`` entries are returned as they are (the service turns
    them into stored targets)."""
    obj = _object(value, "multistream")
    reject_unknown(obj, ("targets",), "multistream")
    targets = obj.get("targets", [])
    if not isinstance(targets, list):
        raise InvalidInput("multistream.targets", f"must be a list, not {_kind(targets)}")
    if len(targets) > MAX_TARGETS:
        raise InvalidInput("multistream.targets", f"at most {MAX_TARGETS} targets")
    names = {SOURCE, *(str(p["name"]) for p in profiles)}
    out = []
    for n, raw in enumerate(targets):
        where = f"multistream.targets.{n}"
        target = _object(raw, where)
        reject_unknown(target, _TARGET_KEYS, where)
        profile = target.get("profile")
        if not isinstance(profile, str) or profile not in names:
            raise InvalidInput(
                f"{where}.profile", f"must be one of the stream's profiles: {', '.join(names)}"
            )
        entry: dict[str, Any] = {"profile": profile}
        if "videoOnly" in target:
            entry["videoOnly"] = check_bool(target["videoOnly"], f"{where}.videoOnly")
        has_id, has_spec = "id" in target, "spec" in target
        if has_id == has_spec:
            raise InvalidInput(where, "give either id (an existing target) or spec {name, url}")
        if has_id:
            if not isinstance(target["id"], str) or not target["id"]:
                raise InvalidInput(f"{where}.id", "must be a multistream target id")
            entry["id"] = target["id"]
        else:
            entry["spec"] = check_target_spec(target["spec"], f"{where}.spec")
        out.append(entry)
    return {"targets": out}


def check_playback_policy(value: object) -> dict[str, Any]:
    obj = _object(value, "playbackPolicy")
    reject_unknown(obj, _POLICY_KEYS, "playbackPolicy")
    kind = obj.get("type")
    if kind not in POLICY_TYPES:
        raise InvalidInput("playbackPolicy.type", f"must be one of {', '.join(POLICY_TYPES)}")
    out: dict[str, Any] = {"type": kind}
    if "webhookId" in obj or kind == "webhook":
        hook = obj.get("webhookId")
        if not isinstance(hook, str) or not hook:
            raise InvalidInput("playbackPolicy.webhookId", "a webhook policy needs a webhook id")
        out["webhookId"] = hook
    if "webhookContext" in obj:
        context = _object(obj["webhookContext"], "playbackPolicy.webhookContext")
        out["webhookContext"] = check_user_tags(context, "playbackPolicy.webhookContext")
    if "refreshInterval" in obj:
        out["refreshInterval"] = _int(obj, "refreshInterval", "playbackPolicy", 1, 86_400)
    if "allowedOrigins" in obj:
        origins = obj["allowedOrigins"]
        if not isinstance(origins, list) or not all(
            isinstance(o, str) and 0 < len(o) <= 256 for o in origins
        ):
            raise InvalidInput("playbackPolicy.allowedOrigins", "must be a list of origins")
        if len(origins) > 32:
            raise InvalidInput("playbackPolicy.allowedOrigins", "at most 32 origins")
        out["allowedOrigins"] = list(origins)
    return out


def check_user_tags(value: object, where: str = "userTags") -> dict[str, Any]:
    obj = _object(value, where)
    if len(obj) > MAX_USER_TAGS_KEYS:
        raise InvalidInput(where, f"at most {MAX_USER_TAGS_KEYS} keys")
    try:
        size = len(json.dumps(obj, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput(where, "must be plain JSON") from None
    if size > MAX_USER_TAGS_BYTES:
        raise InvalidInput(where, f"at most {MAX_USER_TAGS_BYTES} bytes of JSON, not {size}")
    return dict(obj)


def check_pipeline_field(value: object) -> str | None:
    if value is None:
        return None
    try:
        return check_pipeline(value)
    except ConfigError as exc:
        raise InvalidInput("pipeline", str(exc).removeprefix("pipeline ")) from None


def check_pipeline_params(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        return check_params(value)
    except ConfigError as exc:
        raise InvalidInput("pipelineParams", str(exc).removeprefix("params")) from None
