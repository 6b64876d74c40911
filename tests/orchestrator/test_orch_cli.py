"""``run_orchestrator``: go-livepeer-like flags, and a real process answering until SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from mediagw.errors import ConfigError
from mediagw.eth.account import account_api
from mediagw.orchestrator.main import build_config, parse_args


def test_flags() -> None:
    cfg = build_config(
        parse_args(
            [
                "-httpAddr", "0.0.0.0:9000", "-serviceAddr", "orch.example:443",
                "--pricePerUnit", "1200", "-pixelsPerUnit", "3", "-ticketEV", "1000",
                "-maxSessions", "4", "-priced", "-failSegments", "-faultAfter", "5",
                "-priceFactor", "2.5", "-delayHeaders", "1.5",
            ]
        )
    )  # fmt: skip
    assert (cfg.host, cfg.port) == ("0.0.0.0", 9000)
    assert cfg.service_uri == "https://orch.example:443"
    assert (cfg.price_per_unit, cfg.pixels_per_unit, cfg.ticket_ev) == (1200, 3, 1000)
    assert cfg.max_sessions == 4 and cfg.priced and cfg.private_key is None
    f = cfg.faults
    assert (f.fail_segments, f.after_segments, f.price_factor, f.delay_headers) == (
        True,
        5,
        2.5,
        1.5,
    )


def test_live_price_flags() -> None:
    args = ["-priced", "-pricePerUnit", "1200", "-liveModels", "noop,tint"]
    cfg = build_config(parse_args([*args, "-livePricePerUnit", "10,tint=25"]))
    assert (cfg.live_price_per_unit, cfg.live_model_prices) == (10, {"tint": 25})
    assert (cfg.live_price("noop"), cfg.live_price("tint")) == (10, 25)
    cfg = build_config(parse_args([*args, "-livePricePerUnit", "tint=25"]))
    assert (cfg.live_price("noop"), cfg.live_price("tint")) == (1200, 25)  # -pricePerUnit
    assert build_config(parse_args(args)).live_price("noop") == 1200
    for bad, why in [
        ("10,20", "more than one"),
        ("invert=3", "not a live model"),
        ("tint=1,tint=2", "two prices"),
        ("tint=-1", "expected PRICE"),
        ("=5", "expected PRICE"),
        ("1.5", "expected PRICE"),
    ]:
        with pytest.raises(ConfigError, match=why):
            build_config(parse_args([*args, "-livePricePerUnit", bad]))


def test_plaintext_and_defaults() -> None:
    cfg = build_config(parse_args(["-httpAddr", "http://127.0.0.1:0"]))
    assert cfg.plaintext and cfg.service_uri is None and cfg.port == 0
    cfg = build_config(parse_args([]))
    assert (cfg.host, cfg.port, cfg.service_uri) == ("127.0.0.1", 8935, "https://127.0.0.1:8935")
    assert not cfg.priced
    with pytest.raises(ConfigError):
        build_config(parse_args(["-httpAddr", "nope"]))
    with pytest.raises(ConfigError):
        parse_args(["-noSuchFlag"])


def test_keystore(tmp_path: Path) -> None:
    Account = account_api()

    key = bytes(range(1, 33))
    doc = Account.encrypt(key, "pw", kdf="pbkdf2", iterations=2)
    (tmp_path / "keystore").mkdir()
    (tmp_path / "keystore" / "UTC--key").write_text(__import__("json").dumps(doc))
    (tmp_path / "pass.txt").write_text("pw\n")
    cfg = build_config(
        parse_args(
            [
                "-ethKeystorePath",
                str(tmp_path / "keystore"),
                "-ethPassword",
                str(tmp_path / "pass.txt"),
            ]
        )
    )
    assert cfg.private_key == key and cfg.priced
    with pytest.raises(ConfigError):
        build_config(parse_args(["-ethKeystorePath", str(tmp_path / "keystore")]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_process_runs_until_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    code = (
        "import asyncio, sys; from mediagw.orchestrator import run_orchestrator; "
        "sys.exit(asyncio.run(run_orchestrator(sys.argv[1:])))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "-httpAddr", f"127.0.0.1:{port}", "-priced",
        "-pricePerUnit", "5", "-datadir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"https://127.0.0.1:{port}" in line and "address 0x" in line
        assert (tmp_path / "cert.pem").exists()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"https://127.0.0.1:{port}/stats", ssl=False) as resp,
        ):
            stats = await resp.json()
        assert stats["priced"] is True and stats["segments_received"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
