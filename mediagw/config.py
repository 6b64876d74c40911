"""Settings: one frozen value built from flags, environment variables and a TOML file.

Precedence, highest first: command-line flag, environment variable, TOML file, built-in default.

Every setting is declared once in ``OPTIONS``. Where go-livepeer has the concept the flag keeps its
name (``-rtmpAddr``); both ``-flag`` and ``--flag`` are accepted. The environment variable is
``MEDIAGW_`` plus the flag in upper snake case (``-rtmpAddr`` -> ``MEDIAGW_RTMP_ADDR``); the TOML
key is the snake-case name (``rtmp_addr``), or the flag name itself.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from .config_values import (
    choice,
    non_negative_int,
    parse_addr,
    parse_bool,
    parse_duration,
    parse_headers,
    parse_key_map,
    parse_list,
    parse_node_id,
    parse_node_url,
    parse_rate,
    parse_redis_url,
    part_target,
    positive_float,
    positive_int,
    read_hold,
    share,
)
from .errors import ConfigError

__all__ = ["OPTIONS", "Option", "Settings", "WorkerGroup", "add_arguments", "load_settings"]


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # snake-case attribute of Settings and TOML key
    flag: str  # go-livepeer-style camelCase flag, without dashes
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        # liveAIAuthWebhookUrl -> LIVE_AI_AUTH_WEBHOOK_URL, maxTicketEV -> MAX_TICKET_EV
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", self.flag)
        return "MEDIAGW_" + words.upper()


OPTIONS: tuple[Option, ...] = (
    Option("rtmp_addr", "rtmpAddr", parse_addr, "RTMP ingest listen address HOST:PORT"),
    Option("http_addr", "httpAddr", parse_addr, "HTTP (HLS playback, API) listen address"),
    Option("orch_addr", "orchAddr", parse_list, "comma-separated orchestrator addresses"),
    Option(
        "transcoding_options",
        "transcodingOptions",
        str,
        "rendition ladder: preset names (comma list) or a JSON profile file",
    ),
    Option("orch_webhook_url", "orchWebhookUrl", str, "orchestrator discovery webhook (JSON list)"),
    Option(
        "orch_blocklist", "orchBlocklist", parse_list, "orchestrator ETH addresses to never use"
    ),
    Option(
        "orch_min_version",
        "orchMinLivepeerVersion",
        str,
        "minimum orchestrator version (semver)",
    ),
    Option(
        "orch_skip_verify",
        "orchSkipVerify",
        parse_bool,
        "skip orchestrator TLS pinning entirely (default: trust on first use + pin)",
    ),
    Option(
        "verify_results",
        "verifyResults",
        share,
        "share of transcode results whose orchestrator signature is checked (each rendition"
        " hashed): all (default), off, or 0-1 at random, an orchestrator's first 3 always",
    ),
    Option("max_price_per_unit", "maxPricePerUnit", str, "max price per unit in wei (0 = no cap)"),
    Option("pixels_per_unit", "pixelsPerUnit", str, "pixels per unit of -maxPricePerUnit"),
    Option(
        "max_price_per_capability",
        "maxPricePerCapability",
        str,
        "JSON (inline or a file) of per pipeline/model price caps",
    ),
    Option("max_attempts", "maxAttempts", positive_int, "orchestrators tried per segment"),
    Option("max_ticket_ev", "maxTicketEV", positive_int, "max EV of one ticket, wei"),
    Option("max_total_ev", "maxTotalEV", positive_int, "max EV of one payment's tickets, wei"),
    Option(
        "preferred_regions",
        "preferredRegions",
        parse_list,
        "orchestrator regions to prefer, in order (comma list)",
    ),
    Option("eth_keystore_path", "ethKeystorePath", str, "Ethereum keystore file (JSON)"),
    Option("eth_password", "ethPassword", str, "keystore password, or a file holding it"),
    Option("eth_url", "ethUrl", str, "Ethereum (Arbitrum) JSON-RPC URL for on-chain reads"),
    Option(
        "remote_signer_url",
        "remoteSignerUrl",
        str,
        "remote signer (mediagw signer / go-livepeer): no key on this gateway",
    ),
    Option(
        "remote_signer_headers",
        "remoteSignerHeaders",
        parse_headers,
        "headers for the remote signer: 'k:v,k2:v2'",
    ),
    Option(
        "embedded_orchestrator",
        "embeddedOrchestrator",
        parse_bool,
        "with no -orchAddr/-orchWebhookUrl, run a local reference orchestrator (CPU)",
    ),
    Option(
        "webrtc_host_addresses",
        "webrtcHostAddresses",
        parse_list,
        "local addresses for WebRTC host candidates (default: every interface, else 127.0.0.1)",
    ),
    Option(
        "webrtc_nat_ips",
        "webrtcNatIps",
        parse_list,
        "public IPs mapping 1:1 to our host addresses (behind NAT, like LIVE_AI_NAT_IP)",
    ),
    Option("max_whip_sessions", "maxWhipSessions", positive_int, "concurrent WHIP publishers"),
    Option("http_ingest", "httpIngest", parse_bool, "allow HTTP push ingest on a public address"),
    Option("auth_webhook_url", "authWebhookUrl", str, "stream auth webhook (go-livepeer style)"),
    Option(
        "live_ai_auth_webhook_url",
        "liveAIAuthWebhookUrl",
        str,
        "live AI auth webhook: asked before a stream goes to a pipeline (go-livepeer's JSON)",
    ),
    Option(
        "live_ai_auth_api_key",
        "liveAIAuthApiKey",
        str,
        "sent to the live AI auth webhook as x-api-key and Authorization",
    ),
    Option(
        "live_ai_heartbeat_url",
        "liveAIHeartbeatURL",
        str,
        "POSTs the live AI stream ids every interval; answers may end streams (credit control)",
    ),
    Option(
        "live_ai_heartbeat_headers",
        "liveAIHeartbeatHeaders",
        parse_headers,
        "headers for the live AI heartbeat: 'k:v,k2:v2'",
    ),
    Option(
        "live_ai_heartbeat_interval",
        "liveAIHeartbeatInterval",
        parse_duration,
        "seconds between live AI heartbeats (5s)",
    ),
    Option(
        "live_ai_segment_duration",
        "liveAISegmentDuration",
        positive_float,
        "target segment seconds of live AI streams (whole segments go to the orchestrator)",
    ),
    Option(
        "gateway_host",
        "gatewayHost",
        str,
        "public HOST[:PORT] of this gateway's HTTP API, for URLs given to webhooks and clients",
    ),
    Option("max_sessions", "maxSessions", positive_int, "max concurrent live streams"),
    Option(
        "stream_keys",
        "streamKeys",
        parse_key_map,
        "static stream keys: KEY=PLAYBACK_ID,... (TOML: a [stream_keys] table)",
    ),
    Option(
        "data_dir",
        "dataDir",
        str,
        "the platform's data: the SQLite store (unless -storeUrl) and session recordings",
    ),
    Option("store_url", "storeUrl", str, "the store's database: postgresql://USER@HOST/DB"),
    Option(
        "redis_url",
        "redisUrl",
        parse_redis_url,
        "Redis shared by the gateway nodes (rate limits, key changes): redis://HOST:PORT/DB",
    ),
    Option(
        "node_id",
        "nodeId",
        parse_node_id,
        "this node's name among the gateway nodes (default: HOST-PID)",
    ),
    Option(
        "workers",
        "workers",
        positive_int,
        "gateway processes on this machine, one per core (needs -redisUrl and a PostgreSQL "
        "-storeUrl: they are nodes sharing one RTMP and one HTTP port)",
    ),
    Option(
        "node_url",
        "nodeUrl",
        parse_node_url,
        "where the other gateway nodes reach this node's HTTP (default: from -httpAddr)",
    ),
    Option(
        "require_stream_key",
        "requireStreamKey",
        parse_bool,
        "only stream keys known to the gateway (store, -streamKeys, auth webhook) may publish",
    ),
    Option(
        "open_ingest",
        "openIngest",
        parse_bool,
        "let any publisher in on an exposed gateway that can pay (default: keys required there)",
    ),
    Option(
        "webhook_allow_private",
        "webhookAllowPrivate",
        parse_bool,
        "let webhooks and RTMP outputs (multistream, rtmpOutput) reach private addresses",
    ),
    Option("segment_duration", "segmentDuration", positive_float, "target segment seconds"),
    Option("hls_window", "hlsWindow", positive_int, "segments listed in a live media playlist"),
    Option("llhls", "llhls", parse_bool, "serve LL-HLS (fMP4 parts) under /stream/ID/ll/"),
    Option(
        "llhls_part_target",
        "llhlsPartTarget",
        part_target,
        "LL-HLS part duration target in seconds (0.1 to 2)",
    ),
    Option("record_dir", "recordDir", str, "record every segment and a VOD playlist under DIR"),
    Option(
        "ended_stream_ttl",
        "endedStreamTtl",
        positive_float,
        "seconds an ended stream stays playable",
    ),
    Option("wei_rate", "weiRate", parse_rate, "currency units per ETH: the cost of usage (ledger)"),
    Option(
        "usage_flush_interval",
        "usageFlushInterval",
        parse_duration,
        "how often the usage ledger writes its hourly rollups (a crash loses at most this)",
    ),
    Option(
        "billing_webhook_url",
        "billingWebhookUrl",
        str,
        "POST each closed hour's usage here (NaaP's usage push), once per hour",
    ),
    Option("max_conns", "maxConns", positive_int, "max RTMP connections in total"),
    Option("max_conns_per_ip", "maxConnsPerIp", positive_int, "max RTMP connections per IP"),
    Option(
        "rtmp_read_hold",
        "rtmpReadHold",
        read_hold,
        "between keyframes, a publisher's socket is read at most this often (0: off)",
    ),
    Option(
        "http_max_conns_per_ip",
        "httpMaxConnsPerIp",
        non_negative_int,
        "max HTTP connections at once per client IP, loopback included (0: no limit)",
    ),
    Option(
        "metrics_key",
        "metricsKey",
        str,
        "GET /metrics needs Authorization: Bearer KEY (default: open to whoever reaches -httpAddr)",
    ),
    Option(
        "metrics_per_stream",
        "metricsPerStream",
        parse_bool,
        "label stream metrics with manifest_id (one series per stream: watch the cardinality)",
    ),
    Option(
        "metering",
        "metering",
        parse_bool,
        "the usage ledger, plan limits and quotas (false: only to measure what they cost)",
    ),
    Option("log_level", "logLevel", choice("debug", "info", "warning", "error"), "log level"),
    Option("log_format", "logFormat", choice("text", "json"), "log line format"),
)

_BY_NAME = {o.name: o for o in OPTIONS}
_MAPS = ("stream_keys", "remote_signer_headers", "live_ai_heartbeat_headers")
_BY_FLAG = {o.flag: o for o in OPTIONS}


@dataclass(frozen=True, slots=True)
class WorkerGroup:
    """Set by ``mediagw run -workers N`` on each of its workers, never by the operator: which
    worker this is (1..N), each worker's own HTTP port (its node URL; index order) and the
    secret the workers' requests to each other carry (a ``/metrics`` scrape on the shared port
    gathers every worker's)."""

    index: int
    ports: tuple[int, ...]
    secret: str = field(repr=False)

    @property
    def own_port(self) -> int:
        return self.ports[self.index - 1]


@dataclass(frozen=True, slots=True)
class Settings:
    rtmp_addr: str = "127.0.0.1:1935"
    http_addr: str = "127.0.0.1:9935"
    orch_addr: tuple[str, ...] = ()
    transcoding_options: str = "P240p30fps16x9,P360p30fps16x9"
    orch_webhook_url: str = ""
    orch_blocklist: tuple[str, ...] = ()
    orch_min_version: str = ""
    orch_skip_verify: bool = False
    verify_results: float = 1.0
    max_price_per_unit: str = "0"
    pixels_per_unit: str = "1"
    max_price_per_capability: str = ""
    max_attempts: int = 3
    max_ticket_ev: int = 3_000_000_000_000
    max_total_ev: int = 20_000_000_000_000
    preferred_regions: tuple[str, ...] = ()
    eth_keystore_path: str = ""
    eth_password: str = ""
    eth_url: str = ""
    remote_signer_url: str = ""
    remote_signer_headers: Mapping[str, str] = field(default_factory=dict)
    embedded_orchestrator: bool = True
    webrtc_host_addresses: tuple[str, ...] = ()
    webrtc_nat_ips: tuple[str, ...] = ()
    max_whip_sessions: int = 16
    http_ingest: bool = False
    auth_webhook_url: str = ""
    live_ai_auth_webhook_url: str = ""
    live_ai_auth_api_key: str = ""
    live_ai_heartbeat_url: str = ""
    live_ai_heartbeat_headers: Mapping[str, str] = field(default_factory=dict)
    live_ai_heartbeat_interval: float = 5.0
    live_ai_segment_duration: float = 1.0
    gateway_host: str = ""
    max_sessions: int = 100
    stream_keys: Mapping[str, str] = field(default_factory=dict)
    data_dir: str = "./mediagw-data"
    store_url: str = ""
    redis_url: str = ""
    node_id: str = ""  # "" = f"{hostname}-{pid}", decided by the gateway at start
    node_url: str = ""  # "" = http://HOST:PORT of -httpAddr as bound
    workers: int = 1
    # set by ``mediagw run -workers N`` on each worker, not a flag (``reuse_port``)
    worker_group: WorkerGroup | None = None
    require_stream_key: bool = False
    open_ingest: bool = False
    webhook_allow_private: bool = False
    segment_duration: float = 2.0
    hls_window: int = 6
    llhls: bool = True
    llhls_part_target: float = 0.2
    record_dir: str = ""
    ended_stream_ttl: float = 300.0
    wei_rate: Decimal = Decimal(0)
    usage_flush_interval: float = 10.0
    billing_webhook_url: str = ""
    max_conns: int = 500
    max_conns_per_ip: int = 100
    rtmp_read_hold: float = 0.1
    http_max_conns_per_ip: int = 100
    metrics_key: str = ""
    metrics_per_stream: bool = False
    metering: bool = True
    log_level: str = "info"
    log_format: str = "text"

    @staticmethod
    def split_addr(addr: str) -> tuple[str, int]:
        host, _, port = addr.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def reuse_port(self) -> bool:
        """A worker of ``mediagw run -workers N``: the RTMP and HTTP ports are shared with the
        other workers (SO_REUSEPORT) and the node URL is a port of its own."""
        return self.worker_group is not None

    @property
    def auth_mode(self) -> str:
        """``webhook`` when a webhook is set, ``keys`` with a static key list, else ``open``."""
        if self.auth_webhook_url:
            return "webhook"
        if self.stream_keys:
            return "keys"
        return "open"


_INTERNAL = {"worker_group"}  # set by the program on its workers, never by the operator
assert {f.name for f in fields(Settings)} == set(_BY_NAME) | _INTERNAL, (
    "OPTIONS and Settings disagree"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every option as ``-flag`` and ``--flag``, plus ``-config``."""
    parser.add_argument(
        "-config", "--config", dest="config", default=argparse.SUPPRESS, help="TOML settings file"
    )
    for opt in OPTIONS:
        flag_kwargs: dict[str, Any] = {}
        if opt.parse is parse_bool:  # -flag alone means true; -flag=false also works
            flag_kwargs = {"nargs": "?", "const": "true", "metavar": "BOOL"}
        else:
            flag_kwargs = {"metavar": opt.flag.upper()}
        parser.add_argument(
            f"-{opt.flag}",
            f"--{opt.flag}",
            dest=opt.name,
            default=argparse.SUPPRESS,
            help=f"{opt.help} (env {opt.env})",
            **flag_kwargs,
        )


def _convert(opt: Option, raw: Any, origin: str) -> Any:
    try:
        if opt.name in _MAPS and isinstance(raw, dict):
            return {str(k): str(v) for k, v in raw.items()}
        if isinstance(raw, list) and opt.parse is parse_list:
            return tuple(str(x) for x in raw)
        if isinstance(raw, bool) and opt.parse is parse_bool:
            return raw
        return opt.parse(str(raw))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{origin}: bad value for {opt.flag}: {exc}") from None


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: check -config / MEDIAGW_CONFIG") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("mediagw", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [mediagw] must be a table")
    return section


def load_settings(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: str | None = None,
) -> Settings:
    """Merge defaults < TOML < environment < flags into a Settings value.

    ``cli`` holds only the flags actually given (argparse with SUPPRESS defaults).
    """
    cli = dict(cli or {})
    env = os.environ if env is None else env
    path = cli.pop("config", None) or config_path or env.get("MEDIAGW_CONFIG")
    values: dict[str, Any] = {}
    if path:
        for key, raw in _read_toml(str(path)).items():
            opt = _BY_NAME.get(key) or _BY_FLAG.get(key)
            if opt is None:
                known = ", ".join(sorted(_BY_NAME))
                raise ConfigError(f"config file {path}: unknown setting {key!r} (known: {known})")
            values[opt.name] = _convert(opt, raw, f"config file {path}")
    for opt in OPTIONS:
        if opt.env in env:
            values[opt.name] = _convert(opt, env[opt.env], f"environment {opt.env}")
    for name, raw in cli.items():
        opt = _BY_NAME.get(name)
        if opt is None:
            continue
        values[name] = _convert(opt, raw, f"flag -{opt.flag}")
    return Settings(**values)


def parse_flags(argv: Sequence[str]) -> dict[str, Any]:
    """Parse only settings flags (used by tests and embedding code)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return vars(parser.parse_args(list(argv)))


def ensure_dir(path: str) -> Path:
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create directory {path}: {exc.strerror}") from None
    return p
