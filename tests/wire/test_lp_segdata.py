"""SegData construction (§5.2-5.4) and the Livepeer-Segment header."""

from __future__ import annotations

import asyncio
import base64
import threading

import pytest
from wire.lp_testkit import vector_key

from mediagw.eth.crypto import address_of, keccak256, recover_address, sign_digest
from mediagw.livepeer import segdata as segdata_mod
from mediagw.livepeer.capabilities import job_capabilities
from mediagw.livepeer.profiles import PRESETS, Profile
from mediagw.livepeer.proto import net
from mediagw.livepeer.segdata import build_segdata, flatten, segment_header

PROFILES = [PRESETS["P240p30fps16x9"], PRESETS["P360p30fps16x9"]]
CAPS = job_capabilities(PROFILES, segment_slicing=False)
TOKEN = net.AuthToken(token=b"\x01\x02hmac", session_id="deadbeef", expiration=1_900_000_000)


async def _sign(digest: bytes) -> bytes:
    return sign_digest(vector_key(), digest)


async def test_fields_and_signature() -> None:
    segment = b"\x47" + bytes(187) * 3
    seg = await build_segdata(
        manifest_id="stream-1",
        seq=42,
        segment=segment,
        duration_s=2.0005,
        profiles=PROFILES,
        capabilities=CAPS,
        auth_token=TOKEN,
        sign=_sign,
    )
    assert seg.manifestId == b"stream-1" and seg.seq == 42
    assert seg.hash == keccak256(segment)
    assert seg.profiles == b"invalid"
    assert seg.duration == 2000 or seg.duration == 2001
    assert seg.capabilities == CAPS
    assert seg.auth_token.SerializeToString() == TOKEN.SerializeToString()
    assert [p.name for p in seg.fullProfiles] == [p.name for p in PROFILES]
    assert not seg.fullProfiles2 and not seg.fullProfiles3
    assert not seg.HasField("segment_parameters")
    digest = keccak256(flatten("stream-1", 42, keccak256(segment), PROFILES))
    from coincurve import PrivateKey

    signer = address_of(PrivateKey(vector_key()).public_key)
    assert recover_address(digest, seg.sig) == signer


async def test_offchain_has_empty_signature_and_header_round_trips() -> None:
    seg = await build_segdata(
        manifest_id="m",
        seq=0,
        segment=b"",
        duration_s=0.0,
        profiles=[Profile("x", 2, 2, 1, gop_ms=1000)],
        capabilities=CAPS,
        auth_token=None,
        sign=None,
        clip_ms=(100, 1500),
        force_session_reinit=True,
        calc_perceptual_hash=True,
    )
    assert seg.sig == b"" and not seg.HasField("auth_token")
    assert len(seg.fullProfiles3) == 1
    assert getattr(seg.segment_parameters, "from") == 100 and seg.segment_parameters.to == 1500
    header = segment_header(seg)
    assert header.isascii() and len(header) % 4 == 0  # standard padded base64
    assert net.SegData.FromString(base64.b64decode(header, validate=True)) == seg


@pytest.mark.parametrize("duration", [-0.1, 300.001])
async def test_duration_limits(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        await build_segdata(
            manifest_id="m",
            seq=1,
            segment=b"x",
            duration_s=duration,
            profiles=PROFILES,
            capabilities=CAPS,
            auth_token=None,
            sign=None,
        )


async def test_a_hash_given_is_signed_as_is_and_a_bad_one_refused() -> None:
    """A retry passes the hash it already has: the same SegData as hashing again."""
    segment = b"\x47" + bytes(187) * 3
    kw = dict(manifest_id="m", seq=3, segment=segment, duration_s=2.0, profiles=PROFILES,
              capabilities=CAPS, auth_token=TOKEN, sign=_sign)  # fmt: skip
    hashed = await build_segdata(**kw)  # type: ignore[arg-type]
    given = await build_segdata(**kw, seg_hash=keccak256(segment))  # type: ignore[arg-type]
    assert given == hashed
    wrong = await build_segdata(**kw, seg_hash=bytes(32))  # type: ignore[arg-type]
    assert wrong.hash == bytes(32) and wrong.sig != hashed.sig
    with pytest.raises(ValueError, match="32 bytes"):
        await build_segdata(**kw, seg_hash=bytes(31))  # type: ignore[arg-type]


def test_flatten_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        flatten("m", -1, bytes(32), PROFILES)
    with pytest.raises(ValueError):
        flatten("m", 1, bytes(31), PROFILES)


async def test_big_segments_are_hashed_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real = segdata_mod.keccak256

    def spy(data: bytes) -> bytes:
        threads.append(threading.current_thread().name)
        return real(data)

    monkeypatch.setattr(segdata_mod, "keccak256", spy)
    big = bytes(segdata_mod.INLINE_HASH_BYTES + 1)
    assert await segdata_mod.segment_hash(big) == real(big)
    assert await segdata_mod.segment_hash(b"small") == real(b"small")
    main = threading.current_thread().name
    assert threads[0] != main and threads[1] == main
    await asyncio.sleep(0)
