"""``/metrics`` of a whole ``mediagw run -workers N``: every worker's series on the shared port.

The shared HTTP port reaches whichever worker the kernel picks, so a scrape there used to get
one worker's metrics, a different one each time: counters that jump back and forth. Now the
worker that takes a scrape on the shared port asks each other worker for its own (at that
worker's port, with the group's secret), and answers with all of them, each series labelled
``worker="I"``, plus ``mediagw_worker_up{worker="I"}`` (0: that worker did not answer in
``SIBLING_TIMEOUT``; its series are missing from that scrape). A scrape of one worker's own port
still gets that worker's series alone, unlabelled, as before.

The merge works on the text format as prometheus-client writes it (``# HELP``, ``# TYPE``, then
the family's samples): each family's samples from every worker go under one HELP/TYPE pair, as
the format requires, in the order the families first appear.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ..httpbody import BodyTooLarge, read_limited

__all__ = ["SIBLING_TIMEOUT", "WORKER_HEADER", "Siblings", "merge_expositions", "scrape_workers"]

WORKER_HEADER = "X-Mediagw-Worker"  # the group's secret: a sibling's scrape, answered locally
SIBLING_TIMEOUT = 3.0  # seconds a worker has to answer (Prometheus's default timeout is 10 s)
MAX_EXPOSITION = 64 * 1024 * 1024  # bytes of one worker's text format (per-stream series)
_NAME = re.compile(rb"[a-zA-Z_:][a-zA-Z0-9_:]*")
_UP = (
    b"# HELP mediagw_worker_up 1 when the worker answered this scrape, else 0 (its series are "
    b"missing from it)\n# TYPE mediagw_worker_up gauge\n"
)


@dataclass(frozen=True, slots=True)
class Siblings:
    """This worker's place among ``-workers N``: its index (1..N), every worker's ``/metrics``
    URL at its own port (index order), the group's secret, and the shared port as bound."""

    index: int
    urls: tuple[str, ...]
    secret: str
    shared_port: Callable[[], int]

    def is_sibling(self, request: web.Request) -> bool:
        """A scrape from another worker of the group (it carries the secret)."""
        given = request.headers.get(WORKER_HEADER, "").encode()
        return bool(given) and hmac.compare_digest(given, self.secret.encode())

    def on_shared_port(self, request: web.Request) -> bool:
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return sockname is not None and int(sockname[1]) == self.shared_port()

    async def gather(self, own: bytes) -> bytes:
        """Every worker's series: this one's (``own``) and the others', asked at once."""
        others = [(str(i), url) for i, url in enumerate(self.urls, 1) if i != self.index]
        return await scrape_workers((str(self.index), own), others, self.secret)


class _Family:
    __slots__ = ("head", "samples")

    def __init__(self) -> None:
        self.head: list[bytes] = []  # its HELP and TYPE lines
        self.samples: list[bytes] = []


def _labelled(line: bytes, label: bytes) -> bytes:
    """A sample line with ``label`` (``worker="2"``) first among its labels."""
    name = _NAME.match(line)
    if name is None:
        raise ValueError(f"not a sample line: {line[:80]!r}")
    float(line.rsplit(b" ", 1)[-1])  # it ends with its value (or a timestamp): else ValueError
    end = name.end()
    if line[end : end + 2] == b"{}":
        return line[:end] + b"{" + label + b"}" + line[end + 2 :]
    if line[end : end + 1] == b"{":
        return line[: end + 1] + label + b"," + line[end + 1 :]
    return line[:end] + b"{" + label + b"}" + line[end:]


def _parsed(text: bytes, label: bytes) -> list[tuple[bytes, list[bytes], list[bytes]]]:
    """One worker's families in order: (name, HELP/TYPE lines, samples labelled with
    ``label``); ValueError when a line is neither (not a text format)."""
    out: list[tuple[bytes, list[bytes], list[bytes]]] = []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith(b"#"):
            words = line.split(b" ", 3)
            if len(words) >= 3 and words[0] == b"#" and words[1] in (b"HELP", b"TYPE"):
                if not out or out[-1][0] != words[2]:
                    out.append((words[2], [], []))
                out[-1][1].append(line)
            continue
        if not out:  # a sample before any HELP/TYPE: a family of its own name
            name = _NAME.match(line)
            out.append((name.group() if name else b"", [], []))
        out[-1][2].append(_labelled(line, label))
    return out


def merge_expositions(parts: Sequence[tuple[str, bytes | None]]) -> bytes:
    """One text format from each worker's: ``parts`` is (worker, its text or None when it did
    not answer), in worker order. A text that does not parse counts as no answer."""
    families: dict[bytes, _Family] = {}
    answered: list[tuple[str, bool]] = []
    for worker, text in parts:
        try:
            parsed = _parsed(text, b'worker="' + worker.encode() + b'"') if text else None
        except ValueError:
            parsed = None
        answered.append((worker, parsed is not None))
        for name, head, samples in parsed or ():
            family = families.setdefault(name, _Family())
            if not family.head:
                family.head = head
            family.samples += samples
    out: list[bytes] = []
    for family in families.values():
        out.extend(family.head)
        out.extend(family.samples)
    out.append(_UP.rstrip(b"\n"))
    for worker, ok in answered:
        out.append(b'mediagw_worker_up{worker="%s"} %d' % (worker.encode(), ok))
    return b"\n".join(out) + b"\n"


async def _scrape(http: aiohttp.ClientSession, url: str, secret: str) -> bytes | None:
    try:
        async with (
            asyncio.timeout(SIBLING_TIMEOUT),
            http.get(url, headers={WORKER_HEADER: secret}) as resp,
        ):
            if resp.status != 200:
                return None
            return await read_limited(resp, MAX_EXPOSITION)
    except (aiohttp.ClientError, OSError, TimeoutError, BodyTooLarge):
        return None


async def scrape_workers(
    own: tuple[str, bytes], others: Sequence[tuple[str, str]], secret: str
) -> bytes:
    """The merged text format: this worker's (``own``: its index, its text) and each of the
    ``others`` (index, its ``/metrics`` URL) asked at once."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        got = await asyncio.gather(*(_scrape(http, url, secret) for _, url in others))
    parts: list[tuple[str, bytes | None]] = [own]
    parts += [(index, text) for (index, _), text in zip(others, got, strict=True)]
    parts.sort(key=lambda part: int(part[0]))
    return merge_expositions(parts)
