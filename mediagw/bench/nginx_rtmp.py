"""nginx-rtmp as the ingest benchmark's baseline: Debian's nginx with its RTMP module, HLS on.

:func:`find_nginx` finds (or, as root, installs) ``/usr/sbin/nginx`` and the module.
:class:`NginxRtmp` runs it from a config of its own in a temp dir (``daemon off``, one worker,
its logs, pid and HLS files in that dir, RTMP on a free loopback port; 2 s fragments, a playlist
long enough to keep every fragment, no cleanup). Its CPU and RSS are its master's and worker's
from /proc. :class:`PlaylistWatcher` notes, from outside, when each fragment is listed: nginx
writes a playlist to a ``.bak`` file and renames it over the ``.m3u8``; inotify reports the
rename (a 10 ms poll of the files stands in where inotify is not available).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import select
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path

from ..errors import ConfigError
from .process import cpu_seconds, free_port, proc_figures

__all__ = ["NGINX", "RTMP_MODULE", "NginxRtmp", "PlaylistWatcher", "find_nginx"]

NGINX = "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
PACKAGES = "nginx libnginx-mod-rtmp"


def find_nginx(install: bool = True) -> str:
    """The nginx binary with the RTMP module beside it; installed with apt-get when missing and
    running as root (``install``), else a ConfigError that says what to install."""
    if Path(NGINX).exists() and Path(RTMP_MODULE).exists():
        return NGINX
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq",
                                                    *PACKAGES.split()]):  # fmt: skip
            subprocess.run(cmd, check=False, env=env, stdout=subprocess.DEVNULL, timeout=600)
        if Path(NGINX).exists() and Path(RTMP_MODULE).exists():
            return NGINX
    raise ConfigError(
        f"the nginx-rtmp baseline needs {NGINX} and {RTMP_MODULE}: apt-get install {PACKAGES}"
    )


def _config(work: Path, port: int, playlist_seconds: int, workers: int = 1) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""  # its worker writes in our temp dir
    return f"""{user}load_module {RTMP_MODULE};
daemon off;
master_process on;
worker_processes {workers};
error_log {work}/error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            hls on;
            hls_path {work}/hls;
            hls_fragment 2s;
            hls_playlist_length {playlist_seconds}s;
            hls_cleanup off;
        }}
    }}
}}
"""


class NginxRtmp:
    """One nginx (master + ``workers`` workers) with the RTMP module, HLS into ``work/hls``."""

    def __init__(self, work: Path, playlist_seconds: int, workers: int = 1) -> None:
        self.work = work
        self.workers = workers
        self.hls = work / "hls"
        self.port = free_port()
        self.playlist_seconds = playlist_seconds
        self.proc: subprocess.Popen[bytes] | None = None

    def rtmp_url(self, name: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{name}"

    async def start(self, timeout: float = 10.0) -> None:
        nginx = await asyncio.to_thread(find_nginx)
        self.work.mkdir(parents=True, exist_ok=True)
        self.hls.mkdir(exist_ok=True)
        self.proc = await asyncio.to_thread(self._spawn, nginx)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(f"nginx exited ({self.proc.returncode}): {self._log_tail()}")
            listening: bool = await asyncio.to_thread(self._listening)
            if listening and self.worker_pids():
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise ConfigError(f"nginx did not listen on 127.0.0.1:{self.port}: {self._log_tail()}")

    def _spawn(self, nginx: str) -> subprocess.Popen[bytes]:
        conf = self.work / "nginx.conf"
        conf.write_text(_config(self.work, self.port, self.playlist_seconds, self.workers))
        with open(self.work / "stderr.log", "ab") as log:
            return subprocess.Popen(
                [nginx, "-e", str(self.work / "error.log"), "-p", str(self.work), "-c", str(conf)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def _listening(self) -> bool:
        import socket

        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _log_tail(self) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            path = self.work / name
            if path.exists():
                out.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(out).strip() or "(no log)"

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except (OSError, ValueError):
            return []

    def pids(self) -> list[int]:
        return ([self.proc.pid] if self.proc else []) + self.worker_pids()

    def cpu(self) -> float:
        """User + system CPU seconds of the master and its workers."""
        total = 0.0
        for pid in self.pids():
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
        return total

    def rss_mb(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += proc_figures(pid)[0]
            except (OSError, KeyError):
                pass
        return total

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            await asyncio.to_thread(self.proc.wait, 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)


_IN_MOVED_TO = 0x80
_IN_CLOSE_WRITE = 0x08
_EVENT = struct.Struct("iIII")


def parse_playlist(text: str) -> list[tuple[str, float]]:
    """(URI, EXTINF seconds) of each segment of a media playlist."""
    out: list[tuple[str, float]] = []
    duration = 0.0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            out.append((line, duration))
    return out


class PlaylistWatcher:
    """Notes when each fragment of each ``NAME.m3u8`` in ``directory`` is first listed:
    ``listed[NAME]`` = [(URI, EXTINF seconds, time.monotonic()), ...] in playlist order."""

    def __init__(self, directory: Path, poll: float = 0.01) -> None:
        self.directory = directory
        self.poll = poll
        self.listed: dict[str, list[tuple[str, float, float]]] = {}
        self.method = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="playlist-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for path in self.directory.glob("*.m3u8"):  # whatever came after the last event
            self._read(path.stem, time.monotonic())

    def _read(self, name: str, at: float) -> None:
        try:
            text = (self.directory / f"{name}.m3u8").read_text()
        except OSError:
            return
        seen = self.listed.setdefault(name, [])
        for uri, duration in parse_playlist(text)[len(seen) :]:
            seen.append((uri, duration, at))

    def _run(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except AttributeError:
            fd = -1
        wd = -1
        if fd >= 0:
            wd = libc.inotify_add_watch(fd, str(self.directory).encode(), _IN_MOVED_TO)
        if wd < 0:
            if fd >= 0:
                os.close(fd)
            self._poll_loop()
            return
        self.method = "inotify"
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                at = time.monotonic()
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                names, pos = set(), 0
                while pos + _EVENT.size <= len(data):
                    _, _, _, size = _EVENT.unpack_from(data, pos)
                    raw = data[pos + _EVENT.size : pos + _EVENT.size + size].rstrip(b"\0")
                    pos += _EVENT.size + size
                    name = raw.decode(errors="replace")
                    if name.endswith(".m3u8"):
                        names.add(name[:-5])
                for name in names:
                    self._read(name, at)
        finally:
            os.close(fd)

    def _poll_loop(self) -> None:
        self.method = "poll"
        mtimes: dict[str, int] = {}
        while not self._stop.wait(self.poll):
            at = time.monotonic()
            for entry in os.scandir(self.directory):
                if entry.name.endswith(".m3u8"):
                    mtime = entry.stat().st_mtime_ns
                    if mtimes.get(entry.name) != mtime:
                        mtimes[entry.name] = mtime
                        self._read(entry.name[:-5], at)
