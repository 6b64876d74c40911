"""NaaP's rate-limit headers for a ``Decision`` of ``platform/limits``, and its 429.

``X-RateLimit-Limit`` (requests a minute), ``X-RateLimit-Remaining`` (requests that may be made
now), ``X-RateLimit-Reset`` (unix seconds when the allowance is whole again); with a quota,
``X-Quota-Daily-Limit`` / ``-Used`` and ``X-Quota-Monthly-Limit`` / ``-Used`` (UTC windows);
on a refusal, ``Retry-After`` in whole seconds (rounded up).
"""

from __future__ import annotations

import math

from aiohttp import web

from ...platform.limits import Decision

__all__ = ["limit_headers", "refusal"]

WHAT = {
    "rate": "this API key made more than {limit} requests a minute",
    "daily": "this API key used its daily quota of {daily} requests (it renews at 00:00 UTC)",
    "monthly": "this API key used its monthly quota of {monthly} requests (it renews on the"
    " 1st at 00:00 UTC)",
}


def limit_headers(d: Decision) -> dict[str, str]:
    headers: dict[str, str] = {}
    if d.limit is not None:
        headers["X-RateLimit-Limit"] = str(d.limit)
        headers["X-RateLimit-Remaining"] = str(d.remaining)
        headers["X-RateLimit-Reset"] = str(math.ceil(d.reset))
    if d.daily_limit is not None:
        headers["X-Quota-Daily-Limit"] = str(d.daily_limit)
        headers["X-Quota-Daily-Used"] = str(d.daily_used)
    if d.monthly_limit is not None:
        headers["X-Quota-Monthly-Limit"] = str(d.monthly_limit)
        headers["X-Quota-Monthly-Used"] = str(d.monthly_used)
    return headers


def refusal(d: Decision) -> web.Response:
    """429 in Studio's error shape, saying which limit and when to retry."""
    wait = max(1, math.ceil(d.retry_after))
    what = WHAT.get(d.exceeded, WHAT["rate"]).format(
        limit=d.limit, daily=d.daily_limit, monthly=d.monthly_limit
    )
    headers = limit_headers(d)
    headers["Retry-After"] = str(wait)
    return web.json_response(
        {"errors": [f"{what}: retry in {wait} s, or ask the operator for a larger plan"]},
        status=429,
        headers=headers,
    )
