"""POSTing a JSON document to an operator's endpoint (auth webhooks, the live AI heartbeat).

One pooled session per endpoint, a total timeout per call, and an answer read whole up to
``max_body + 1`` bytes (callers refuse a longer one). ``post`` serialises a document; ``post_bytes``
sends bytes as given (a signed body must go out exactly as it was signed). A ``resolver`` sees
every name the session looks up and may refuse an address (the platform's webhooks refuse private
ones after resolving, against DNS rebinding). Transport errors (``aiohttp.ClientError``,
``OSError``, the timeout) are translated once, here, into ``WebhookUnreachable`` whose text is
``describe_error``'s (no URL query or credentials, which may hold a token): each caller words it
for its own users, and none of them needs to know aiohttp.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

from .errors import WebhookUnreachable
from .httpbody import read_prefix

__all__ = ["JsonPoster", "describe_error", "redact_url"]


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
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_body = max_body
        self.headers = dict(headers or {})
        self.follow_redirects = follow_redirects
        self.resolver = resolver
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
                if self.resolver is not None:
                    connector = aiohttp.TCPConnector(resolver=self.resolver)
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
