"""TOFU pin store rules (§2.2): first pin, one re-pin, refusal inside the window, persistence."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mediagw.clock import ManualClock
from mediagw.errors import ConfigError
from mediagw.livepeer.errors import CertificatePinError, OrchestratorUnreachable
from mediagw.livepeer.tls import PinStore, host_port_key, pin_error_from

A, B, C = (bytes([i]) * 32 for i in (1, 2, 3))
KEY = "10.0.0.1:8935"


def test_first_contact_pins_then_matches() -> None:
    pins = PinStore()
    assert pins.check(KEY, A) is True
    assert pins.fingerprint(KEY) == A
    assert pins.check(KEY, A) is False


def test_repin_once_then_refuse_within_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    pins = PinStore(clock=clock, repin_window_s=600)
    pins.check(KEY, A)
    with caplog.at_level(logging.WARNING, logger="mediagw.livepeer.tls"):
        assert pins.check(KEY, B) is True  # O restarted: accepted once, with a warning
    assert any("re-pinned" in r.getMessage() for r in caplog.records)
    assert pins.fingerprint(KEY) == B
    clock.now += 599
    with pytest.raises(CertificatePinError, match="changed again") as info:
        pins.check(KEY, C)
    assert isinstance(info.value, OrchestratorUnreachable)
    assert "https://10.0.0.1:8935" in str(info.value)
    assert pins.fingerprint(KEY) == B  # the refused certificate is not learned
    assert pins.check(KEY, B) is False  # the re-pinned certificate still works
    clock.now += 2  # window over: one more re-pin is allowed
    assert pins.check(KEY, C) is True
    with pytest.raises(CertificatePinError):
        pins.check(KEY, A)


def test_pins_are_per_host_port() -> None:
    pins = PinStore()
    pins.check("h:1", A)
    pins.check("h:2", B)
    pins.check("h:1", C)  # re-pin of h:1 does not use up h:2's
    pins.check("h:2", C)
    assert host_port_key("Example.COM", 8935) == "example.com:8935"
    assert host_port_key("::1", 8935) == "[::1]:8935"


def test_insecure_skips_pinning() -> None:
    pins = PinStore(insecure=True)
    for fp in (A, B, C, A):
        assert pins.check(KEY, fp) is False
    assert pins.fingerprint(KEY) is None


def test_persistence_sync(tmp_path: Path) -> None:
    path = tmp_path / "pins" / "pins.json"
    pins = PinStore(path)
    pins.check(KEY, A)  # no running loop: written at once
    data = json.loads(path.read_text())
    assert data == {"version": 1, "pins": {KEY: A.hex()}}
    again = PinStore(path)
    assert again.fingerprint(KEY) == A
    assert again.check(KEY, A) is False


async def test_persistence_off_loop(tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    pins = PinStore(path)
    pins.check("a:1", A)
    pins.check("b:2", B)
    await pins.flush()
    assert json.loads(path.read_text())["pins"] == {"a:1": A.hex(), "b:2": B.hex()}


@pytest.mark.parametrize(
    "content", ["{", '{"pins": []}', '{"pins": {"a:1": "zz"}}', '{"pins": {"a:1": "00"}}', "[]"]
)
def test_corrupt_pin_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "pins.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="pin file"):
        PinStore(path)


def test_pin_error_from_finds_wrapped_errors() -> None:
    err = CertificatePinError("x", "https://h:1")
    try:
        try:
            raise err
        except CertificatePinError as inner:
            raise OSError("wrapped") from inner
    except OSError as outer:
        assert pin_error_from(outer) is err
    assert pin_error_from(ValueError("nothing")) is None


def test_adopt_a_pin_made_on_another_node() -> None:
    clock = ManualClock()
    pins = PinStore(clock=clock, repin_window_s=600)
    heard: list[tuple[str, bytes, bool]] = []
    pins.on_pin = lambda key, fp, repinned: heard.append((key, fp, repinned))
    pins.check(KEY, A)
    assert heard == [(KEY, A, False)]
    pins.adopt(KEY, B, repinned_ago=100)  # another node re-pinned 100 s ago
    assert pins.fingerprint(KEY) == B and len(heard) == 1  # adopted pins are not told back
    clock.now += 499
    with pytest.raises(CertificatePinError, match="changed again"):
        pins.check(KEY, C)  # its window holds here too
    pins.adopt("h:2", A)  # a first pin elsewhere: this node's first contact must match it
    assert pins.check("h:2", A) is False
    assert pins.check("h:2", B) is True  # the one re-pin, as for a pin made here
    assert heard[-1] == ("h:2", B, True)
