"""Shared helpers for the pool tests: a fake clock and OrchestratorInfo builders."""

from __future__ import annotations

from mediagw.livepeer.candidates import Candidate
from mediagw.livepeer.proto import net
from mediagw.pool import OrchSession


def make_info(
    transcoder: str = "https://o1:8935",
    *,
    price: tuple[int, int] | None = None,
    address: bytes = b"",
    bits: int = 0b1_0000_0000_0011,  # H264, MPEGTS, AuthToken
    session_id: str = "abcd0123",
    expiration: int = 10_000,
    expiration_block: int | None = None,
) -> net.OrchestratorInfo:
    info = net.OrchestratorInfo(transcoder=transcoder, address=address)
    info.capabilities.bitstring.append(bits)
    info.auth_token.session_id = session_id
    info.auth_token.expiration = expiration
    info.auth_token.token = b"tok"
    if price is not None:
        info.price_info.pricePerUnit, info.price_info.pixelsPerUnit = price
    if expiration_block is not None:
        info.ticket_params.expiration_block = expiration_block.to_bytes(8, "big").lstrip(b"\0")
    return info


def subset_compatible(job: net.Capabilities, orch: net.Capabilities) -> bool:
    """Check 4 of transcode spec §3.4 only: the job's bits are a subset of O's."""
    if len(job.bitstring) > len(orch.bitstring):
        return False
    return all(j & o == j for j, o in zip(job.bitstring, orch.bitstring, strict=False))


def job_caps(bits: int = 0b1_0000_0000_0011) -> net.Capabilities:
    caps = net.Capabilities()
    caps.bitstring.append(bits)
    return caps


def session(
    name: str, *, region: str = "", latency: float = 0.1, trusted: bool = True
) -> OrchSession:
    url = f"https://{name}:8935"
    return OrchSession(
        url,
        make_info(transcoder=f"https://{name}-t:8935"),
        discovery_latency=latency,
        region=region,
        trusted=trusted,
    )


def candidate(name: str, *, region: str = "", score: float = 1.0) -> Candidate:
    return Candidate(f"https://{name}:8935", score, region)
