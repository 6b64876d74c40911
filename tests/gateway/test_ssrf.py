"""Outgoing connections that users choose (RTMP outputs: multistream targets, ``?rtmpOutput=``)
never reach loopback or private addresses unless ``-webhookAllowPrivate``: every spelling of an
internal address, and a name that resolves to one, is refused before the connection; a real
listener on 127.0.0.1 sees no connection (``tests/e2e/test_rtmp_output.py``). Webhook URLs:
``destinations.check_url``."""

from __future__ import annotations

import socket

import pytest

from mediagw.destinations import check_url, destination_refusal
from mediagw.errors import InvalidInput

INTERNAL = [
    "rtmp://127.0.0.1/live/k", "rtmp://[::1]:1935/live/k", "rtmp://[::ffff:127.0.0.1]/live/k",
    "rtmp://[::ffff:10.1.2.3]/live/k", "rtmp://2130706433/live/k", "rtmp://0x7f000001/live/k",
    "rtmp://127.1/live/k", "rtmp://localhost/live/k", "rtmps://a.localhost/live/k",
    "rtmp://10.0.0.1/live/k", "rtmp://192.168.1.1/live/k", "rtmp://169.254.169.254/live/k",
    "rtmp://0.0.0.0/live/k", "rtmp://[fd00::1]/live/k", "rtmp://[fe80::1%25eth0]/live/k",
]  # fmt: skip


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_destinations_are_refused(url: str) -> None:
    refused = await destination_refusal(url)
    assert refused is not None and "not a public address" in refused, url
    assert "-webhookAllowPrivate" in refused and "/live/k" not in refused


async def test_a_name_resolving_inside_is_refused() -> None:
    name = socket.gethostname()  # this host's name: 127.0.0.1 here, a private IP in a container
    refused = await destination_refusal(f"rtmp://{name}/live/k")
    assert refused is not None and name in refused


async def test_public_destinations_pass() -> None:
    for url in ("rtmp://8.8.8.8/live/k", "rtmps://[2001:4860:4860::8888]:443/app/k"):
        assert await destination_refusal(url) is None


@pytest.mark.parametrize(
    "url", ["http://2130706433/h", "http://[::ffff:127.0.0.1]/h", "http://[::1]/h",
            "http://0x7f.1/h", "http://10.0.0.1/h", "http://x.localhost/h"],
)  # fmt: skip
def test_webhook_urls_refuse_the_same_spellings(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, allow_private=False)
