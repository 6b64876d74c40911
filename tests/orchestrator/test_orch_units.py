"""Unit tests of the reference orchestrator's pieces, on the conformance vectors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from fractions import Fraction

import pytest
from vectors import vectors

from mediagw.eth.crypto import keccak256
from mediagw.livepeer.proto import net
from mediagw.orchestrator.balances import Balances
from mediagw.orchestrator.caps import (
    DEFAULT_CAPABILITIES,
    bitstring,
    compatible,
    orchestrator_capabilities,
    version_compatible,
)
from mediagw.orchestrator.chain import DevChain
from mediagw.orchestrator.errors import TranscodeError
from mediagw.orchestrator.grpc_asgi import _grpc_message, frame
from mediagw.orchestrator.node import _signed_by
from mediagw.orchestrator.recipient import Recipient
from mediagw.orchestrator.segcreds import decode_b64, flatten
from mediagw.orchestrator.sessions import TranscodeSessions
from mediagw.orchestrator.stats import OrchestratorStats
from mediagw.orchestrator.store import RenditionStore
from mediagw.payments.tickets import aux_data, int_to_bytes, pad32, recipient_rand_hash

VECTORS = vectors()


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


@pytest.mark.parametrize("case", VECTORS["segment_flatten"], ids=lambda c: c["id"])
def test_flatten_vectors(case: dict[str, object]) -> None:
    got = flatten(
        str(case["manifest_id"]).encode(),
        int(str(case["seq"])),
        _hex(str(case["segment_hash"])),
        list(case["profile_names"]),  # type: ignore[call-overload]
    )
    assert got == _hex(str(case["expected_flatten"]))
    assert keccak256(got) == _hex(str(case["expected_keccak256"]))


def test_signature_vectors() -> None:
    by_id = {c["id"]: c for c in VECTORS["derived_signatures"]}
    req = by_id["orchestrator_request_sig"]
    signer = _hex(req["signer"])
    assert _signed_by(signer, req["message_ascii"].encode(), _hex(req["expected_signature"]))
    assert not _signed_by(bytes(20), req["message_ascii"].encode(), _hex(req["expected_signature"]))
    seg = by_id["segdata_sig_TestSegmentFlatten"]
    assert _signed_by(signer, _hex(seg["flatten"]), _hex(seg["expected_signature"]))


def test_capability_vectors() -> None:
    by_id = {c["id"]: c for c in VECTORS["capability_bitstrings"]}
    for case in by_id.values():
        assert bitstring(case["bits"]) == [int(x) for x in case["expected_bitstring"]]
    assert list(DEFAULT_CAPABILITIES) == by_id["orchestrator_defaults"]["bits"]


def test_compatibility() -> None:
    orch = orchestrator_capabilities("0.9.1")

    def job(*bits: int, min_version: str = "") -> net.Capabilities:
        caps = net.Capabilities(bitstring=bitstring(bits))
        caps.constraints.minVersion = min_version
        return caps

    assert compatible(job(0, 1, 12, 26), orch)
    assert compatible(job(0, 1, 12), orch)
    assert not compatible(job(0, 1), orch)  # AuthToken is mandatory
    assert not compatible(job(0, 1, 12, 15), orch)  # HEVC decode not offered
    assert not compatible(job(12, 35), orch)  # live AI not offered
    assert not compatible(None, orch)  # no caps: empty, lacking the mandatory AuthToken
    assert compatible(job(0, 12, min_version="0.9.1"), orch)
    assert compatible(job(0, 12, min_version="v0.8.0"), orch)
    assert not compatible(job(0, 12, min_version="0.9.2"), orch)
    assert compatible(job(0, 12, min_version="not-a-version"), orch)  # unparsable minimum
    model = job(12)
    model.constraints.PerCapability[35].models["m"].warm = True
    assert compatible(model, orch)  # O has no constraints for 35: assumed compatible
    with_models = orchestrator_capabilities("0.9.1")
    with_models.constraints.PerCapability[35].models["other"].warm = True
    assert not compatible(model, with_models)  # model missing
    with_models.constraints.PerCapability[35].models["m"].warm = False
    assert not compatible(model, with_models)  # not warm
    with_models.constraints.PerCapability[35].models["m"].warm = True
    assert compatible(model, with_models)
    assert version_compatible("0.9.1", "0.9.1-rc1") and version_compatible("", "")
    assert not version_compatible("0.1.0", "") and not version_compatible("0.1.0", "undefined")


def test_b64_errors_read_like_go() -> None:
    assert decode_b64("") == b""
    assert decode_b64("aGk=") == b"hi"
    for text, at in [("!!", 0), ("aGk=x", 3), ("aG=k", 2), ("aGk", 0)]:
        with pytest.raises(ValueError) as err:
            decode_b64(text)
        assert str(err.value).startswith("illegal base64 data at input byte")
        if text != "aGk":
            assert str(err.value) == f"illegal base64 data at input byte {at}"


def test_grpc_framing() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert _grpc_message("a b%c\né") == b"a b%25c%0A%C3%A9"


def _recipient(ev: int = 5, gas_price: int = 100, clock: float = 12 * 1000) -> Recipient:
    stats = OrchestratorStats()
    return Recipient(
        address=b"\x11" * 20,
        secret=b"s" * 32,
        chain=DevChain(lambda: clock),
        ticket_ev=ev,
        redeem_gas=10_000,
        gas_price=gas_price,
        rand=lambda n: b"\x07" * n,
        balances=Balances(),
        stats=stats,
    )


def test_ticket_params_vector_and_recipient_rand() -> None:
    case = VECTORS["win_prob"][0]  # EV 5, redeem gas 10000, gas price 100
    r = _recipient()
    sender = b"\x22" * 20
    tp = r.ticket_params(sender, Fraction(1))
    assert int.from_bytes(tp.face_value, "big") == int(case["expected_face_value"])
    assert int.from_bytes(tp.win_prob, "big") == int(case["expected_win_prob"])
    assert int.from_bytes(tp.expiration_block, "big") == 1000 + 40
    ep = tp.expiration_params
    assert ep.creation_round == 1000 // 5760 and any(ep.creation_round_block_hash)
    # recipientRand = HMAC(secret, seed || sender || face || win || expBlock || num || den || aux)
    msg = b"".join(
        [
            tp.seed,
            sender,
            tp.face_value,
            tp.win_prob,
            tp.expiration_block,
            int_to_bytes(1),
            int_to_bytes(1),
            aux_data(ep.creation_round, ep.creation_round_block_hash),
        ]
    )
    rand = int.from_bytes(hmac.new(b"s" * 32, msg, hashlib.sha256).digest(), "big")
    assert tp.recipient_rand_hash == recipient_rand_hash(rand) == keccak256(pad32(rand))
    # price 0: no payment needed
    zero = r.ticket_params(sender, Fraction(0))
    assert zero.face_value == b"" and zero.win_prob == b""


def test_store_keeps_last_12_per_directory() -> None:
    store = RenditionStore()
    for seq in range(14):
        store.put("sess/P240", f"{seq}.ts", bytes([seq]))
    store.put("sess/P360", "0.ts", b"x")
    assert store.get("sess/P240/0.ts") is None and store.get("sess/P240/1.ts") is None
    assert store.get("sess/P240/2.ts") == b"\x02" and store.get("sess/P240/13.ts") == b"\x0d"
    assert store.get("sess/P360/0.ts") == b"x" and len(store) == 13
    small = RenditionStore(max_directories=2)
    for d in "abc":
        small.put(f"s/{d}", "0.ts", b"1")
    assert small.get("s/a/0.ts") is None and small.get("s/c/0.ts") == b"1"


def test_balances() -> None:
    b = Balances()
    b.credit(b"s", "k", Fraction(5))
    b.debit(b"s", "k", Fraction(7))
    assert b.balance(b"s", "k") == -2 and b.balance(b"s", "other") is None
    b.fix_price(b"s", "k", Fraction(1, 3))
    b.fix_price(b"s", "k", Fraction(9))  # only the first payment fixes it
    assert b.fixed_price(b"s", "k") == Fraction(1, 3)


async def test_sessions_busy_capped_in_order() -> None:
    gate = asyncio.Event()
    order: list[int] = []

    async def run(job: int) -> int:
        await gate.wait()
        order.append(job)
        return job * 10

    stats = OrchestratorStats()
    sessions: TranscodeSessions[int, int] = TranscodeSessions(
        run, max_sessions=1, queue_depth=4, idle_timeout=5, stats=stats
    )
    tasks = [asyncio.create_task(sessions.submit("a", 0))]
    await asyncio.sleep(0.01)  # the worker took job 0
    tasks += [asyncio.create_task(sessions.submit("a", i)) for i in range(1, 6)]
    await asyncio.sleep(0.01)  # 1-4 queued, 5 refused
    assert tasks[5].done()
    with pytest.raises(TranscodeError, match=r"^OrchestratorBusy$"):
        tasks[5].result()
    with pytest.raises(TranscodeError, match=r"^OrchestratorCapped$"):
        await sessions.submit("b", 0)
    assert not sessions.has_capacity("b") and sessions.has_capacity("a")
    gate.set()
    assert await asyncio.gather(*tasks[:5]) == [0, 10, 20, 30, 40]
    assert order == [0, 1, 2, 3, 4]
    assert sessions.end("a") and not sessions.end("a")
    assert sessions.has_capacity("b")
    await sessions.close()
    assert (stats.sessions_started, stats.sessions_ended) == (1, 1)
