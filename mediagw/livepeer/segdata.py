"""SegData: the signed description of a segment sent in ``Livepeer-Segment`` (spec §5.2-5.4).

The signature covers the "flatten" bytes: manifest ID ‖ pad32(seq) ‖ keccak256(segment) ‖ the
ASCII hex profile IDs, and the profile names signed are exactly the names sent.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence

from ..eth.crypto import keccak256
from .profiles import Profile, set_profiles
from .proto import net

__all__ = [
    "MAX_DURATION_MS",
    "Signer",
    "build_segdata",
    "flatten",
    "segment_hash",
    "segment_header",
]

Signer = Callable[[bytes], Awaitable[bytes]]  # 32-byte digest -> 65-byte personal-sign signature

MAX_DURATION_MS = 300_000  # O rejects durations above 5 minutes ("invalid duration")
INLINE_HASH_BYTES = 256 * 1024  # larger segments are hashed in a worker thread


def flatten(manifest_id: str, seq: int, seg_hash: bytes, profiles: Sequence[Profile]) -> bytes:
    """go-livepeer ``SegTranscodingMetadata.Flatten``: the bytes SegData.sig signs."""
    if not 0 <= seq < 2**256:
        raise ValueError(f"segment seq {seq} must be a non-negative integer")
    if len(seg_hash) != 32:
        raise ValueError("segment hash must be 32 bytes")
    ids = "".join(p.id for p in profiles)
    return manifest_id.encode() + seq.to_bytes(32, "big") + seg_hash + ids.encode("ascii")


async def segment_hash(segment: bytes) -> bytes:
    """keccak256 of the segment; big segments are hashed off the event loop."""
    if len(segment) <= INLINE_HASH_BYTES:
        return keccak256(segment)
    return await asyncio.to_thread(keccak256, segment)


async def build_segdata(
    *,
    manifest_id: str,
    seq: int,
    segment: bytes,
    duration_s: float,
    profiles: Sequence[Profile],
    capabilities: net.Capabilities,
    auth_token: net.AuthToken | None,
    sign: Signer | None,
    calc_perceptual_hash: bool = False,
    force_session_reinit: bool = False,
    clip_ms: tuple[int, int] | None = None,
    seg_hash: bytes | None = None,
) -> net.SegData:
    """The SegData for one segment (§5.2). ``sign`` None = off-chain: empty signature.

    ``auth_token`` is O's token from the latest OrchestratorInfo, copied byte for byte.
    ``clip_ms`` (from, to) fills ``segment_parameters``. ``seg_hash``: the segment's keccak256
    when the caller already has it (a retry of the same segment on another orchestrator).
    """
    if not profiles:
        raise ValueError("a segment needs at least one output profile")
    duration_ms = round(duration_s * 1000)
    if not 0 <= duration_ms <= MAX_DURATION_MS:
        raise ValueError(
            f"segment duration {duration_s} s outside [0, {MAX_DURATION_MS // 1000}] s"
        )
    if seg_hash is None:
        seg_hash = await segment_hash(segment)
    elif len(seg_hash) != 32:
        raise ValueError("segment hash must be 32 bytes")
    seg = net.SegData(
        manifestId=manifest_id.encode(),
        seq=seq,
        hash=seg_hash,
        profiles=b"invalid",
        duration=duration_ms,
        calc_perceptual_hash=calc_perceptual_hash,
        ForceSessionReinit=force_session_reinit,
    )
    seg.capabilities.CopyFrom(capabilities)
    if auth_token is not None:
        seg.auth_token.CopyFrom(auth_token)
    if clip_ms is not None:
        start, end = clip_ms
        if not 0 <= start <= end:
            raise ValueError(f"clip {clip_ms} must satisfy 0 <= from <= to")
        setattr(seg.segment_parameters, "from", start)
        seg.segment_parameters.to = end
    set_profiles(seg, profiles)
    if sign is not None:
        seg.sig = await sign(keccak256(flatten(manifest_id, seq, seg_hash, profiles)))
    return seg


def segment_header(segdata: net.SegData) -> str:
    """``Livepeer-Segment`` header value: standard padded base64 of the serialized SegData."""
    return base64.b64encode(segdata.SerializeToString()).decode("ascii")
