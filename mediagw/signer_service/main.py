"""``run_signer(argv)``: the remote signer from go-livepeer-like flags (live-AI spec §10.1).

Both ``-flag`` and ``--flag`` work, and boolean flags also take ``=true``/``=false``. The key comes
from ``-ethKeystorePath``/``-ethPassword``, or ``-devKey`` makes a throwaway key for development.
A listen address that is not loopback is refused without ``-remoteSignerWebhookUrl`` unless
``-remoteSignerAllowNoAuth`` is given (anybody reaching the port could spend the deposit).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
import time
from collections.abc import Sequence
from fractions import Fraction

from mediagw.errors import ConfigError
from mediagw.eth.crypto import checksum
from mediagw.livepeer.rpc import normalize_orch_addr
from mediagw.payments.chain import JsonRpcChain
from mediagw.payments.params import DEFAULT_MAX_TICKET_EV, DEFAULT_MAX_TOTAL_EV
from mediagw.payments.signer import LocalSigner, load_keystore_async
from mediagw.pool.prices import PriceCaps
from mediagw.pool.sources import Source, StaticSource, WebhookSource
from mediagw.signals import wait_for_stop_signal

from .app import SignerServer
from .config import DEFAULT_PORT, SignerConfig

__all__ = [
    "build_config",
    "is_loopback",
    "parse_args",
    "parse_duration",
    "parse_header_list",
    "run_signer",
]

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "t", "true", "yes"):
        return True
    if value in ("0", "f", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean")


def _flag(p: argparse.ArgumentParser, name: str, **kwargs: object) -> None:
    p.add_argument(f"-{name}", f"--{name}", dest=name, **kwargs)  # type: ignore[arg-type]


def _switch(p: argparse.ArgumentParser, name: str, help: str) -> None:
    _flag(p, name, nargs="?", const=True, default=False, type=_bool, help=help)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mediagw signer",
        description="Livepeer remote signer: holds the ETH key, signs live payments for gateways",
        allow_abbrev=False,
        add_help=False,
    )
    p.add_argument("-h", "-help", "--help", action="help", help="show this help and exit")
    _flag(p, "httpAddr", default=f"127.0.0.1:{DEFAULT_PORT}", help="listen HOST:PORT")
    _switch(p, "remoteSigner", "accepted for go-livepeer compatibility (always on)")
    _flag(p, "ethKeystorePath", default="", help="keystore file or directory")
    _flag(p, "ethPassword", default="", help="keystore password, or a file holding it")
    _flag(p, "ethAcctAddr", default="", help="account to pick from a keystore directory")
    _switch(p, "devKey", "development only: sign with a throwaway key")
    _flag(p, "ethUrl", default="", help="Arbitrum JSON-RPC URL (ticket params expiry checks)")
    _flag(p, "remoteSignerWebhookUrl", default="", help="auth webhook for every payment")
    _flag(p, "remoteSignerWebhookHeaders", default="", help="'k:v,k2:v2' sent to the webhook")
    _switch(p, "remoteSignerAllowNoAuth", "allow a non-loopback address without a webhook")
    _flag(p, "maxPricePerUnit", default="0", help="max price in wei per pixelsPerUnit (0: none)")
    _flag(p, "pixelsPerUnit", default="1")
    _flag(p, "maxPricePerCapability", default="", help="JSON (inline or file) per pipeline/model")
    _flag(p, "maxTicketEV", default=str(DEFAULT_MAX_TICKET_EV), help="wei")
    _flag(p, "maxTotalEV", default=str(DEFAULT_MAX_TOTAL_EV), help="wei")
    _switch(p, "remoteDiscovery", "serve GET /discover-orchestrators")
    _flag(p, "orchAddr", default="", help="comma-separated orchestrators for discovery")
    _flag(p, "orchWebhookUrl", default="", help="orchestrator list webhook for discovery")
    _flag(p, "liveAICapReportInterval", default="25m", help="discovery refresh (Go duration)")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    try:
        return _parser().parse_args(list(argv))
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise ConfigError("bad signer flags (see --help)") from None


def parse_duration(text: str) -> float:
    """A Go duration (``25m``, ``1h30m``, ``500ms``) in seconds."""
    value = text.strip()
    if not value or _DURATION_RE.sub("", value):
        raise ConfigError(f"{text!r} is not a duration such as 25m, 30s or 1h")
    return sum(float(n) * _UNITS[u] for n, u in _DURATION_RE.findall(value))


def parse_header_list(text: str, flag: str = "-remoteSignerWebhookHeaders") -> dict[str, str]:
    """``'k:v,k2:v2'`` -> {k: v}; an entry without ``:`` is a ConfigError."""
    headers: dict[str, str] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        name, sep, value = entry.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"{flag}: {entry!r} is not name:value")
        headers[name.strip()] = value.strip()
    return headers


def _wei(text: str, flag: str) -> Fraction:
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{flag}: {text!r} is not a wei amount") from None
    if value <= 0:
        raise ConfigError(f"{flag}: must be > 0")
    return value


def _split_addr(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"-httpAddr: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def build_config(args: argparse.Namespace) -> SignerConfig:
    host, port = _split_addr(args.httpAddr)
    webhook = args.remoteSignerWebhookUrl.strip()
    if not is_loopback(host) and not webhook and not args.remoteSignerAllowNoAuth:
        raise ConfigError(
            f"-httpAddr {args.httpAddr} is not a loopback address: set -remoteSignerWebhookUrl"
            " to authorize payments, or -remoteSignerAllowNoAuth to run without authorization"
        )
    if args.ethKeystorePath:
        address = None
        if args.ethAcctAddr:
            try:
                address = bytes.fromhex(args.ethAcctAddr.removeprefix("0x"))
            except ValueError:
                raise ConfigError("-ethAcctAddr is not an address") from None
        signer = await load_keystore_async(args.ethKeystorePath, args.ethPassword, address=address)
    elif args.devKey:
        signer = LocalSigner(os.urandom(32))
    else:
        raise ConfigError("no key: give -ethKeystorePath and -ethPassword (or -devKey)")
    sources: list[Source] = []
    if args.orchAddr:
        sources.append(StaticSource(args.orchAddr.split(","), normalize_orch_addr))
    if args.orchWebhookUrl:
        sources.append(
            WebhookSource(args.orchWebhookUrl, clock=time.monotonic, normalize=normalize_orch_addr)
        )
    if args.remoteDiscovery and not sources:
        raise ConfigError("-remoteDiscovery needs -orchAddr or -orchWebhookUrl")
    return SignerConfig(
        signer=signer,
        host=host,
        port=port,
        caps=PriceCaps.from_flags(
            args.maxPricePerUnit, args.pixelsPerUnit, args.maxPricePerCapability
        ),
        max_ticket_ev=_wei(args.maxTicketEV, "-maxTicketEV"),
        max_total_ev=_wei(args.maxTotalEV, "-maxTotalEV"),
        webhook_url=webhook,
        webhook_headers=parse_header_list(args.remoteSignerWebhookHeaders),
        discovery=bool(args.remoteDiscovery),
        sources=sources,
        discovery_interval=parse_duration(args.liveAICapReportInterval),
        chain=JsonRpcChain(args.ethUrl) if args.ethUrl else None,
    )


async def run_signer(argv: list[str]) -> int:
    """Run until SIGINT/SIGTERM. Returns the process exit code (2: bad configuration)."""
    try:
        config = await build_config(parse_args(argv))
        server = SignerServer(config)
        await server.start()
    except ConfigError as exc:
        print(f"mediagw signer: {exc}", file=sys.stderr)
        return 2
    chain = config.chain
    if isinstance(chain, JsonRpcChain):
        chain.start()
    print(f"signer listening on {server.url}, address {checksum(server.address)}", flush=True)
    try:
        await wait_for_stop_signal()
    finally:
        await server.stop()
        if isinstance(chain, JsonRpcChain):
            await chain.aclose()
    return 0
