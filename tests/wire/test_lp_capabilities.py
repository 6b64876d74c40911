"""Capability numbers, job capabilities wire form (§3.4) and the compatibility test."""

from __future__ import annotations

import pytest

from mediagw.livepeer.capabilities import (
    Capability,
    bits_of,
    bitstring,
    compatible,
    job_capabilities,
    parse_version,
)
from mediagw.livepeer.profiles import PRESETS, Profile
from mediagw.livepeer.proto import net

TS = [PRESETS["P240p30fps16x9"], PRESETS["P360p30fps16x9"]]
O_DEFAULT = bitstring([*range(13), 14, 26])  # go-livepeer DefaultCapabilities


def test_numbers() -> None:
    assert len(Capability) == 38
    assert [c.value for c in Capability] == list(range(38))
    assert int(Capability.AUTH_TOKEN) == 12 and int(Capability.SEGMENT_SLICING) == 26
    assert int(Capability.LIVE_VIDEO_TO_VIDEO) == 35 and int(Capability.BYOC) == 37


def test_bitstring_round_trip_and_limits() -> None:
    assert bitstring([]) == []
    assert bitstring([64]) == [0, 1]
    assert bits_of(bitstring([0, 63, 64, 130])) == {0, 63, 64, 130}
    with pytest.raises(ValueError):
        bitstring([-1])


def test_job_caps_wire_form_http_push_and_rtmp() -> None:
    push = job_capabilities(TS, segment_slicing=True)
    assert list(push.bitstring) == [67112963]
    assert list(push.mandatories) == [] and dict(push.capacities) == {} and push.version == ""
    assert push.HasField("constraints")
    assert push.constraints.minVersion == "" and len(push.constraints.PerCapability) == 0
    # constraints present on the wire (field 5, empty) even with nothing in it
    assert push.SerializeToString().endswith(b"\x2a\x00")
    rtmp = job_capabilities(TS, segment_slicing=False, min_version="0.8.0")
    assert list(rtmp.bitstring) == [4099]
    assert rtmp.constraints.minVersion == "0.8.0"


def test_job_caps_per_output_bits() -> None:
    ps = [
        Profile("a", 2, 2, 1, format="mp4", encoder="HEVC", fps=30000, fps_den=1001),
        Profile("b", 2, 2, 1, profile="h264baseline", gop_ms=-1),
        Profile("c", 2, 2, 1, encoder="VP9", profile="h264constrainedhigh"),
        Profile("d", 2, 2, 1, encoder="VP8", profile="h264main"),
        Profile("e", 2, 2, 1, profile="h264high"),
    ]
    caps = job_capabilities(ps, segment_slicing=False, verification=True, storage="s3")
    assert bits_of(caps.bitstring) == {0, 1, 2, 3, 5, 7, 8, 9, 10, 11, 12, 14, 16, 19, 20}


@pytest.mark.parametrize(
    ("codec", "pix", "bit"),
    [
        ("H.264", "", 0),
        ("H.264", "yuv420p", 0),
        ("HEVC", "", 15),
        ("VP8", "", 17),
        ("VP9", "", 18),
        ("H.264", "yuv444p", 21),
        ("H.264", "yuv422p", 22),
        ("H.264", "yuv444p10le", 23),
        ("H.264", "yuv422p10le", 24),
        ("H.264", "yuv420p10le", 25),
    ],
)
def test_job_caps_input_codec(codec: str, pix: str, bit: int) -> None:
    vp9_out = [Profile("v", 2, 2, 1, encoder="VP9")]  # an output that does not add bit 0
    caps = job_capabilities(
        vp9_out,
        segment_slicing=False,
        input_codec=codec,  # type: ignore[arg-type]
        input_pixel_format=pix,
    )
    assert bits_of(caps.bitstring) == {bit, 1, 12, 20}


def _orch(bits: list[int] | None = None, version: str = "0.9.1", **kw: object) -> net.Capabilities:
    o = net.Capabilities(bitstring=O_DEFAULT if bits is None else bitstring(bits), version=version)
    for k, v in kw.items():
        getattr(o, k).extend(v)
    return o


def test_compatible_basic() -> None:
    job = job_capabilities(TS, segment_slicing=True)
    assert compatible(job, _orch())
    assert not compatible(job, _orch([0, 1, 12]))  # no SegmentSlicing on O
    assert compatible(job_capabilities(TS, segment_slicing=False), _orch([0, 1, 12]))


def test_compatible_job_array_longer_than_orchestrators() -> None:
    job = net.Capabilities(bitstring=[4099, 0])
    assert not compatible(job, _orch())
    assert compatible(job, net.Capabilities(bitstring=[*O_DEFAULT, 0]))


def test_compatible_mandatories() -> None:
    job = job_capabilities(TS, segment_slicing=False)
    assert compatible(job, _orch(mandatories=[1 << 12]))
    assert not compatible(job, _orch(mandatories=[1 << 14]))  # O demands verification
    assert not compatible(job, _orch(mandatories=[0, 1]))  # a mandatory bit past the job's words


@pytest.mark.parametrize(
    ("min_version", "orch_version", "ok"),
    [
        ("", "", True),
        ("", "undefined", True),
        ("0.9.0", "0.9.1", True),
        ("0.9.1", "0.9.1", True),
        ("0.9.2", "0.9.1", False),
        ("0.9.1", "0.9.1-dev", True),  # pre-release ignored (go-livepeer's post-release suffixes)
        ("0.9.1-rc1", "0.9.1", True),
        ("0.9.1", "v0.9.1+abcdef", True),
        ("0.9", "0.9.0", True),
        ("1.0.0", "0.99.99", False),
        ("0.10.0", "0.9.9", False),
        ("0.9.0", "", False),
        ("0.9.0", "undefined", False),
        ("not-a-version", "0.9.1", True),  # go-livepeer: an unparsable minimum passes
        ("0.9.0", "garbage", False),
    ],
)
def test_compatible_min_version(min_version: str, orch_version: str, ok: bool) -> None:
    job = job_capabilities(TS, segment_slicing=False, min_version=min_version)
    assert compatible(job, _orch(version=orch_version)) is ok


def test_parse_version() -> None:
    assert parse_version("v1.2.3-rc.1+build.5") == (1, 2, 3)
    assert parse_version("7") == (7, 0, 0)
    assert parse_version("1.2.3.4") is None


def test_compatible_model_constraints() -> None:
    job = net.Capabilities(bitstring=bitstring([35]))
    want = job.constraints.PerCapability[35].models["model-a"]
    want.warm = True
    want.runnerVersion = "0.5.0"
    orch = net.Capabilities(bitstring=bitstring([35]), version="0.9.1")
    assert compatible(job, orch)  # no constraints on O for 35: go-livepeer assumes compatible
    have = orch.constraints.PerCapability[35].models["model-b"]
    assert not compatible(job, orch)  # model missing
    have = orch.constraints.PerCapability[35].models["model-a"]
    have.runnerVersion = "0.5.1"
    assert not compatible(job, orch)  # not warm
    have.warm = True
    assert compatible(job, orch)
    have.runnerVersion = "0.4.9"
    assert not compatible(job, orch)
    have.runnerVersion = ""
    assert not compatible(job, orch)
    want.runnerVersion = ""
    assert compatible(job, orch)


def test_legacy_orchestrator_without_capabilities() -> None:
    legacy_job = net.Capabilities(bitstring=bitstring([0, 1, 11]))
    assert compatible(legacy_job, None)
    assert compatible(legacy_job, net.OrchestratorInfo().capabilities)  # absent field
    assert not compatible(job_capabilities(TS, segment_slicing=False), None)  # needs bit 12
    pinned = net.Capabilities(bitstring=bitstring([0, 1]))
    pinned.constraints.minVersion = "0.9.0"
    assert not compatible(pinned, None)
