"""Imports point down (ARCHITECTURE.md "Layers"): the rules of the wire, payment and pool layers,
and no import cycle between mediagw modules. Every import counts: module level, inside functions
and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

import mediagw

ROOT = Path(mediagw.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["mediagw", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The mediagw modules (or packages) ``name`` imports."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m.split(".")[0] == "mediagw"}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _imported_by(prefix: str) -> set[str]:
    return {
        target
        for name, targets in GRAPH.items()
        if name == prefix or name.startswith(prefix + ".")
        for target in targets
    }


def _under(targets: set[str], package: str) -> set[str]:
    return {t for t in targets if t == package or t.startswith(package + ".")}


def test_the_ethereum_helpers_are_the_ground_floor() -> None:
    targets = _imported_by("mediagw.eth")
    assert targets - _under(targets, "mediagw.eth") <= {"mediagw.errors"}


def test_the_wire_payment_and_pool_layers_point_down() -> None:
    forbidden = {
        "mediagw.livepeer": ["payments", "pool", "pipelines", "orchestrator", "signer"],
        "mediagw.payments": ["pool", "pipelines", "orchestrator", "signer"],
        "mediagw.pool": ["payments", "pipelines", "orchestrator", "signer"],
    }
    for package, below in forbidden.items():
        targets = _imported_by(package)
        for other in below:
            assert not _under(targets, f"mediagw.{other}"), f"{package} imports {other}"


def test_the_gateway_never_imports_the_reference_orchestrator() -> None:
    """Only the CLI and the benchmark may start one (the trickle server is its own too)."""
    for name, targets in GRAPH.items():
        if name.partition(".")[2].split(".")[0] in ("orchestrator", "cli", "bench"):
            continue
        assert not _under(targets, "mediagw.orchestrator"), f"{name} imports the orchestrator"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in GRAPH or target == node:
                continue
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

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []
