"""A minimal HTTP/2 client (the ``h2`` library over asyncio TLS) for /segment over HTTP/2,
which aiohttp cannot speak. It reports whether the response stream ended cleanly."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events

from mediagw.orchestrator import ReferenceOrchestrator


@dataclass
class H2Reply:
    status: int
    body: bytes
    complete: bool  # END_STREAM seen
    error: str | None  # reset / connection lost


async def h2_post(
    orch: ReferenceOrchestrator, path: str, headers: dict[str, str], body: bytes
) -> H2Reply:
    assert orch.certificate is not None
    ctx = ssl.create_default_context(cadata=orch.certificate.cert_pem.decode())
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    reader, writer = await asyncio.open_connection("127.0.0.1", orch.port, ssl=ctx)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    request = [
        (":method", "POST"),
        (":path", path),
        (":scheme", "https"),
        (":authority", f"127.0.0.1:{orch.port}"),
    ] + [(k.lower(), v) for k, v in headers.items()]
    conn.send_headers(sid, request)
    reply = H2Reply(0, b"", False, None)
    chunks: list[bytes] = []
    sent = 0

    def handle(events: list[h2.events.Event]) -> None:
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                reply.status = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived):
                chunks.append(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                reply.complete = True
            elif isinstance(event, h2.events.StreamReset):
                reply.error = f"stream reset {event.error_code}"
            elif isinstance(event, h2.events.ConnectionTerminated):
                reply.error = f"connection terminated {event.error_code}"

    try:
        while not reply.complete and reply.error is None:
            while sent < len(body):
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = body[sent : sent + window]
                sent += len(chunk)
                conn.send_data(sid, chunk, end_stream=sent == len(body))
            if not body and sent == 0:
                conn.end_stream(sid)
                sent = -1
            writer.write(conn.data_to_send())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(65536), 30)
            if not data:
                reply.error = "connection lost"
                break
            handle(conn.receive_data(data))
    except (ConnectionError, ssl.SSLError) as exc:
        reply.error = repr(exc)
    finally:
        writer.close()
    reply.body = b"".join(chunks)
    return reply
