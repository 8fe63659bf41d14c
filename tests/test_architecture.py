"""Dependencies point one way: service → engine → models; models is pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def imports(package: str) -> dict[str, set[str]]:
    """Top-level modules imported by each file of ``package`` (a path under the root)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def under(names: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)}


WIRE_AND_IO = ("grpc", "google", "router.v1", "router.service", "router.scenario", "pandas")


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("models", ("grpc", "google", "ortools", "geopy", "pandas", "router", "yaml", "numpy")),
        ("router/engine", WIRE_AND_IO),
        ("router/rules", WIRE_AND_IO),
    ],
)
def test_layers_import_only_downwards(package, forbidden):
    """The pure layers import no I/O, wire or solver packages they must not know."""
    offending = {f: under(n, forbidden) for f, n in imports(package).items() if under(n, forbidden)}
    assert offending == {}


def test_only_the_adapter_imports_ortools():
    """OR-Tools is imported by one adapter module of the engine and nowhere else."""
    users = [f for pkg in ("models", "router", "benchmarks") for f, n in imports(pkg).items()
             if under(n, ("ortools",))]  # fmt: skip
    assert users == ["router/engine/cpsat.py"]


def test_router_intake_loads_no_solver():
    """``router intake`` (the CLI and the gateway app) imports neither OR-Tools nor scipy."""
    import subprocess
    import sys

    code = (
        "import sys, router.cli, router.intake.app; "
        "print(sorted(m for m in ('ortools', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


MAX_FUNCTION_LINES = 80


def test_no_function_of_the_product_is_longer_than_80_lines():
    """Functions of models/ and router/ (generated code aside) fit in 80 lines, docstring in."""
    long = []
    for package in ("models", "router"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "v1" in path.relative_to(ROOT).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    assert node.end_lineno is not None
                    size = node.end_lineno - node.lineno + 1
                    if size > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {size}")
    assert long == []
