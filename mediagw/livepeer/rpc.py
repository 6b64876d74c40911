"""The gateway's gRPC client for go-livepeer orchestrators (spec §2, §4, §6, §8.1).

``OrchestratorRPC`` makes the two unary calls a transcoding gateway needs, ``GetOrchestrator``
and ``EndTranscodingSession``, over HTTP/2 (``grpc_client.py``), with TOFU-pinned TLS or cleartext
h2c for ``http://`` URLs. No grpcio at run time.

Errors (all name the orchestrator URL): ``OrchestratorError`` for a non-OK gRPC status (with the
decoded ``grpc-message``, e.g. "Invalid orchestrator request: OrchestratorCapped"),
``OrchestratorUnreachable`` for dial/TLS/timeouts/lost connections, ``ProtocolViolation`` for
bytes that are not a valid answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import urllib.parse
from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError, Message

from mediagw.errors import ConfigError

from ..eth.crypto import checksum, keccak256
from ..eth.signer import Signer as AccountSigner
from .errors import OrchestratorUnreachable, ProtocolViolation
from .grpc_client import Target, unary_call
from .proto import net
from .tls import PinStore

__all__ = [
    "DEFAULT_ORCH_PORT",
    "OrchestratorRPC",
    "OrchestratorRequests",
    "normalize_orch_addr",
    "orchestrator_request",
    "sign_orchestrator_request",
]

DEFAULT_ORCH_PORT = 8935
MAX_ORCH_ADDR = 1024  # characters of an orchestrator address
# a DNS name: labels of letters, digits, '-' and '_' (compose service names), 253 at most
_HOST_NAME = re.compile(r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?)+$")
DEFAULT_MAX_RESPONSE_BYTES = 4 << 20

Signer = Callable[[bytes], Awaitable[bytes]]


def normalize_orch_addr(entry: str) -> str:
    """One ``-orchAddr`` entry -> orchestrator URL, with go-livepeer's rules (§8.1).

    Leading ':' -> host 127.0.0.1; no ':' at all -> port 8935 appended; then ``https://`` is
    prepended unless the entry already has an ``http://`` or ``https://`` scheme (so
    ``https://host`` keeps port 443). Raises ConfigError for an empty or unusable entry.
    """
    addr = entry.strip()
    if not addr:
        raise ConfigError("orchestrator address is empty")
    if len(addr) > MAX_ORCH_ADDR:
        raise ConfigError(
            f"orchestrator address {addr[:64]!r}... is over {MAX_ORCH_ADDR} characters"
        )
    if any(c.isspace() or not c.isprintable() for c in addr):
        raise ConfigError(f"orchestrator address {addr[:200]!r}: spaces or control characters")
    if addr.startswith(":"):
        addr = "127.0.0.1" + addr
    elif ":" not in addr:
        addr = f"{addr}:{DEFAULT_ORCH_PORT}"
    if not addr.lower().startswith(("http://", "https://")):
        addr = "https://" + addr
    try:
        target = Target.parse(addr)
        parts = urllib.parse.urlsplit(addr)
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("expected [scheme://]host[:port] and nothing else")
        if parts.port == 0:
            raise ValueError("port 0 is not 1-65535")
        if not _is_ip(target.host) and not _HOST_NAME.match(target.host):
            raise ValueError(f"{target.host[:200]!r} is not a host name or an IP address")
    except ValueError as exc:
        raise ConfigError(f"orchestrator address {entry[:200]!r}: {exc}") from None
    return addr.removesuffix("/")  # "https://o:1/" and "https://o:1" are one orchestrator


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def orchestrator_request(
    address: bytes, sig: bytes, capabilities: net.Capabilities | None
) -> net.OrchestratorRequest:
    """An OrchestratorRequest (§4.1): our 20-byte address, §4.2 signature, job capabilities."""
    req = net.OrchestratorRequest(address=address, sig=sig)
    if capabilities is not None:
        req.capabilities.CopyFrom(capabilities)
    return req


async def sign_orchestrator_request(address: bytes, sign: Signer) -> bytes:
    """§4.2: sign(keccak256(ASCII EIP-55 checksummed address)); ``sign`` personal-signs a digest."""
    if len(address) != 20:
        raise ValueError("an Ethereum address is 20 bytes")
    return await sign(keccak256(checksum(address).encode("ascii")))


class OrchestratorRPC:
    """gRPC calls to orchestrators: a new connection per call, closed afterwards (§5.9)."""

    def __init__(
        self,
        pins: PinStore,
        *,
        dial_timeout: float = 3.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        user_agent: str = "mediagw",
    ) -> None:
        self.pins = pins
        self.dial_timeout = dial_timeout
        self.max_response_bytes = max_response_bytes
        self.user_agent = user_agent
        self._writers: set[asyncio.StreamWriter] = set()
        self._closed = False

    async def _call(self, url: str, method: str, request: Message, timeout: float) -> bytes:
        if self._closed:
            raise OrchestratorUnreachable("RPC client is closed", url)
        try:
            target = Target.parse(url)
        except ValueError as exc:
            raise OrchestratorUnreachable(f"bad orchestrator URL: {exc}", url) from None
        ctx = (
            self.pins.client_context(target.host, target.port, alpn=("h2",))
            if target.scheme == "https"
            else None
        )
        return await unary_call(
            target,
            f"/net.Orchestrator/{method}",
            request.SerializeToString(),
            ssl_context=ctx,
            timeout=timeout,
            dial_timeout=self.dial_timeout,
            max_response_bytes=self.max_response_bytes,
            user_agent=self.user_agent,
            writers=self._writers,
        )

    async def get_orchestrator(
        self, url: str, req: net.OrchestratorRequest, *, timeout: float = 8.0
    ) -> net.OrchestratorInfo:
        """GetOrchestrator on the discovery URL (§4). Refresh callers pass ``timeout=2.5``."""
        raw = await self._call(url, "GetOrchestrator", req, timeout)
        info = net.OrchestratorInfo()
        try:
            info.ParseFromString(raw)
        except DecodeError as exc:
            raise ProtocolViolation(
                f"GetOrchestrator answer is not an OrchestratorInfo ({len(raw)} bytes): {exc}",
                _safe(url),
            ) from None
        return info

    async def end_transcoding_session(
        self, url: str, auth_token: net.AuthToken, *, timeout: float = 8.0
    ) -> None:
        """EndTranscodingSession on the session's ``transcoder`` URL (§6), bounded in time."""
        req = net.EndTranscodingSessionRequest()
        req.auth_token.CopyFrom(auth_token)
        raw = await self._call(url, "EndTranscodingSession", req, timeout)
        try:
            net.EndTranscodingSessionResponse.FromString(raw)
        except DecodeError as exc:
            raise ProtocolViolation(
                f"EndTranscodingSession answer is undecodable: {exc}", _safe(url)
            ) from None

    async def close(self) -> None:
        """Abort calls in flight; later calls fail with OrchestratorUnreachable."""
        self._closed = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()


def _safe(url: str) -> str:
    """A URL for messages: no userinfo, query or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class OrchestratorRequests:
    """GetOrchestrator as this gateway sends it (``ignoreCapacityCheck`` false, as GL): with our
    own signer's address and signature (computed once), a remote signer's ``credentials``, or,
    off-chain, 20 zero bytes and no signature."""

    def __init__(
        self,
        rpc: OrchestratorRPC,
        *,
        signer: AccountSigner | None = None,
        credentials: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.rpc = rpc
        self.signer = signer
        self.credentials = credentials
        self._sig: tuple[bytes, bytes] | None = credentials

    async def request(self, caps: net.Capabilities) -> net.OrchestratorRequest:
        if self._sig is None:
            if self.signer is None or self.signer.offchain:
                self._sig = (bytes(20), b"")
            else:
                address = self.signer.address
                self._sig = (address, await sign_orchestrator_request(address, self.signer.sign))
        return orchestrator_request(*self._sig, caps)

    async def fetch(self, url: str, caps: net.Capabilities, timeout: float) -> net.OrchestratorInfo:
        return await self.rpc.get_orchestrator(url, await self.request(caps), timeout=timeout)
