"""Fuzzed RTMP sessions for ``mediagw bench fuzzlive``, mutated from a valid publish.

A valid session is what ffmpeg sends (the capture's FLV tags when the checkout has it: an AVC
sequence header, NAL units and AAC): handshake (C0C1, C2), Set Chunk Size, ``connect``,
``releaseStream``, ``FCPublish``, ``createStream``, ``publish``, ``@setDataFrame`` and a prefix
of the media. Each fuzzed session takes one strategy:

- ``valid``: as is (the gateway must take it);
- ``handshake``: byte mutations of C0C1/C2, the rest as is;
- ``bytes``: byte mutations of everything after the handshake (:func:`.fuzz.mutate`: bit flips,
  interesting values, inserts, deletions, truncation, duplication, splices with earlier
  sessions, runs);
- ``message``: one to three messages' payloads mutated (AMF0 commands, metadata, FLV tags),
  then chunked validly, so the mutation reaches the command and media parsers;
- ``chunk``: chunk headers fuzzed: fmt 0-3 out of turn, chunk stream ids across the 1-, 2- and
  3-byte forms, message lengths that lie, message types and stream ids at random, extended
  timestamps, Set Chunk Size and Abort with interesting values;
- ``order``: messages dropped, duplicated or shuffled (publish before connect, media before
  publish, createStream many times);
- ``truncate``: the valid session cut anywhere, then a reset.

The bytes go out in one to five writes cut at random places; most sessions end with a FIN and
wait for the server to close, some vanish with a reset.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import pairwise

from ..ingest.rtmp import amf0
from ..ingest.rtmp import messages as mt
from ..ingest.rtmp.chunk import ChunkWriter, basic_header
from ..ingest.rtmp.commands import Command
from ..ingest.rtmp.control import SetChunkSize
from ..ingest.rtmp.handshake import HANDSHAKE_SIZE
from ..ingest.rtmp.messages import Message
from .fuzz import mutate
from .fuzz_media import _amf0_seeds, _flv_payloads

__all__ = ["STRATEGIES", "FuzzedSession", "SessionFuzzer"]

C0C1 = b"\x03" + bytes(range(256)) * 6
C2 = b"\xaa" * HANDSHAKE_SIZE
STRATEGIES = {  # strategy -> weight
    "valid": 3,
    "handshake": 8,
    "bytes": 25,
    "message": 25,
    "chunk": 17,
    "order": 12,
    "truncate": 10,
}
_SIZES = (1, 2, 127, 128, 129, 4096, 65536, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0)
_CSIDS = (0, 1, 2, 3, 63, 64, 65, 319, 320, 65599)
_TYPES = (1, 2, 3, 4, 5, 6, 8, 9, 15, 16, 17, 18, 19, 20, 22, 0, 7, 255)
_CONTROLS = (mt.SET_CHUNK_SIZE, mt.ABORT, mt.ACKNOWLEDGEMENT, mt.WINDOW_ACK_SIZE, mt.USER_CONTROL)
MAX_SESSION = 256 * 1024


@dataclass
class FuzzedSession:
    strategy: str
    parts: list[bytes]
    fin: bool
    name: str

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts)


def _basic(fmt: int, csid: int) -> bytes:
    """A basic header; csid 0 and 1 as the bare first byte (what follows reads as its id)."""
    return bytes((fmt << 6 | csid,)) if csid < 2 else basic_header(fmt, csid)


def _raw_chunks(
    fmt: int, csid: int, ts: int, length: int, type_id: int, sid: int, payload: bytes, size: int
) -> bytes:
    """One message cut into chunks with a header of our choosing (lies included)."""
    ext = ts >= 0xFFFFFF
    head = bytearray(_basic(fmt, csid))
    if fmt <= 2:
        head += (0xFFFFFF if ext else ts).to_bytes(3, "big")
    if fmt <= 1:
        head += (length & 0xFFFFFF).to_bytes(3, "big") + bytes([type_id & 0xFF])
    if fmt == 0:
        head += (sid & 0xFFFFFFFF).to_bytes(4, "little")
    ext_bytes = (ts & 0xFFFFFFFF).to_bytes(4, "big") if ext else b""
    out = [bytes(head) + ext_bytes, payload[:size]]
    cont = _basic(3, csid) + ext_bytes
    for off in range(size, len(payload), max(size, 1)):
        out += [cont, payload[off : off + size]]
    return b"".join(out)


class SessionFuzzer:
    """Fuzzed sessions, deterministic for a given ``rng``; ``names``: the stream names the
    sessions publish under (never the clean stream's)."""

    def __init__(self, rng: random.Random, names: list[str]) -> None:
        self.rng = rng
        self.names = names
        self.media = [(p[0], p[1:]) for p in _flv_payloads()]
        self.amf = _amf0_seeds()
        self.pool: list[bytes] = []  # earlier sessions' bytes after the handshake: splices

    def messages(self, name: str) -> list[Message]:
        """A valid publish of ``name`` with a prefix of the media."""
        rng = self.rng
        obj = {"app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0",
               "tcUrl": "rtmp://127.0.0.1/live"}  # fmt: skip
        msgs = [SetChunkSize(rng.choice((128, 4096, 60000))).to_message()]
        for txn, (cmd, args, sid) in enumerate(
            [
                ("connect", (), 0),
                ("releaseStream", (name,), 0),
                ("FCPublish", (name,), 0),
                ("createStream", (), 0),
                ("publish", (name, "live"), 1),
            ]
        ):
            command = Command(cmd, float(txn + 1), obj if cmd == "connect" else None, args)
            msgs.append(command.to_message(sid, csid=3 if not sid else 8))
        meta = amf0.encode("@setDataFrame", "onMetaData", amf0.ECMAArray({"width": 320.0}))
        msgs.append(Message(mt.DATA_AMF0, 1, 0, meta, 8))
        count = rng.randint(0, len(self.media))
        for i, (type_id, body) in enumerate(self.media[:count]):
            msgs.append(Message(type_id, 1, i * 33, body, 4 if type_id == mt.AUDIO else 6))
        return msgs

    @staticmethod
    def chunked(msgs: list[Message]) -> bytes:
        """Chunked as ffmpeg does; a Set Chunk Size we cannot cut with (a mutated one) is sent
        and not applied on our side."""
        w = ChunkWriter(128, compress=True)
        out = []
        for m in msgs:
            value = int.from_bytes(m.payload[:4], "big")
            if m.type_id == mt.SET_CHUNK_SIZE and (len(m.payload) != 4 or not 0 < value <= 1 << 20):
                size = w.chunk_size
                out.append(_raw_chunks(0, 2, 0, len(m.payload), m.type_id, 0, m.payload, size))
            else:
                out.append(w.write(m))
        return b"".join(out)

    def session(self) -> FuzzedSession:
        rng = self.rng
        strategy = rng.choices(list(STRATEGIES), weights=list(STRATEGIES.values()))[0]
        name = rng.choice(self.names)
        msgs = self.messages(name)
        hs = C0C1 + C2
        fin = rng.random() < 0.85
        if strategy == "valid":
            data = hs + self.chunked(msgs)
            fin = True
        elif strategy == "handshake":
            data = mutate(rng, hs, [], 2 * len(hs)) + self.chunked(msgs)
        elif strategy == "bytes":
            body = self.chunked(msgs)
            data = hs + mutate(rng, body, self.pool, MAX_SESSION)
        elif strategy == "message":
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(msgs))
                m = msgs[i]
                seeds = self.amf if m.type_id in (mt.COMMAND_AMF0, mt.DATA_AMF0) else [m.payload]
                parent = m.payload if rng.random() < 0.8 else rng.choice(seeds)
                payload = mutate(rng, parent, self.amf, 0xFFFF)
                msgs[i] = Message(m.type_id, m.stream_id, m.timestamp, payload, m.csid)
            data = hs + self.chunked(msgs)
        elif strategy == "chunk":
            data = hs + self._chunk_fuzz(msgs)
        elif strategy == "order":
            data = hs + self.chunked(self._reorder(msgs))
        else:  # truncate
            data = hs + self.chunked(msgs)
            data = data[: rng.randrange(len(data))]
            fin = False
        if len(self.pool) < 64:
            self.pool.append(data[len(hs) :][:16384])
        else:
            self.pool[rng.randrange(64)] = data[len(hs) :][:16384]
        return FuzzedSession(strategy, self._cut(data[:MAX_SESSION]), fin, name)

    def _cut(self, data: bytes) -> list[bytes]:
        cuts = sorted(self.rng.randrange(len(data) + 1) for _ in range(self.rng.randint(0, 4)))
        bounds = [0, *cuts, len(data)]
        return [data[a:b] for a, b in pairwise(bounds) if b > a]

    def _reorder(self, msgs: list[Message]) -> list[Message]:
        rng = self.rng
        out = list(msgs)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            i = rng.randrange(len(out))
            if op == 0 and len(out) > 1:
                del out[i]
            elif op == 1:
                out[i:i] = [out[i]] * rng.choice((1, 2, 50))
            elif op == 2:
                j = rng.randrange(len(out))
                out[i], out[j] = out[j], out[i]
            else:
                rng.shuffle(out)
        return out

    def _chunk_fuzz(self, msgs: list[Message]) -> bytes:
        """Messages chunked by hand, some headers fuzzed; the size we declare is the one we cut
        with (unless a lie was drawn), so later chunks still parse."""
        rng = self.rng
        size = 128
        out = []
        for m in msgs:
            payload = m.payload
            fmt, csid, type_id, sid, ts, length = 0, m.csid, m.type_id, m.stream_id, m.timestamp, 0
            if rng.random() < 0.3:
                roll = rng.randrange(7)
                if roll == 0:
                    fmt = rng.randrange(1, 4)
                elif roll == 1:
                    csid = rng.choice(_CSIDS) if rng.random() < 0.7 else rng.randrange(2, 65600)
                elif roll == 2:
                    length = rng.choice((0, 1, len(payload) - 1, len(payload) + 1, 0xFFFFFF))
                elif roll == 3:
                    type_id = rng.choice(_TYPES)
                elif roll == 4:
                    sid = rng.choice((0, 2, 0xFFFFFFFF, rng.randrange(1 << 32)))
                elif roll == 5:
                    ts = rng.choice((0xFFFFFF, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32)))
                else:
                    control = rng.choice(_CONTROLS)
                    value = rng.choice(_SIZES).to_bytes(4, "big")
                    out.append(_raw_chunks(0, 2, 0, 4, control, 0, value, size))
                    if control == mt.SET_CHUNK_SIZE and rng.random() < 0.8:
                        size = max(1, int.from_bytes(value, "big") & 0x7FFFFFFF)
            length = length or len(payload)
            cut = min(size, 1 << 20)
            out.append(_raw_chunks(fmt, csid, ts, length, type_id, sid, payload, cut))
            if m.type_id == mt.SET_CHUNK_SIZE and type_id == m.type_id:
                size = max(1, SetChunkSize.parse(payload).size)
        return b"".join(out)
