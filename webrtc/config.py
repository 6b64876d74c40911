"""ICE settings: servers (none by default), host addresses, loopback, NAT 1:1 addresses.

No packet leaves the machine unless configured: the ICE server list is empty by default (aiortc
would otherwise fall back to a public Google STUN server, so we always pass an explicit list).

Host candidates: aioice gathers one UDP socket per local address it finds with ``ifaddr`` and
leaves 127.0.0.1 out. ``IceConfig.host_addresses`` (use exactly these) and ``allow_loopback``
(add 127.0.0.1) change that for one gathering only: aioice looks up its module-level
``get_host_addresses`` at call time, so :func:`gathering_scope` installs (once, on first use) a
wrapper that consults a ``ContextVar`` set for the duration of ``setLocalDescription``. Without a
scope, or with the default config, aioice behaves exactly as shipped.

Loopback-only hosts (containers, network namespaces, CI machines with only ``lo``): aioice finds
no address there and an answer would carry no candidate at all. :func:`loopback_fallback`, asked
once at start-up with :func:`detect_host_addresses`, then gives a config that gathers on
127.0.0.1, so clients on the same host still connect; with any other usable address it changes
nothing.

Port range: aioice 0.13 binds ephemeral ports (``local_addr=(address, 0)``) and has no setting
for a range; restrict the OS range (``net.ipv4.ip_local_port_range``) or open UDP broadly.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

LOOPBACK_V4 = "127.0.0.1"


@dataclass(frozen=True)
class IceServer:
    """One STUN/TURN server, as given to clients in ``Link`` headers and used by our peers."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def to_aiortc(self) -> RTCIceServer:
        return RTCIceServer(
            urls=list(self.urls), username=self.username, credential=self.credential
        )

    def link_values(self) -> list[str]:
        """``Link`` header values (RFC 9725 section 4.6), one per URL."""
        out = []
        for url in self.urls:
            value = f'<{url}>; rel="ice-server"'
            if self.username is not None and self.credential is not None:
                value += (
                    f'; username="{_quote(self.username)}"; credential="{_quote(self.credential)}"'
                    '; credential-type="password"'
                )
            out.append(value)
        return out


@dataclass(frozen=True)
class IceConfig:
    """ICE settings shared by WHIP ingest and WHEP egress.

    servers:         STUN/TURN servers (default none: host candidates only, nothing external).
    host_addresses:  gather host candidates on exactly these local addresses (empty: auto-detect
                     every interface address, as aioice does).
    allow_loopback:  also gather on 127.0.0.1 (tests, local development).
    nat_1to1_ips:    public addresses that map 1:1 (same port) to our host addresses, e.g. a
                     cloud VM's public IP; each host candidate of the answer is repeated with
                     these addresses (like pion's NAT1To1IPs / go-livepeer's LIVE_AI_NAT_IP).
    """

    servers: tuple[IceServer, ...] = ()
    host_addresses: tuple[str, ...] = ()
    allow_loopback: bool = False
    nat_1to1_ips: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for addr in (*self.host_addresses, *self.nat_1to1_ips):
            ipaddress.ip_address(addr)  # ValueError on a typo, at configuration time

    @classmethod
    def loopback(cls) -> IceConfig:
        """Loopback only: every packet stays on 127.0.0.1 (tests)."""
        return cls(host_addresses=(LOOPBACK_V4,))

    def rtc_configuration(self) -> RTCConfiguration:
        # iceServers=[] (never None: None means aiortc's default public STUN server).
        return RTCConfiguration(iceServers=[s.to_aiortc() for s in self.servers])

    def link_header_values(self) -> list[str]:
        return [v for s in self.servers for v in s.link_values()]

    @property
    def overrides_host_addresses(self) -> bool:
        return bool(self.host_addresses) or self.allow_loopback


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# --- host address selection for one gathering -------------------------------------------------

HostAddressFn = Callable[[bool, bool], list[str]]
_scope: ContextVar[IceConfig | None] = ContextVar("webrtc_ice_scope", default=None)
_original_get_host_addresses: HostAddressFn | None = None


def _scoped_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    assert _original_get_host_addresses is not None
    config = _scope.get()
    detected = _original_get_host_addresses(use_ipv4, use_ipv6)
    if config is None:
        return detected
    return select_host_addresses(config, detected, use_ipv4=use_ipv4, use_ipv6=use_ipv6)


def select_host_addresses(
    config: IceConfig, detected: list[str], *, use_ipv4: bool = True, use_ipv6: bool = True
) -> list[str]:
    """The addresses to gather on, given the ones aioice detected (pure, for tests)."""
    chosen = list(config.host_addresses) if config.host_addresses else list(detected)
    if config.allow_loopback and LOOPBACK_V4 not in chosen:
        chosen.append(LOOPBACK_V4)
    out = []
    for addr in chosen:
        version = ipaddress.ip_address(addr).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            out.append(addr)
    return out


def detect_host_addresses() -> list[str]:
    """The addresses aioice would gather on by itself (not 127.0.0.1, ::1 or link-local)."""
    detect = _original_get_host_addresses or aioice.ice.get_host_addresses
    return detect(True, True)


def loopback_fallback(config: IceConfig, detected: Sequence[str]) -> IceConfig | None:
    """The config to use instead of ``config`` when ``detected`` (see
    :func:`detect_host_addresses`) is empty and no host address is configured: loopback host
    candidates. None when ``config`` yields candidates as it is."""
    if config.overrides_host_addresses or detected:
        return None
    return replace(config, host_addresses=(LOOPBACK_V4,))


def _install_hook() -> None:
    global _original_get_host_addresses
    if _original_get_host_addresses is None:
        _original_get_host_addresses = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _scoped_host_addresses


@contextmanager
def gathering_scope(config: IceConfig) -> Iterator[None]:
    """Wrap ``await pc.setLocalDescription(...)`` so candidates follow ``config``."""
    if not config.overrides_host_addresses:
        yield
        return
    _install_hook()
    token = _scope.set(config)
    try:
        yield
    finally:
        _scope.reset(token)


# --- NAT 1:1 -------------------------------------------------------------------------------------

_CANDIDATE = re.compile(
    r"^a=candidate:(?P<foundation>\S+) (?P<component>\d+) (?P<transport>\S+) (?P<priority>\d+) "
    r"(?P<ip>\S+) (?P<port>\d+) typ host(?P<rest>.*)$"
)


def add_nat_candidates(sdp: str, public_ips: tuple[str, ...]) -> str:
    """Repeat every host candidate with each public address (same port, lower priority)."""
    if not public_ips:
        return sdp
    lines = sdp.split("\r\n")
    out: list[str] = []
    for line in lines:
        out.append(line)
        m = _CANDIDATE.match(line)
        if m is None:
            continue
        ip = m["ip"]
        try:
            if ip in public_ips or ipaddress.ip_address(ip).version != 4:
                continue
        except ValueError:  # a hostname (mDNS) candidate
            continue
        for n, public in enumerate(public_ips, start=1):
            priority = max(int(m["priority"]) - n, 1)
            out.append(
                f"a=candidate:{m['foundation'][:29]}n{n} {m['component']} {m['transport']} "
                f"{priority} {public} {m['port']} typ host{m['rest']}"
            )
    return "\r\n".join(out)
