"""Where the gateway may call out (webhooks, RTMP outputs): checked when a URL is saved, and
again when it is called.

Saving (``check_url``): http or https, no credentials, at most 2048 characters, and the host
must not be a loopback, private, link-local, multicast, unspecified or otherwise non-public
address (IPv4, IPv6, IPv4-mapped IPv6, ``localhost`` and ``*.localhost``) unless the operator
allows private webhooks. A DNS name is not resolved then: what it resolves to may change.

Calling (``refusal``, given to ``JsonPoster(refuse_address=...)``): every name the delivery
session looks up is checked after resolving, and the connection refused when any address of the
answer is not public, so a name
that later resolves to an internal address (DNS rebinding) is refused at the moment it is used,
with the very addresses the connection would use. IP literals never reach a resolver: the
dispatcher runs ``check_url`` again before each call.

RTMP outputs (multistream targets, ``?rtmpOutput=``, the live AI webhook's output) are pushed by
an FFmpeg process, which resolves the name itself: ``destination_refusal`` resolves it here just
before each connection and refuses when any address is not public (a decimal or hex spelling
such as ``2130706433`` resolves like the resolver FFmpeg uses would, to 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from .errors import InvalidInput

__all__ = ["MAX_URL", "address_refusal", "check_url", "destination_refusal", "refusal"]

MAX_URL = 2048
# every label a number (decimal, octal, hex): an IPv4 spelling resolvers accept (127.1, 0x7f.1)
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*$", re.IGNORECASE)
_ADVICE = "webhooks may only call public addresses (the operator may allow private ones)"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_refusal(address: str | IPAddress) -> str | None:
    """Why this IP address may not be called (``loopback``, ``private`` ...), None if public."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None if ip.is_global else "not global"


def _host_refusal(host: str) -> str | None:
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return None  # a DNS name: checked after resolving, when it is called
    return address_refusal(ip)


def check_url(url: object, *, allow_private: bool, field: str = "url") -> str:
    """``url`` if a webhook may call it, else InvalidInput naming ``field``."""
    if not isinstance(url, str) or not url:
        raise InvalidInput(field, "give the URL to call, http:// or https://")
    if len(url) > MAX_URL:
        raise InvalidInput(field, f"a webhook URL is at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput(field, "a webhook URL may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise InvalidInput(field, f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(field, "a webhook URL must start with http:// or https://")
    if "@" in parts.netloc:
        raise InvalidInput(
            field,
            "a webhook URL may not carry credentials (user:password@): sign with "
            "sharedSecret instead",
        )
    host = parts.hostname
    if not host:
        raise InvalidInput(field, "a webhook URL needs a host")
    if _NUMERIC_HOST.match(host.rstrip(".")) and not _is_ipv4(host):
        raise InvalidInput(field, f"{host} is not an IP address: write IPv4 as a.b.c.d")
    if not allow_private and (kind := _host_refusal(host)) is not None:
        raise InvalidInput(field, f"{host} is not a public address ({kind}): {_ADVICE}")
    return url


def _is_ipv4(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return False


def refusal(address: str) -> str | None:
    """Why a resolved address may not be called (for ``JsonPoster(refuse_address=...)``)."""
    kind = address_refusal(address)
    return None if kind is None else f"not a public address ({kind}): {_ADVICE}"


async def destination_refusal(url: str) -> str | None:
    """Why an outgoing connection to ``url``'s host may not be made (loopback, private ...),
    after resolving it; None if every address is public or the name does not resolve (the
    connection then fails by itself)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return None
    kind = _host_refusal(host) if host else "no host"
    if kind is None and host:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port or 1935, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            return None
        for *_, sockaddr in infos:
            kind = address_refusal(str(sockaddr[0]).split("%", 1)[0])
            if kind is not None:
                break
    if kind is None:
        return None
    return (
        f"{host} is not a public address ({kind}): outputs may only reach public addresses"
        " (the operator may allow private ones: -webhookAllowPrivate)"
    )
