"""Profiles: presets, JSON validation, -transcodingOptions, ladders, the §5.3 field choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediagw.errors import ConfigError
from mediagw.livepeer.errors import ProfileError
from mediagw.livepeer.profiles import (
    MAX_PROFILES,
    PRESETS,
    Profile,
    available_ladders,
    load_ladder,
    parse_profiles_json,
    parse_transcoding_options,
    profiles_field,
    set_profiles,
)
from mediagw.livepeer.proto import net

# §10.3: name -> (width, height, kbit/s, fps)
TABLE = {
    "P720p60fps16x9": (1280, 720, 6000, 60),
    "P720p30fps16x9": (1280, 720, 4000, 30),
    "P720p25fps16x9": (1280, 720, 3500, 25),
    "P720p30fps4x3": (960, 720, 3500, 30),
    "P576p30fps16x9": (1024, 576, 1500, 30),
    "P576p25fps16x9": (1024, 576, 1500, 25),
    "P360p30fps16x9": (640, 360, 1200, 30),
    "P360p25fps16x9": (640, 360, 1000, 25),
    "P360p30fps4x3": (480, 360, 1000, 30),
    "P240p30fps16x9": (426, 240, 600, 30),
    "P240p25fps16x9": (426, 240, 600, 25),
    "P240p30fps4x3": (320, 240, 600, 30),
    "P144p30fps16x9": (256, 144, 400, 30),
    "P144p25fps16x9": (256, 144, 400, 25),
}

SPEC_EXAMPLE = (
    '[{"name":"ntsc-1080p","width":1920,"height":1080,"bitrate":5000000,"fps":30000,'
    '"fpsDen":1001,"profile":"h264high","gop":"2"},{"name":"highlight","width":160,'
    '"height":120,"bitrate":100000,"fps":1,"gop":"intra"}]'
)


def test_presets_match_the_spec_table() -> None:
    assert list(PRESETS) == list(TABLE)
    for name, (w, h, kbps, fps) in TABLE.items():
        p = PRESETS[name]
        assert (p.width, p.height, p.bitrate, p.fps) == (w, h, kbps * 1000, fps)
        assert (p.fps_den, p.profile, p.gop_ms, p.encoder, p.format) == (
            0,
            "",
            0,
            "H.264",
            "mpegts",
        )


def test_spec_example_parses_and_needs_field_35() -> None:
    a, b = parse_profiles_json(SPEC_EXAMPLE)
    assert (a.name, a.fps, a.fps_den, a.profile, a.gop_ms) == (
        "ntsc-1080p",
        30000,
        1001,
        "h264high",
        2000,
    )
    assert (b.name, b.gop_ms, b.fps) == ("highlight", -1, 1)
    assert profiles_field([a, b]) == 35
    vp = a.to_proto()
    assert (vp.profile, vp.gop, vp.fpsDen, vp.bitrate) == (
        net.VideoProfile.H264_HIGH,
        2000,
        1001,
        5000000,
    )
    assert b.to_proto().gop == -1


def test_unnamed_profile_gets_custom_name() -> None:
    (p,) = parse_profiles_json([{"width": 320, "height": 240, "bitrate": 250000}])
    assert p.name == "custom_320x240_250000"
    assert p.to_proto().name == p.name  # the signed name is the sent name


def test_case_rules() -> None:
    (p,) = parse_profiles_json(
        [{"Name": "x", "WIDTH": 2, "height": 2, "bitrate": 1, "profile": "H264ConstrainedHigh"}]
    )
    assert p.profile == "h264constrainedhigh"
    (q,) = parse_profiles_json(
        [{"name": "y", "width": 2, "height": 2, "bitrate": 1, "profile": "None"}]
    )
    assert q.profile == "" and profiles_field([q]) == 33
    for enc, wire in (("", 0), ("H.264", 0), ("HEVC", 1), ("VP8", 2), ("VP9", 3)):
        (r,) = parse_profiles_json(
            [{"name": "z", "width": 2, "height": 2, "bitrate": 1, "encoder": enc}]
        )
        assert r.to_proto().encoder == wire


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"name": "a", "height": 2, "bitrate": 1},
            r"profiles\[0\] \('a'\): field 'width': missing",
        ),
        ({"name": "a", "width": "2", "height": 2, "bitrate": 1}, r"'width': expected an integer"),
        ({"name": "a", "width": 2.0, "height": 2, "bitrate": 1}, r"'width': expected an integer"),
        ({"name": "a", "width": True, "height": 2, "bitrate": 1}, r"'width': expected an integer"),
        ({"name": "a", "width": -2, "height": 2, "bitrate": 1}, r"'width': must not be negative"),
        ({"name": "a", "width": 0, "height": 2, "bitrate": 1}, r"'width': 0 is not an integer in"),
        ({"name": "a", "width": 2, "height": 2}, r"'bitrate': must be > 0"),
        ({"name": "a", "width": 2, "height": 2, "bitrate": 2**31}, r"'bitrate'"),
        (
            {"name": "a", "width": 2, "height": 2, "bitrate": 1, "gop": 2},
            r"'gop': expected a string",
        ),
        (
            {"name": "a", "width": 2, "height": 2, "bitrate": 1, "gop": "2s"},
            r"^profiles\[0\] \('a'\): field 'gop': '2s' is not seconds",
        ),
        ({"name": "a", "width": 2, "height": 2, "bitrate": 1, "gop": "-1"}, r"'gop'"),
        ({"name": "a", "width": 2, "height": 2, "bitrate": 1, "gop": "0.0001"}, r"1 ms resolution"),
        (
            {"name": "a", "width": 2, "height": 2, "bitrate": 1, "profile": "high"},
            r"'profile': 'high'",
        ),
        (
            {"name": "a", "width": 2, "height": 2, "bitrate": 1, "encoder": "h264"},
            r"'encoder': 'h264'",
        ),
        ({"name": "a", "width": 2, "height": 2, "bitrate": 1, "colorDepth": 3}, r"'colorDepth'"),
        (
            {"name": "a", "width": 2, "height": 2, "bitrate": 1, "chromaFormat": 3},
            r"'chromaFormat'",
        ),
        ({"name": "a", "width": 2, "height": 2, "bitrate": 1, "format": "webm"}, r"'format'"),
        (
            {"name": "a", "width": 2, "height": 2, "bitrate": 1, "bitRate": 1},
            r"'bitrate': given twice",
        ),
        ({"name": "a", "width": 2, "height": 2, "bitrate": 1, "fsp": 30}, r"'fsp': unknown key"),
        ({"name": "a b", "width": 2, "height": 2, "bitrate": 1}, r"'name'"),
        ({"name": "../x", "width": 2, "height": 2, "bitrate": 1}, r"'name'"),
        ({"name": 7, "width": 2, "height": 2, "bitrate": 1}, r"'name': expected a string"),
        ("P240p30fps16x9", r"profiles\[0\]: expected a JSON object"),
    ],
)
def test_json_validation_errors(data: Any, expected: str) -> None:
    with pytest.raises(ProfileError, match=expected) as info:
        parse_profiles_json([data])
    assert isinstance(info.value, ConfigError)


def test_error_names_the_index_of_the_bad_profile() -> None:
    good = {"name": "ok", "width": 2, "height": 2, "bitrate": 1}
    with pytest.raises(ProfileError, match=r"profiles\[1\] \('bad'\): field 'fps'"):
        parse_profiles_json(
            [good, {"name": "bad", "width": 2, "height": 2, "bitrate": 1, "fps": 1.5}]
        )


def test_ladder_level_errors() -> None:
    p = {"name": "same", "width": 2, "height": 2, "bitrate": 1}
    with pytest.raises(ProfileError, match="both named 'same'"):
        parse_profiles_json([p, p])
    with pytest.raises(ProfileError, match="no profiles"):
        parse_profiles_json([])
    with pytest.raises(ProfileError, match="expected a JSON array"):
        parse_profiles_json({"profiles": []})
    with pytest.raises(ProfileError, match="not valid JSON"):
        parse_profiles_json("[{")
    many = [
        {"name": f"p{i}", "width": 2, "height": 2, "bitrate": 1} for i in range(MAX_PROFILES + 1)
    ]
    with pytest.raises(ProfileError, match=f"at most {MAX_PROFILES}"):
        parse_profiles_json(many)


def test_transcoding_options_presets() -> None:
    got = parse_transcoding_options(" P240p30fps16x9, P360p30fps16x9 ,")
    assert [p.name for p in got] == ["P240p30fps16x9", "P360p30fps16x9"]
    assert parse_transcoding_options("P144p25fps16x9")[0].fps == 25
    with pytest.raises(
        ProfileError, match=r"unknown preset\(s\) 'P1080p'.*known presets: P720p60fps16x9"
    ):
        parse_transcoding_options("P240p30fps16x9,P1080p")
    with pytest.raises(ProfileError, match="is empty"):
        parse_transcoding_options("  ")
    with pytest.raises(ProfileError, match="no such file"):
        parse_transcoding_options("/nonexistent/ladder.json")


def test_transcoding_options_json_file(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text(SPEC_EXAMPLE)
    assert [p.name for p in parse_transcoding_options(str(f))] == ["ntsc-1080p", "highlight"]
    f.write_text('[{"name": "x", "width": 2}]')
    with pytest.raises(ProfileError, match=rf"{f}: profiles\[0\] \('x'\): field 'height': missing"):
        parse_transcoding_options(str(f))


def test_named_ladders() -> None:
    names = available_ladders()
    assert {"default", "abr-720p", "low-latency-mobile"} <= set(names)
    for name in names:
        assert load_ladder(name)
    default = load_ladder("default")
    assert default == [PRESETS["P240p30fps16x9"], PRESETS["P360p30fps16x9"]]
    assert [(p.width, p.height) for p in load_ladder("abr-720p")] == [
        (1280, 720),
        (854, 480),
        (640, 360),
        (426, 240),
    ]
    assert profiles_field(load_ladder("low-latency-mobile")) == 35
    with pytest.raises(ProfileError, match="neither a named ladder"):
        load_ladder("no-such-ladder")


def test_ladder_file_path_and_validation(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_text(
        json.dumps([{"name": "a", "width": 4, "height": 4, "bitrate": 9}])
    )
    assert load_ladder("mine", ladder_dir=tmp_path)[0].bitrate == 9
    assert load_ladder(str(tmp_path / "mine.json"))[0].name == "a"
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(ProfileError, match=r"bad.json: profiles\[0\]: expected a JSON object"):
        load_ladder("bad", ladder_dir=tmp_path)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, 33),
        ({"format": "mp4"}, 34),
        ({"fps_den": 1001}, 35),
        ({"profile": "h264main"}, 35),
        ({"gop_ms": 2000}, 35),
        ({"gop_ms": -1}, 35),
        ({"format": "mp4", "gop_ms": -1}, 35),
        ({"encoder": "HEVC"}, 33),  # codec is not part of the rule
    ],
)
def test_profiles_field(changes: dict[str, Any], field: int) -> None:
    base = PRESETS["P240p30fps16x9"]
    other = Profile(**{**_fields(base), "name": "other", **changes})
    assert profiles_field([base, other]) == field
    seg = net.SegData()
    seg.fullProfiles3.add(name="stale")
    set_profiles(seg, [base, other])
    filled = {33: len(seg.fullProfiles), 34: len(seg.fullProfiles2), 35: len(seg.fullProfiles3)}
    assert filled == {f: (2 if f == field else 0) for f in (33, 34, 35)}


def _fields(p: Profile) -> dict[str, Any]:
    return {k: getattr(p, k) for k in Profile.__dataclass_fields__}


def test_proto_and_json_round_trips() -> None:
    for p in [*PRESETS.values(), *parse_profiles_json(SPEC_EXAMPLE)]:
        assert Profile.from_proto(p.to_proto()) == p
        assert parse_profiles_json([p.to_json()]) == [p]
    odd = Profile(
        "o", 2, 2, 1, gop_ms=12345, format="mp4", color_depth=2, chroma_format=1, quality=20
    )
    assert parse_profiles_json([odd.to_json()]) == [odd]
    assert odd.to_json()["gop"] == "12.345"


def test_helpers() -> None:
    p = PRESETS["P720p30fps16x9"]
    assert p.pixels_per_second() == 1280 * 720 * 30
    assert Profile("pt", 4, 4, 1).pixels_per_second() == 4 * 4 * 60  # pass-through: 60 fps
    ntsc = Profile("n", 2, 2, 1, fps=30000, fps_den=1001)
    assert str(ntsc.framerate) == "30000/1001"
    assert ntsc.fee_tuple() == (2, 2, 30000, 1001)
