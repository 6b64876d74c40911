"""The usage seam: events in, a bounded queue that drops (counted) and never blocks, per-stream
totals out; the value of a payment header, whoever made it."""

from __future__ import annotations

import asyncio
import base64
from fractions import Fraction

from mediagw.livepeer.proto import net
from mediagw.payments.live import payment_value
from mediagw.payments.tickets import expected_value
from mediagw.usage import (
    LIVE_AI,
    PAYMENT,
    TRANSCODE,
    StreamMeter,
    StreamUsage,
    UsageEvent,
    UsageQueue,
)


class Broken:
    def emit(self, event: UsageEvent) -> None:
        raise RuntimeError("a consumer bug")


async def test_queue_delivers_in_order_and_a_broken_consumer_loses_nothing_for_others() -> None:
    totals = StreamUsage()
    queue = UsageQueue([Broken(), totals], maxsize=10)
    queue.start()
    meter = StreamMeter(queue, "s", 2, "static-key:s")
    meter.emit(TRANSCODE, 1000, "pixel", "https://o1")
    meter.emit(PAYMENT, 3, "ticket", "https://o1", Fraction(7, 2))
    meter.emit(LIVE_AI, 1500, "ms", "https://o2")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    got = totals.of("s")
    assert (got.transcode_pixels, got.tickets_sent, got.ev_sent_wei, got.live_ai_ms) == (
        1000, 3, Fraction(7, 2), 1500,
    )  # fmt: skip
    assert queue.delivered == 3 and queue.dropped == 0
    assert totals.of("other").tickets_sent == 0
    await queue.close()


async def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    totals = StreamUsage()
    queue = UsageQueue([totals], maxsize=4)  # not started: nobody drains it
    meter = StreamMeter(queue, "s")
    for _ in range(10):
        meter.emit(TRANSCODE, 1, "pixel")  # synchronous: it can only return or drop
    assert queue.dropped == 6
    queue.drain()
    assert totals.of("s").transcode_pixels == 4 and queue.delivered == 4


def test_stream_usage_is_bounded() -> None:
    totals = StreamUsage(max_streams=2)
    for name in ("a", "b", "c"):
        totals.emit(UsageEvent(name, 1, "", "", PAYMENT, 1, "ticket"))
    assert totals.of("a").tickets_sent == 0 and totals.of("c").tickets_sent == 1


def test_payment_value_counts_tickets_and_their_expected_value() -> None:
    face, win = 10**15, 2**255  # EV = face / 2
    payment = net.Payment(sender=b"\x01" * 20)
    payment.ticket_params.face_value = face.to_bytes(8, "big")
    payment.ticket_params.win_prob = win.to_bytes(32, "big")
    for nonce in (1, 2, 3):
        payment.ticket_sender_params.add(sender_nonce=nonce, sig=b"s" * 65)
    header = base64.b64encode(payment.SerializeToString()).decode()
    assert payment_value(header) == (3, 3 * expected_value(face, win))
    assert payment_value("") == (0, 0)  # off-chain
    assert payment_value("%%%") == (0, 0)  # unreadable: counted as nothing, never raises
