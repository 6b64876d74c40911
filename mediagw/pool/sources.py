"""Where orchestrator candidates come from (transcode spec §8.1), and the address blocklist.

``-orchAddr`` entries (:class:`StaticSource`) are trusted (score 1.0). An entry may carry a region
tag after ``#``: ``-orchAddr 'o1.example.com:8935#eu-west,o2:8935#us-east,o3:8935'``. The tag is cut
off before the address is normalized; a tag from ``#`` wins over the ``regions`` mapping, whose
keys may be either the raw entry or the normalized URL.

``-orchWebhookUrl`` (:class:`WebhookSource`) is fetched with GET at most once per ``ttl``
(1 min); the body is a JSON array ``[{"address": "https://host:port", "score": 1.0,
"region": "eu-west"}]`` (``region`` optional). On any error the last good list is kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from mediagw.errors import ConfigError, MediaGWError
from mediagw.httpbody import BodyTooLarge, read_limited
from mediagw.livepeer.candidates import TRUSTED_SCORE, Candidate, usable_score
from mediagw.livepeer.proto import net
from mediagw.webhook import redact_url

__all__ = [
    "Blocklist",
    "Source",
    "StaticSource",
    "WebhookError",
    "WebhookSource",
]

log = logging.getLogger(__name__)

_REGION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ADDRESS_RE = re.compile(r"^[0-9a-f]{40}$")


class Source(Protocol):
    """Anything that lists orchestrator candidates (``mediagw.livepeer.candidates``)."""

    async def candidates(self) -> list[Candidate]: ...


def _check_region(region: str, where: str) -> str:
    if not _REGION_RE.match(region):
        raise ConfigError(
            f"{where}: region tag {region!r} must be 1-64 letters, digits, '.', '_' or '-'"
        )
    return region


class StaticSource:
    """The fixed list from ``-orchAddr``; every entry is trusted."""

    def __init__(
        self,
        entries: Sequence[str],
        normalize: Callable[[str], str],
        regions: Mapping[str, str] | None = None,
    ) -> None:
        mapping = dict(regions or {})
        found: list[Candidate] = []
        seen: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            addr, sep, tag = entry.rpartition("#")
            if not sep:
                addr, tag = entry, ""
            addr = addr.strip()
            if not addr:
                raise ConfigError(f"-orchAddr: entry {raw!r} has no address")
            url = normalize(addr)
            region = tag.strip() or mapping.get(addr) or mapping.get(url, "")
            if region:
                _check_region(region, f"-orchAddr entry {raw!r}")
            if url in seen:
                continue
            seen.add(url)
            found.append(Candidate(url, TRUSTED_SCORE, region))
        self._candidates = tuple(found)

    async def candidates(self) -> list[Candidate]:
        return list(self._candidates)


class WebhookError(MediaGWError):
    """One failed webhook fetch; never leaves :class:`WebhookSource` (the last list is kept)."""


def parse_webhook_body(
    body: bytes, normalize: Callable[[str], str] | None = None
) -> list[Candidate]:
    """Parse a webhook body. A malformed document raises WebhookError; bad entries are skipped."""
    try:
        doc = json.loads(body)
    except ValueError as exc:  # also not UTF-8, or a number of more than 4,300 digits
        raise WebhookError(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise WebhookError("body is JSON nested too deeply") from None
    if not isinstance(doc, list):
        raise WebhookError("body is not a JSON array")
    found: list[Candidate] = []
    seen: set[str] = set()
    skipped: list[str] = []
    for i, item in enumerate(doc):
        reason = _entry_problem(item)
        if reason is not None:
            if reason:
                skipped.append(f"[{i}] {reason}")
            continue
        assert isinstance(item, dict)
        address = item["address"].strip()
        try:
            if normalize is not None:
                address = normalize(address)
            elif urlsplit(address).scheme not in ("http", "https"):
                skipped.append(f"[{i}] address {address!r} is not an http(s) URL")
                continue
        except (ValueError, ConfigError) as exc:  # one bad entry: the others still count
            skipped.append(f"[{i}] address {address[:200]!r}: {exc}")
            continue
        if address in seen:
            continue
        seen.add(address)
        score = item.get("score", 0)
        found.append(Candidate(address, float(score), item.get("region") or ""))
    if skipped:
        log.warning(
            "orchestrator webhook: skipped malformed entries", extra={"entries": "; ".join(skipped)}
        )
    return found


def _entry_problem(item: Any) -> str | None:
    """None when usable, "" to skip silently (empty address), else the reason to log."""
    if not isinstance(item, dict):
        return "not an object"
    address = item.get("address", "")
    if not isinstance(address, str):
        return "address is not a string"
    if not address.strip():
        return ""
    score = item.get("score", 0)
    if not usable_score(score):
        return f"score {str(score)[:40]!r} is not a number"
    region = item.get("region", "")
    if region is not None and not isinstance(region, str):
        return "region is not a string"
    if region and not _REGION_RE.match(region):
        return f"region {region!r} is malformed"
    return None


class WebhookSource:
    """Candidates from ``-orchWebhookUrl``, cached for ``ttl`` seconds.

    A fetch is a GET with a ``timeout`` (whole request), needs a 2xx status and a body of at
    most ``max_body`` bytes. On any failure the last good list is kept, the error is logged, and
    the next attempt waits ``retry_after`` seconds (so a dead webhook is not hammered). Concurrent
    callers share one fetch. ``clock`` is monotonic seconds. Without ``normalize`` an address must
    be an ``http(s)://`` URL; with it, addresses are normalized like ``-orchAddr`` entries.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float],
        ttl: float = 60.0,
        timeout: float = 3.0,
        retry_after: float = 5.0,
        max_body: int = 1 << 20,
        normalize: Callable[[str], str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"-orchWebhookUrl: {url!r} is not an http(s) URL")
        self._url = url
        self._clock = clock
        self._ttl = ttl
        self._timeout = timeout
        self._retry_after = retry_after
        self._max_body = max_body
        self._normalize = normalize
        self._session = session
        self._lock = asyncio.Lock()
        self._good: list[Candidate] = []
        self._next_fetch: float | None = None  # None: never fetched

    async def candidates(self) -> list[Candidate]:
        async with self._lock:
            now = self._clock()
            if self._next_fetch is None or now >= self._next_fetch:
                try:
                    self._good = await self._fetch()
                except WebhookError as exc:
                    self._next_fetch = self._clock() + min(self._retry_after, self._ttl)
                    log.warning(
                        "orchestrator webhook failed; keeping the last good list",
                        extra={
                            "webhook": redact_url(self._url),
                            "error": str(exc),
                            "kept": len(self._good),
                        },
                    )
                else:
                    self._next_fetch = self._clock() + self._ttl
            return list(self._good)

    async def _fetch(self) -> list[Candidate]:
        try:
            body = await asyncio.wait_for(self._get(), self._timeout)
        except TimeoutError:
            raise WebhookError(f"no complete answer within {self._timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise WebhookError(f"request failed: {type(exc).__name__}: {exc}") from None
        return parse_webhook_body(body, self._normalize)

    async def _get(self) -> bytes:
        if self._session is not None:
            return await self._get_with(self._session)
        async with aiohttp.ClientSession() as session:
            return await self._get_with(session)

    async def _get_with(self, session: aiohttp.ClientSession) -> bytes:
        async with session.get(self._url, allow_redirects=False) as resp:
            if not 200 <= resp.status < 300:
                raise WebhookError(f"status {resp.status}")
            try:
                return await read_limited(resp, self._max_body)
            except BodyTooLarge as exc:
                if exc.declared is not None:
                    raise WebhookError(
                        f"body of {exc.declared} bytes is over the {self._max_body} limit"
                    ) from None
                raise WebhookError(f"body is over the {self._max_body} byte limit") from None


class Blocklist:
    """``-orchBlocklist``: ETH addresses never used (``0x`` optional, case-insensitive)."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        found: set[str] = set()
        for raw in entries:
            text = raw.strip().lower()
            if not text:
                continue
            text = text.removeprefix("0x")
            if not _ADDRESS_RE.match(text):
                raise ConfigError(
                    f"-orchBlocklist: {raw!r} is not an ETH address (40 hex digits, 0x optional)"
                )
            found.add(text)
        self._addresses = frozenset(found)

    def __len__(self) -> int:
        return len(self._addresses)

    def __contains__(self, address: object) -> bool:
        if isinstance(address, bytes):
            return address.hex() in self._addresses
        if isinstance(address, str):
            return address.strip().lower().removeprefix("0x") in self._addresses
        return False

    def blocks(self, info: net.OrchestratorInfo) -> bool:
        """True when the info's ``address`` is listed (an empty address is never blocked)."""
        return bool(info.address) and info.address in self
