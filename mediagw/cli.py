"""Command line: ``mediagw run`` (the gateway), ``mediagw keys ...`` (API keys) and
``mediagw bench ...`` (benchmarks)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from . import __version__
from .bench.cli import add_bench_parser, run_bench
from .clock import SYSTEM
from .config import add_arguments, load_settings
from .errors import ConfigError, MediaGWError
from .log import setup_logging
from .serve import run_async, serve

log = logging.getLogger("mediagw")


def _add_keys_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list, revoke and rotate API keys")
    keys_sub = keys.add_subparsers(dest="keys", metavar="ACTION")
    create = keys_sub.add_parser("create", help="create a key (its secret is printed once)")
    create.add_argument("--name", "-name", required=True, help="what the key is for")
    create.add_argument(
        "--scope",
        "-scope",
        dest="scopes",
        action="append",
        choices=("admin", "streams", "playback"),
        help="what the key may do; repeat for several (default: admin)",
    )
    create.add_argument(
        "--expires-in", type=int, metavar="SECONDS", help="expire this long after now"
    )
    create.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        metavar="ORIGIN",
        help="a browser origin (https://app.example) that may use the key; repeatable",
    )
    list_ = keys_sub.add_parser("list", help="list the keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", help="the key's id (key_..., see 'mediagw keys list')")
    rotate = keys_sub.add_parser(
        "rotate", help="replace a key by a new one that owns its streams, then revoke it"
    )
    rotate.add_argument("id", help="the key's id (key_..., see 'mediagw keys list')")
    for action in (create, list_, revoke, rotate):
        where = action.add_mutually_exclusive_group()
        where.add_argument(
            "-dataDir",
            "--dataDir",
            dest="data_dir",
            default="./mediagw-data",
            help="the data directory of the embedded SQLite store (default ./mediagw-data)",
        )
        where.add_argument(
            "-storeUrl",
            "--storeUrl",
            dest="store_url",
            default="",
            help="a PostgreSQL URL instead of the data directory",
        )


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _keys(args: argparse.Namespace) -> int:
    from .platform import keys
    from .platform.store import AuditEntry, open_store

    store = await open_store(args.store_url or args.data_dir)

    async def audit(action: str, key_id: str, details: dict[str, object] | None = None) -> None:
        entry = AuditEntry(
            at=int(SYSTEM.wall() * 1000),
            action=action,
            target_type="api_key",
            target_id=key_id,
            details={"via": "cli", **(details or {})},
        )  # no actor key: the operator at the machine
        await store.append_audit(entry)

    try:
        if args.keys == "create":
            expires_at = None
            if args.expires_in is not None:
                if args.expires_in <= 0:
                    raise ConfigError("--expires-in must be a positive number of seconds")
                expires_at = int((SYSTEM.wall() + args.expires_in) * 1000)
            row, secret = await keys.create_key(
                store,
                args.name,
                args.scopes or ["admin"],
                expires_at=expires_at,
                cors_origins=args.cors_origins or (),
            )
            await audit("key.create", row.id, {"name": row.name, "scopes": list(row.scopes)})
            print(
                f"created API key {row.id} ({row.name}; scopes: {', '.join(row.scopes)}; "
                f"expires: {_when(row.expires_at)})"
            )
            print(secret)
            print("store it now: this secret will not be shown again", file=sys.stderr)
        elif args.keys == "list":
            print("ID\tNAME\tKEY\tSCOPES\tCREATED\tEXPIRES\tREVOKED\tLAST USED")
            for row in await keys.list_keys(store):
                print(
                    f"{row.id}\t{row.name}\t{keys.PREFIX}{row.lookup_id}_...\t"
                    f"{','.join(row.scopes)}\t{_when(row.created_at)}\t{_when(row.expires_at)}\t"
                    f"{_when(row.revoked_at)}\t{_when(row.last_used_at)}"
                )
        elif args.keys == "revoke":
            if not await keys.revoke(store, args.id):
                raise ConfigError(f"no API key with id {args.id!r}: see 'mediagw keys list'")
            await audit("key.revoke", args.id)
            print(f"revoked API key {args.id}")
        elif args.keys == "rotate":
            row, secret = await keys.rotate(store, args.id)
            print(f"API key {args.id} revoked; its streams, targets, webhooks and signing keys")
            print(f"now belong to the new key {row.id} ({row.name}):")
            print(secret)
            print("store it now: this secret will not be shown again", file=sys.stderr)
    finally:
        await store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mediagw",
        description="Real-time video gateway for the Livepeer network: RTMP in, HLS out.",
    )
    parser.add_argument("--version", action="version", version=f"mediagw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run the gateway",
        description="Run the gateway. Settings: flags > MEDIAGW_* environment > TOML (-config).",
    )
    add_arguments(run)
    sub.add_parser(
        "orchestrator",
        help="run the reference orchestrator (try: mediagw orchestrator -help)",
        add_help=False,
    )
    sub.add_parser(
        "signer",
        help="run the remote signer (holds the ETH key; try: mediagw signer -help)",
        add_help=False,
    )
    _add_keys_parser(sub)
    add_bench_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["orchestrator"]:  # go-livepeer-style flags, parsed by the orchestrator
        from .orchestrator import run_orchestrator

        setup_logging("info")
        return run_async(run_orchestrator(argv[1:]))
    if argv[:1] == ["signer"]:  # go-livepeer's remote signer flags
        from .signer_service.main import run_signer

        setup_logging("info")
        return run_async(run_signer(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "run":
            cli = {k: v for k, v in vars(args).items() if k != "command"}
            settings = load_settings(cli)
            setup_logging(settings.log_level, settings.log_format)
            if settings.workers > 1:
                from .workers import run_workers

                return run_async(run_workers(settings))
            return run_async(serve(settings))
        if args.command == "keys":
            if args.keys is None:
                parser.parse_args(["keys", "--help"])
            setup_logging("warning")
            return run_async(_keys(args))
        if args.command == "bench":
            setup_logging("warning")
            code = run_bench(args, run_async)
            if code is None:
                parser.parse_args(["bench", "--help"])
            return code or 0
    except ConfigError as exc:
        print(f"mediagw: configuration error: {exc}", file=sys.stderr)
        return 2
    except MediaGWError as exc:
        print(f"mediagw: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
