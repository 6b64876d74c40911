"""The ``/api`` frame over real sockets, on SQLite and PostgreSQL: Bearer keys (each refusal),
scopes, CORS keys, the failed-auth throttle, body checks, the admin key routes, the audit log
and the OpenAPI document built from the same models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from api_testkit import Server, api_server

from mediagw.api.studio.base import MAX_BODY
from mediagw.platform import keys
from mediagw.platform.store import SqlStore


@pytest.fixture
async def server(store: SqlStore) -> AsyncIterator[Server]:
    async with api_server(store) as running:
        yield running


async def test_every_refused_key_gets_401_in_studio_error_shape(server: Server) -> None:
    row, revoked = await keys.create_key(server.store, "old", ["admin"], clock=server.clock.wall)
    await keys.revoke(server.store, row.id, clock=server.clock.wall)
    _, expiring = await keys.create_key(
        server.store,
        "brief",
        ["admin"],
        expires_at=int(server.clock.wall() * 1000) + 1000,
        clock=server.clock.wall,
    )
    server.clock.advance(2)
    wrong = server.admin[:-2] + ("AA" if not server.admin.endswith("AA") else "BA")
    cases = {
        "missing": None,
        "malformed": "not-a-key",
        "wrong": wrong,
        "revoked": revoked,
        "expired": expiring,
    }
    for reason, key in cases.items():
        status, body, headers = await server.call("GET", "/api/admin/keys", key)
        assert status == 401, reason
        assert isinstance(body, dict) and list(body) == ["errors"], reason
        assert body["errors"] and all(isinstance(e, str) for e in body["errors"])
        assert headers["WWW-Authenticate"].startswith("Bearer")
        if key:
            assert key not in json.dumps(body)  # the key is never echoed
    status, _, _ = await server.call(
        "GET", "/api/admin/keys", headers={"Authorization": f"Basic {server.admin}"}
    )
    assert status == 401
    status, body, _ = await server.call("GET", "/api/admin/keys", server.admin)
    assert status == 200 and isinstance(body, list)


async def test_scopes_are_enforced(server: Server) -> None:
    _, streams_key = await keys.create_key(server.store, "app", ["streams"])
    status, body, _ = await server.call("GET", "/api/admin/keys", streams_key)
    assert status == 403 and "admin" in body["errors"][0]  # type: ignore[index]
    status, _, _ = await server.call("GET", "/api/audit", streams_key)
    assert status == 403


async def test_create_list_rotate_revoke_keys_and_the_audit_log(server: Server) -> None:
    status, made, _ = await server.call(
        "POST",
        "/api/admin/keys",
        server.admin,
        json={"name": "web app", "scopes": ["streams"], "corsOrigins": ["https://app.example"]},
    )
    assert status == 201 and isinstance(made, dict)
    text, key_id = made["key"], made["id"]
    assert text.startswith(made["prefix"] + "_")
    assert made["corsOrigins"] == ["https://app.example"] and made["scopes"] == ["streams"]
    # the new key authenticates (for what its scope covers)
    row = await keys.authenticate(server.store, text, now=int(server.clock.wall() * 1000))
    assert row.id == key_id
    status, listed, _ = await server.call("GET", "/api/admin/keys", server.admin)
    assert status == 200 and isinstance(listed, list)
    mine = next(k for k in listed if k["id"] == key_id)
    assert "key" not in mine and text not in json.dumps(listed)
    assert not any("hash" in f.lower() for f in mine)
    # rotate: a new key, the old one refused
    status, rotated, _ = await server.call("POST", f"/api/admin/keys/{key_id}/rotate", server.admin)
    assert status == 201 and isinstance(rotated, dict)
    assert rotated["id"] != key_id and rotated["name"] == "web app"
    assert rotated["corsOrigins"] == ["https://app.example"]
    with pytest.raises(keys.AuthError):
        await keys.authenticate(server.store, text, now=int(server.clock.wall() * 1000))
    status, _, _ = await server.call("POST", f"/api/admin/keys/{key_id}/rotate", server.admin)
    assert status == 404  # a revoked key cannot be rotated again
    # revoke
    status, _, _ = await server.call("DELETE", f"/api/admin/keys/{rotated['id']}", server.admin)
    assert status == 204
    status, _, _ = await server.call("DELETE", "/api/admin/keys/key_nope", server.admin)
    assert status == 404
    # the audit log: who did what, from where, never a secret
    status, log, _ = await server.call("GET", "/api/audit?limit=10", server.admin)
    assert status == 200 and isinstance(log, list)
    actions = [e["action"] for e in log]
    assert actions == ["key.revoke", "key.rotate", "key.create"]
    admin_row = next(k for k in await keys.list_keys(server.store) if k.name == "root")
    assert {e["actorKeyId"] for e in log} == {admin_row.id}
    assert {e["ip"] for e in log} == {"127.0.0.1"}
    assert log[2]["targetId"] == key_id and log[1]["details"]["newKeyId"] == rotated["id"]
    dumped = json.dumps(log)
    assert text not in dumped and rotated["key"] not in dumped
    status, older, _ = await server.call(
        "GET", f"/api/audit?limit=10&before={log[0]['id']}", server.admin
    )
    assert [e["action"] for e in older] == actions[1:]  # type: ignore[union-attr]
    for bad in ("limit=0", "limit=x", "before=abc"):
        status, body, _ = await server.call("GET", f"/api/audit?{bad}", server.admin)
        assert status == 422 and bad.split("=")[0] in body["errors"][0]  # type: ignore[index]


async def test_repeated_failures_from_one_address_are_throttled(server: Server) -> None:
    for _ in range(10):
        status, _, _ = await server.call("GET", "/api/admin/keys", "mgw_bad")
        assert status == 401
    # blocked: even a good key from this address waits, and is told how long
    status, body, headers = await server.call("GET", "/api/admin/keys", server.admin)
    assert status == 429 and "retry" in body["errors"][0]  # type: ignore[index]
    assert 290 <= int(headers["Retry-After"]) <= 301
    server.clock.advance(301)
    status, _, _ = await server.call("GET", "/api/admin/keys", server.admin)
    assert status == 200


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        (b'{"name": "x", ', 400, "line 1"),
        (b"\xff\xfe", 400, "JSON"),
        (b'["name"]', 422, "object"),
        (b'{"name": "x", "bogus": 1}', 422, "bogus"),
        (b'{"name": "x", "scopes": ["root"]}', 422, "scopes.0"),
        (b'{"name": ""}', 422, "name"),
        (b'{"name": "x", "corsOrigins": ["javascript:alert(1)"]}', 422, "corsOrigins.0"),
        (b'{"name": "x", "expiresAt": "tomorrow"}', 422, "expiresAt"),
    ],
)
async def test_bad_bodies_get_a_4xx_naming_the_field(
    server: Server, body: bytes, status: int, names: str
) -> None:
    got, answer, _ = await server.call(
        "POST",
        "/api/admin/keys",
        server.admin,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert got == status
    assert isinstance(answer, dict) and any(names in e for e in answer["errors"]), answer


async def test_huge_and_non_json_bodies_are_refused(server: Server) -> None:
    huge = json.dumps({"name": "x" * (MAX_BODY + 10)}).encode()
    status, body, _ = await server.call(
        "POST", "/api/admin/keys", server.admin, data=huge,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 413 and str(MAX_BODY) in body["errors"][0]  # type: ignore[index]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    status, _, _ = await server.call(
        "POST", "/api/admin/keys", server.admin, data=chunks(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 413
    status, _, _ = await server.call(
        "POST", "/api/admin/keys", server.admin, data=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert status == 415


async def test_sql_looking_names_are_just_names(server: Server) -> None:
    name = "Robert'); DROP TABLE api_keys;-- \" OR 1=1"
    status, made, _ = await server.call(
        "POST", "/api/admin/keys", server.admin, json={"name": name}
    )
    assert status == 201 and made["name"] == name  # type: ignore[index]
    status, listed, _ = await server.call("GET", "/api/admin/keys", server.admin)
    assert status == 200 and name in [k["name"] for k in listed]  # type: ignore[union-attr]


async def test_studio_sdk_gets_send_octet_stream_without_a_body(server: Server) -> None:
    status, body, _ = await server.call(
        "GET", "/api/admin/keys", server.admin,
        headers={"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert status == 200 and isinstance(body, list)


async def test_cors_keys_work_only_from_their_origins(server: Server) -> None:
    _, web_key = await keys.create_key(
        server.store, "web", ["admin"], cors_origins=["https://app.example"]
    )
    ok = {"Origin": "https://app.example"}
    other = {"Origin": "https://evil.example"}
    assert (await server.call("GET", "/api/admin/keys", web_key, headers=ok))[0] == 200
    assert (await server.call("GET", "/api/admin/keys", web_key, headers=other))[0] == 403
    # a server-side key is refused from another site's page, accepted from a server
    status, body, _ = await server.call("GET", "/api/admin/keys", server.admin, headers=other)
    assert status == 403 and "origin" in body["errors"][0]  # type: ignore[index]
    assert (await server.call("GET", "/api/admin/keys", server.admin))[0] == 200


async def test_openapi_is_built_from_the_validating_models(server: Server) -> None:
    status, doc, _ = await server.call("GET", "/api/openapi.json")
    assert status == 200 and isinstance(doc, dict)
    assert doc["openapi"] == "3.1.0"
    post = doc["paths"]["/api/admin/keys"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False  # unknown fields are refused, and said so
    assert {"name", "scopes", "expiresAt", "corsOrigins"} <= set(schema["properties"])
    assert schema["required"] == ["name"]
    assert "201" in post["responses"] and "422" in post["responses"]
    assert post["security"] == [{"bearer": []}]
    rotate = doc["paths"]["/api/admin/keys/{id}/rotate"]["post"]
    assert rotate["parameters"][0]["name"] == "id"
    # every $ref resolves
    text = json.dumps(doc)
    for name in {r.split('"')[0] for r in text.split('"#/components/schemas/')[1:]}:
        assert name in doc["components"]["schemas"], name
