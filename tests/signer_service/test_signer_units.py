"""Sans-IO pieces of the signer: state encoding, request decoding, billing, max prices, flags,
error bodies; and a check that every signature runs off the event loop."""

from __future__ import annotations

import base64
import json
import threading
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signer_service.conftest import SignerFactory
from signer_service.signer_testkit import NsClock, get_info

from mediagw.errors import ConfigError
from mediagw.livepeer.rpc import OrchestratorRPC
from mediagw.orchestrator import ReferenceOrchestrator
from mediagw.payments import signer as signer_module
from mediagw.payments.remote import RemoteSigner, normalize_signer_url
from mediagw.signer_service import RequestFailed, run_signer
from mediagw.signer_service import payment as payment_module
from mediagw.signer_service.authhook import canonical_header, go_headers, parse_decision
from mediagw.signer_service.errors import public_message
from mediagw.signer_service.main import build_config, parse_args, parse_duration, parse_header_list
from mediagw.signer_service.request import billable, parse_max_price, parse_payment_request
from mediagw.signer_service.state import RemoteState, format_go_time, parse_go_time

NS = 10**9
PPS = 27_648_000


def test_go_time() -> None:
    assert format_go_time(None) == "0001-01-01T00:00:00Z"
    assert parse_go_time("0001-01-01T00:00:00Z") is None
    assert format_go_time(1_750_000_000 * NS) == "2025-06-15T15:06:40Z"
    assert format_go_time(1_750_000_000 * NS + 120_000_000) == "2025-06-15T15:06:40.12Z"
    ns = 1_750_000_000 * NS + 123_456_789
    assert parse_go_time(format_go_time(ns)) == ns
    assert parse_go_time("2025-06-15T17:06:40.5+02:00") == 1_750_000_000 * NS + NS // 2
    for bad in ("2025-06-15 15:06:40Z", "2025-13-01T00:00:00Z", "2025-06-15T15:06:40.1234567890Z"):
        with pytest.raises(ValueError):
            parse_go_time(bad)


def test_state_round_trip_and_case_insensitive_keys() -> None:
    state = RemoteState(
        state_id="0a0b0c0d",
        orchestrator_address=bytes(range(20)),
        initial_price_per_unit=3,
        initial_pixels_per_unit=2,
        pm_session_id="0x" + "ab" * 32,
        last_update_ns=1_750_000_000 * NS + 7,
        app="my-app",
        auth_expiry=1_750_000_100,
        sender_nonce=12,
        balance=Fraction(7, 3),
        type="lv2v",
        sequence_number=4,
        auth_id="u1",
    )
    blob = state.encode()
    doc = json.loads(blob)
    assert list(doc) == [
        "StateID", "PMSessionID", "LastUpdate", "OrchestratorAddress", "App", "AuthExpiry",
        "SenderNonce", "Balance", "InitialPricePerUnit", "InitialPixelsPerUnit", "Type",
        "SequenceNumber", "AuthID",
    ]  # fmt: skip
    assert doc["Balance"] == "7/3" and doc["OrchestratorAddress"] == "0x" + bytes(range(20)).hex()
    assert RemoteState.decode(blob) == state
    lower = json.dumps({k.lower(): v for k, v in doc.items()}).encode()
    assert RemoteState.decode(lower) == state
    for bad in (b"[]", b'{"SenderNonce": -1}', b'{"Balance": "1/0"}', b'{"LastUpdate": 5}'):
        with pytest.raises(ValueError):
            RemoteState.decode(bad)


def test_billable_units() -> None:
    now = 1_750_000_000 * NS
    assert billable("lv2v", None, now, 0) == (60 * PPS, now)  # first call: 60 s
    assert billable("lv2v", now + 5, now, 0) == (60 * PPS, now)  # clock went back: 60 s again
    units, last = billable("lv2v", now - 5 * NS - 100, now, 0)
    assert units == 5 * PPS + 2  # 100 ns = 2.76 px
    assert now - last == 28  # the 0.76 px (27.6 ns) stay unbilled for the next call
    assert billable("live", None, now, 0) == (10, now)
    assert billable("live", now - 2 * NS - 1, now, 0) == (3, now)
    assert billable("fixed", now - 99 * NS, now, 0) == (1, now)
    assert billable("", None, now, 1234) == (1234, now)
    with pytest.raises(RequestFailed, match="invalid job type"):
        billable("usage", None, now, 0)


def test_max_price() -> None:
    lv2v = {"price": "0.5", "currency": "WEI", "unit": "720p-pixel-seconds"}
    assert parse_max_price(lv2v, "lv2v") == Fraction(1, 2)
    assert parse_max_price({"price": 3, "currency": "wei", "unit": "seconds"}, "live") == 3
    assert parse_max_price(None, "lv2v") is None
    cases = [
        ({"price": "0", "currency": "wei", "unit": "fixed"}, "fixed", "positive decimal"),
        ({"price": "x", "currency": "wei", "unit": "fixed"}, "fixed", "positive decimal"),
        ({"price": 1, "currency": "usd", "unit": "fixed"}, "fixed", "currency must be wei"),
        ({"price": 1, "currency": "wei", "unit": "seconds"}, "lv2v", "unit must be 720p"),
        ({"price": 1, "currency": "wei", "unit": "fixed"}, "", "requires payment type"),
    ]
    for raw, kind, text in cases:
        with pytest.raises(ValueError, match=text):
            parse_max_price(raw, kind)


def test_request_decoding() -> None:
    blob = base64.b64encode(b"\x0a\x03abc").decode()  # OrchestratorInfo{transcoder: "abc"}
    req = parse_payment_request(
        json.dumps(
            {"ORCHESTRATOR": blob, "manifestid": "m1", "Type": "lv2v", "inpixels": 5}
        ).encode()
    )
    assert (req.info.transcoder, req.manifest_id, req.type) == ("abc", "m1", "lv2v")
    assert req.in_pixels == 5
    assert not req.has_state
    for body, text in (
        ({"orchestrator": "%%%"}, "illegal base64"),
        ({"orchestrator": blob, "inPixels": 1.5}, "int64"),
        ({"orchestrator": blob, "state": "x"}, "state"),
        ({"orchestrator": base64.b64encode(b"\xff\xff").decode()}, "proto"),
        ({"orchestrator": blob, "ManifestID": 7}, "string"),
    ):
        with pytest.raises(RequestFailed) as err:
            parse_payment_request(json.dumps(body).encode())
        assert err.value.status == 400 and text in err.value.message


def test_auth_decisions_and_headers() -> None:
    assert parse_decision(b'{"status":200,"expiry":5,"auth_id":"a"}').expiry == 5
    refused = parse_decision(b'{"status":401}')
    assert refused.reason == "signer auth rejected request with status 401"
    for bad in (b'{"status":true}', b'{"status":"200"}', b"[]", b'{"status":99}'):
        with pytest.raises(RequestFailed) as err:
            parse_decision(bad)
        assert err.value.status == 500
    assert canonical_header("x-api-key") == "X-Api-Key"
    assert canonical_header("signer-auth-id") == "Signer-Auth-Id"
    pairs = [("host", "h"), ("a", "1"), ("A", "2")]
    assert go_headers(pairs) == {"A": ["1", "2"]}


def test_error_messages() -> None:
    assert public_message(500, "secret detail") == "Internal Server Error"
    assert public_message(503, "cache empty") == "Service Unavailable Error"
    assert public_message(481, "too dear") == "too dear"


async def test_flags_and_the_no_auth_refusal() -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        await build_config(parse_args(["-httpAddr", "0.0.0.0:7936", "-devKey"]))
    with pytest.raises(ConfigError, match="not a loopback address"):
        await build_config(parse_args(["-httpAddr", ":7936", "-devKey"]))
    assert await run_signer(["-httpAddr", "192.0.2.1:7936", "-devKey"]) == 2
    allowed = await build_config(
        parse_args(["-httpAddr=0.0.0.0:7936", "-devKey", "-remoteSignerAllowNoAuth=true"])
    )
    assert allowed.host == "0.0.0.0" and allowed.port == 7936
    flags = [
        "--httpAddr", "10.0.0.5:7936", "-devKey",
        "-remoteSignerWebhookUrl", "http://auth.local/hook",
        "-remoteSignerWebhookHeaders", "Authorization: Bearer x, X-Env:prod",
        "-maxPricePerUnit", "1200", "-pixelsPerUnit", "4", "-maxTicketEV", "5e12",
    ]  # fmt: skip
    hooked = await build_config(parse_args(flags))
    assert hooked.webhook_headers == {"Authorization": "Bearer x", "X-Env": "prod"}
    assert hooked.caps.global_cap == 300 and hooked.max_ticket_ev == 5 * 10**12
    local = await build_config(parse_args(["-httpAddr", "localhost:0", "-devKey"]))
    assert local.port == 0
    with pytest.raises(ConfigError, match="no key"):
        await build_config(parse_args([]))
    with pytest.raises(ConfigError, match="-orchAddr"):
        await build_config(parse_args(["-devKey", "-remoteDiscovery"]))
    assert parse_duration("25m") == 1500 and parse_duration("1h30m0.5s") == 5400.5
    with pytest.raises(ConfigError):
        parse_duration("25 minutes")
    with pytest.raises(ConfigError):
        parse_header_list("novalue")
    assert normalize_signer_url("http://s:1/") == "http://s:1"


async def test_signing_and_checks_run_off_the_event_loop(
    make_signer: SignerFactory,
    rpc: OrchestratorRPC,
    priced: ReferenceOrchestrator,
    clock: NsClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    real_sign, real_recover = signer_module.sign_digest_with, payment_module.recover_address

    def sign(*args: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return real_sign(*args)

    def recover(*args: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return real_recover(*args)

    monkeypatch.setattr(signer_module, "sign_digest_with", sign)
    monkeypatch.setattr(payment_module, "recover_address", recover)
    async with make_signer() as server, RemoteSigner(server.url) as remote:
        address, sig = await remote.sign_orchestrator_info()
        info = await get_info(rpc, priced, address, sig)
        first = await remote.generate_live_payment(info, state=None, manifest_id="m")
        clock.advance(60)
        await remote.generate_live_payment(info, state=first.state, manifest_id="m")
    main = threading.main_thread().name
    assert len(threads) >= 6  # info sig, tickets, segCreds, state, state check, ...
    assert main not in threads
    assert all(name.startswith("signer-crypto") for name in threads)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_b64 = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
_keys = st.sampled_from(
    ["orchestrator", "state", "ManifestID", "app", "type", "inPixels", "maxPrice", "capabilities"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _json | _b64))
def test_request_decoding_never_fails_otherwise(doc: dict[str, Any]) -> None:
    try:
        req = parse_payment_request(json.dumps(doc).encode())
    except RequestFailed as err:
        assert err.status == 400
        return
    try:
        parse_max_price(req.max_price, req.type)
    except ValueError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(list(json.loads(RemoteState("s", bytes(20), 1, 1).encode()))), _json
    )
)
def test_state_decoding_never_fails_otherwise(doc: dict[str, Any]) -> None:
    try:
        RemoteState.decode(json.dumps(doc).encode())
    except ValueError:
        pass
