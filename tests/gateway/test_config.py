from decimal import Decimal
from pathlib import Path

import pytest

from mediagw.cli import build_parser
from mediagw.config import Settings, load_settings, parse_flags
from mediagw.errors import ConfigError


def test_defaults_match_go_livepeer_ports() -> None:
    s = load_settings({}, env={})
    assert s.rtmp_addr == "127.0.0.1:1935"
    assert s.http_addr == "127.0.0.1:9935"
    assert s.segment_duration == 2.0
    assert s.auth_mode == "open"


def test_single_and_double_dash_flags() -> None:
    a = parse_flags(["-rtmpAddr", "0.0.0.0:1936", "--httpAddr", ":8080", "-maxSessions", "7"])
    s = load_settings(a, env={})
    assert s.rtmp_addr == "0.0.0.0:1936"
    assert s.http_addr == "0.0.0.0:8080"
    assert s.max_sessions == 7


def test_precedence_flag_over_env_over_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(
        'rtmp_addr = "127.0.0.1:1111"\nhttp_addr = "127.0.0.1:2222"\n'
        'maxSessions = 3\norch_addr = ["a:1", "b:2"]\n[stream_keys]\nsecret = "show"\n'
    )
    env = {"MEDIAGW_HTTP_ADDR": "127.0.0.1:3333", "MEDIAGW_MAX_SESSIONS": "4"}
    flags = parse_flags(["-config", str(cfg), "-maxSessions", "5"])
    s = load_settings(flags, env=env)
    assert s.rtmp_addr == "127.0.0.1:1111"  # TOML only
    assert s.http_addr == "127.0.0.1:3333"  # env beats TOML
    assert s.max_sessions == 5  # flag beats env
    assert s.orch_addr == ("a:1", "b:2")
    assert s.stream_keys == {"secret": "show"}
    assert s.auth_mode == "keys"


def test_env_names_follow_flags() -> None:
    env = {"MEDIAGW_AUTH_WEBHOOK_URL": "http://x/auth", "MEDIAGW_STREAM_KEYS": "k1=p1,k2=p2"}
    s = load_settings({}, env=env)
    assert s.auth_webhook_url == "http://x/auth"
    assert s.stream_keys == {"k1": "p1", "k2": "p2"}
    assert s.auth_mode == "webhook"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MEDIAGW_RTMP_ADDR": "nonsense"}, "rtmpAddr"),
        ({"MEDIAGW_MAX_SESSIONS": "-1"}, "maxSessions"),
        ({"MEDIAGW_SEGMENT_DURATION": "abc"}, "segmentDuration"),
        ({"MEDIAGW_STREAM_KEYS": "novalue"}, "KEY=PLAYBACK_ID"),
        ({"MEDIAGW_LOG_LEVEL": "loud"}, "one of"),
        ({"MEDIAGW_WEI_RATE": "lots"}, "weiRate.*decimal"),
        ({"MEDIAGW_WEI_RATE": "-1"}, "weiRate.*>= 0"),
        ({"MEDIAGW_REDIS_URL": "127.0.0.1:6379"}, "redisUrl.*redis://HOST:PORT/DB"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings({}, env=env)


def test_usage_settings() -> None:
    env = {"MEDIAGW_WEI_RATE": "2500.25", "MEDIAGW_USAGE_FLUSH_INTERVAL": "30s"}
    s = load_settings({}, env=env)
    assert s.wei_rate == Decimal("2500.25")  # exact, never a float
    assert s.usage_flush_interval == 30.0
    assert load_settings({}, env={}).usage_flush_interval == 10.0


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("rtmp_addr = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"config": str(bad)}, env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("rtmp_adr = '1:1'\n")
    with pytest.raises(ConfigError, match="unknown setting 'rtmp_adr'"):
        load_settings({"config": str(unknown)}, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings({"config": str(tmp_path / "missing.toml")}, env={})


def test_cli_parser_has_go_livepeer_flags() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "-orchAddr",
            "o1:8935,o2",
            "-transcodingOptions",
            "P144p30fps16x9",
            "-authWebhookUrl",
            "http://h/a",
        ]
    )
    s = load_settings({k: v for k, v in vars(args).items() if k != "command"}, env={})
    assert s.orch_addr == ("o1:8935", "o2")
    assert s.transcoding_options == "P144p30fps16x9"
    assert s.auth_webhook_url == "http://h/a"


def test_split_addr() -> None:
    assert Settings.split_addr("0.0.0.0:1935") == ("0.0.0.0", 1935)
    assert Settings.split_addr("[::1]:80") == ("::1", 80)


def test_boolean_flags_stand_alone_or_take_a_value() -> None:
    assert load_settings(parse_flags(["-orchSkipVerify"]), env={}).orch_skip_verify is True
    assert load_settings(parse_flags(["-httpIngest=false"]), env={}).http_ingest is False
    assert load_settings({}, env={"MEDIAGW_HTTP_INGEST": "yes"}).http_ingest is True


def test_verify_results_takes_all_off_or_a_share() -> None:
    def share(text: str) -> float:
        return load_settings(parse_flags(["-verifyResults", text]), env={}).verify_results

    assert load_settings({}, env={}).verify_results == 1.0  # every result, by default
    assert (share("all"), share("off"), share("0.25")) == (1.0, 0.0, 0.25)
    assert load_settings({}, env={"MEDIAGW_VERIFY_RESULTS": "0.5"}).verify_results == 0.5
    for bad in ("1.5", "-0.1", "some"):
        with pytest.raises(ConfigError, match="verifyResults"):
            share(bad)


def test_rtmp_read_hold_is_a_short_duration_or_off() -> None:
    def hold(text: str) -> float:
        return load_settings(parse_flags([f"-rtmpReadHold={text}"]), env={}).rtmp_read_hold

    assert load_settings({}, env={}).rtmp_read_hold == 0.1
    assert (hold("0"), hold("off"), hold("20ms"), hold("0.15")) == (0.0, 0.0, 0.02, 0.15)
    for bad in ("160ms", "1s", "-5ms", "soon"):
        with pytest.raises(ConfigError, match="rtmpReadHold"):
            hold(bad)
