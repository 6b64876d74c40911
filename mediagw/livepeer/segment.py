"""``POST /segment`` and rendition downloads (transcode spec §5.1, §5.5-5.10).

``SegmentClient.submit`` never raises for remote trouble: it returns a ``SubmitResult`` that says
whether response headers arrived (balance accounting, §5.8), the HTTP status, the parsed
``TranscodeResult``, an error text, whether retrying on another orchestrator makes sense (§9.2)
and the latency. ``failure`` holds the typed cause (``OrchestratorUnreachable``,
``CertificatePinError``, ``SegmentRejected``, ``TranscodeFailed``, ``ProtocolViolation``).

TLS to orchestrators uses the TOFU-pinned contexts of ``tls.py`` (pin checked in the handshake,
before the payment header leaves); ``http://`` URLs go in cleartext.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp
from google.protobuf.message import DecodeError

from ..eth.crypto import SignatureError, keccak256, recover_address
from ..httpbody import BodyTooLarge, read_limited, read_prefix
from .errors import (
    DownloadError,
    LivepeerError,
    OrchestratorUnreachable,
    ProtocolViolation,
    TranscodeFailed,
    segment_rejection,
)
from .grpc_client import Target
from .proto import net
from .tls import PinStore, ca_context, pin_error_from

__all__ = [
    "NON_RETRYABLE_ERRORS",
    "SegmentClient",
    "SubmitResult",
    "is_retryable",
    "segment_timeouts",
    "verify_result_signature",
    "verify_result_signature_async",
]

MAX_RESULT_BYTES = 1 << 20
MAX_ERROR_BODY_BYTES = 4096
DEFAULT_MAX_DOWNLOAD_BYTES = 64 << 20
MAX_SEGMENT_BYTES = 300_000_000  # O reads at most this much (go-livepeer common.MaxSegSize)

# Errors that fail the same way on every orchestrator (lpms ffmpeg NonRetryableErrs, matched
# exactly like go-livepeer). "Unrecoverable state, restart process" is left out on purpose: it
# describes the orchestrator's transcoder, so another orchestrator may well succeed.
NON_RETRYABLE_ERRORS = frozenset(
    {
        "Unsupported input pixel format",
        "Error initializing filtergraph",
        "Too many outputs",
        "No input configuration",
        "Unsupported input codec",
        "No keyframes in input",
        "Decoder not found",
        "Demuxer not found",
        "Encoder not found",
        "Muxer not found",
        "Option not found",
        "Invalid argument",
        "TranscoderInvalidResolution",
        "TranscoderInvalidVideo",
        "TranscoderUnrecognizedFormat",
        "TranscoderUnrecognizedProfile",
        "TranscoderInvalidGOP",
        "TranscoderIncompatibleDevices",
    }
)


def is_retryable(error_text: str) -> bool:
    """False for errors another orchestrator would repeat (§9.2); True for everything else."""
    return error_text.strip() not in NON_RETRYABLE_ERRORS


def segment_timeouts(
    duration_s: float,
    multiplier: float = 1.0,
    *,
    headers_floor: float = 2.0,
    total_floor: float = 8.0,
) -> tuple[float, float]:
    """(until headers, whole exchange) = (max(2, 0.5 d), max(8, 4 d)) x multiplier (§5.9).

    The multiplier counts only when > 1 (go-livepeer)."""
    m = max(1.0, multiplier)
    return max(headers_floor, 0.5 * duration_s) * m, max(total_floor, 4.0 * duration_s) * m


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """Outcome of one ``POST /segment``.

    ``headers_received``: O answered (credit counts as spent even on failure); False: the request
    did not get through (restore the credit). ``result`` is set whenever a 200 body parsed, also
    when it carries ``error``: adopt ``result.info`` in every such case. ``error`` None = success
    (``result.data`` present). ``latency_s``: request start until the body was read (or failure).
    """

    headers_received: bool
    status: int | None
    result: net.TranscodeResult | None
    error: str | None
    retryable: bool
    latency_s: float
    failure: LivepeerError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None


def _transport_failure(exc: BaseException, what: str, url: str) -> LivepeerError:
    pin = pin_error_from(exc)
    if pin is not None:
        return pin
    if isinstance(exc, LivepeerError):
        return exc
    return OrchestratorUnreachable(f"{what}: {type(exc).__name__}: {exc}", url)


class SegmentClient:
    """Client for ``/segment`` and rendition downloads; one per gateway (pooled, keep-alive)."""

    def __init__(
        self,
        pins: PinStore,
        *,
        max_result_bytes: int = MAX_RESULT_BYTES,
        dial_timeout: float = 2.0,
        max_connections: int = 512,
        headers_timeout_floor: float = 2.0,
        total_timeout_floor: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pins = pins
        self.headers_timeout_floor = headers_timeout_floor
        self.total_timeout_floor = total_timeout_floor
        self.max_result_bytes = max_result_bytes
        self.dial_timeout = dial_timeout
        self.max_connections = max_connections
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=60.0, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.dial_timeout),
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": "mediagw"},
            )
        return self._session

    @staticmethod
    def _target(url: str) -> Target:
        try:
            return Target.parse(url)
        except ValueError as exc:
            raise OrchestratorUnreachable(f"bad URL: {exc}", url) from None

    async def submit(
        self,
        transcoder_url: str,
        segdata_b64: str,
        payment_header: str,
        body: bytes,
        duration_s: float,
        *,
        timeout_multiplier: float = 1.0,
    ) -> SubmitResult:
        """POST the segment to ``{transcoder_url}/segment`` and read the ``TranscodeResult``."""
        url = transcoder_url.rstrip("/") + "/segment"
        headers_timeout, total_timeout = segment_timeouts(
            duration_s,
            timeout_multiplier,
            headers_floor=self.headers_timeout_floor,
            total_floor=self.total_timeout_floor,
        )
        start = self._clock()
        headers_received = False
        status: int | None = None

        def done(
            error: str | None,
            retryable: bool,
            result: net.TranscodeResult | None = None,
            failure: LivepeerError | None = None,
        ) -> SubmitResult:
            return SubmitResult(
                headers_received, status, result, error, retryable, self._clock() - start, failure
            )

        def fail(
            failure: LivepeerError,
            retryable: bool = True,
            result: net.TranscodeResult | None = None,
        ) -> SubmitResult:
            return done(failure.detail, retryable, result, failure)

        if len(body) > MAX_SEGMENT_BYTES:
            return fail(
                ProtocolViolation(f"segment of {len(body)} bytes is over O's limit", url), False
            )
        try:
            target = self._target(url)
        except LivepeerError as exc:
            return fail(exc)
        ssl_ctx = (
            self.pins.client_context(target.host, target.port, alpn=("http/1.1",))
            if target.scheme == "https"
            else None
        )
        headers = {
            "Livepeer-Segment": segdata_b64,
            "Livepeer-Payment": payment_header,
            "Content-Type": "video/MP2T",
        }
        session = self._get_session()
        try:
            async with asyncio.timeout(total_timeout):
                try:
                    async with asyncio.timeout(headers_timeout):
                        resp = await session.post(
                            url, data=body, headers=headers, ssl=ssl_ctx or True
                        )
                except TimeoutError:
                    return fail(
                        OrchestratorUnreachable(
                            f"no response headers within {headers_timeout:g} s", url
                        )
                    )
                headers_received = True
                status = resp.status
                async with resp:
                    if status != 200:
                        raw = await read_prefix(resp.content, MAX_ERROR_BODY_BYTES)
                        text = raw.decode("utf-8", "replace").strip()
                        return fail(segment_rejection(text, status, url), is_retryable(text))
                    raw = await read_limited(resp, self.max_result_bytes)
        except TimeoutError:
            return fail(
                OrchestratorUnreachable(
                    f"transcode result not received within {total_timeout:g} s", url
                )
            )
        except BodyTooLarge as exc:
            return fail(ProtocolViolation(f"TranscodeResult larger than {exc.limit} bytes", url))
        except (aiohttp.ClientError, OSError) as exc:
            return fail(_transport_failure(exc, "segment upload failed", url))
        tr = net.TranscodeResult()
        try:
            tr.ParseFromString(raw)
        except DecodeError as exc:
            return fail(
                ProtocolViolation(
                    f"200 body is not a TranscodeResult ({len(raw)} bytes): {exc}", url
                )
            )
        which = tr.WhichOneof("result")
        if which == "error":
            return fail(TranscodeFailed(tr.error, url), is_retryable(tr.error), tr)
        if which is None:
            return fail(
                ProtocolViolation(
                    "TranscodeResult has neither error nor data (UnknownResponse)", url
                ),
                True,
                tr,
            )
        return done(None, True, tr)

    async def download(
        self,
        url: str,
        *,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        timeout: float = 4.0,
        verify: Literal["pin", "ca"] = "pin",
    ) -> bytes:
        """GET a rendition (§5.7). ``verify="pin"`` for O's own store (TOFU pin of that host:port),
        ``"ca"`` for an external object store with a real certificate.

        Raises DownloadError (non-200), ProtocolViolation (over ``max_bytes``),
        OrchestratorUnreachable (connect/timeout), CertificatePinError.
        """
        target = self._target(url)
        ssl_ctx = None
        if target.scheme == "https":
            ssl_ctx = (
                self.pins.client_context(target.host, target.port, alpn=("http/1.1",))
                if verify == "pin"
                else ca_context(("http/1.1",))
            )
        session = self._get_session()
        try:
            async with asyncio.timeout(timeout):
                async with session.get(url, ssl=ssl_ctx or True) as resp:
                    if resp.status != 200:
                        raise DownloadError(f"HTTP {resp.status}", resp.status, url)
                    return await read_limited(resp, max_bytes)
        except TimeoutError:
            raise OrchestratorUnreachable(f"download timed out after {timeout:g} s", url) from None
        except BodyTooLarge:
            raise ProtocolViolation(f"rendition larger than {max_bytes} bytes", url) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _transport_failure(exc, "download failed", url) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _result_digest(renditions: list[bytes]) -> bytes:
    return keccak256(b"".join(keccak256(r) for r in renditions))


def verify_result_signature(renditions: list[bytes], sig: bytes, address: bytes) -> bool:
    """§5.10: does ``sig`` sign keccak256(keccak256(r0) || keccak256(r1) || ...) by ``address``?

    Hashes every rendition on the calling thread; in async code prefer the ``_async`` variant.
    """
    try:
        return recover_address(_result_digest(renditions), sig) == address
    except SignatureError:
        return False


def verify_result_hashes(hashes: list[bytes], sig: bytes, address: bytes) -> bool:
    """``verify_result_signature`` from the renditions' keccak256 hashes, computed elsewhere."""
    try:
        return recover_address(keccak256(b"".join(hashes)), sig) == address
    except SignatureError:
        return False


async def verify_result_signature_async(
    renditions: list[bytes], sig: bytes, address: bytes
) -> bool:
    """``verify_result_signature`` in a worker thread (renditions can be megabytes)."""
    return await asyncio.to_thread(verify_result_signature, renditions, sig, address)
