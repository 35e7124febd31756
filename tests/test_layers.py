"""The house's floors: assets -> dexenvs -> agents -> generators -> benchmarks. Every module imports, no module imports a
floor above its own (at module level or inside a function), and no modules import each other in a circle."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ("assets", "dexenvs", "agents", "generators", "benchmarks")


def modules() -> dict[str, Path]:
    out = {}
    for floor in FLOORS:
        for p in sorted((ROOT / floor).rglob("*.py")):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in it (a `from package import submodule` counts the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in known}
    return out - {name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(p, m, set(mods)) for m, p in mods.items()}


def floor(module: str) -> int:
    return FLOORS.index(module.split(".")[0])


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_every_module_imports():
    for m in modules():
        importlib.import_module(m)


def test_imports_run_down_the_floors_only():
    upward = [f"{m} -> {t}" for m, ts in graph().items() for t in sorted(ts) if floor(t) > floor(m)]
    assert not upward, "imports that run up a floor:\n" + "\n".join(upward)
    assert not [m for m, ts in graph().items() if m.startswith("agents") and any(t.startswith("generators") for t in ts)]


def test_no_import_cycles():
    assert not cycles(graph())


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The same checks on a made-up graph with a circle and an upward import find both."""
    g = {"agents.a": {"agents.b"}, "agents.b": {"agents.a", "generators.c"}, "generators.c": set()}
    assert cycles(g) == [["agents.a", "agents.b"]]
    assert [t for m, ts in g.items() for t in ts if floor(t) > floor(m)] == ["generators.c"]
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from generators.flywheel import run_flywheel\n")  # hidden inside a function
    assert imports(p, "agents.m", {"generators.flywheel", "agents.m"}) == {"generators.flywheel"}


@pytest.mark.parametrize("floor_name", FLOORS)
def test_each_floor_is_a_package(floor_name):
    assert (ROOT / floor_name / "__init__.py").exists()
