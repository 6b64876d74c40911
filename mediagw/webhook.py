"""POSTing a JSON document to an operator's endpoint (auth webhooks, the live AI heartbeat).

One pooled session per endpoint, a total timeout per call, and an answer read whole up to
``max_body + 1`` bytes (callers refuse a longer one). ``post`` serialises a document; ``post_bytes``
sends bytes as given (a signed body must go out exactly as it was signed). With
``refuse_address``, every address a looked-up name resolves to is checked before connecting and
the call fails if any is refused (the platform's webhooks refuse private ones after resolving,
against DNS rebinding; IP literals are not looked up: check those in the URL).

Transport errors (``aiohttp.ClientError``, ``OSError``, the timeout) are translated once, here,
into ``WebhookUnreachable`` whose text is ``describe_error``'s (no URL query or credentials,
which may hold a token): each caller words it for its own users, and none of them needs to know
aiohttp.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from .errors import WebhookUnreachable
from .httpbody import read_prefix

__all__ = ["JsonPoster", "RefusedAddress", "describe_error", "redact_url"]

AddressCheck = Callable[[str], "str | None"]  # why an IP address may not be called, or None


class RefusedAddress(OSError):
    """A name resolved to an address ``refuse_address`` refused; aiohttp reports it as a
    connection error whose text ends with this message."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)


class _CheckingResolver(AbstractResolver):
    def __init__(self, refuse: AddressCheck) -> None:
        self._refuse = refuse
        self._base: ThreadedResolver | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._base is None:
            self._base = ThreadedResolver()
        results = await self._base.resolve(host, port, family)
        for result in results:
            if (why := self._refuse(result["host"])) is not None:
                raise RefusedAddress(f"refused: {host} resolves to {result['host']}, {why}")
        return results

    async def close(self) -> None:
        if self._base is not None:
            await self._base.close()


def redact_url(url: str) -> str:
    """The URL without credentials or query (which may hold a token), for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def describe_error(exc: BaseException, url: str) -> str:
    """One line for a failed call to ``url``: the error's kind and text, the URL redacted."""
    text = str(exc).replace(url, redact_url(url)).splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class JsonPoster:
    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        max_body: int,
        headers: Mapping[str, str] | None = None,
        follow_redirects: bool = True,
        refuse_address: AddressCheck | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_body = max_body
        self.headers = dict(headers or {})
        self.follow_redirects = follow_redirects
        self.refuse_address = refuse_address
        self.last_ms = 0.0  # how long the last call took
        self._session: aiohttp.ClientSession | None = None

    async def post(self, doc: Any, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """(status, answer): the answer is at most ``max_body + 1`` bytes. Raises
        ``WebhookUnreachable`` when no answer came (connection, TLS, timeout)."""
        return await self._post({"json": doc}, headers)

    async def post_bytes(
        self, body: bytes, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """``post`` of ``body`` exactly as given (set its Content-Type in ``headers``)."""
        return await self._post({"data": body}, headers)

    async def _post(
        self, content: dict[str, Any], headers: Mapping[str, str] | None
    ) -> tuple[int, bytes]:
        started = time.monotonic()
        try:
            if self._session is None or self._session.closed:
                connector = None
                if self.refuse_address is not None:
                    resolver = _CheckingResolver(self.refuse_address)
                    connector = aiohttp.TCPConnector(resolver=resolver)
                self._session = aiohttp.ClientSession(connector=connector)
            async with asyncio.timeout(self.timeout):
                async with self._session.post(
                    self.url,
                    **content,
                    headers={**self.headers, **(headers or {})},
                    allow_redirects=self.follow_redirects,
                ) as resp:
                    return resp.status, await read_prefix(resp.content, self.max_body + 1)
        except TimeoutError:
            raise WebhookUnreachable(f"no answer within {self.timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise WebhookUnreachable(describe_error(exc, self.url)) from None
        finally:
            self.last_ms = (time.monotonic() - started) * 1000

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
