"""Capabilities an orchestrator reports, and the compatibility test (transcode spec §3.3-3.4).

Bit n lives in ``bitstring[n // 64]`` at position ``n % 64``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mediagw.livepeer.proto import net

__all__ = [
    "DEFAULT_CAPABILITIES",
    "MANDATORY_CAPABILITIES",
    "bitstring",
    "compatible",
    "orchestrator_capabilities",
    "version_compatible",
]

# go-livepeer DefaultCapabilities: H264 .. AuthToken (0-12), MPEG7VideoSignature, SegmentSlicing
DEFAULT_CAPABILITIES = (*range(13), 14, 26)
MANDATORY_CAPABILITIES = (12,)  # AuthToken: a job without it is refused (MandatoryOCapabilities)


def bitstring(bits: Iterable[int]) -> list[int]:
    words: list[int] = []
    for bit in bits:
        index = bit // 64
        while len(words) <= index:
            words.append(0)
        words[index] |= 1 << (bit % 64)
    return words


def orchestrator_capabilities(version: str) -> net.Capabilities:
    """What this orchestrator reports: default bits, AuthToken mandatory, capacity 1 each."""
    caps = net.Capabilities(
        bitstring=bitstring(DEFAULT_CAPABILITIES),
        mandatories=bitstring(MANDATORY_CAPABILITIES),
        version=version,
    )
    for cap in DEFAULT_CAPABILITIES:
        caps.capacities[cap] = 1
    caps.constraints.SetInParent()
    return caps


def _semver(text: str) -> tuple[int, int, int] | None:
    core = text.strip().removeprefix("v").split("-", 1)[0].split("+", 1)[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    return numbers[0], numbers[1], numbers[2]


def version_compatible(minimum: str, version: str) -> bool:
    """isVersionCompatible: no minimum passes; "" / "undefined" fail; an unparsable minimum
    passes, an unparsable version fails; pre-release suffixes are ignored."""
    if not minimum:
        return True
    if version in ("", "undefined"):
        return False
    need = _semver(minimum)
    if need is None:
        return True
    have = _semver(version)
    return have is not None and have >= need


def _covers(words: Sequence[int], required: Sequence[int]) -> bool:
    """CapabilityString.CompatibleWith: (required AND words) == required, not longer."""
    if len(required) > len(words):
        return False
    return all(words[i] & req == req for i, req in enumerate(required))


def compatible(job: net.Capabilities | None, orch: net.Capabilities) -> bool:
    """Capabilities.CompatibleWith: may an orchestrator with ``orch`` take this job?"""
    if job is None:  # no capabilities sent: empty ones, which lack the mandatory AuthToken
        job = net.Capabilities()
    if not version_compatible(job.constraints.minVersion, orch.version):
        return False
    if not _covers(job.bitstring, orch.mandatories):
        return False
    for cap, wanted in job.constraints.PerCapability.items():
        if cap not in orch.constraints.PerCapability:
            continue  # no constraints on O's side: compatible
        have = orch.constraints.PerCapability[cap].models
        for model_id, model in wanted.models.items():
            if model_id not in have:
                return False
            offered = have[model_id]
            if model.warm and not offered.warm:
                return False
            if not version_compatible(model.runnerVersion, offered.runnerVersion):
                return False
    return _covers(orch.bitstring, job.bitstring)
