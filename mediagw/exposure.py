"""Secure by default when exposed: who may publish, decided once from the settings.

A gateway that listens on a non-loopback RTMP or HTTP (WHIP, HTTP push, ``/start``) address and
can spend money (a local paying key, ``-ethKeystorePath``, or a remote signer) admits only
publishers with a known stream key (the store's, ``-streamKeys`` or the auth webhook) and only
``/start`` calls with an API key (or the live AI auth webhook's yes), unless the operator opts
into open ingest with ``-openIngest``. A loopback-only gateway and an off-chain one without a
remote signer keep the open default: it costs nothing and nobody else reaches it.
``-requireStreamKey`` asks for keys whatever the exposure.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from .config import Settings

__all__ = ["IngestPolicy", "ingest_policy", "is_loopback", "log_exposure"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs; a wildcard ("", 0.0.0.0, ::) is exposed."""
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a host name other than localhost: whatever it resolves to is exposed
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    keys_required: bool  # no open fallback: only known stream keys publish, /start needs a key
    message: str  # the start-up line saying which mode is in force and why
    warn: bool = False  # open on purpose (-openIngest) where keys would be required


def ingest_policy(settings: Settings) -> IngestPolicy:
    exposed = [
        addr
        for addr in (settings.rtmp_addr, settings.http_addr)
        if not is_loopback(Settings.split_addr(addr)[0])
    ]
    pays = (
        "a remote signer"
        if settings.remote_signer_url
        else "a local key"
        if settings.eth_keystore_path
        else ""
    )
    if settings.require_stream_key:
        return IngestPolicy(True, "ingest: keys required (-requireStreamKey)")
    if exposed and pays:
        where = ", ".join(exposed)
        if settings.open_ingest:
            return IngestPolicy(
                False,
                f"ingest: open (-openIngest): any publisher reaching {where} spends this"
                f" gateway's money ({pays} pays orchestrators)",
                warn=True,
            )
        return IngestPolicy(
            True,
            f"ingest: keys required (exposed on {where} and can pay orchestrators with {pays});"
            " -openIngest=true to allow any publisher",
        )
    why = "listening on loopback only" if not exposed else "off-chain: this gateway pays nothing"
    return IngestPolicy(False, f"ingest: {settings.auth_mode} ({why})")


def log_exposure(settings: Settings, log: logging.Logger) -> None:
    """At start-up: which ingest mode is in force and why; who may read ``/metrics``."""
    policy = ingest_policy(settings)
    (log.warning if policy.warn else log.info)(policy.message)
    if not settings.metrics_key and not is_loopback(Settings.split_addr(settings.http_addr)[0]):
        log.info(f"/metrics: this host's clients only ({settings.http_addr}, no -metricsKey)")
