"""The shape of builder, checked: no import cycles, libraries that do not reach back into planning or running,
target knowledge only in builder/targets, processes only through builder/proc.py. Reads source files only."""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "builder"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (imports for annotations only: not a dependency at run time)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(n) for n in ast.walk(node)}
    return inside


def _known(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> Iterator[str]:
    """builder modules ``module`` imports at run time, at module level or inside functions."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "builder" and (found := _known(alias.name)):
                    yield found
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "builder":
                continue
            for alias in node.names:
                found = _known(f"{base}.{alias.name}") or _known(base)
                if found and found != module:
                    yield found


GRAPH = {m: set(imports(m)) for m in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles():
    assert _cycles() == []


def test_graph_reads_relative_and_function_level_imports():
    assert "builder.plan" in GRAPH["builder.targets.android"]          # from .. import plan as planning
    assert "builder.models.verify" in GRAPH["builder.execute"]         # inside a function


@pytest.mark.parametrize("library", ["builder.package", "builder.models"])
def test_package_and_models_are_libraries(library):
    """They take install trees, files and plain data; they never plan, run plans, resolve settings or print."""
    for module in (m for m in MODULES if m == library or m.startswith(library + ".")):
        reached = GRAPH[module] & {"builder.plan", "builder.execute", "builder.steps", "builder.config",
                                   "builder.cli", "builder.targets"}
        assert not reached, f"{module} imports {sorted(reached)}"


def _lines(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in MODULES.values()
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if rx.search(line)]


def test_no_target_comparisons_outside_targets():
    """What differs between android, ios and host lives in builder/targets (grep -rn 'target ==' builder/)."""
    found = [hit for hit in _lines(r"target\s*[!=]=") if not hit.startswith("builder/targets/")]
    assert found == []


def test_only_proc_starts_processes():
    found = [hit for hit in _lines(r"^\s*(import subprocess|from subprocess )|os\.(system|popen|exec|spawn|fork)")
             if not hit.startswith("builder/proc.py")]
    assert found == []


def test_nothing_below_the_cli_reads_the_environment():
    """The CLI builds the machine (cli/app.py machine()) and passes it down; proc passes it on to children."""
    found = [hit for hit in _lines(r"os\.environ|os\.getenv|getenv\(")
             if not hit.startswith(("builder/cli/", "builder/proc.py"))
             and "``os.environ``" not in hit]
    assert found == []
