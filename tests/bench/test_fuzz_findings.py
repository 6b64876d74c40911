"""What ``mediagw bench fuzz`` found, each with its reproducer: the parser now refuses the input
with an error of mediagw's tree (or skips the bad entry) instead of an exception nobody catches.

JSON nested ~3,000 levels deep made ``json.loads`` raise RecursionError, which is no ValueError:
it escaped parsers that caught only ValueError (an API request answered 500 with a traceback; a
remote signer's, an orchestrator's or a webhook's answer killed the task reading it).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from mediagw.api.studio.base import Call, _Refused, parse_body
from mediagw.api.studio.models import StreamCreate
from mediagw.api.studio.streams import _filters
from mediagw.errors import InvalidInput
from mediagw.livepeer.errors import ProfileError
from mediagw.livepeer.profiles import parse_profiles_json
from mediagw.livepeer.rpc import normalize_orch_addr
from mediagw.payments.remote import RemoteSigner, SignerUnavailable, discovered_candidates
from mediagw.pipelines.live_ai.errors import StartRejected
from mediagw.pipelines.live_ai.events import EventError, parse_event
from mediagw.pipelines.live_ai.start import parse_start_answer
from mediagw.pool.sources import WebhookError, parse_webhook_body
from mediagw.signer_service.authhook import parse_decision
from mediagw.signer_service.errors import RequestFailed

DEEP = b"[" * 3000  # the fuzzer's reproducer, shortened to its essence
DEEP_OBJECT = b'{"a":' * 3000


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT])
def test_live_ai_event_nested_too_deeply(body: bytes) -> None:
    with pytest.raises(EventError, match="nested too deeply"):
        parse_event(body)


def test_remote_signer_answer_nested_too_deeply() -> None:
    with pytest.raises(SignerUnavailable, match="not JSON"):
        RemoteSigner._json(DEEP, "/generate-live-payment")
    err = RemoteSigner._error(500, {}, DEEP)  # an error answer: its text is the message
    assert err.status == 500 and str(err).startswith("remote signer: 500 [[[")


def test_api_body_nested_too_deeply() -> None:
    with pytest.raises(_Refused) as info:
        parse_body(DEEP, "application/json", StreamCreate)
    assert info.value.response.status == 400
    assert b"nested too deeply" in cast(bytes, info.value.response.body)


def test_api_filters_nested_too_deeply() -> None:
    call = cast(Call, SimpleNamespace(query={"filters": DEEP.decode()}))
    with pytest.raises(InvalidInput) as info:
        _filters(call)
    assert info.value.field == "filters"


def test_live_ai_start_answer_nested_too_deeply() -> None:
    with pytest.raises(StartRejected, match="nested too deeply"):
        parse_start_answer(DEEP, "https://127.0.0.1:8935")


def test_discovery_webhook_nested_too_deeply() -> None:
    with pytest.raises(WebhookError, match="nested too deeply"):
        parse_webhook_body(DEEP)


def test_signer_auth_hook_answer_nested_too_deeply() -> None:
    with pytest.raises(RequestFailed) as info:
        parse_decision(DEEP)
    assert info.value.status == 500


def test_profiles_json_nested_too_deeply() -> None:
    with pytest.raises(ProfileError, match="nested too deeply"):
        parse_profiles_json(DEEP)


# --- one malformed address took the whole list down -------------------------------------------

# the fuzzer's reproducer: '[{"address": "https://[127.0.0.1:8935", "score": 0.5}, ...]'
BAD_IPV6 = b'[{"address": "https://[127.0.0.1:8935"}, {"address": "https://127.0.0.1:8936"}]'


@pytest.mark.parametrize("normalize", [None, normalize_orch_addr])
def test_discovery_webhook_skips_an_unparsable_address(normalize: Any) -> None:
    """urlsplit raised ValueError ("Invalid IPv6 URL") out of the parser, and with the signer's
    normalization ConfigError refused the whole answer: the good entries were lost."""
    found = parse_webhook_body(BAD_IPV6, normalize)
    assert [c.url for c in found] == ["https://127.0.0.1:8936"]


def test_signer_discovery_skips_an_unparsable_address() -> None:
    doc = [{"address": "https://[::1"}, {"address": "https://127.0.0.1:8935", "score": 1}]
    assert [c.url for c in discovered_candidates(doc)] == ["https://127.0.0.1:8935"]


# --- numbers: more than 4,300 digits, or past a float's range ----------------------------------

HUGE = "5" * 5000  # json.loads raises ValueError (no JSONDecodeError) past 4,300 digits


def test_api_body_with_a_huge_number() -> None:
    with pytest.raises(_Refused) as info:
        parse_body(f'{{"name": "x", "record": {HUGE}}}'.encode(), "application/json", StreamCreate)
    assert info.value.response.status == 400


def test_api_filters_with_a_huge_number() -> None:
    call = cast(Call, SimpleNamespace(query={"filters": f'[{{"id": "name", "value": {HUGE}}}]'}))
    with pytest.raises(InvalidInput):
        _filters(call)


def test_discovery_webhook_with_a_huge_number() -> None:
    with pytest.raises(WebhookError, match="not JSON"):
        parse_webhook_body(f'[{{"address": {HUGE}}}]'.encode())


def test_discovery_webhook_skips_a_score_past_a_float() -> None:
    """math.isfinite raised OverflowError on the score 10**400 (the fuzzer's: 555...5)."""
    body = (
        f'[{{"address": "https://127.0.0.1:8935", "score": {"5" * 400}}},'
        ' {"address": "https://127.0.0.1:8936", "score": 0.5}]'
    ).encode()
    assert [c.url for c in parse_webhook_body(body)] == ["https://127.0.0.1:8936"]


def test_signer_discovery_score_past_a_float_counts_as_none() -> None:
    doc = [{"address": "https://127.0.0.1:8935", "score": 10**400}]
    assert [(c.url, c.score) for c in discovered_candidates(doc)] == [("https://127.0.0.1:8935", 0)]
