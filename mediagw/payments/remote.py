"""The gateway's client of a remote signer (live-AI spec §10; go-livepeer ``-remoteSignerUrl``).

``RemoteSigner(url, headers=...)``: ``https://`` is prepended when the URL has no scheme, and
``headers`` (``-remoteSignerHeaders``) go with every call to the signer.

- ``sign_orchestrator_info()`` -> (address, signature) for OrchestratorRequest, checked locally
  (the signature must recover to the address) and cached for the process lifetime;
- ``generate_live_payment(info, state=..., manifest_id=...)`` -> ``LivePayment``; the returned
  ``state`` is echoed unchanged on the next call. Status codes become typed errors:
  480 ``SignerRefreshNeeded`` (``orchestrator_url`` from ``Livepeer-Orchestrator-URL``),
  481 ``SignerPriceRejected``, 482 ``SignerNoPaymentNeeded``, anything else ``SignerError``
  (transport failures: ``SignerUnavailable``, status 0);
- ``discover_orchestrators(caps)`` -> ``Candidate`` list (``pipelines.sources`` makes it a pool
  ``Source``).

    PaymentError
    +-- SignerError(status, message)
        +-- SignerUnavailable                  no answer (connection, timeout, bad body)
        +-- SignerRefreshNeeded (NeedsRefresh)  480
        +-- SignerPriceRejected (PriceRejected) 481
        +-- SignerNoPaymentNeeded (NoPaymentNeeded) 482
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mediagw.eth.crypto import SignatureError, checksum, keccak256, recover_address
from mediagw.livepeer.candidates import Candidate, usable_score
from mediagw.livepeer.proto import net

from ..httpbody import read_prefix
from .errors import NeedsRefresh, PaymentError, PriceRejected
from .live import LivePayment, LiveState, NoPaymentNeeded

__all__ = [
    "MAX_PRICE_UNITS",
    "RemoteSigner",
    "SignerError",
    "SignerNoPaymentNeeded",
    "SignerPriceRejected",
    "SignerRefreshNeeded",
    "SignerUnavailable",
    "normalize_signer_url",
]

log = logging.getLogger("mediagw.payments.remote")

MAX_RESPONSE_BYTES = 1 << 20
MAX_STATE_CHARS = 64 * 1024
#: ``maxPrice.unit`` per payment type (§10.3).
MAX_PRICE_UNITS = {"lv2v": "720p-pixel-seconds", "live": "seconds", "fixed": "fixed"}
STATUS_REFRESH, STATUS_PRICE, STATUS_NO_TICKETS = 480, 481, 482
ORCHESTRATOR_URL_HEADER = "Livepeer-Orchestrator-URL"


class SignerError(PaymentError):
    """The signer refused or failed; ``status`` is its HTTP status (0: no usable answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"remote signer: {status} {message}" if status else message)
        self.status = status
        self.message = message


class SignerUnavailable(SignerError):
    def __init__(self, message: str) -> None:
        super().__init__(0, f"remote signer unavailable: {message}")


class SignerRefreshNeeded(SignerError, NeedsRefresh):
    """480: call GetOrchestrator on ``orchestrator_url`` again and retry with the new info."""

    def __init__(self, message: str, orchestrator_url: str) -> None:
        super().__init__(STATUS_REFRESH, message)
        self.orchestrator_url = orchestrator_url


class SignerPriceRejected(SignerError, PriceRejected):
    """481: the orchestrator's price is above a ceiling or more than doubled: swap it."""

    def __init__(self, message: str) -> None:
        super().__init__(STATUS_PRICE, message)


class SignerNoPaymentNeeded(SignerError, NoPaymentNeeded):
    """482: the balance covers the fee; skip this payment cycle."""

    def __init__(self, message: str) -> None:
        super().__init__(STATUS_NO_TICKETS, message)


def normalize_signer_url(url: str) -> str:
    text = url.strip().rstrip("/")
    if not text:
        raise ValueError("remote signer URL is empty")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"remote signer URL {url!r} is not http(s)://host[:port]")
    return text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decimal(value: Fraction | int | Decimal | str) -> str:
    """A price as a decimal string; a non-terminating fraction is rounded down (a ceiling)."""
    if isinstance(value, str):
        Decimal(value)  # validates
        return value.strip()
    if isinstance(value, Decimal):
        return format(value, "f")
    frac = Fraction(value)
    if frac.denominator == 1:
        return str(frac.numerator)
    scale = 10**18
    whole = frac.numerator * scale // frac.denominator
    return format(Decimal(whole).scaleb(-18).normalize(), "f")


def _hex(text: Any, size: int, what: str) -> bytes:
    if not isinstance(text, str):
        raise SignerUnavailable(f"sign-orchestrator-info: {what} is not a string")
    try:
        raw = bytes.fromhex(text.removeprefix("0x").removeprefix("0X"))
    except ValueError:
        raise SignerUnavailable(f"sign-orchestrator-info: {what} is not hex") from None
    if len(raw) != size:
        raise SignerUnavailable(f"sign-orchestrator-info: {what} is not {size} bytes")
    return raw


def _b64_field(doc: Mapping[str, Any], key: str, *, required: bool) -> str:
    value = doc.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_STATE_CHARS:
        raise SignerUnavailable(f"generate-live-payment: {key} is not a base64 string")
    if required and not value:
        raise SignerUnavailable(f"generate-live-payment: answer has no {key}")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignerUnavailable(f"generate-live-payment: {key} is not base64") from None
    return value


class RemoteSigner:
    """A remote signer service; ``session`` None: one aiohttp session owned by this object."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = normalize_signer_url(url)
        self.headers = dict(headers or {})
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._info_sig: tuple[bytes, bytes] | None = None

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RemoteSigner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _call(
        self, method: str, path: str, body: bytes | None = None, params: Any = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._http().request(
                method,
                self.url + path,
                data=body,
                params=params,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                if resp.content_length is not None and resp.content_length > MAX_RESPONSE_BYTES:
                    raise SignerUnavailable(f"{path}: answer larger than {MAX_RESPONSE_BYTES}")
                data = await read_prefix(resp.content, MAX_RESPONSE_BYTES + 1)
                if len(data) > MAX_RESPONSE_BYTES:
                    raise SignerUnavailable(f"{path}: answer larger than {MAX_RESPONSE_BYTES}")
                return resp.status, resp.headers, data
        except TimeoutError:
            raise SignerUnavailable(
                f"no answer from {self.url}{path} within {self._timeout.total:g} s"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise SignerUnavailable(
                f"{self.url}{path} unreachable: {type(exc).__name__}: {exc}"
            ) from None

    @staticmethod
    def _error(status: int, headers: Mapping[str, str], body: bytes) -> SignerError:
        message = body[:500].decode("utf-8", "replace").strip()
        try:
            doc = json.loads(body)
            if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
                text = doc["error"].get("message")
                if isinstance(text, str):
                    message = text
        except (ValueError, RecursionError):
            pass
        if status == STATUS_REFRESH:
            return SignerRefreshNeeded(message, headers.get(ORCHESTRATOR_URL_HEADER, ""))
        if status == STATUS_PRICE:
            return SignerPriceRejected(message)
        if status == STATUS_NO_TICKETS:
            return SignerNoPaymentNeeded(message)
        return SignerError(status, message)

    @staticmethod
    def _json(body: bytes, path: str) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise SignerUnavailable(f"{path}: answer is not JSON") from None

    # --- endpoints ----------------------------------------------------------------------------

    async def sign_orchestrator_info(self) -> tuple[bytes, bytes]:
        """(20-byte address, 65-byte signature); raises SignerError (fail fast at start-up)."""
        if self._info_sig is not None:
            return self._info_sig
        status, headers, body = await self._call("POST", "/sign-orchestrator-info", b"")
        if status != 200:
            raise self._error(status, headers, body)
        doc = self._json(body, "/sign-orchestrator-info")
        if not isinstance(doc, dict):
            raise SignerUnavailable("sign-orchestrator-info: answer is not a JSON object")
        address = _hex(doc.get("address"), 20, "address")
        sig = _hex(doc.get("signature"), 65, "signature")
        digest = keccak256(checksum(address).encode("ascii"))
        try:
            signer = await asyncio.to_thread(recover_address, digest, sig)
        except SignatureError as exc:
            raise SignerUnavailable(f"sign-orchestrator-info: bad signature: {exc}") from None
        if signer != address:
            raise SignerUnavailable(
                f"sign-orchestrator-info: signature is not by {checksum(address)}"
            )
        self._info_sig = (address, sig)
        return self._info_sig

    async def generate_live_payment(
        self,
        info: net.OrchestratorInfo,
        *,
        state: LiveState | None,
        manifest_id: str,
        type: str = "lv2v",
        capabilities: net.Capabilities | None = None,
        max_price: Fraction | int | Decimal | str | None = None,
        in_pixels: int = 0,
        app: str = "",
    ) -> LivePayment:
        """One payment for ``info``; ``state`` None on the first call, then the last one's."""
        request: dict[str, Any] = {"orchestrator": _b64(info.SerializeToString())}
        if state is not None:
            request["state"] = {"State": state.get("State", ""), "Sig": state.get("Sig", "")}
        if manifest_id:
            request["ManifestID"] = manifest_id
        if app:
            request["app"] = app
        if type:
            request["type"] = type
        if in_pixels:
            request["inPixels"] = in_pixels
        if capabilities is not None:
            request["capabilities"] = _b64(capabilities.SerializeToString())
        if max_price is not None:
            unit = MAX_PRICE_UNITS.get(type)
            if unit is None:
                raise ValueError(f"max_price needs type lv2v, live or fixed, not {type!r}")
            request["maxPrice"] = {"price": _decimal(max_price), "currency": "wei", "unit": unit}
        body = json.dumps(request, separators=(",", ":")).encode()
        status, headers, answer = await self._call("POST", "/generate-live-payment", body)
        if status != 200:
            raise self._error(status, headers, answer)
        return live_payment_answer(self._json(answer, "/generate-live-payment"))

    async def discover_orchestrators(self, caps: Sequence[str] = ()) -> list[Candidate]:
        """``GET /discover-orchestrators``; ``caps`` ``pipeline/model`` strings are OR-ed."""
        params = [("caps", c) for c in caps if c]
        status, headers, body = await self._call(
            "GET", "/discover-orchestrators", params=params or None
        )
        if status != 200:
            raise self._error(status, headers, body)
        return discovered_candidates(self._json(body, "/discover-orchestrators"))


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:  # "https://[::1" and the like
        return ""


def live_payment_answer(doc: Any) -> LivePayment:
    """The parsed JSON of a ``/generate-live-payment`` answer; SignerUnavailable if malformed."""
    if not isinstance(doc, dict) or not isinstance(doc.get("state"), dict):
        raise SignerUnavailable("generate-live-payment: answer has no state object")
    new_state = {
        "State": _b64_field(doc["state"], "State", required=True),
        "Sig": _b64_field(doc["state"], "Sig", required=True),
    }
    return LivePayment(
        _b64_field(doc, "payment", required=True),
        _b64_field(doc, "segCreds", required=False),
        new_state,
    )


def discovered_candidates(doc: Any) -> list[Candidate]:
    """The parsed JSON of a ``/discover-orchestrators`` answer; malformed entries are skipped."""
    if not isinstance(doc, list):
        raise SignerUnavailable("discover-orchestrators: answer is not a JSON array")
    found: list[Candidate] = []
    seen: set[str] = set()
    skipped: list[str] = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict):
            skipped.append(f"[{i}] not an object")
            continue
        address = item.get("address")
        score = item.get("score", 0)
        if not isinstance(address, str) or _scheme(address) not in ("http", "https"):
            skipped.append(f"[{i}] address {str(address)[:100]!r} is not an http(s) URL")
            continue
        if not usable_score(score):
            score = 0
        if address not in seen:
            seen.add(address)
            found.append(Candidate(address, float(score)))
    if skipped:
        log.warning(
            "remote signer discovery: skipped malformed entries",
            extra={"skipped": len(skipped), "entries": "; ".join(skipped[:10])},
        )
    return found
