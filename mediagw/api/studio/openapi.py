"""OpenAPI 3.1 for ``/api``, built from the routes and the pydantic models that validate them.

Nothing here is written by hand beside the routes: a route's path, method, scope, summary, body
model and answer model are the ``Route`` the wrapper enforces (``base.py``), and the schemas are
pydantic's JSON Schema (draft 2020-12, which OpenAPI 3.1 uses as is).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from .base import PREFIX, Route

__all__ = ["document"]

_PARAM_RE = re.compile(r"\{(\w+)\}")
_REF = "#/components/schemas/{model}"
_ERRORS = {
    "type": "object",
    "properties": {"errors": {"type": "array", "items": {"type": "string"}}},
    "required": ["errors"],
}


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return {"$ref": _REF.format(model=model.__name__)}


def document(routes: list[Route], *, version: str, server_url: str = "") -> dict[str, Any]:
    components: dict[str, Any] = {"Errors": _ERRORS}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": route.handler.__name__,
        }
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM_RE.findall(route.path)
        ]
        params += [
            {"name": name, "in": "query", "required": False, "description": text,
             "schema": {"type": "string"}}
            for name, text in route.query
        ]  # fmt: skip
        if params:
            op["parameters"] = params
        if route.body is not None:
            schema = _schema(route.body, components, "validation")
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        answer: dict[str, Any] = {"description": "OK"}
        if route.response is not None:
            answer["content"] = {
                "application/json": {"schema": _schema(route.response, components, "serialization")}
            }
        responses: dict[str, Any] = {str(route.status): answer}
        err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}}
        if route.body is not None:
            responses["400"] = {"description": "the body is not JSON", **err}
            responses["413"] = {"description": "the body is too large", **err}
            responses["422"] = {"description": "a field is invalid (named in errors)", **err}
        if route.scope is not None:
            op["security"] = [{"bearer": []}]
            op["x-mediagw-scope"] = route.scope
            responses["401"] = {"description": "no valid API key", **err}
            responses["403"] = {"description": f"the key lacks the {route.scope} scope", **err}
            responses["429"] = {"description": "too many failed authentications", **err}
        op["responses"] = responses
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "mediagw API",
            "version": version,
            "description": "A Livepeer gateway's platform API, compatible with Livepeer Studio's"
            " (base URL http://HOST:PORT/api).",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
