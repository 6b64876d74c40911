"""Fuzzed HTTP requests for ``mediagw bench fuzzlive``, mutated from valid requests on every
route of the gateway.

Seeds (:func:`seeds`): playback (``/stream``, ``/hls`` with LL-HLS and ``jwt`` query
parameters, segments, recordings), ``/streams``, ``/metrics``, ``/healthz``, the dashboard,
the live AI routes (``start`` with JSON, form, multipart and query, ``update``, ``status``),
WHIP and WHEP with SDP offers, the WHIP session resource (trickle ICE ``PATCH``, ``DELETE``),
HTTP push of an MPEG-TS segment with its headers, and the ``/api`` routes with the JSON bodies
of the parser targets. Each request is mutated one to three times: its method, path (traversal,
percent garbage, huge numbers, long segments), query (known parameters with hostile values),
headers (content types and charsets, authorization, lengths) or body (:func:`.fuzz.mutate`).
About 40 % go over a raw socket (the request line and headers may be mutated as bytes, lengths
may lie, the malformed requests of :mod:`.flood_wire` join the seeds); the rest through
aiohttp's client, well-formed HTTP with fuzzed content.

Ingest routes use the fuzz's own stream names; playback routes also read the clean stream.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from urllib.parse import quote

from .flood_wire import malformed_http_bodies, malformed_http_raw
from .fuzz import mutate
from .fuzz_json import _api_seeds, _jwt_seeds
from .fuzz_media import _ts_seeds
from .fuzz_wire import SDP_OFFER, _push_seeds

__all__ = ["FuzzedRequest", "RequestFuzzer", "Seed", "seeds"]

MAX_BODY = 64 * 1024
JSON = {"Content-Type": "application/json"}
SDP = {"Content-Type": "application/sdp"}
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "get")
_QUERY_KEYS = (
    "pipeline", "params", "streamId", "regions", "rtmpOutput", "_HLS_msn", "_HLS_part",
    "_HLS_skip", "jwt", "key", "limit", "cursor", "from", "to", "filters", "live", "streamId",
    "timeStep", "breakdownBy", "allUsers", "record",
)  # fmt: skip
_VALUES = (
    "", "0", "-1", "1e309", "NaN", "99999999999999999999", "%00", "%ff%fe", "..%2f..%2fetc",
    "[]", "{}", "[" * 200, '{"a":', "true", "\u202e", "a" * 3000, "YES", "v2", "%",
)  # fmt: skip
_PATH_BITS = (
    "/..", "/../..", "/%2e%2e", "//", "/%00", "/\u00e9", "/" + "a" * 5000, "/99999999999999",
    "/-1", "/.", "/%2F", "/index.m3u8", "/0.ts", "/source", "/~", "/;x=1",
)  # fmt: skip
_HEADERS = {
    "Content-Type": (
        "application/json", "application/json; charset=utf-99", "application/sdp",
        "multipart/form-data", "multipart/form-data; boundary=zz",
        "application/x-www-form-urlencoded", "text/plain; charset=latin-1",
        "application/trickle-ice-sdpfrag", "", "\u00e9/\u00e9",
    ),
    "Authorization": ("Bearer x", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer " + "a" * 8000, "x"),
    "Livepeer-Transcode-Configuration": ('{"profiles": [{"name": "x"}]}', "{", "[]", "null"),
    "Content-Duration": ("2000", "-1", "1e400", "x"),
    "If-Match": ('"*"', "*", "", '"' + "a" * 500 + '"'),
    "Range": ("bytes=0-10", "bytes=-1", "bytes=9999999999-"),
    "Accept-Encoding": ("gzip", "br", "identity;q=0"),
    "Livepeer-Jwt": ("x.y.z", ""),
    "X-Forwarded-For": ("1.2.3.4", "::1", "garbage"),
    "Origin": ("https://example.com", "null"),
}  # fmt: skip


@dataclass
class Seed:
    kind: str
    method: str
    path: str  # may hold {s} (a fuzz stream name) and {v} (a name to play)
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class FuzzedRequest:
    kind: str
    method: str
    target: str  # path and query, percent-encoded
    headers: dict[str, str]
    body: bytes
    raw: bytes | None = None  # set: sent as is over a raw socket

    def reproducer(self) -> str:
        if self.raw is not None:
            return self.raw[:600].hex()
        return f"{self.method} {self.target[:300]} {self.headers} body={self.body[:200]!r}"


def _trickle_fragment() -> bytes:
    return (
        b"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\nm=audio 9 RTP/AVP 0\r\n"
        b"a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    )


def seeds() -> list[Seed]:
    api = [s[1:] for s in _api_seeds()]
    jwt = _jwt_seeds()[0].decode()
    ts = _ts_seeds()[0]
    push_duration, _, push_config = _push_seeds()[0].decode().partition("\n")
    live = "/live/video-to-video/{s}"
    start = {"pipeline": "noop", "params": {"prompt": "x"}, "streamId": "s-1"}
    out = [
        Seed("healthz", "GET", "/healthz"),
        Seed("streams", "GET", "/streams", [("live", "1")]),
        Seed("metrics", "GET", "/metrics"),
        Seed("multivariant", "GET", "/stream/{v}.m3u8"),
        Seed("media-playlist", "GET", "/stream/{v}/source.m3u8", [("jwt", jwt)]),
        Seed("segment", "GET", "/stream/{v}/source/1.ts"),
        Seed("hls-index", "GET", "/hls/{v}/index.m3u8"),
        Seed("hls-blocking", "GET", "/hls/{v}/source.m3u8",
             [("_HLS_msn", "3"), ("_HLS_part", "1")]),
        Seed("hls-segment", "GET", "/hls/{v}/source/2.ts"),
        Seed("recording", "GET", "/recordings/{v}/index.m3u8"),
        Seed("dashboard", "GET", "/dashboard"),
        Seed("live-status", "GET", f"{live}/status"),
        Seed("live-start-json", "POST", f"{live}/start", [], JSON, json.dumps(start).encode()),
        Seed("live-start-form", "POST", f"{live}/start", [],
             {"Content-Type": "application/x-www-form-urlencoded"},
             b"pipeline=noop&params=%7B%22prompt%22%3A1%7D"),
        Seed("live-start-multipart", "POST", f"{live}/start", [],
             {"Content-Type": "multipart/form-data; boundary=zz"},
             b'--zz\r\nContent-Disposition: form-data; name="pipeline"\r\n\r\nnoop\r\n--zz--\r\n'),
        Seed("live-start-query", "POST", f"{live}/start", [("pipeline", "noop"),
             ("params", '{"prompt":"x"}')]),
        Seed("live-update", "POST", f"{live}/update", [], JSON, b'{"prompt": "y", "n": [1, 2]}'),
        Seed("whip", "POST", "/whip/{s}", [("pipeline", "noop")], SDP, SDP_OFFER.encode()),
        Seed("whip-ai", "POST", f"{live}/whip", [], SDP, SDP_OFFER.encode()),
        Seed("whep-ai", "POST", f"{live}/whep", [], SDP, SDP_OFFER.encode()),
        Seed("whep-source", "POST", "/webrtc/{s}", [], SDP, SDP_OFFER.encode()),
        Seed("whip-trickle", "PATCH", "/whip/{s}/abc123", [],
             {"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": '"*"'},
             _trickle_fragment()),
        Seed("whip-delete", "DELETE", "/whip/{s}/abc123"),
        Seed("whip-options", "OPTIONS", "/whip/{s}"),
        Seed("push", "POST", "/live/{s}/0.ts", [],
             {"Content-Duration": push_duration, "Livepeer-Transcode-Configuration": push_config,
              "Content-Type": "video/mp2t"}, ts),
        Seed("api-streams", "GET", "/api/stream", [("limit", "5"),
             ("filters", '[{"id":"name","value":"x"}]')]),
        Seed("api-stream", "GET", "/api/stream/{s}"),
        Seed("api-create-stream", "POST", "/api/stream", [], JSON, api[0]),
        Seed("api-patch-stream", "PATCH", "/api/stream/{s}", [], JSON, api[1]),
        Seed("api-webhook", "POST", "/api/webhook", [], JSON, api[2]),
        Seed("api-multistream", "POST", "/api/multistream/target", [], JSON, api[3]),
        Seed("api-admin-key", "POST", "/api/admin/keys", [], JSON, api[4]),
        Seed("api-usage", "GET", "/api/data/usage/query", [("from", "0"), ("to", "1")]),
        Seed("api-playback", "GET", "/api/playback/{v}"),
        Seed("api-openapi", "GET", "/api/openapi.json"),
        Seed("api-delete-stream", "DELETE", "/api/stream/{s}"),
    ]  # fmt: skip
    for kind, path, headers, body in malformed_http_bodies("{s}"):
        out.append(Seed(f"flood-{kind}", "POST", path.split("?")[0], [], headers, body))
    return out


class RequestFuzzer:
    """Fuzzed requests, deterministic for a given ``rng``."""

    def __init__(self, rng: random.Random, names: list[str], watch: list[str]) -> None:
        self.rng = rng
        self.names = names  # fuzz stream names (ingest routes)
        self.watch = watch  # names to play: the fuzz's and the clean stream's
        self.seeds = seeds()
        self.raw_seeds = list(malformed_http_raw("fz0").values())
        self.bodies = [s.body for s in self.seeds if s.body]

    def request(self) -> FuzzedRequest:
        rng = self.rng
        seed = rng.choice(self.seeds)
        if rng.random() < 0.05:
            raw = mutate(rng, rng.choice(self.raw_seeds), self.raw_seeds, 32768)
            return FuzzedRequest("flood-raw", "", "", {}, b"", raw)
        method, query = seed.method, list(seed.query)
        headers, body = dict(seed.headers), seed.body
        path = seed.path.replace("{s}", rng.choice(self.names))
        path = path.replace("{v}", rng.choice(self.watch))
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(10)
            if op == 0:
                method = rng.choice(_METHODS)
            elif op == 1:
                path = self._path(path)
            elif op in (2, 3):
                value = rng.choice(_VALUES)
                if rng.random() < 0.4:
                    value = mutate(rng, value.encode(), [], 4096).decode("latin-1")
                query.append((rng.choice(_QUERY_KEYS), value))
            elif op in (4, 5):
                name = rng.choice(list(_HEADERS))
                headers[name] = rng.choice(_HEADERS[name])
            else:
                parent = body if body and rng.random() < 0.8 else rng.choice(self.bodies)
                body = mutate(rng, parent, self.bodies, MAX_BODY)
        target = quote(path, safe="/%:@-._~!$&'()*+,;=")
        if query:
            target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        req = FuzzedRequest(seed.kind, method, target, headers, body)
        if rng.random() < 0.4:
            req.raw = self._raw(req)
        return req

    def _path(self, path: str) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            cut = rng.randint(0, len(path))
            return path[:cut] + rng.choice(_PATH_BITS) + path[cut:]
        return mutate(rng, path.encode(), [], 2048).decode("latin-1") or "/"

    def _raw(self, req: FuzzedRequest) -> bytes:
        rng = self.rng
        lines = [f"{req.method} {req.target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in req.headers.items()]
        length = len(req.body)
        roll = rng.random()
        if roll < 0.1:
            lines.append(f"Content-Length: {rng.choice((0, length + 100, 1 << 40, -1))}")
        elif roll < 0.2:
            lines.append("Transfer-Encoding: chunked")
            body = f"{length:x}\r\n".encode() + req.body + b"\r\n0\r\n\r\n"
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
            return self._mangle(head) + body
        else:
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
        return self._mangle(head) + req.body

    def _mangle(self, head: bytes) -> bytes:
        if self.rng.random() < 0.3:
            return mutate(self.rng, head, self.raw_seeds, 16384)
        return head
