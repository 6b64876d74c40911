"""Helpers shared by the test tiers, importable as ``mediatools`` (tests/ is on the path)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiohttp import web

from mediagw.eth.account import account_api
from segmenter.probe import count_frames_flv

ClipMaker = Callable[..., Path]
count_frames = count_frames_flv  # (video, audio) packets, counted by FFmpeg's FLV demuxer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_tool(name: str) -> str:
    """Path of a CLI tool; skip without it on a laptop, fail under CI (CI=true)."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is required under CI but is not installed (.ci/run installs it)")
        pytest.skip(f"{name} not installed")
    return path


def need_env(name: str, what: str) -> str:
    """The value of environment variable ``name`` (``what`` it names, for the message); skip
    without it on a laptop, fail under CI (.ci/run sets it)."""
    value = os.environ.get(name)
    if not value:
        if IN_CI:
            pytest.fail(f"{name} is required under CI ({what}; .ci/run sets it)")
        pytest.skip(f"{name} not set")
    return value


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on an ephemeral loopback port; yields ``http://127.0.0.1:PORT``."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@dataclass
class SegmentInfo:
    seq: int
    duration: float
    video_frames: int = 0
    audio_frames: int = 0
    first_is_key: bool = False
    width: int = 0
    height: int = 0
    first_pts: float | None = None


@dataclass
class HLSResult:
    playlist: str
    segments: list[SegmentInfo] = field(default_factory=list)

    @property
    def video_frames(self) -> int:
        return sum(s.video_frames for s in self.segments)

    @property
    def audio_frames(self) -> int:
        return sum(s.audio_frames for s in self.segments)

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def ended(self) -> bool:
        return "#EXT-X-ENDLIST" in self.playlist


def decode_segment(seq: int, duration: float, data: bytes) -> SegmentInfo:
    """Decode one TS segment on its own (as a player joining there would)."""
    info = SegmentInfo(seq, duration)
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                if info.video_frames == 0:
                    info.first_is_key = bool(frame.key_frame)
                    info.width, info.height = frame.width, frame.height
                    info.first_pts = float(frame.time) if frame.time is not None else None
                info.video_frames += 1
            else:
                info.audio_frames += 1
    return info


def parse_media_playlist(text: str) -> list[tuple[float, str]]:
    """(duration, URI) of every segment to load; a gap (EXT-X-GAP) is not loaded, as players do."""
    out = []
    duration = None
    gap = False
    for line in text.splitlines():
        if line == "#EXT-X-GAP":
            gap = True
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            if not gap:
                out.append((duration, line))
            duration = None
            gap = False
    return out


def playlist_uris(text: str) -> list[str]:
    """Every segment URI a media playlist lists, gaps included, in order."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def fetch_hls(http_port: int, stream_id: str, rendition: str = "source") -> HLSResult:
    base = f"http://127.0.0.1:{http_port}/stream/{stream_id}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/{rendition}.m3u8") as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
            text = await resp.text()
        result = HLSResult(text)
        for duration, uri in parse_media_playlist(text):
            async with session.get(f"{base}/{uri}") as resp:
                assert resp.status == 200, uri
                assert resp.headers["Content-Type"] == "video/mp2t"
                data = await resp.read()
            seq = int(re.findall(r"(\d+)\.ts$", uri)[0])
            result.segments.append(await asyncio.to_thread(decode_segment, seq, duration, data))
    return result


async def stream_entry(http_port: int, stream_id: str) -> dict[str, Any]:
    """The gateway's ``/streams`` entry of ``stream_id``, as its users read it."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{http_port}/streams") as resp,
    ):
        assert resp.status == 200
        doc = await resp.json()
    return next(item for item in doc["streams"] if item["id"] == stream_id)


async def push(
    clip: Path,
    url: str,
    *,
    live: bool = True,
    timeout: float = 120,
    extra: list[str] | None = None,
    readrate: float | None = None,
) -> tuple[int, str]:
    """Publish ``clip`` with FFmpeg's own RTMP client; returns (exit code, stderr)."""
    ffmpeg = need_tool("ffmpeg")
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin"]
    if readrate is not None:  # N x real time
        cmd += ["-readrate", str(readrate)]
    elif live:
        cmd.append("-re")
    cmd += ["-i", str(clip), "-c", "copy", *(extra or []), "-f", "flv", url]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, err.decode(errors="replace")


async def probe_frames(url: str) -> int:
    """The video frames FFmpeg's demuxer decodes from ``url`` (an HLS playlist plays whole
    when it has ENDLIST); a multivariant playlist lists its variant per program: the most."""
    ffprobe = need_tool("ffprobe")
    proc = await asyncio.create_subprocess_exec(
        ffprobe, "-v", "error", "-select_streams", "v:0", "-count_frames",
        "-show_entries", "stream=nb_read_frames", "-of", "json", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    return max(int(s["nb_read_frames"]) for s in json.loads(out)["streams"])


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def make_keystore(directory: Path, password: str = "pw") -> tuple[Path, str]:
    """A fresh Ethereum keystore (cheap scrypt) in ``directory``: (path, password), for a
    gateway paying with its own key (``eth_keystore_path`` / ``eth_password``)."""
    Account = account_api()

    account = Account.create()
    doc = Account.encrypt(account.key, password, kdf="scrypt", iterations=2)
    path = directory / "key.json"
    path.write_text(json.dumps(doc))
    return path, password


def discontinuity_numbers(text: str) -> list[tuple[int, int]]:
    """(media sequence number, discontinuity number) of every segment a media playlist lists,
    counted as RFC 8216 6.2.1 says and hls.js does (its ``sn`` and ``cc``): from
    ``EXT-X-MEDIA-SEQUENCE`` and ``EXT-X-DISCONTINUITY-SEQUENCE`` on, one more for each segment
    and each ``EXT-X-DISCONTINUITY``. Works for TS and LL-HLS playlists (whole segments)."""
    seq = cc = 0
    out = []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            cc = int(line.split(":", 1)[1])
        elif line == "#EXT-X-DISCONTINUITY":
            cc += 1
        elif line and not line.startswith("#"):
            out.append((seq, cc))
            seq += 1
    return out


def check_continues(before: str, after: str) -> None:
    """``after`` (one node's media playlist) continues ``before`` (another node's playlist of
    the stream, last seen) as a player reloading it needs: the same version, no media sequence
    number listed again, and the first new segment on the next timeline (discontinuity number
    one more than the last one before), which players reset to (RFC 8216 6.3.3)."""
    old, new = discontinuity_numbers(before), discontinuity_numbers(after)
    assert old and new, (before, after)
    version = [line for line in before.splitlines() if line.startswith("#EXT-X-VERSION:")]
    assert version == [line for line in after.splitlines() if line.startswith("#EXT-X-VERSION:")]
    assert new[0][0] > old[-1][0], (old, new)  # no seq twice
    assert new[0][1] == old[-1][1] + 1, (old, new)  # a new timeline, announced
    assert all(a[1] <= b[1] and a[0] < b[0] for a, b in pairwise(new)), new
