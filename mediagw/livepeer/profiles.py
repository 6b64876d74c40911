"""Rendition profiles: go-livepeer's JSON profile format, presets, ladders (spec §10, §5.3).

A ``Profile`` is one output rendition. Its ``name`` is part of the signed SegData bytes (§5.4), so
every profile has a non-empty name: an unnamed JSON profile becomes ``custom_<w>x<h>_<bitrate>``
(lpms' rule) and that exact name is both sent and signed.

Inputs:
- ``parse_profiles_json``: go-livepeer's JSON profile array (lpms ``JsonProfile``), strictly
  checked, with errors naming the profile (index and name) and the field.
- ``parse_transcoding_options``: the ``-transcodingOptions`` value: comma-separated preset names
  (an unknown name is an error, go-livepeer skips it silently) or a path to a JSON file.
- ``load_ladder``: a named ladder from ``transcode_profiles/`` (``default``, ``abr-720p``, ...) or
  a JSON file path. File readers are blocking: call them at start-up or in a thread.

Extension: a profile object may carry ``"format": "mpegts" | "mp4"`` (go-livepeer has no such key
and derives the format from the pushed file's extension).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from ..eth.crypto import keccak256
from .errors import ProfileError
from .proto import net

__all__ = [
    "DEFAULT_LADDER_DIR",
    "MAX_PROFILES",
    "PRESETS",
    "Profile",
    "available_ladders",
    "load_ladder",
    "parse_profiles_json",
    "parse_transcoding_options",
    "profiles_field",
    "set_profiles",
]

MAX_PROFILES = 16  # renditions per ladder (hard limit)
MAX_PROFILE_FILE_BYTES = 1 << 20
MAX_NAME_CHARS = 64
MAX_DIMENSION = 8192
MAX_GOP_MS = 3_600_000
_INT32_MAX = 2**31 - 1
_UINT32_MAX = 2**32 - 1

DEFAULT_LADDER_DIR = Path(__file__).resolve().parents[2] / "transcode_profiles"

# lpms EncoderProfileLookup (keys lower-cased on input) -> proto enum
_ENCODER_PROFILES = {
    "": net.VideoProfile.ENCODER_DEFAULT,
    "h264baseline": net.VideoProfile.H264_BASELINE,
    "h264main": net.VideoProfile.H264_MAIN,
    "h264high": net.VideoProfile.H264_HIGH,
    "h264constrainedhigh": net.VideoProfile.H264_CONSTRAINED_HIGH,
}
# lpms CodecNameToValue (exact match) -> proto enum
_ENCODERS = {
    "H.264": net.VideoProfile.H264,
    "HEVC": net.VideoProfile.H265,
    "VP8": net.VideoProfile.VP8,
    "VP9": net.VideoProfile.VP9,
}
_FORMATS = {"mpegts": net.VideoProfile.MPEGTS, "mp4": net.VideoProfile.MP4}
_COLOR_DEPTHS = (0, 2, 4, 8)
_CHROMA_FORMATS = (0, 1, 2)
_BAD_NAME = re.compile(r"[\x00-\x20\x7f-\uffff/\\?#%\"'<>]")
_GOP_SECONDS = re.compile(r"\+?(\d+(\.\d*)?|\.\d+)")


def _err(where: str, field: str, problem: str) -> ProfileError:
    return ProfileError(f"{where}: field {field!r}: {problem}" if field else f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Profile:
    """One output rendition. Validated on construction (``ProfileError`` on a bad value).

    ``bitrate`` is bit/s; ``fps`` 0 = pass-through, ``fps_den`` 0 = 1; ``gop_ms`` 0 = encoder
    default, -1 = intra-only; ``profile`` is "" or an H.264 profile name (case-insensitive on
    input, "none" = ""); ``encoder`` is "H.264", "HEVC", "VP8" or "VP9" ("" = "H.264").
    """

    name: str
    width: int
    height: int
    bitrate: int
    fps: int = 0
    fps_den: int = 0
    profile: str = ""
    gop_ms: int = 0
    encoder: str = "H.264"
    format: str = "mpegts"
    color_depth: int = 0
    chroma_format: int = 0
    quality: int = 0

    def __post_init__(self) -> None:
        where = f"profile {self.name!r}"
        for field in ("name", "profile", "encoder", "format"):
            if not isinstance(getattr(self, field), str):
                raise _err(where, field, f"expected a string, got {getattr(self, field)!r}")
        for field, lo, hi in (
            ("width", 1, MAX_DIMENSION),
            ("height", 1, MAX_DIMENSION),
            ("bitrate", 0, _INT32_MAX),
            ("fps", 0, _UINT32_MAX),
            ("fps_den", 0, _UINT32_MAX),
            ("gop_ms", -1, MAX_GOP_MS),
            ("quality", 0, _UINT32_MAX),
        ):
            value = getattr(self, field)
            if type(value) is not int or not lo <= value <= hi:
                raise _err(where, field, f"{value!r} is not an integer in [{lo}, {hi}]")
        if not self.name:
            raise _err(where, "name", "must be a non-empty string (it is signed)")
        if len(self.name) > MAX_NAME_CHARS or _BAD_NAME.search(self.name) or self.name[0] == ".":
            raise _err(
                where,
                "name",
                f"at most {MAX_NAME_CHARS} printable ASCII characters, no spaces, quotes or any "
                "of / \\ ? # % < >, not starting with '.' (names become URL path segments)",
            )
        if self.bitrate == 0 and self.quality == 0:
            raise _err(where, "bitrate", "must be > 0 (or set quality)")
        prof = "" if self.profile.lower() == "none" else self.profile.lower()
        if prof not in _ENCODER_PROFILES:
            raise _err(
                where, "profile", f"{self.profile!r} is not one of {_choices(_ENCODER_PROFILES)}"
            )
        object.__setattr__(self, "profile", prof)
        encoder = self.encoder or "H.264"
        if encoder not in _ENCODERS:
            raise _err(where, "encoder", f"{self.encoder!r} is not one of {_choices(_ENCODERS)}")
        object.__setattr__(self, "encoder", encoder)
        if self.format not in _FORMATS:
            raise _err(where, "format", f"{self.format!r} is not one of {_choices(_FORMATS)}")
        if self.color_depth not in _COLOR_DEPTHS:
            raise _err(where, "colorDepth", f"{self.color_depth!r} is not one of {_COLOR_DEPTHS}")
        if self.chroma_format not in _CHROMA_FORMATS:
            raise _err(where, "chromaFormat", f"{self.chroma_format!r} not in {_CHROMA_FORMATS}")

    @property
    def id(self) -> str:
        """First 4 bytes of keccak256(name) as 8 lowercase hex chars (the signed profile ID)."""
        return keccak256(self.name.encode()).hex()[:8]

    @property
    def framerate(self) -> Fraction | None:
        """Output frame rate, or None for pass-through."""
        return Fraction(self.fps, self.fps_den or 1) if self.fps else None

    def pixels_per_second(self, source_fps: float = 60.0) -> float:
        """Encoded pixels per second; pass-through profiles use ``source_fps`` (GL fee rule: 60)."""
        rate = self.framerate
        return self.width * self.height * (float(rate) if rate is not None else source_fps)

    def fee_tuple(self) -> tuple[int, int, int, int]:
        """(width, height, fps, fps_den) for the fee estimate (payments spec §8.2)."""
        return (self.width, self.height, self.fps, self.fps_den)

    def to_proto(self) -> net.VideoProfile:
        return net.VideoProfile(
            name=self.name,
            width=self.width,
            height=self.height,
            bitrate=self.bitrate,
            fps=self.fps,
            format=_FORMATS[self.format],
            fpsDen=self.fps_den,
            profile=_ENCODER_PROFILES[self.profile],
            gop=self.gop_ms,
            encoder=_ENCODERS[self.encoder],
            colorDepth=self.color_depth,
            chromaFormat=self.chroma_format,  # type: ignore[arg-type]
            quality=self.quality,
        )

    @classmethod
    def from_proto(cls, vp: net.VideoProfile) -> Profile:
        """Inverse of ``to_proto``; raises ``ProfileError`` on out-of-range wire values."""

        def key(table: Mapping[str, int], value: int, field: str) -> str:
            for k, v in table.items():
                if v == value:
                    return k
            raise _err(f"profile {vp.name!r}", field, f"unknown enum value {value}")

        return cls(
            name=vp.name,
            width=vp.width,
            height=vp.height,
            bitrate=vp.bitrate,
            fps=vp.fps,
            fps_den=vp.fpsDen,
            profile=key(_ENCODER_PROFILES, vp.profile, "profile"),
            gop_ms=vp.gop,
            encoder=key(_ENCODERS, vp.encoder, "encoder"),
            format=key(_FORMATS, vp.format, "format"),
            color_depth=vp.colorDepth,
            chroma_format=int(vp.chromaFormat),
            quality=vp.quality,
        )

    def to_json(self) -> dict[str, Any]:
        """go-livepeer JSON profile object (default values left out, except the basics)."""
        out: dict[str, Any] = {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "bitrate": self.bitrate,
        }
        optional: dict[str, Any] = {
            "fps": self.fps,
            "fpsDen": self.fps_den,
            "profile": self.profile,
            "gop": _gop_text(self.gop_ms),
            "encoder": "" if self.encoder == "H.264" else self.encoder,
            "format": "" if self.format == "mpegts" else self.format,
            "colorDepth": self.color_depth,
            "chromaFormat": self.chroma_format,
            "quality": self.quality,
        }
        out.update({k: v for k, v in optional.items() if v})
        return out


def _choices(table: Iterable[str]) -> str:
    return ", ".join(repr(k) for k in table)


def _gop_text(gop_ms: int) -> str:
    if gop_ms == -1:
        return "intra"
    return "" if gop_ms == 0 else format(Decimal(gop_ms) / Decimal(1000), "f")


def _preset(name: str, width: int, height: int, kbps: int, fps: int) -> Profile:
    return Profile(name=name, width=width, height=height, bitrate=kbps * 1000, fps=fps)


# lpms ffmpeg/videoprofile.go presets (spec §10.3). P144p25fps16x9 is not selectable by name in
# lpms; mediagw accepts it.
PRESETS: dict[str, Profile] = {
    p.name: p
    for p in (
        _preset("P720p60fps16x9", 1280, 720, 6000, 60),
        _preset("P720p30fps16x9", 1280, 720, 4000, 30),
        _preset("P720p25fps16x9", 1280, 720, 3500, 25),
        _preset("P720p30fps4x3", 960, 720, 3500, 30),
        _preset("P576p30fps16x9", 1024, 576, 1500, 30),
        _preset("P576p25fps16x9", 1024, 576, 1500, 25),
        _preset("P360p30fps16x9", 640, 360, 1200, 30),
        _preset("P360p25fps16x9", 640, 360, 1000, 25),
        _preset("P360p30fps4x3", 480, 360, 1000, 30),
        _preset("P240p30fps16x9", 426, 240, 600, 30),
        _preset("P240p25fps16x9", 426, 240, 600, 25),
        _preset("P240p30fps4x3", 320, 240, 600, 30),
        _preset("P144p30fps16x9", 256, 144, 400, 30),
        _preset("P144p25fps16x9", 256, 144, 400, 25),
    )
}

# JSON key (lower-cased, Go's encoding/json matches keys case-insensitively) -> (key, kind)
_KEYS = {
    k.lower(): k
    for k in (
        "name",
        "width",
        "height",
        "bitrate",
        "fps",
        "fpsDen",
        "profile",
        "gop",
        "encoder",
        "colorDepth",
        "chromaFormat",
        "quality",
        "format",
    )
}
_STRING_KEYS = {"name", "profile", "gop", "encoder", "format"}


def _parse_gop(text: str, where: str) -> int:
    if text == "":
        return 0
    if text == "intra":
        return -1
    if not _GOP_SECONDS.fullmatch(text):
        raise _err(
            where, "gop", f'{text!r} is not seconds as a decimal (like "2", "0.5") or "intra"'
        )
    try:
        ms = int(Decimal(text) * 1000)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise _err(where, "gop", f"cannot parse {text!r}") from None
    if Decimal(text) > 0 and ms == 0:
        raise _err(where, "gop", f"{text!r} s is below the 1 ms resolution of the wire format")
    if ms > MAX_GOP_MS:
        raise _err(where, "gop", f"{text!r} s is longer than {MAX_GOP_MS // 1000} s")
    return ms


def _parse_one(obj: Any, index: int) -> Profile:
    where = f"profiles[{index}]"
    if not isinstance(obj, Mapping):
        raise _err(where, "", f"expected a JSON object, got {type(obj).__name__}")
    raw = obj.get("name")
    if isinstance(raw, str) and raw:
        where = f"profiles[{index}] ({raw!r})"
    fields: dict[str, Any] = {}
    for key, value in obj.items():
        canon = _KEYS.get(str(key).lower())
        if canon is None:
            raise _err(where, str(key), f"unknown key; known keys: {', '.join(_KEYS.values())}")
        if canon in fields:
            raise _err(where, canon, "given twice (keys are case-insensitive)")
        if canon in _STRING_KEYS:
            if not isinstance(value, str):
                raise _err(where, canon, f"expected a string, got {json.dumps(value)}")
        elif type(value) is not int:
            raise _err(where, canon, f"expected an integer, got {json.dumps(value)}")
        elif value < 0:
            raise _err(where, canon, f"must not be negative, got {value}")
        fields[canon] = value
    for required in ("width", "height"):
        if required not in fields:
            raise _err(where, required, "missing")
    width, height, bitrate = fields["width"], fields["height"], fields.get("bitrate", 0)
    name = fields.get("name") or f"custom_{width}x{height}_{bitrate}"
    profile_name = fields.get("profile", "")
    if profile_name.lower() not in ("none", *_ENCODER_PROFILES):
        raise _err(
            where,
            "profile",
            f"{profile_name!r} is not one of "
            f"{_choices(['none', *_ENCODER_PROFILES])} (case-insensitive)",
        )
    encoder = fields.get("encoder", "")
    if encoder not in ("", *_ENCODERS):
        raise _err(
            where, "encoder", f"{encoder!r} is not one of {_choices(['', *_ENCODERS])} (exact)"
        )
    gop_ms = _parse_gop(fields.get("gop", ""), where)
    try:
        return Profile(
            name=name,
            width=width,
            height=height,
            bitrate=bitrate,
            fps=fields.get("fps", 0),
            fps_den=fields.get("fpsDen", 0),
            profile=profile_name,
            gop_ms=gop_ms,
            encoder=encoder,
            format=fields.get("format", "") or "mpegts",
            color_depth=fields.get("colorDepth", 0),
            chroma_format=fields.get("chromaFormat", 0),
            quality=fields.get("quality", 0),
        )
    except ProfileError as exc:
        message = str(exc)
        prefix = f"profile {name!r}: "
        raise ProfileError(f"{where}: {message.removeprefix(prefix)}") from None


def _check_ladder(profiles: Sequence[Profile], what: str) -> None:
    if not profiles:
        raise ProfileError(f"{what}: no profiles")
    if len(profiles) > MAX_PROFILES:
        raise ProfileError(f"{what}: {len(profiles)} profiles, at most {MAX_PROFILES} are allowed")
    seen: dict[str, int] = {}
    for i, p in enumerate(profiles):
        if p.name in seen:
            raise ProfileError(
                f"{what}: profiles[{i}] and profiles[{seen[p.name]}] are both named {p.name!r}; "
                "names must be unique (they key the rendition URLs)"
            )
        seen[p.name] = i


def parse_profiles_json(data: Any) -> list[Profile]:
    """Validate go-livepeer's JSON profile array (a parsed list, or JSON text) into Profiles."""
    if isinstance(data, str | bytes | bytearray):
        try:
            data = json.loads(data)
        except RecursionError:
            raise ProfileError("profiles: JSON nested too deeply") from None
        except ValueError as exc:
            raise ProfileError(f"profiles: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ProfileError(
            f"profiles: expected a JSON array of profile objects, got {type(data).__name__}"
        )
    if len(data) > MAX_PROFILES:
        raise ProfileError(f"profiles: {len(data)} profiles, at most {MAX_PROFILES} are allowed")
    profiles = [_parse_one(obj, i) for i, obj in enumerate(data)]
    _check_ladder(profiles, "profiles")
    return profiles


def _read_json_file(path: Path) -> list[Profile]:
    try:
        with path.open("rb") as f:
            content = f.read(MAX_PROFILE_FILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(content) > MAX_PROFILE_FILE_BYTES:
        raise ProfileError(f"{path}: larger than {MAX_PROFILE_FILE_BYTES} bytes")
    try:
        return parse_profiles_json(content)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}") from None


def parse_transcoding_options(value: str) -> list[Profile]:
    """``-transcodingOptions``: preset names separated by commas, or a path to a JSON file."""
    text = value.strip()
    if not text:
        raise ProfileError(
            "transcodingOptions is empty: give preset names (e.g. P240p30fps16x9,P360p30fps16x9) "
            "or the path of a JSON profile file"
        )
    path = Path(text)
    if path.is_file():
        return _read_json_file(path)
    if text.lower().endswith(".json") or "/" in text:
        raise ProfileError(f"transcodingOptions: no such file: {text}")
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ProfileError(
            f"transcodingOptions: unknown preset(s) {', '.join(map(repr, unknown))}; "
            f"known presets: {', '.join(PRESETS)}"
        )
    profiles = [PRESETS[n] for n in names]
    _check_ladder(profiles, "transcodingOptions")
    return profiles


def available_ladders(ladder_dir: Path | None = None) -> list[str]:
    """Names of the ladders in ``transcode_profiles/`` (file names without ``.json``)."""
    folder = ladder_dir or DEFAULT_LADDER_DIR
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_ladder(name_or_path: str, *, ladder_dir: Path | None = None) -> list[Profile]:
    """A named ladder (``default``, ``abr-720p``, ...) from ``transcode_profiles/``, or a file."""
    folder = ladder_dir or DEFAULT_LADDER_DIR
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name_or_path):
        named = folder / f"{name_or_path.removesuffix('.json')}.json"
        if named.is_file():
            return _read_json_file(named)
    path = Path(name_or_path)
    if path.is_file():
        return _read_json_file(path)
    raise ProfileError(
        f"ladder {name_or_path!r}: neither a named ladder "
        f"({', '.join(available_ladders(folder)) or 'none found'} in {folder}) nor a JSON file"
    )


def profiles_field(profiles: Sequence[Profile]) -> Literal[33, 34, 35]:
    """SegData field for these profiles (§5.3): 35 fullProfiles3 if any uses fpsDen, an encoder
    profile or a GOP; else 34 fullProfiles2 if any output is MP4; else 33 fullProfiles."""
    if any(p.fps_den != 0 or p.profile != "" or p.gop_ms != 0 for p in profiles):
        return 35
    if any(p.format == "mp4" for p in profiles):
        return 34
    return 33


def set_profiles(segdata: net.SegData, profiles: Sequence[Profile]) -> None:
    """Fill exactly the one fullProfiles* field §5.3 selects; clear the other two."""
    targets = {33: segdata.fullProfiles, 34: segdata.fullProfiles2, 35: segdata.fullProfiles3}
    for target in targets.values():
        del target[:]
    targets[profiles_field(profiles)].extend(p.to_proto() for p in profiles)
