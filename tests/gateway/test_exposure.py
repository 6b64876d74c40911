"""Which ingest mode a gateway's settings put in force (``mediagw.exposure``): keys required only
where it is exposed and can pay, unless ``-openIngest``; ``make_authorizer`` follows it."""

from __future__ import annotations

import pytest

from mediagw.config import Settings, load_settings, parse_flags
from mediagw.exposure import ingest_policy, is_loopback
from mediagw.gateway import make_authorizer
from mediagw.platform.stream_auth import OpenAuth

SIGNER = {"remote_signer_url": "http://signer.example:8935"}
KEY = {"eth_keystore_path": "/keys/k.json"}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("", False),
     ("::", False), ("10.0.0.5", False), ("gw.example", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("settings", "required"),
    [
        ({}, False),  # make run: loopback, off-chain
        ({"rtmp_addr": "0.0.0.0:1935"}, False),  # exposed but pays nothing
        ({**SIGNER}, False),  # pays, loopback only
        ({**KEY, "http_addr": "127.0.0.1:9935", "rtmp_addr": "[::1]:1935"}, False),
        ({**SIGNER, "rtmp_addr": "0.0.0.0:1935"}, True),
        ({**KEY, "http_addr": ":9935"}, True),  # WHIP / push / /start on every interface
        ({**KEY, "rtmp_addr": "0.0.0.0:1935", "open_ingest": True}, False),
        ({"require_stream_key": True}, True),
    ],
)
def test_keys_required_only_when_exposed_and_paying(
    settings: dict[str, object], required: bool
) -> None:
    s = Settings(**settings)  # type: ignore[arg-type]
    policy = ingest_policy(s)
    assert policy.keys_required is required, policy.message
    authorizer = make_authorizer(s)
    assert (authorizer is None) is required and (required or isinstance(authorizer, OpenAuth))


def test_the_start_up_line_says_why() -> None:
    exposed = Settings(rtmp_addr="0.0.0.0:1935", **SIGNER)  # type: ignore[arg-type]
    assert ingest_policy(exposed).message == (
        "ingest: keys required (exposed on 0.0.0.0:1935 and can pay orchestrators with a remote"
        " signer); -openIngest=true to allow any publisher"
    )
    opened = load_settings(parse_flags(["-openIngest", "-rtmpAddr=0.0.0.0:1935",
                                        "-ethKeystorePath=/k.json"]), env={})  # fmt: skip
    policy = ingest_policy(opened)
    assert policy.warn and policy.message.startswith("ingest: open (-openIngest)")
    assert ingest_policy(Settings()).message == "ingest: open (listening on loopback only)"
    keys = Settings(rtmp_addr="0.0.0.0:1", stream_keys={"k": "p"})
    assert ingest_policy(keys).message == "ingest: keys (off-chain: this gateway pays nothing)"
