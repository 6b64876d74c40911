"""OrchSession: adopting infos, the refresh triggers of §4.5, the 2x price guard."""

from __future__ import annotations

from fractions import Fraction

from pool.pool_testkit import make_info

from mediagw.livepeer.proto import net
from mediagw.pool import OrchSession


def test_adopt_replaces_info_and_keeps_initial_price() -> None:
    sess = OrchSession("https://o:8935", make_info(price=(10, 1)), region="eu", trusted=True)
    assert sess.transcoder == "https://o1:8935"
    assert sess.session_id == "abcd0123"
    assert sess.price == sess.initial_price == 10
    new = make_info("https://o1b:8935", price=(20, 1), session_id="ffff0000")
    sess.adopt(new)
    assert sess.info is new
    assert sess.transcoder == "https://o1b:8935"
    assert sess.session_id == "ffff0000"
    assert sess.initial_price == 10
    assert not sess.price_doubled()  # exactly 2x is allowed
    sess.adopt(make_info(price=(41, 2)))
    assert sess.price == Fraction(41, 2)
    assert sess.price_doubled()


def test_auth_token_refresh_in_last_ten_percent() -> None:
    sess = OrchSession("u", make_info(expiration=10_000))
    assert not sess.needs_refresh(10_000 - 180, None)  # exactly at the refresh point
    assert sess.needs_refresh(10_000 - 179.9, None)
    assert sess.needs_refresh(10_001, None)
    assert not sess.needs_refresh(0, None)


def test_no_auth_token_does_not_loop_refreshes() -> None:
    sess = OrchSession("u", net.OrchestratorInfo(transcoder="https://t"))
    assert not sess.needs_refresh(1e9, 100)


def test_ticket_params_expiry() -> None:
    sess = OrchSession("u", make_info(expiration=10**10, expiration_block=140))
    assert not sess.needs_refresh(0, None)  # L1 block unknown
    assert not sess.needs_refresh(0, 138)  # 140 - 138 = 2 > 1: usable
    assert sess.needs_refresh(0, 139)  # 1: refresh
    assert sess.needs_refresh(0, 200)
    zero = OrchSession("u", make_info(expiration=10**10, expiration_block=0))
    assert zero.needs_refresh(0, 1)  # expiration_block 0 is invalid
    off_chain = OrchSession("u", make_info(expiration=10**10))
    assert not off_chain.needs_refresh(0, 10**6)


def test_in_flight_fifo() -> None:
    sess = OrchSession("u", make_info())
    assert sess.in_flight == 0
    assert sess.oldest_in_flight is None
    sess.begin(1.0)
    sess.begin(2.0)
    assert (sess.in_flight, sess.oldest_in_flight) == (2, 1.0)
    sess.end()
    assert sess.oldest_in_flight == 2.0
    sess.end()
    sess.end()  # harmless
    assert sess.in_flight == 0
