"""Studio's webhook routes (scope ``streams``) over ``platform/webhooks.WebhookService``.

    POST   /api/webhook                              {name, url, events, sharedSecret?, streamId?}
    GET    /api/webhook                              ?streamId= (those firing for that stream)
    GET    /api/webhook/{id}
    PUT    /api/webhook/{id}                         replaces the webhook (Studio's PUT)
    DELETE /api/webhook/{id}                         answers the deleted webhook
    GET    /api/webhook/{id}/log                     its deliveries, newest first
    GET    /api/webhook/{id}/log/{logId}
    POST   /api/webhook/{id}/log/{logId}/resend      queues that event again

Every answer is 200, as Studio's SDK 0.3.0 insists (it refuses a 201 for a new webhook). The
shared secret is write-only: no answer, log or audit entry contains it. A key acts on its own
webhooks only (an admin key: on all; another's is 404), names only its own streams, and its
global webhooks fire for its own streams (an admin key's: for all; ``platform/tenancy``).
"""

from __future__ import annotations

from typing import Any

from ...platform.store import Webhook
from ...platform.webhooks import WebhookService, delivery_json, webhook_json
from .base import Api, Call, not_found
from .models import WebhookCreate, WebhookOut

__all__ = ["add_webhook_routes"]


def _service(call: Call) -> WebhookService:
    service: WebhookService = call.ctx.services["webhooks"]
    return service


async def _existing(call: Call) -> Webhook:
    hook = await _service(call).get(call.param("id"), tenant=call.tenant)
    if hook is None:
        raise not_found("webhook", call.param("id"))
    return hook


def _audited(hook: Webhook) -> dict[str, Any]:
    return {"name": hook.name, "events": list(hook.events), "streamId": hook.stream_id}


def add_webhook_routes(api: Api) -> None:
    @api.route(
        "POST", "/webhook", scope="streams", body=WebhookCreate, response=WebhookOut,
        summary="Create a webhook (answers 200, as Studio does)", tag="webhook",
    )  # fmt: skip
    async def create_webhook(call: Call) -> dict[str, Any]:
        body: WebhookCreate = call.body
        hook = await _service(call).create(
            body.name, body.url, body.events, body.shared_secret, body.stream_id,
            tenant=call.tenant,
        )  # fmt: skip
        await call.audit("webhook.create", "webhook", hook.id, _audited(hook))
        return webhook_json(hook)

    @api.route(
        "GET", "/webhook", scope="streams", response=WebhookOut, summary="List webhooks",
        tag="webhook", query=(("streamId", "only those firing for this stream"),),
    )  # fmt: skip
    async def list_webhooks(call: Call) -> list[dict[str, Any]]:
        stream_id = call.query.get("streamId") or None
        hooks = await _service(call).list(stream_id, limit=1000, tenant=call.tenant)
        return [webhook_json(h) for h in hooks]

    @api.route(
        "GET", "/webhook/{id}", scope="streams", response=WebhookOut, summary="Get a webhook",
        tag="webhook",
    )  # fmt: skip
    async def get_webhook(call: Call) -> dict[str, Any]:
        return webhook_json(await _existing(call))

    @api.route(
        "PUT", "/webhook/{id}", scope="streams", body=WebhookCreate, response=WebhookOut,
        summary="Replace a webhook", tag="webhook",
    )  # fmt: skip
    async def update_webhook(call: Call) -> dict[str, Any]:
        body: WebhookCreate = call.body
        hook = await _service(call).update(
            call.param("id"), body.name, body.url, body.events, body.shared_secret,
            body.stream_id, tenant=call.tenant,
        )  # fmt: skip
        if hook is None:
            raise not_found("webhook", call.param("id"))
        await call.audit("webhook.update", "webhook", hook.id, _audited(hook))
        return webhook_json(hook)

    @api.route(
        "DELETE", "/webhook/{id}", scope="streams", response=WebhookOut,
        summary="Delete a webhook and its log", tag="webhook",
    )  # fmt: skip
    async def delete_webhook(call: Call) -> dict[str, Any]:
        hook = await _existing(call)
        if not await _service(call).delete(hook.id, tenant=call.tenant):
            raise not_found("webhook", hook.id)
        await call.audit("webhook.delete", "webhook", hook.id)
        return webhook_json(hook)

    @api.route(
        "GET", "/webhook/{id}/log", scope="streams", summary="A webhook's deliveries",
        tag="webhook",
    )  # fmt: skip
    async def webhook_log(call: Call) -> list[dict[str, Any]]:
        log = await _service(call).log(call.param("id"), limit=100, tenant=call.tenant)
        if log is None:
            raise not_found("webhook", call.param("id"))
        return [delivery_json(d) for d in log]

    @api.route(
        "GET", "/webhook/{id}/log/{logId}", scope="streams", summary="One delivery",
        tag="webhook",
    )  # fmt: skip
    async def webhook_log_entry(call: Call) -> dict[str, Any]:
        hook = await _existing(call)
        delivery = await call.ctx.store.get_delivery(call.param("logId"))
        if delivery is None or delivery.webhook_id != hook.id:
            raise not_found("webhook log entry", call.param("logId"))
        return delivery_json(delivery)

    @api.route(
        "POST", "/webhook/{id}/log/{logId}/resend", scope="streams",
        summary="Send a logged event again", tag="webhook",
    )  # fmt: skip
    async def resend_webhook_event(call: Call) -> dict[str, Any]:
        queued = await _service(call).resend(
            call.param("id"), call.param("logId"), tenant=call.tenant
        )
        if queued is None:
            raise not_found("webhook log entry", call.param("logId"))
        await call.audit("webhook.resend", "webhook", call.param("id"), {"logId": queued.id})
        return delivery_json(queued)
