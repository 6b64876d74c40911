"""compose.yaml (two gateway nodes, PostgreSQL, Redis, HAProxy) is a deployment that can run:
every flag and MEDIAGW_* variable a node is given exists and its value parses; both nodes share
one store and one Redis, with their own names; the load balancer's ports and servers are the
nodes' ports; the image is the repository's Dockerfile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mediagw.config import OPTIONS, Option, load_settings

REPO = Path(__file__).resolve().parents[1]
_BY_FLAG = {o.flag: o for o in OPTIONS}
_BY_ENV = {o.env: o for o in OPTIONS}
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def _interpolate(text: str) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error}: a default as given, else a sample."""
    return _VAR.sub(lambda m: m.group(3) if m.group(2) == "-" else f"sample{m.group(1)}", text)


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def _flags(command: list[str]) -> dict[str, tuple[Option, str]]:
    """``-flag=value`` / ``-flag value`` / bare boolean ``-flag`` of a ``mediagw run`` command."""
    assert command[0] == "run", command
    out: dict[str, tuple[Option, str]] = {}
    args = [_interpolate(str(a)) for a in command[1:]]
    i = 0
    while i < len(args):
        name, sep, value = args[i].lstrip("-").partition("=")
        assert args[i].startswith("-") and name in _BY_FLAG, f"unknown gateway flag {args[i]!r}"
        opt = _BY_FLAG[name]
        if not sep:
            if i + 1 < len(args) and not args[i + 1].startswith("-"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        out[opt.name] = (opt, value)
        i += 1
    return out


def _gateways(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in doc["services"].items() if svc.get("command", [""])[0] == "run"
    }


def _settings(svc: dict[str, Any]) -> Any:
    """The node's Settings, built by the gateway's own loader from its flags and environment."""
    flags = {name: value for name, (_, value) in _flags(svc["command"]).items()}
    env = {k: _interpolate(str(v)) for k, v in (svc.get("environment") or {}).items()}
    for name in env:
        assert name in _BY_ENV, f"{name} is not a gateway setting (see mediagw run --help)"
    return load_settings(flags, env=env)  # a bad value raises ConfigError naming it


def test_compose_runs_two_gateway_nodes_on_one_store_and_one_redis() -> None:
    doc = _compose()
    nodes = _gateways(doc)
    assert len(nodes) == 2, list(nodes)
    for svc in nodes.values():
        assert svc["build"] == "." and (REPO / "Dockerfile").is_file()
        assert {"postgres", "redis"} <= set(svc["depends_on"])
    settings = {name: _settings(svc) for name, svc in nodes.items()}
    a, b = settings.values()
    assert a.store_url == b.store_url and a.store_url.startswith("postgresql://")
    assert a.redis_url == b.redis_url and a.redis_url.startswith("redis://")
    assert a.node_id != b.node_id and a.node_url != b.node_url
    for name, s in settings.items():
        assert s.node_id == name  # its name on the compose network, where the others reach it
        host, port = s.split_addr(s.http_addr)
        assert s.node_url == f"http://{name}:{port}" and host == "0.0.0.0"
        assert s.split_addr(s.rtmp_addr)[0] == "0.0.0.0"
    assert "POSTGRES_PASSWORD" not in (REPO / "Dockerfile").read_text()  # secrets stay out
    postgres = doc["services"]["postgres"]["environment"]
    assert f"{postgres['POSTGRES_USER']}:" in next(iter(settings.values())).store_url
    assert a.store_url.endswith(f"@postgres:5432/{postgres['POSTGRES_DB']}")
    assert a.redis_url.startswith("redis://redis:")


def _haproxy() -> dict[str, list[str]]:
    """Section header -> its lines, of deploy/haproxy/haproxy.cfg."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in (REPO / "deploy/haproxy/haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not raw[0].isspace():
            current = sections.setdefault(line, [])
        else:
            current.append(line.strip())
    return sections


def test_the_load_balancer_sends_rtmp_and_http_to_both_nodes_with_health_checks() -> None:
    doc = _compose()
    lb = doc["services"]["lb"]
    mount = next(v for v in lb["volumes"] if "haproxy.cfg" in v)
    assert mount.split(":")[0] == "./deploy/haproxy/haproxy.cfg"
    published = {int(p.split(":")[1]) for p in lb["ports"]}
    settings = {name: _settings(svc) for name, svc in _gateways(doc).items()}
    cfg = _haproxy()
    for kind, attr in (("rtmp", "rtmp_addr"), ("http", "http_addr")):
        frontend = cfg[f"frontend {kind}"]
        bind = next(line for line in frontend if line.startswith("bind "))
        assert int(bind.split(":")[-1]) in published, (kind, bind)
        backend_name = next(line.split()[1] for line in frontend if line.startswith("default_"))
        backend = cfg[f"backend {backend_name}"]
        assert "option httpchk GET /healthz" in backend
        assert ("mode http" if kind == "http" else "mode tcp") in backend
        lines = [line.split() for line in backend if line.startswith("server ")]
        servers = {words[1]: words[2:] for words in lines}
        assert set(servers) == set(settings), (kind, servers)
        for name, s in settings.items():
            port = s.split_addr(getattr(s, attr))[1]
            assert servers[name][0] == f"{name}:{port}"
            check_port = servers[name][2] if servers[name][1:2] == ["port"] else str(port)
            assert int(check_port) == s.split_addr(s.http_addr)[1]  # /healthz is on HTTP
    assert "check" in next(line for line in cfg["defaults"] if line.startswith("default-server"))
