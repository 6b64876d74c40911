"""RTMP publishers into the stream hub: the RTMP server's ``PublishHandler``.

A publish is admitted (``platform.admission``: stream key, the URL's query, the operator's
webhooks), claims its stream in the hub (a second publisher is refused, never a takeover) and
gets a ``Publisher`` that cuts its FLV tags into segments. A publisher that reconnects at once
waits (bounded) for its previous session's last flush.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from urllib.parse import urlencode

from ..clock import SYSTEM, Clock
from ..platform.admission import Admission
from ..platform.stream_auth import PublishAttempt
from ..stream.hub import StreamHub
from ..stream.publisher import Publisher
from .rtmp.server import PublishRequest, PublishSink

log = logging.getLogger("mediagw.ingest.rtmp")

__all__ = ["RTMPIngest"]


class RTMPIngest:
    """The RTMP server's ``PublishHandler``: admit, claim the stream, hand out a Publisher."""

    def __init__(
        self,
        hub: StreamHub,
        admission: Admission,
        executor: Executor,
        rtmp_host: str = "",
        clock: Clock = SYSTEM,
    ) -> None:
        self.clock = clock
        self.hub = hub
        self.admission = admission
        self.executor = executor
        self.rtmp_host = rtmp_host
        self.publishers: dict[str, Publisher] = {}

    async def on_publish(self, req: PublishRequest) -> PublishSink:
        base = req.tc_url.rstrip("/") if req.tc_url else f"rtmp://{self.rtmp_host}/{req.app}"
        url = f"{base}/{req.name}"
        if req.query:
            url += "?" + urlencode(req.query)
        attempt = PublishAttempt(url, req.app, req.name, req.query, f"{req.peer[0]}")
        request = await self.admission.admit(attempt)
        old = self.publishers.get(request.id)
        try:
            if old is not None and old.closing:
                # A publisher reconnecting at once: let the old session finish its last flush.
                await old.wait_ended(timeout=5.0)
            stream = self.hub.begin_publish(request)
        except BaseException:  # refused, or the connection closed meanwhile: claim given back
            self.admission.abandon(request)
            raise
        self.publishers = {k: p for k, p in self.publishers.items() if not p.ended}
        publisher = Publisher(
            self.hub, stream, self.executor,
            wallclock=self.clock.wall, monotonic=self.clock.monotonic,
        )  # fmt: skip
        self.publishers[stream.id] = publisher
        log.info(
            "publish accepted",
            extra={"stream": stream.id, "peer": req.peer[0], "query_keys": sorted(req.query)},
        )
        return publisher
