"""No request reaches a file outside what the gateway serves: recordings (``/recordings``) and the
dashboard's assets, on a real gateway, asked with raw request lines (no client normalizes
them): ``..``, ``%2e%2e``, encoded slashes and backslashes, absolute paths. The store's SQLite
file and a secret beside the recordings stay unread."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from mediagw.config import Settings
from mediagw.gateway import Gateway

SECRET = b"do-not-serve-this"


async def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_recordings_and_dashboard_paths_never_leave_their_folders(tmp_path: Path) -> None:
    data = tmp_path / "data"
    gw = Gateway(Settings(rtmp_addr="127.0.0.1:0", http_addr="127.0.0.1:0", data_dir=str(data)))
    await gw.start()
    try:
        session = str(uuid.uuid4())
        (gw.recordings_dir / session / "source").mkdir(parents=True)
        (gw.recordings_dir / session / "index.m3u8").write_text("#EXTM3U\n")
        (data / "secret.txt").write_bytes(SECRET)
        (gw.recordings_dir / "secret.ts").write_bytes(SECRET)
        port = gw.http_port
        assert (await _raw_get(port, f"/recordings/{session}/index.m3u8"))[0] == 200
        assert (await _raw_get(port, "/dashboard/dashboard.css"))[0] == 200
        targets = [
            f"/recordings/{session}/../../secret.txt",
            f"/recordings/{session}/%2e%2e/%2e%2e/secret.txt",
            f"/recordings/{session}/source/..%2f..%2fsecret.ts",
            f"/recordings/{session}/source/..%5c..%5csecret.ts",
            "/recordings/..%2fsecret.ts",
            "/recordings/%2e%2e/mediagw.db",
            f"/recordings/{session}/source/%2fetc%2fpasswd.ts",
            "/recordings//etc/passwd",
            "/dashboard/..%2f__init__.py",
            "/dashboard/%2e%2e/__init__.py",
            "/dashboard/../../../../etc/passwd",
            "/dashboard/%2fetc%2fpasswd",
            "/dashboard/static%2fdashboard.js",
            "/stream/..%2f..%2fsecret.txt",
            "/stream/%2e%2e/%2e%2e/mediagw.db",
            f"/hls/..%2f{data.name}%2fsecret.txt/index.m3u8",
            "/../../../../etc/passwd",
        ]
        for target in targets:
            status, body = await _raw_get(port, target)
            assert status in (400, 403, 404), (target, status)
            assert SECRET not in body and b"SQLite format" not in body and b"root:" not in body
            assert b"import" not in body, target  # no Python source either
    finally:
        await gw.stop()
