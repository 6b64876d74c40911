"""One orchestrator as a stream uses it.

An :class:`OrchSession` wraps the latest ``OrchestratorInfo`` from one orchestrator (O): the
gateway must always use the info from the newest reply (transcode spec §5.8), so
:meth:`OrchSession.adopt` replaces it wholesale. The session also keeps what the selector needs:
the price seen at discovery (for the 2x guard of payments spec §8.5), the latency score of the
last segment, and the start times of segments in flight (for the sticky-session rule, §9.1).

Sans-IO: every time-dependent answer takes ``now`` as an argument.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction

from mediagw.livepeer.proto import net

from .prices import price_jumped, price_of

__all__ = [
    "AUTH_TOKEN_REFRESH_MARGIN",
    "AUTH_TOKEN_VALIDITY",
    "PARAMS_EXPIRY_BUFFER",
    "OrchSession",
]

#: An O issues auth tokens valid for 30 min (transcode spec §4.4).
AUTH_TOKEN_VALIDITY = 30 * 60.0
#: Refresh once the token is in the last 10 % of that period (§4.5): 3 min before it expires.
AUTH_TOKEN_REFRESH_MARGIN = 0.1 * AUTH_TOKEN_VALIDITY
#: Ticket params are usable while ``expiration_block - lastSeenL1Block > 1`` (payments spec §7).
PARAMS_EXPIRY_BUFFER = 1


class OrchSession:
    """An orchestrator picked by discovery, as one stream uses it.

    ``url`` is the discovery URL (where GetOrchestrator is dialled; suspensions are keyed by it).
    ``transcoder`` is where segments go and comes from the latest info.
    """

    def __init__(
        self,
        url: str,
        info: net.OrchestratorInfo,
        *,
        discovery_latency: float = 0.0,
        region: str = "",
        trusted: bool = False,
    ) -> None:
        self.url = url
        self.region = region
        self.trusted = trusted
        #: GetOrchestrator round-trip at discovery, seconds; orders never-used sessions.
        self.discovery_latency = discovery_latency
        #: Latency score of the last completed segment; None until one completes (§5.8).
        self.latency_score: float | None = None
        #: Results whose signature was checked (§5.10): the first few always are.
        self.results_checked = 0
        self._info = info
        self._initial_price = price_of(info)
        self._in_flight: deque[float] = deque()

    def __repr__(self) -> str:
        return (
            f"OrchSession(url={self.url!r}, transcoder={self.transcoder!r}, "
            f"region={self.region!r}, score={self.latency_score})"
        )

    # -- the orchestrator's info --------------------------------------------------------------

    @property
    def info(self) -> net.OrchestratorInfo:
        """The latest OrchestratorInfo; use it (never an older one) for the next request."""
        return self._info

    def adopt(self, info: net.OrchestratorInfo) -> None:
        """Replace the info wholesale with a newer one (a result's ``info`` or a refresh).

        The initial price is kept: the 2x guard compares against the price seen at discovery.
        """
        self._info = info

    @property
    def transcoder(self) -> str:
        return self._info.transcoder

    @property
    def session_id(self) -> str:
        return self._info.auth_token.session_id

    @property
    def address(self) -> bytes:
        """O's ETH address (empty for an off-chain O)."""
        return self._info.address

    @property
    def price(self) -> Fraction | None:
        """Current price in wei per pixel, None when the info carries no valid price."""
        return price_of(self._info)

    @property
    def initial_price(self) -> Fraction | None:
        """The price at discovery, fixed for the life of this object."""
        return self._initial_price

    def price_doubled(self) -> bool:
        """True when the current price is more than 2x the initial one (payments spec §8.5)."""
        return price_jumped(self._initial_price, self.price)

    # -- refresh (§4.5) ------------------------------------------------------------------------

    def needs_refresh(self, now: float, last_l1_block: int | None) -> bool:
        """Should GetOrchestrator be called again before the next segment?

        ``now`` is wall-clock unix seconds (the token expiration is a unix time);
        ``last_l1_block`` is the gateway's last seen L1 block, None when unknown (off-chain).
        True when the auth token is in its last 10 % of 30 min, or when the ticket params
        expire per payments spec §7 (``expiration_block - last_l1_block <= 1``).
        """
        info = self._info
        if info.HasField("auth_token") and (
            now > info.auth_token.expiration - AUTH_TOKEN_REFRESH_MARGIN
        ):
            return True
        if last_l1_block is not None and info.HasField("ticket_params"):
            expiration_block = int.from_bytes(info.ticket_params.expiration_block, "big")
            if expiration_block - last_l1_block <= PARAMS_EXPIRY_BUFFER:
                return True
        return False

    # -- segments in flight --------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def oldest_in_flight(self) -> float | None:
        """Start time (selector clock) of the oldest segment still in flight."""
        return self._in_flight[0] if self._in_flight else None

    def begin(self, now: float) -> None:
        """Record a segment sent to this O at ``now``."""
        self._in_flight.append(now)

    def end(self) -> None:
        """Forget the oldest segment in flight (results come back in order per O session)."""
        if self._in_flight:
            self._in_flight.popleft()
