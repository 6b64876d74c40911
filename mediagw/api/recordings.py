"""The recordings of stored streams' sessions (``record: true``), served as HLS VOD:

    GET /recordings/{sessionId}/index.m3u8         the session's playlist (EVENT, then ENDLIST)
    GET /recordings/{sessionId}/source/{seq}.ts    its segments

The files are the recorder's (``publish/recorder.py``, one folder per session under the
recordings directory). Only uuid-shaped session ids and numeric segment names are looked up, so
no request reaches outside that directory. Files are read off the event loop (aiohttp's
``FileAnswer``, a ``FileResponse``, sends them with ``sendfile`` in its executor).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .guard import FileAnswer

__all__ = ["add_recording_routes"]

_SESSION = r"{session:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}}"
_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}


def add_recording_routes(app: web.Application, root: Path) -> None:
    async def playlist(request: web.Request) -> web.StreamResponse:
        return _file(root / request.match_info["session"] / "index.m3u8")

    async def segment(request: web.Request) -> web.StreamResponse:
        seq = request.match_info["seq"]
        return _file(root / request.match_info["session"] / "source" / f"{seq}.ts")

    app.router.add_get(f"/recordings/{_SESSION}/index.m3u8", playlist)
    app.router.add_get(rf"/recordings/{_SESSION}/source/{{seq:\d{{1,12}}}}.ts", segment)


def _file(path: Path) -> web.StreamResponse:
    headers = {"Content-Type": _TYPES[path.suffix], "Access-Control-Allow-Origin": "*"}
    if path.suffix == ".m3u8":
        headers["Cache-Control"] = "no-cache"  # it grows while the session is live
    return FileAnswer(path, headers=headers)
