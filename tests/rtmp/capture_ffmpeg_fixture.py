"""Re-create fixtures/rtmp/ffmpeg_publish.bin: every byte an ffmpeg publisher sent us.

    .venv/bin/python tests/rtmp/capture_ffmpeg_fixture.py

A 1-second 160x120 H.264 + AAC push (30 video frames) through the real server core; the
capture is replayed by test_rtmp_capture.py without ffmpeg. Not a test module itself.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mediagw.ingest.rtmp.events import PublishRequested
from mediagw.ingest.rtmp.statemachine import ServerConnection

OUT = Path(__file__).resolve().parents[2] / "fixtures" / "rtmp" / "ffmpeg_publish.bin"


async def main() -> None:
    captured = bytearray()
    done = asyncio.Event()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConnection(rand=os.urandom)
        while data := await reader.read(65536):
            captured.extend(data)
            for ev in conn.receive_data(data, now_ms=0):
                if isinstance(ev, PublishRequested):
                    conn.accept_publish()
            writer.write(conn.data_to_send())
        writer.close()
        done.set()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "32k", "-f", "flv",
        f"rtmp://127.0.0.1:{port}/live/capture?key=not-a-secret",
    )  # fmt: skip
    assert await proc.wait() == 0
    await asyncio.wait_for(done.wait(), 10)
    server.close()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(bytes(captured))
    print(f"wrote {OUT} ({len(captured)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
