"""GetOrchestrator / EndTranscodingSession / Ping over real gRPC (grpcio) on the shared TLS port."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from pathlib import Path

import aiohttp
import grpc
import pytest
from coincurve import PrivateKey
from cryptography import x509
from orchestrator.orch_testkit import (
    GATEWAY_ADDRESS,
    GATEWAY_KEY,
    ORCH_KEY,
    end_session,
    get_orchestrator,
    grpc_channel,
    request_for,
)
from vectors import vectors

from mediagw.eth.crypto import address_of, keccak256, recover_address, sign_digest
from mediagw.livepeer.proto import net
from mediagw.orchestrator import OrchestratorConfig, ReferenceOrchestrator
from mediagw.orchestrator.caps import DEFAULT_CAPABILITIES, bitstring
from mediagw.orchestrator.certs import generate_certificate
from mediagw.payments.tickets import aux_data, expected_value


async def test_offchain_info(offchain: ReferenceOrchestrator) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    assert info.transcoder == offchain.service_uri == offchain.url
    assert list(info.capabilities.bitstring) == bitstring(DEFAULT_CAPABILITIES)
    assert list(info.capabilities.bitstring) == [67133439]  # vectors: orchestrator_defaults
    assert info.capabilities.version
    assert not info.HasField("ticket_params") and not info.HasField("price_info")
    assert info.address == b""
    token = info.auth_token
    assert len(token.session_id) == 8 and int(token.session_id, 16) >= 0
    assert abs(token.expiration - (time.time() + 1800)) < 5
    assert len(token.token) == 32
    # a fresh token (and session ID) per call
    again = await get_orchestrator(offchain, request_for(None))
    assert again.auth_token.session_id != token.session_id
    # off-chain: any signature passes, even garbage
    bad = net.OrchestratorRequest(address=GATEWAY_ADDRESS, sig=b"nope")
    assert (await get_orchestrator(offchain, bad)).transcoder == offchain.url
    assert offchain.stats.get_orchestrator == 3


async def test_priced_info(priced: ReferenceOrchestrator) -> None:
    info = await get_orchestrator(priced, request_for(GATEWAY_KEY))
    assert info.address == address_of(PrivateKey(ORCH_KEY).public_key) == priced.address
    assert (info.price_info.pricePerUnit, info.price_info.pixelsPerUnit) == (3, 2)
    tp = info.ticket_params
    assert tp.recipient == info.address
    face, win = int.from_bytes(tp.face_value, "big"), int.from_bytes(tp.win_prob, "big")
    assert face == 8_000_000_000 * 100  # gas price 0: faceValue = ticketEV x 100
    assert expected_value(face, win) >= 8_000_000_000
    assert len(tp.recipient_rand_hash) == 32 and len(tp.seed) <= 32
    chain = priced.node.chain  # type: ignore[union-attr]
    assert int.from_bytes(tp.expiration_block, "big") == chain.last_seen_l1_block() + 40
    ep = tp.expiration_params
    assert ep.creation_round == chain.last_initialized_round()
    assert len(ep.creation_round_block_hash) == 32 and any(ep.creation_round_block_hash)
    assert len(aux_data(ep.creation_round, ep.creation_round_block_hash)) == 64
    # fresh seed (so a new recipientRandHash) on every info
    again = await get_orchestrator(priced, request_for(GATEWAY_KEY))
    assert again.ticket_params.seed != tp.seed
    assert again.ticket_params.recipient_rand_hash != tp.recipient_rand_hash


@pytest.mark.parametrize(
    "sig",
    [
        b"",  # empty
        b"\x01" * 65,  # garbage
        "other-key",  # valid signature by another key
        "lowercase",  # signature over the lowercase (not EIP-55) string
    ],
)
async def test_priced_bad_signature(priced: ReferenceOrchestrator, sig: object) -> None:
    if sig == "other-key":
        sig = sign_digest(ORCH_KEY, keccak256(("0x" + GATEWAY_ADDRESS.hex()).encode()))
    elif sig == "lowercase":
        sig = sign_digest(GATEWAY_KEY, keccak256(("0x" + GATEWAY_ADDRESS.hex()).encode()))
    assert isinstance(sig, bytes)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await get_orchestrator(priced, request_for(GATEWAY_KEY, sig=sig))
    assert err.value.code() == grpc.StatusCode.UNKNOWN
    assert err.value.details() == "Invalid orchestrator request: orchestrator req sig check failed"


async def test_capped(tmp_path: Path, segment_small: bytes, http: aiohttp.ClientSession) -> None:
    from orchestrator.orch_testkit import headers, post, segdata

    config = OrchestratorConfig(work_dir=tmp_path, max_sessions=1, x264_preset="ultrafast")
    async with ReferenceOrchestrator(config) as orch:
        info = await get_orchestrator(orch, request_for(None))
        reply = await post(
            http, orch, "/segment", headers(segdata(info, segment_small), None), segment_small
        )
        assert reply.status == 200 and reply.result.WhichOneof("result") == "data"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await get_orchestrator(orch, request_for(None))
        assert err.value.details() == "Invalid orchestrator request: OrchestratorCapped"
        # a second session is refused at /segment too, the first one goes on
        other = await get_orchestrator_unchecked(orch, info)
        reply = await post(
            http, orch, "/segment", headers(segdata(other, segment_small), None), segment_small
        )
        assert (reply.status, reply.text) == (403, "OrchestratorCapped\n")
        # ending the session frees the slot
        await end_session(orch, info.auth_token)
        assert orch.node is not None and orch.node.sessions.active == 0
        assert (await get_orchestrator(orch, request_for(None))).transcoder == orch.url


async def get_orchestrator_unchecked(
    orch: ReferenceOrchestrator, info: net.OrchestratorInfo
) -> net.OrchestratorInfo:
    """An info with a second valid token, minted the way the orchestrator does."""
    assert orch.node is not None
    other = net.OrchestratorInfo()
    other.CopyFrom(info)
    other.auth_token.CopyFrom(orch.node.tokens.issue())
    return other


async def test_end_session_checks_hmac(offchain: ReferenceOrchestrator) -> None:
    info = await get_orchestrator(offchain, request_for(None))
    forged = net.AuthToken()
    forged.CopyFrom(info.auth_token)
    forged.expiration += 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await end_session(offchain, forged)
    assert (err.value.code(), err.value.details()) == (
        grpc.StatusCode.UNKNOWN,
        "Invalid auth token",
    )
    await end_session(offchain, info.auth_token)  # valid: accepted (no session yet is fine)


async def test_ping_signs_in_priced_mode(priced: ReferenceOrchestrator) -> None:
    async with grpc_channel(priced) as channel:
        ping = channel.unary_unary(
            "/net.Orchestrator/Ping",
            request_serializer=net.PingPong.SerializeToString,
            response_deserializer=net.PingPong.FromString,
        )
        pong = await ping(net.PingPong(value=b"hello"), timeout=10)
    assert recover_address(keccak256(b"hello"), pong.value) == priced.address


async def test_unknown_method_and_service(offchain: ReferenceOrchestrator) -> None:
    async with grpc_channel(offchain) as channel:
        for path, text in [
            ("/net.Orchestrator/Nope", "unknown method Nope for service net.Orchestrator"),
            ("/net.Transcoder/RegisterTranscoder", "unknown service net.Transcoder"),
        ]:
            call = channel.unary_unary(
                path,
                request_serializer=net.PingPong.SerializeToString,
                response_deserializer=net.PingPong.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(net.PingPong(), timeout=10)
            assert (err.value.code(), err.value.details()) == (grpc.StatusCode.UNIMPLEMENTED, text)


async def test_http1_grpc_content_type_goes_to_http_mux(
    offchain: ReferenceOrchestrator, http: aiohttp.ClientSession
) -> None:
    """Only HTTP/2 + application/grpc is gRPC; the same request over HTTP/1.1 hits the mux."""
    async with http.post(
        offchain.url + "/net.Orchestrator/GetOrchestrator",
        data=b"\x00\x00\x00\x00\x00",
        headers={"Content-Type": "application/grpc"},
        ssl=False,
    ) as resp:
        assert resp.status == 404
        assert await resp.text() == "404 page not found\n"


async def test_certificate(offchain: ReferenceOrchestrator, tmp_path: Path) -> None:
    pem = (tmp_path / "cert.pem").read_bytes()
    assert (tmp_path / "key.pem").exists()
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["127.0.0.1"]  # IP as a DNS name
    assert not san.get_values_for_type(x509.IPAddress)
    # good for 8765 h from creation (go-livepeer), valid from an hour before it (clock skew)
    now = time.time()
    assert now - 3600 - 60 <= cert.not_valid_before_utc.timestamp() <= now - 3600
    assert now + 8765 * 3600 - 60 <= cert.not_valid_after_utc.timestamp() <= now + 8765 * 3600
    # ALPN offers h2 and http/1.1
    ctx = ssl.create_default_context(cadata=pem.decode())
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    _, writer = await asyncio.open_connection("127.0.0.1", offchain.port, ssl=ctx)
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    writer.close()


@pytest.mark.parametrize("ahead_s", [1, 600])
async def test_certificate_accepted_by_a_peer_whose_clock_is_behind(
    tmp_path: Path, ahead_s: int
) -> None:
    """A cert made by an orchestrator whose clock runs ahead, checked by a real TLS client now."""
    cert = generate_certificate("127.0.0.1", tmp_path, time.time() + ahead_s)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert.cert_path, cert.key_path)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cadata=cert.cert_pem.decode())
    client_ctx.check_hostname = False  # the SAN is a DNS name "127.0.0.1", as go-livepeer's
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_new_certificate_every_start(tmp_path: Path) -> None:
    pems = []
    for _ in range(2):
        async with ReferenceOrchestrator(OrchestratorConfig(work_dir=tmp_path)):
            pems.append((tmp_path / "cert.pem").read_bytes())
    assert pems[0] != pems[1]


async def test_plaintext_h2c_and_http1(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with ReferenceOrchestrator(OrchestratorConfig(work_dir=tmp_path, plaintext=True)) as o:
        assert o.url.startswith("http://") and not o.tls
        info = await get_orchestrator(o, request_for(None))  # grpc over h2c
        assert info.transcoder == o.url
        async with http.get(o.url + "/stats") as resp:
            assert resp.status == 200 and (await resp.json())["get_orchestrator"] == 1
        assert not (tmp_path / "cert.pem").exists()


def test_auth_token_is_hmac_of_session_and_expiration() -> None:
    from mediagw.orchestrator.authtoken import AuthTokens

    secret = b"k" * 32
    tokens = AuthTokens(secret, lambda: 1000.0, lambda n: b"\xab\xcd\x01\x02"[:n])
    token = tokens.issue()
    assert token.session_id == "abcd0102" and token.expiration == 1000 + 1800
    msg = b"abcd0102" + (2800).to_bytes(2, "big")  # minimal big-endian expiration
    assert token.token == hmac.new(secret, msg, hashlib.sha256).digest()
    assert tokens.authentic(token)


async def test_vector_request_accepted(priced: ReferenceOrchestrator) -> None:
    """The serialized OrchestratorRequest of the conformance vectors passes the priced check."""
    cases = vectors()["derived_signatures"]
    case = next(c for c in cases if c["id"] == "orchestrator_request_sig")
    raw = bytes.fromhex(case["expected_orchestrator_request_protobuf"].removeprefix("0x"))
    info = await get_orchestrator(priced, net.OrchestratorRequest.FromString(raw))
    assert info.ticket_params.recipient == priced.address
