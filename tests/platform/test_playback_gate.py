"""Token-gated HLS over real sockets: a Gateway with the store (SQLite and PostgreSQL), a
stream row with ``playbackPolicy {"type": "jwt"}`` published with FFmpeg's RTMP client at
``/live/<streamKey>``, played with aiohttp's client at go-livepeer's and Studio's paths; and the
WHEP ``authorize`` hook on a real WHEP route."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import jwt
import pytest
from aiohttp import web
from mediatools import ClipMaker, decode_segment, push, serve_app, wait_until

from mediagw.api.playback_gate import carry_token, whep_authorize
from mediagw.config import Settings
from mediagw.gateway import Gateway
from mediagw.platform.access import (
    LEEWAY,
    NewSigningKey,
    PlaybackAccess,
    create_signing_key,
    sign_token,
)
from mediagw.platform.store import SqlStore, Stream
from webrtc import add_whep_routes

pytestmark = pytest.mark.ffmpeg

GATED, OPEN = "gatedpb", "openpb"


@dataclass
class Live:
    gw: Gateway
    store: SqlStore
    counting: Any  # conftest's CountingStore
    key: NewSigningKey

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.gw.http_port}"

    def token(self, playback_id: str = GATED, ttl: float = 300) -> str:
        return sign_token(
            self.key.private_key, self.key.public_key, playback_id, expires_at=time.time() + ttl
        )

    def seq(self, playback_id: str = GATED) -> int:
        rendition = self.gw.hls.rendition(playback_id, "source")
        assert rendition is not None and rendition.segments
        return next(iter(rendition.segments))


async def _row(store: SqlStore, playback_id: str, policy: dict[str, Any] | None) -> None:
    await store.create_stream(
        Stream(
            id=f"id-{playback_id}",
            name=playback_id,
            stream_key=f"key-{playback_id}",
            playback_id=playback_id,
            created_at=1,
            playback_policy=policy,
        )
    )


@pytest.fixture
async def live(store: SqlStore, counting_store: Any, make_clip: ClipMaker) -> AsyncIterator[Live]:
    await _row(store, GATED, {"type": "jwt"})
    await _row(store, OPEN, None)
    key = await create_signing_key(store, "main")
    gw = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0"), store=counting_store)
    await gw.start()
    try:
        clip = make_clip(seconds=5)
        for name in (GATED, OPEN):
            code, err = await push(
                clip, f"rtmp://127.0.0.1:{gw.rtmp_port}/live/key-{name}", live=False
            )
            assert code == 0, err
            await wait_until(lambda n=name: not gw.hub.get(n).live)  # type: ignore[union-attr]
        yield Live(gw, store, counting_store, key)
    finally:
        await gw.stop()


def _paths(seq: int) -> list[str]:
    return [
        f"/stream/{GATED}.m3u8",
        f"/stream/{GATED}/source.m3u8",
        f"/stream/{GATED}/source/{seq}.ts",
        f"/hls/{GATED}/index.m3u8",
        f"/hls/{GATED}/source.m3u8",
        f"/hls/{GATED}/source/{seq}.ts",
        # LL-HLS: the same gate
        f"/stream/{GATED}/ll/index.m3u8",
        f"/stream/{GATED}/ll/source.m3u8",
        f"/stream/{GATED}/ll/source/init-0.mp4",
        f"/stream/{GATED}/ll/source/{seq}.mp4",
        f"/hls/{GATED}/ll/source.m3u8",
        f"/hls/{GATED}/ll/source/{seq}.0.mp4",
    ]


async def _get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_no_token_is_401_on_playlists_and_segments(live: Live) -> None:
    for path in _paths(live.seq()):
        status, headers, body = await _get(live.base + path)
        assert status == 401, (path, body)
        assert headers["Content-Type"].startswith("application/json")
        assert headers["Access-Control-Allow-Origin"] == "*"  # a browser app can read why
        errors = json.loads(body)["errors"]
        assert len(errors) == 1 and "Livepeer-Jwt" in errors[0]


async def test_the_livepeer_jwt_header_opens_every_path(live: Live) -> None:
    headers = {"Livepeer-Jwt": live.token()}
    for path in _paths(live.seq()):
        status, answer, body = await _get(live.base + path, headers)
        assert status == 200, (path, body)
        assert "jwt=" not in body.decode("latin-1")  # a header client keeps sending the header
        assert "public" not in answer.get("Cache-Control", "")  # no shared cache keeps it
    status, answer, _ = await _get(f"{live.base}/stream/{GATED}/source/{live.seq()}.ts", headers)
    assert answer["Cache-Control"].startswith("private")


@pytest.mark.parametrize("entry", [f"/stream/{GATED}.m3u8", f"/hls/{GATED}/index.m3u8"])
async def test_jwt_in_the_query_is_carried_into_every_uri(live: Live, entry: str) -> None:
    """What hls.js does with ``?jwt=`` on the multivariant: resolve and fetch each URI as is."""
    token = live.token()
    url = f"{live.base}{entry}?jwt={token}"
    status, _, body = await _get(url)
    assert status == 200, body
    variants = [u for u in body.decode().splitlines() if u and not u.startswith("#")]
    assert variants
    frames = 0
    for variant in variants:
        assert parse_qs(urlsplit(variant).query)["jwt"] == [token]
        media_url = urljoin(url, variant)
        status, _, media = await _get(media_url)
        assert status == 200, (media_url, media)
        segments = [u for u in media.decode().splitlines() if u and not u.startswith("#")]
        assert len(segments) >= 2
        for uri in segments:
            assert parse_qs(urlsplit(uri).query)["jwt"] == [token]
            status, _, data = await _get(urljoin(media_url, uri))
            assert status == 200, uri
            frames += decode_segment(0, 2.0, data).video_frames
            # the same URI without its token is refused
            assert (await _get(urljoin(media_url, uri.split("?")[0])))[0] == 401
    assert frames == 150  # 5 s at 30 fps, all of it


async def test_jwt_in_the_query_is_carried_into_every_ll_hls_uri(live: Live) -> None:
    """LL-HLS: the variant, EXT-X-MAP, every part and segment URI carry the token."""
    token = live.token()
    url = f"{live.base}/hls/{GATED}/ll/index.m3u8?jwt={token}"
    status, _, body = await _get(url)
    assert status == 200, body
    variant = next(u for u in body.decode().splitlines() if u and not u.startswith("#"))
    media_url = urljoin(url, variant)
    status, _, media = await _get(media_url)
    assert status == 200, media
    text = media.decode()
    uris = re.findall(r'URI="([^"]*)"', text)
    uris += [u for u in text.splitlines() if u and not u.startswith("#")]
    assert any("init-0.mp4" in u for u in uris) and any(".0.mp4" in u for u in uris), uris
    for uri in uris:
        assert parse_qs(urlsplit(uri).query)["jwt"] == [token], uri
        assert (await _get(urljoin(media_url, uri)))[0] == 200, uri
        assert (await _get(urljoin(media_url, uri.split("?")[0])))[0] == 401, uri


async def test_expired_wrong_stream_and_disabled_key(live: Live) -> None:
    path = f"{live.base}/stream/{GATED}/source/{live.seq()}.ts"
    expired = live.token(ttl=-LEEWAY - 60)
    assert (await _get(f"{path}?jwt={expired}"))[0] == 401
    assert (await _get(path, {"Livepeer-Jwt": "not.a.token"}))[0] == 401
    status, _, body = await _get(path, {"Livepeer-Jwt": live.token(OPEN)})
    assert status == 403 and b"another stream" in body
    await live.store.update_signing_key(live.key.key.id, disabled=True)
    assert live.gw.playback_access is not None
    live.gw.playback_access.forget(public_key=live.key.public_key)
    status, _, body = await _get(path, {"Livepeer-Jwt": live.token()})
    assert status == 403 and b"disabled" in body


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], alg: str, secret: bytes | None) -> str:
    """A token forged by hand: HMAC-SHA256 keyed with ``secret`` (what is public), or unsigned."""
    head = _b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    signing_input = f"{head}.{_b64url(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


async def test_forged_tokens_are_refused_on_hls_and_whep(live: Live) -> None:
    """``alg: none``, HS256 keyed with the ES256 key's public PEM (alg confusion), a token signed
    by another stored key that names it as ``kid`` but the gated key as ``pub``, and an expired
    token: 401 on a playlist, a segment and the gateway's own WHEP route."""
    pub = live.key.public_key
    claims = {"action": "pull", "pub": pub, "sub": GATED, "exp": int(time.time() + 300)}
    other = await create_signing_key(live.store, "other")
    wrong_kid = jwt.encode(
        claims, base64.b64decode(other.private_key), algorithm="ES256",
        headers={"kid": other.key.id},
    )  # fmt: skip
    forged = {
        "none": _hs256(claims, "none", None),
        "confusion": _hs256(claims, "HS256", base64.b64decode(pub)),
        "confusion-b64": _hs256(claims, "HS256", pub.encode()),
        "wrong kid": wrong_kid,
        "expired": live.token(ttl=-LEEWAY - 60),
    }
    paths = [f"/stream/{GATED}.m3u8", f"/stream/{GATED}/source/{live.seq()}.ts"]
    sdp = {"Content-Type": "application/sdp"}
    async with aiohttp.ClientSession() as http:
        for name, token in forged.items():
            for path in paths:
                async with http.get(live.base + path, headers={"Livepeer-Jwt": token}) as resp:
                    assert resp.status == 401, (name, path)
            whep = f"{live.base}/webrtc/{GATED}?jwt={token}"
            async with http.post(whep, data="v=0\r\n", headers=sdp) as resp:
                assert resp.status == 401, (name, await resp.text())
        good = live.token()
        async with http.get(live.base + paths[1], headers={"Livepeer-Jwt": good}) as resp:
            assert resp.status == 200
        async with http.post(f"{live.base}/webrtc/{GATED}?jwt={good}", data="v=0\r\n",
                             headers=sdp) as resp:  # fmt: skip
            assert resp.status not in (401, 403)  # past the gate


async def test_segments_cost_no_store_call_once_warm(live: Live) -> None:
    token = live.token()
    for path in _paths(live.seq()):
        assert (await _get(live.base + path, {"Livepeer-Jwt": token}))[0] == 200
        assert (await _get(f"{live.base}/stream/{OPEN}/source/{live.seq(OPEN)}.ts"))[0] == 200
    calls = live.counting.calls
    assert calls["signing_key_by_public_key"] == 1
    assert calls["stream_by_playback_id"] <= 4  # 2 ids; at most one refresh each (5 s TTL)


async def test_public_streams_play_without_a_token(live: Live) -> None:
    seq = live.seq(OPEN)
    for path in (
        f"/stream/{OPEN}.m3u8",
        f"/hls/{OPEN}/index.m3u8",
        f"/stream/{OPEN}/source/{seq}.ts",
    ):
        status, headers, body = await _get(live.base + path)
        assert status == 200, (path, body)
        assert "jwt" not in body.decode("latin-1")
    assert headers["Cache-Control"].startswith("public")


async def test_a_browser_may_send_the_token_header_cross_origin(live: Live) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.options(
            f"{live.base}/hls/{GATED}/index.m3u8",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "livepeer-jwt",
            },
        ) as resp,
    ):
        assert resp.status == 204
        allowed = [
            h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")
        ]
        assert "livepeer-jwt" in allowed


async def test_whep_authorize_hook(live: Live) -> None:
    """On a real WHEP route (mounted beside the gateway's own before it starts, here on an app
    of its own): refused without a token, let through to the offer with one."""
    access = PlaybackAccess(live.store)
    app = web.Application()
    add_whep_routes(
        app,
        "/whep/{stream}",
        live.gw.whep,
        authorize=whep_authorize(access, lambda r: r.match_info["stream"] + "-out"),
    )
    sdp = {"Content-Type": "application/sdp"}
    async with serve_app(app) as base, aiohttp.ClientSession() as http:

        async def offer(stream: str, **headers: str) -> tuple[int, str]:
            url = f"{base}/whep/{stream}"
            async with http.post(url, data="v=0\r\n", headers={**sdp, **headers}) as resp:
                return resp.status, await resp.text()

        status, body = await offer(GATED)
        assert status == 401 and '"errors"' in body and "Livepeer-Jwt" in body
        status, body = await offer(GATED, **{"Livepeer-Jwt": live.token(OPEN)})
        assert status == 403, body
        status, body = await offer(GATED, **{"Livepeer-Jwt": live.token()})
        assert status not in (401, 403), body  # past the gate: the offer itself is judged
        status, body = await offer(OPEN)
        assert status not in (401, 403), body


def test_carry_token_appends_to_uris_and_uri_attributes() -> None:
    playlist = (
        '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2.000,\nsource/1.ts\n'
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p.ts?x=1"\nhttp://h/a.ts?b=2\n\n'
    )
    out = carry_token(playlist, "T.k-n_")
    assert re.findall(r'URI="([^"]*)"', out) == ["init.mp4?jwt=T.k-n_", "p.ts?x=1&jwt=T.k-n_"]
    assert "source/1.ts?jwt=T.k-n_\n" in out and "http://h/a.ts?b=2&jwt=T.k-n_\n" in out
    assert out.startswith("#EXTM3U\n") and out.endswith("\n\n")
