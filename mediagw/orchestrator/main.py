"""``run_orchestrator(argv)``: the reference orchestrator from go-livepeer-like flags.

Both ``-flag`` and ``--flag`` work. ``-httpAddr`` is where to listen (``http://host:port`` =
plaintext with h2c); ``-serviceAddr`` is the host:port gateways are told to use (default: the
listen address). ``-priced`` runs in priced (on-chain-like) mode with a throwaway key unless
``-ethKeystorePath`` gives one. ``-liveModels noop,invert,tint:false`` turns on live
video-to-video with those models (``:false`` = cold; default warm). ``-livePricePerUnit 10`` prices
every live model at 10 wei per ``-pixelsPerUnit`` pixels, ``-livePricePerUnit 10,tint=25`` gives
``tint`` its own price; a model without one costs ``-pricePerUnit`` (go-livepeer's fallback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from mediagw.errors import ConfigError
from mediagw.eth.account import account_api

from ..signals import wait_for_stop_signal
from .config import DEFAULT_PORT, DEFAULT_TICKET_EV, Faults, OrchestratorConfig
from .server import ReferenceOrchestrator

__all__ = [
    "build_config",
    "parse_args",
    "parse_live_models",
    "parse_live_prices",
    "run_orchestrator",
]


def _flag(parser: argparse._ActionsContainer, name: str, **kwargs: object) -> None:
    parser.add_argument(f"-{name}", f"--{name}", dest=name, **kwargs)  # type: ignore[arg-type]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mediagw orchestrator",
        description="Reference Livepeer orchestrator (CPU transcoding) for development and tests",
        allow_abbrev=False,
        add_help=False,
    )
    p.add_argument("-h", "-help", "--help", action="help", help="show this help and exit")
    _flag(p, "httpAddr", default=f"127.0.0.1:{DEFAULT_PORT}", help="listen HOST:PORT or http://")
    _flag(p, "serviceAddr", default="", help="HOST:PORT gateways use (default: httpAddr)")
    _flag(p, "datadir", default="", help="work directory for cert.pem / key.pem")
    _flag(p, "priced", action="store_true", help="priced mode (throwaway key unless a keystore)")
    _flag(p, "ethKeystorePath", default="", help="keystore file or directory (priced mode)")
    _flag(p, "ethPassword", default="", help="keystore password, or a file holding it")
    _flag(p, "pricePerUnit", type=int, default=0, help="wei per pixelsPerUnit pixels")
    _flag(p, "pixelsPerUnit", type=int, default=1)
    _flag(p, "ticketEV", type=int, default=DEFAULT_TICKET_EV, help="ticket EV in wei")
    _flag(p, "maxSessions", type=int, default=10)
    _flag(p, "gasPrice", type=int, default=0, help="stand-in chain gas price (wei)")
    _flag(p, "transcodeWorkers", type=int, default=2)
    _flag(p, "x264Preset", default="veryfast")
    _flag(p, "instant", action="store_true", help="benchmarks: no transcoding, answer at once")
    live = p.add_argument_group("live video-to-video (capability 35)")
    _flag(live, "liveModels", default="", help="MODEL[:warm],... e.g. noop,invert,tint:false")
    _flag(
        live,
        "livePricePerUnit",
        default="",
        help="wei per pixelsPerUnit pixels for live models: PRICE (all) and/or MODEL=PRICE,... "
        "e.g. 10,tint=25 (default: -pricePerUnit)",
    )
    _flag(live, "liveCapacity", type=int, default=2, help="sessions per model at once")
    _flag(live, "livePaymentInterval", type=float, default=5.0, help="seconds between debits")
    _flag(live, "liveStatusInterval", type=float, default=10.0, help="seconds between status")
    faults = p.add_argument_group("fault injection (act on /segment after -faultAfter segments)")
    _flag(faults, "faultAfter", type=int, default=0)
    _flag(faults, "failSegments", action="store_true", help="answer with an error result")
    _flag(faults, "fail500", action="store_true", help="answer HTTP 500")
    _flag(faults, "stall", action="store_true", help="never answer")
    _flag(faults, "delayHeaders", type=float, default=0.0, help="seconds before the 200")
    _flag(faults, "delayResult", type=float, default=0.0, help="seconds before the result")
    _flag(faults, "dropConnection", action="store_true", help="cut the connection mid-body")
    _flag(faults, "garbage", action="store_true", help="send garbage instead of protobuf")
    _flag(faults, "priceFactor", type=float, default=1.0, help="multiply the price")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _parser()
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        raise ConfigError("bad orchestrator flags (see --help)") from None


def _split_addr(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _load_key(path: str, password: str) -> bytes:
    Account = account_api()

    file = Path(path)
    if file.is_dir():
        candidates = sorted(p for p in file.iterdir() if p.is_file())
        if not candidates:
            raise ConfigError(f"no keystore file in {path!r}")
        file = candidates[0]
    if password and os.path.isfile(password):
        password = Path(password).read_text().strip()
    try:
        return bytes(Account.decrypt(json.loads(file.read_text()), password))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot decrypt keystore {str(file)!r}: {exc}") from None


def parse_live_models(text: str) -> dict[str, bool]:
    """``noop,invert:true,tint:false`` -> {model: warm}; a bare model is warm."""
    models: dict[str, bool] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, sep, warm = item.partition(":")
        if not model or (sep and warm.lower() not in ("true", "false")):
            raise ConfigError(f"-liveModels: expected MODEL[:true|false], got {item!r}")
        models[model] = not sep or warm.lower() == "true"
    return models


def parse_live_prices(text: str, models: Iterable[str]) -> tuple[int | None, dict[str, int]]:
    """``-livePricePerUnit``: ``10`` -> (10, {}); ``10,tint=25`` -> (10, {"tint": 25}); a model
    must be one of ``-liveModels``."""
    known = set(models)
    every: int | None = None
    per_model: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, sep, value = item.rpartition("=")
        if not value.isdigit() or (sep and not model):
            raise ConfigError(
                f"-livePricePerUnit: expected PRICE or MODEL=PRICE (whole wei >= 0), got {item!r}"
            )
        if not sep:
            if every is not None:
                raise ConfigError("-livePricePerUnit: more than one price for every model")
            every = int(value)
        elif model not in known:
            offered = ", ".join(sorted(known)) or "none: set -liveModels"
            raise ConfigError(f"-livePricePerUnit: {model!r} is not a live model ({offered})")
        elif model in per_model:
            raise ConfigError(f"-livePricePerUnit: two prices for {model!r}")
        else:
            per_model[model] = int(value)
    return every, per_model


def build_config(args: argparse.Namespace) -> OrchestratorConfig:
    listen = args.httpAddr
    plaintext = listen.startswith("http://")
    host, port = _split_addr(listen.removeprefix("http://").removeprefix("https://"))
    public = args.serviceAddr or f"{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    scheme = "http" if plaintext else "https"
    service_uri = public if "://" in public else f"{scheme}://{public}"
    key = _load_key(args.ethKeystorePath, args.ethPassword) if args.ethKeystorePath else None
    if args.pixelsPerUnit <= 0:
        raise ConfigError("-pixelsPerUnit must be > 0")
    if args.pricePerUnit < 0:
        raise ConfigError("-pricePerUnit must be >= 0")
    live_models = parse_live_models(args.liveModels)
    live_price, live_model_prices = parse_live_prices(args.livePricePerUnit, live_models)
    if args.liveCapacity < 1 or args.livePaymentInterval <= 0 or args.liveStatusInterval <= 0:
        raise ConfigError("-liveCapacity must be >= 1, live intervals > 0")
    return OrchestratorConfig(
        host=host,
        port=port,
        service_uri=service_uri if (args.serviceAddr or port) else None,
        plaintext=plaintext,
        priced=args.priced or key is not None,
        private_key=key,
        price_per_unit=args.pricePerUnit,
        pixels_per_unit=args.pixelsPerUnit,
        ticket_ev=args.ticketEV,
        max_sessions=args.maxSessions,
        work_dir=Path(args.datadir) if args.datadir else None,
        gas_price=args.gasPrice,
        transcode_workers=max(1, args.transcodeWorkers),
        x264_preset=args.x264Preset,
        instant=args.instant,
        live_models=live_models,
        live_price_per_unit=live_price,
        live_model_prices=live_model_prices,
        live_capacity=args.liveCapacity,
        live_payment_interval=args.livePaymentInterval,
        live_status_interval=args.liveStatusInterval,
        faults=Faults(
            after_segments=args.faultAfter,
            fail_segments=args.failSegments,
            http_500=args.fail500,
            stall=args.stall,
            delay_headers=args.delayHeaders,
            delay_result=args.delayResult,
            drop_connection=args.dropConnection,
            garbage=args.garbage,
            price_factor=args.priceFactor,
        ),
    )


async def run_orchestrator(argv: list[str]) -> int:
    """Run until SIGINT/SIGTERM. Returns the process exit code."""
    try:
        config = build_config(parse_args(argv))
        orchestrator = ReferenceOrchestrator(config)
        await orchestrator.start()
    except ConfigError as exc:
        print(f"mediagw orchestrator: {exc}", file=sys.stderr)
        return 2
    address = orchestrator.address
    print(
        f"orchestrator listening on {orchestrator.url} (service URI {orchestrator.service_uri})"
        + (f", address 0x{address.hex()}" if address else ", off-chain"),
        flush=True,
    )
    try:
        await wait_for_stop_signal()
    finally:
        await orchestrator.stop()
    return 0
