"""The layer table of ARCHITECTURE.md, held by one test: which package may import which.

Every import counts (module level, inside functions, under ``TYPE_CHECKING``). Below the table:
the two libraries import nothing of the gateway nor each other; the sans-IO cores import neither
``asyncio`` nor ``time`` (time is an argument); the code that must take its time from the one
clock (``mediagw.clock``) does not import ``time``; the platform layer has no aiohttp and no
media inside; nothing imports in a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import mediagw

REPO = Path(mediagw.__file__).parent.parent
LIBRARIES = ("mediagw", "segmenter", "webrtc")

# the ground floor: small modules every layer may use (each may use those before it)
GROUND = {
    "errors": set(),
    "clock": set(),
    "request": set(),
    "usage": set(),
    "metrics": set(),  # the Metrics seam (its Prometheus side is in api)
    "httpbody": set(),
    "signals": set(),
    "threads": set(),  # thread pools started whole
    "config_values": set(),  # the settings' value parsers: text in, typed value out
    "config": {"config_values", "errors"},
    "log": {"httpbody"},
    "webhook": {"errors", "httpbody"},  # JSON POSTs to operator endpoints
    "eth": {"errors"},  # keccak, signatures, ABI, the Signer seam
    "destinations": {"errors"},  # which outbound URLs may be called (SSRF checks)
    "exposure": {"config", "errors"},  # secure by default: exposed addresses, ingest mode
}
_BASE = {"errors", "clock"}
PACKAGES = set(GROUND) | {"segmenter", "webrtc"} | {
    "livepeer", "payments", "pool", "stream", "publish", "platform", "ingest", "pipelines",
    "api", "stack", "gateway_platform", "gateway_http", "gateway", "orchestrator",
    "signer_service", "bench", "serve", "workers", "cli",
}  # fmt: skip

# package of mediagw -> the packages of mediagw (and the two libraries) it may import
RULES: dict[str, set[str]] = {
    **GROUND,
    "livepeer": _BASE | {"eth", "httpbody"},  # the wire protocol
    "payments": _BASE | {"livepeer", "eth", "httpbody"},  # livepeer: wire types only
    "pool": _BASE | {"livepeer", "httpbody", "webhook"},
    "stream": _BASE | {"segmenter", "request"},
    "publish": _BASE | {"segmenter", "stream", "destinations"},
    # never media or wire code
    "platform": _BASE | {"request", "usage", "webhook", "metrics", "destinations"},
    "ingest": _BASE | {"stream", "platform", "segmenter", "webrtc", "request"},
    "pipelines": _BASE
    | {"pool", "payments", "livepeer", "eth", "stream", "publish", "usage", "request"}
    | {"segmenter", "webrtc", "httpbody", "webhook", "metrics"},
    # read-only views of pipelines; HTTP push is go-livepeer's transcoding API: it cuts
    # nothing but wraps the pushed bytes in a Segment and resolves go-livepeer profiles
    "api": _BASE
    | {"platform", "stream", "pipelines", "publish", "request", "usage", "httpbody"}
    | {"livepeer", "segmenter", "metrics", "exposure"},
    # the composition: the transcoding stack, then the whole gateway
    "stack": _BASE
    | {"config", "eth", "livepeer", "payments", "pool", "pipelines", "usage"}
    | {"metrics"},
    # the gateway's platform half (gateway_platform.py): no ingest, no RTMP/WebRTC
    "gateway_platform": _BASE
    | {"api", "config", "platform", "pipelines", "publish", "stack", "stream", "usage"},
    # the gateway's front (gateway_http.py): the HTTP app, WebRTC, the routes of the parts
    "gateway_http": _BASE
    | {"api", "config", "exposure", "ingest", "log", "pipelines", "publish", "webrtc"}
    | {"platform", "stream", "usage"},  # types of the parts it routes to
    "gateway": PACKAGES - {"orchestrator", "signer_service", "bench", "serve", "workers", "cli"},
    # the services beside the gateway; the gateway never imports them
    "orchestrator": _BASE | {"livepeer", "payments", "eth", "segmenter", "signals", "httpbody"},
    "signer_service": _BASE
    | {"payments", "livepeer", "eth", "pool", "httpbody", "signals", "webhook"},
    "bench": PACKAGES - {"cli"},
    # one gateway process (and its embedded orchestrator); -workers N of them
    "serve": PACKAGES - {"signer_service", "bench", "workers", "cli"},
    "workers": _BASE | {"config", "log", "platform", "serve"},
    "cli": PACKAGES,
    # the two libraries: nothing of the gateway, nor each other
    "segmenter": set(),
    "webrtc": set(),
}

# bytes in, events out: time is an argument of their calls
SANS_IO = [
    "mediagw/ingest/rtmp/statemachine.py",
    "mediagw/ingest/rtmp/chunk.py",
    "mediagw/ingest/rtmp/handshake.py",
    "mediagw/ingest/rtmp/amf0.py",
    "mediagw/ingest/rtmp/messages.py",
    "mediagw/ingest/rtmp/control.py",
    "mediagw/ingest/rtmp/commands.py",
    "mediagw/ingest/rtmp/events.py",
    "mediagw/ingest/rtmp/aggregate.py",
    "mediagw/ingest/rtmp/timestamps.py",
    "mediagw/orchestrator/trickle/rules.py",
    "mediagw/livepeer/trickle/positions.py",
    "mediagw/payments/tickets.py",
    "mediagw/payments/fees.py",
    "mediagw/payments/params.py",
    "mediagw/payments/balances.py",
    "mediagw/publish/playlist.py",
    "mediagw/publish/llplaylist.py",
    "segmenter/fmp4.py",
    "mediagw/platform/limits.py",
]
# they read the time from the clock they are given, never from ``time``
CLOCKED = [
    "mediagw/pipelines",
    "mediagw/stream",
    "mediagw/livepeer/trickle/subscriber.py",
    "mediagw/platform/access.py",
    "mediagw/platform/ttl_cache.py",
]


def _files(root: str) -> Iterator[Path]:
    path = REPO / root
    if path.is_file():
        yield path
    else:
        yield from (p for p in sorted(path.rglob("*.py")) if "_pb2" not in p.name)


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved; ``from P
    import name`` is module ``P.name`` when there is one, else ``P``)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in modules else base)
    return out


FILES = [p for lib in LIBRARIES for p in _files(lib)]
MODULES = {_module(p) for p in FILES}
IMPORTS = {path: _imports(path, MODULES) for path in FILES}


def _layer(module: str) -> str:
    """``mediagw.pipelines.live_ai.x`` -> ``pipelines``; ``segmenter.x`` -> ``segmenter``."""
    parts = module.split(".")
    if parts[0] != "mediagw":
        return parts[0]
    return parts[1] if len(parts) > 1 else "mediagw"


def _internal(path: Path) -> set[str]:
    """The layers of the gateway and the libraries ``path`` imports, its own excepted."""
    own = _layer(_module(path))
    layers = {_layer(m) for m in IMPORTS[path] if m.split(".")[0] in LIBRARIES}
    return {layer for layer in layers if layer not in (own, "mediagw")}


def test_every_package_has_a_rule() -> None:
    layers = {_layer(_module(p)) for p in FILES} - {"mediagw"}
    assert layers == set(RULES) == PACKAGES, sorted(layers ^ set(RULES))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down(path: Path) -> None:
    module = _module(path)
    allowed = RULES.get(_layer(module), set())  # the root package ``mediagw``: nothing
    wrong = _internal(path) - allowed
    assert not wrong, f"{module} imports {sorted(wrong)} (allowed: {sorted(allowed)})"


def test_the_gateway_never_imports_the_services_beside_it() -> None:
    for path in FILES:
        module = _module(path)
        if _layer(module) in ("orchestrator", "signer_service", "bench", "serve", "workers", "cli"):
            continue
        reached = {_layer(m) for m in IMPORTS[path] if m.startswith("mediagw.")}
        assert not reached & {"orchestrator", "signer_service"}, module


@pytest.mark.parametrize("name", SANS_IO)
def test_sans_io_cores_import_neither_asyncio_nor_time(name: str) -> None:
    roots = {m.split(".")[0] for m in IMPORTS[REPO / name]}
    assert not roots & {"asyncio", "time"}, f"{name} imports {sorted(roots & {'asyncio', 'time'})}"


@pytest.mark.parametrize("root", CLOCKED)
def test_clocked_code_takes_the_time_it_is_given(root: str) -> None:
    for path in _files(root):
        assert "time" not in {m.split(".")[0] for m in IMPORTS[path]}, f"{path} imports time"


def test_the_platform_layer_has_no_http_and_no_media_inside() -> None:
    for path in _files("mediagw/platform"):
        roots = {m.split(".")[0] for m in IMPORTS[path]}
        assert not roots & {"aiohttp", "av", "aiortc"}, path


def test_no_import_cycles() -> None:
    modules = {_module(p): p for p in FILES}
    graph = {
        name: {m for m in IMPORTS[path] if m in modules and m != name}
        for name, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []
