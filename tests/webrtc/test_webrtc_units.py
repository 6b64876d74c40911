"""In-memory tests of the webrtc library: ICE config, offer checks, Annex B, fan-out, pacing."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import ifaddr
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from hypothesis import given
from hypothesis import strategies as st

import webrtc
from webrtc import EncodedSource, IceConfig, IceServer, OfferError, Pacer, UnsupportedMediaError
from webrtc.config import (
    add_nat_candidates,
    detect_host_addresses,
    loopback_fallback,
    select_host_addresses,
)
from webrtc.media import (
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    ParameterSetCache,
    VideoAccessUnit,
    is_keyframe,
    join_nals,
    nal_types,
    split_nals,
)
from webrtc.sdp import check_offer
from webrtc.whip import _TrackClock

# --- ICE configuration ------------------------------------------------------------------------


def test_default_ice_has_no_servers_and_never_aiortc_default() -> None:
    conf = IceConfig().rtc_configuration()
    assert conf.iceServers == []  # None would make aiortc use stun.l.google.com


def test_host_address_selection() -> None:
    detected = ["192.0.2.2", "fe80::1"]
    assert select_host_addresses(IceConfig(), detected) == detected
    assert select_host_addresses(IceConfig.loopback(), detected) == ["127.0.0.1"]
    assert select_host_addresses(IceConfig(allow_loopback=True), detected) == [
        "192.0.2.2",
        "fe80::1",
        "127.0.0.1",
    ]
    assert select_host_addresses(IceConfig(), detected, use_ipv6=False) == ["192.0.2.2"]
    with pytest.raises(ValueError):
        IceConfig(nat_1to1_ips=("not-an-ip",))


def _adapter(name: str, *ips: str | tuple[str, int, int]) -> ifaddr.Adapter:
    return ifaddr.Adapter(name, name, [ifaddr.IP(ip, 8, name) for ip in ips])


LO = _adapter("lo", "127.0.0.1", ("::1", 0, 0))


@pytest.mark.parametrize(
    ("adapters", "expected"),
    [
        ([LO], ["127.0.0.1"]),  # only lo: loopback candidates instead of none
        ([LO, _adapter("eth0", ("fe80::2", 0, 2))], ["127.0.0.1"]),  # link-local only
        ([LO, _adapter("eth0", "192.0.2.2")], None),  # a real interface: aioice as shipped
        ([LO, _adapter("eth0", ("2001:db8::2", 0, 0))], None),  # IPv6-only host
        ([], ["127.0.0.1"]),
    ],
)
def test_loopback_fallback_only_without_another_interface(
    monkeypatch: pytest.MonkeyPatch, adapters: list[ifaddr.Adapter], expected: list[str] | None
) -> None:
    monkeypatch.setattr(ifaddr, "get_adapters", lambda: adapters)
    detected = detect_host_addresses()
    fallback = loopback_fallback(IceConfig(), detected)
    if expected is None:
        assert fallback is None and detected
        return
    assert fallback is not None and detected == []
    assert select_host_addresses(fallback, detected) == expected
    # configured addresses are kept as given, even on a loopback-only host
    assert loopback_fallback(IceConfig(host_addresses=("127.0.0.1",)), detected) is None
    assert loopback_fallback(IceConfig(allow_loopback=True), detected) is None
    # NAT addresses and servers survive the fallback
    nat = IceConfig(nat_1to1_ips=("203.0.113.7",))
    assert loopback_fallback(nat, detected) == IceConfig(
        host_addresses=("127.0.0.1",), nat_1to1_ips=("203.0.113.7",)
    )


def test_nat_candidates_repeat_host_candidates() -> None:
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:abc 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
        "a=candidate:def 1 udp 1694498815 198.51.100.1 40000 typ srflx "
        "raddr 10.0.0.5 rport 40000\r\n"
    )
    out = add_nat_candidates(sdp, ("203.0.113.7",))
    assert "a=candidate:abcn1 1 udp 2130706430 203.0.113.7 40000 typ host\r\n" in out
    assert out.count("typ host") == 2 and out.count("typ srflx") == 1
    assert add_nat_candidates(sdp, ()) == sdp


def test_link_header_values() -> None:
    conf = IceConfig(
        servers=(
            IceServer(urls=("stun:stun.example.net",)),
            IceServer(
                urls=("turn:turn.example.net?transport=udp",), username="u", credential='p"w'
            ),
        )
    )
    assert conf.link_header_values() == [
        '<stun:stun.example.net>; rel="ice-server"',
        '<turn:turn.example.net?transport=udp>; rel="ice-server"; username="u"; '
        'credential="p\\"w"; credential-type="password"',
    ]


# --- offers ------------------------------------------------------------------------------------


async def _offer(
    video: str | None = "sendonly", audio: str | None = None, codecs: tuple[str, ...] = ()
) -> str:
    pc = RTCPeerConnection(IceConfig().rtc_configuration())
    try:
        if video is not None:
            t = pc.addTransceiver("video", direction=video)
            if codecs:
                caps = RTCRtpSender.getCapabilities("video").codecs
                t.setCodecPreferences([c for c in caps if c.mimeType.lower() in codecs])
        if audio is not None:
            pc.addTransceiver("audio", direction=audio)
        return (await pc.createOffer()).sdp  # no gathering needed to see the SDP shape
    finally:
        await pc.close()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("hello world", "v=0"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no media"),
        ("v=0\r\nm=video x", "malformed"),
    ],
)
def test_malformed_offers(text: str, reason: str) -> None:
    with pytest.raises(OfferError, match=reason) as info:
        check_offer(text, "publish")
    assert type(info.value) is OfferError and info.value.http_status == 400


async def test_offer_checks() -> None:
    good = await _offer(audio="sendonly")
    summary = check_offer(good, "publish")
    assert summary.has_audio and any(c.startswith("H264") for c in summary.video_codecs)

    with pytest.raises(OfferError, match="ice-ufrag"):
        check_offer(
            "\r\n".join(x for x in good.split("\r\n") if not x.startswith("a=ice-ufrag")), "publish"
        )
    with pytest.raises(OfferError, match="fingerprint"):
        check_offer(
            "\r\n".join(x for x in good.split("\r\n") if not x.startswith("a=fingerprint")),
            "publish",
        )

    vp8 = await _offer(codecs=("video/vp8", "video/rtx"))
    with pytest.raises(UnsupportedMediaError, match=r"H\.264.*required; offered: VP8") as info:
        check_offer(vp8, "publish")
    assert info.value.http_status == 422

    with pytest.raises(UnsupportedMediaError, match="no video"):
        check_offer(await _offer(video=None, audio="sendonly"), "publish")
    with pytest.raises(UnsupportedMediaError, match="direction"):
        check_offer(await _offer(video="recvonly"), "publish")
    assert check_offer(await _offer(video="recvonly"), "play").video_mid is not None

    pcmu = good.replace("a=rtpmap:96 opus/48000/2", "a=rtpmap:96 PCMU/8000")
    with pytest.raises(UnsupportedMediaError, match="Opus"):
        check_offer(pcmu, "publish")


# --- Annex B -----------------------------------------------------------------------------------

# NAL units as found in streams: a header byte with the forbidden bit clear and payload bytes
# that never hold two zeros in a row (emulation prevention) nor end with a zero.
_nal = st.builds(
    lambda head, body: bytes([head]) + body,
    st.integers(1, 0x7F),
    st.lists(st.integers(1, 255), max_size=40).map(bytes),
)


@given(st.lists(_nal, min_size=1, max_size=8))
def test_annexb_round_trip(nals: list[bytes]) -> None:
    data = join_nals(nals)
    assert split_nals(data) == nals
    assert split_nals(data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01")) == nals


def test_keyframe_and_parameter_sets() -> None:
    sps, pps = bytes([0x67, 1, 2]), bytes([0x68, 3])
    idr, slice_ = bytes([0x65, 9, 9]), bytes([0x41, 7])
    assert is_keyframe(join_nals([sps, pps, idr])) and not is_keyframe(join_nals([slice_]))

    cache = ParameterSetCache()
    assert cache.complete(join_nals([idr]), True) == join_nals([idr])  # nothing known yet
    cache.set_from(join_nals([sps, pps]))
    assert nal_types(cache.complete(join_nals([idr]), True)) == [NAL_SPS, NAL_PPS, NAL_IDR]
    assert cache.complete(join_nals([slice_]), False) == join_nals([slice_])


# --- fan-out -----------------------------------------------------------------------------------


def _unit(i: int, key: bool) -> VideoAccessUnit:
    nal = bytes([0x65 if key else 0x41, i % 250 + 1])
    return VideoAccessUnit(join_nals([nal]), pts=i * 3000, dts=i * 3000, keyframe=key)


async def test_viewer_starts_at_keyframe_after_it_pulls() -> None:
    src = EncodedSource()
    sub = src.subscribe(video_size=10)
    src.push_video(_unit(0, True))  # before the sender pulls: ignored (no stale burst)
    pull = asyncio.ensure_future(sub.next_video())
    await asyncio.sleep(0)
    src.push_video(_unit(1, False))
    src.push_video(_unit(2, True))
    packet = await pull
    assert packet is not None
    assert bytes(packet) == join_nals([bytes([0x65, 3])])
    assert sub.stats.skipped_to_keyframe == 1


async def test_slow_viewer_drops_and_never_blocks_others() -> None:
    src = EncodedSource()
    slow = src.subscribe(video_size=5)
    fast = src.subscribe(video_size=5)
    slow.active = fast.active = True
    got = []
    for i in range(32):  # keyframe every 10 frames; the slow one overflows at 5
        src.push_video(_unit(i, i % 10 == 0))
        packet = await fast.next_video()
        assert packet is not None
        got.append(packet.pts)
    assert got == [i * 3000 for i in range(32)]  # the fast one saw every frame, in order
    assert fast.stats.dropped_video == 0
    assert slow.stats.dropped_video > 0
    first = await slow.next_video()  # the slow one restarted at the last keyframe
    assert first is not None and first.pts == 30 * 3000 and nal_types(bytes(first)) == [NAL_IDR]
    src.close()
    assert await fast.next_video() is None and src.viewers == 0


def test_timeline_stays_monotonic_over_discontinuities() -> None:
    src = EncodedSource()
    sub = src.subscribe(video_size=100)
    sub.active = True
    for pts in [900_000, 903_000, 906_000, 0, 3000, 10_000_000, 10_003_000]:
        src.push_video(VideoAccessUnit(join_nals([bytes([0x65, 1])]), pts, pts, True))
    out = [p.pts for p in sub._video]
    assert out == [0, 3000, 6000, 9000, 12000, 15000, 18000]


async def test_pacer_follows_pts_and_resyncs() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))

    pacer = Pacer(clock=lambda: now[0], sleep=sleep)
    await pacer.wait(0)
    await pacer.wait(45_000)  # due in 0.5 s
    now[0] += 0.2
    await pacer.wait(90_000)  # due 1.0 s after start, now at 0.2 s: 0.8 s
    await pacer.wait(90_000 * 60)  # a jump: re-anchor, no long sleep
    assert slept == [0.5, 0.8] and pacer.resyncs == 1


def test_rtp_clock_unwraps_and_reanchors() -> None:
    clock = _TrackClock(90_000)
    assert clock.map(0xFFFF_F000, arrival=10.5, epoch=10.0) == 45_000  # anchored by arrival
    assert clock.map(0x0000_0BB8, arrival=10.6, epoch=10.0) == 45_000 + 0x1000 + 0xBB8  # wrap
    last = clock.map(0x0000_1770, arrival=10.7, epoch=10.0)
    jumped = clock.map(0x4000_0000, arrival=12.0, epoch=10.0)  # a new RTP clock
    assert jumped == 180_000 > last
    assert clock.map(0x4000_0000 - 3000, arrival=12.1, epoch=10.0) == jumped + 9000  # step back


def test_rtp_clock_anchors_at_the_first_packet_of_a_frame() -> None:
    """The jitter buffer hands a frame over when the next frame's first packet arrives: the
    anchor is the arrival of the frame's own first packet, not that moment."""
    clock = _TrackClock(90_000)
    clock.saw_packet(1000, 10.10)  # first packet of the keyframe
    clock.saw_packet(1000, 10.14)  # its last packet
    clock.saw_packet(4000, 10.20)  # next frame: the keyframe is complete now
    assert clock.map(1000, arrival=10.20, epoch=10.0) == 9000
    assert clock.map(4000, arrival=10.25, epoch=10.0) == 12_000  # then the RTP clock
    unknown = _TrackClock(48_000)  # no packet noted: the frame's arrival is the anchor
    assert unknown.map(5, arrival=10.5, epoch=10.0) == 24_000


def test_layering_webrtc_imports_neither_mediagw_nor_segmenter() -> None:
    root = Path(webrtc.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("mediagw", "segmenter"), (path.name, name)
