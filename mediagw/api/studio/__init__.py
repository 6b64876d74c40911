"""The Studio-compatible platform API under ``/api`` (see ``base.py`` for what every route
shares, ``openapi.py`` for its description, one module per group of routes)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ... import __version__
from .admin import add_admin_routes
from .base import Api, ApiContext, Call
from .dashboard import DashboardSources, add_dashboard_routes
from .openapi import document
from .plans import add_plan_routes
from .signing import add_signing_key_routes
from .streams import add_stream_routes
from .usage import add_usage_routes
from .webhooks import add_webhook_routes

__all__ = ["Api", "ApiContext", "DashboardSources", "build_api", "mount_api"]


def build_api() -> Api:
    api = Api()
    add_stream_routes(api)
    add_admin_routes(api)
    add_signing_key_routes(api)
    add_webhook_routes(api)
    add_plan_routes(api)
    add_usage_routes(api)
    add_dashboard_routes(api)

    @api.route(
        "GET", "/openapi.json", scope=None, summary="This API's OpenAPI 3.1 description",
        tag="meta",
    )  # fmt: skip
    async def openapi(call: Call) -> dict[str, Any]:
        return document(api.routes, version=__version__, server_url=call.ctx.public_url())

    return api


def mount_api(app: web.Application, ctx: ApiContext) -> Api:
    """Add every ``/api`` route to ``app``, working on ``ctx``."""
    api = build_api()
    api.mount(app, ctx)
    return api
