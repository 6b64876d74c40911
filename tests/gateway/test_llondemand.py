"""LL-HLS on demand (``publish/llondemand.py``): a stream nobody asked for is not packaged (its
segmenter emits no progress stream), and one asked for late gets, replayed from its listed TS
segments, the parts it would have had live."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from mediatools import ClipMaker, wait_until

from mediagw.publish.llhls import LLHLSPublisher
from mediagw.publish.llondemand import LLOnDemand
from mediagw.stream.hub import StreamHub
from mediagw.stream.publisher import Publisher
from segmenter import read_flv_file


def _wired(hub: StreamHub) -> tuple[LLHLSPublisher, LLOnDemand]:
    ll = LLHLSPublisher(0.2, window=20)
    gate = LLOnDemand(ll, hub.want_progress, keep=ll.window + ll.grace)
    ll.set_demand(gate.demand)
    hub.add_progress_listener(gate.on_progress)
    hub.add_listener(gate)
    return ll, gate


async def _publish(
    hub: StreamHub, clip: str, pool: ThreadPoolExecutor, *, demand_first: LLOnDemand | None
) -> None:
    stream = hub.begin_publish("s")
    if demand_first is not None:
        demand_first.demand("s")  # a player was there from the start
    publisher = Publisher(hub, stream, pool, wallclock=lambda: 1000.0, monotonic=lambda: 5.0)
    for tag in read_flv_file(clip):
        await publisher.media(*tag)
    await publisher.close(None)


async def test_a_late_player_gets_the_parts_it_would_have_had_live(make_clip: ClipMaker) -> None:
    clip = str(make_clip(seconds=7))
    with ThreadPoolExecutor(1) as pool:
        live_hub, late_hub = StreamHub(), StreamHub()
        live, live_gate = _wired(live_hub)
        late, late_gate = _wired(late_hub)
        await _publish(live_hub, clip, pool, demand_first=live_gate)
        await _publish(late_hub, clip, pool, demand_first=None)

        stream = late_hub.get("s")
        assert stream is not None and not stream.segmenter.progress  # nobody asked: no parts
        assert late.rendition("s", "source") is None
        late_gate.demand("s")  # the first player, after the stream ended
        assert stream.segmenter.progress
        await wait_until(lambda: late_gate.replayed == stream.stats.segments, 10)

    made, replayed = live.rendition("s", "source"), late.rendition("s", "source")
    assert made is not None and replayed is not None
    assert stream.stats.segments >= 3 and len(made.segments) == stream.stats.segments
    # the same parts, with the same durations and flags, and the same init segment; the
    # audio in them may differ by timestamp rounding (see the module), so not byte for byte
    assert replayed.parts.keys() == made.parts.keys()
    assert replayed.inits == made.inits
    assert replayed.playlist.ended and made.playlist.ended
    assert replayed.playlist.render() == made.playlist.render()
    sizes = sum(len(d) for d in made.parts.values()), sum(len(d) for d in replayed.parts.values())
    assert abs(sizes[0] - sizes[1]) < 0.01 * sizes[0], sizes
