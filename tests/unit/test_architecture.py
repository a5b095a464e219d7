"""The dependency rules of the packages (see README, "Architecture"), checked on the source.

Dependencies run one way: detectors ← contracts ← policies ← streams; store knows tables and wire types
only; governance sits on store; api and jobs on governance; only warden (CLI, settings, runtime) wires
everything. Module-level imports form no cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.support.procs import ROOT

PACKAGES = ("contracts", "detectors", "policies", "streams", "store", "governance", "api", "jobs", "warden")
#: what each package may import of Warden (besides itself)
ALLOWED: dict[str, set[str]] = {
    "detectors": set(),
    "contracts": {"detectors"},
    "policies": {"detectors", "contracts"},
    "streams": {"detectors", "contracts", "policies"},
    "store": {"detectors", "contracts"},
    "governance": {"detectors", "contracts", "store"},
    "api": {"detectors", "contracts", "policies", "streams", "store", "governance"},
    "jobs": {"detectors", "contracts", "streams", "store", "governance"},
    "warden": set(PACKAGES),
}
#: the only modules of another package a lower layer may use (the Finding type, not detector behaviour)
NARROW: dict[tuple[str, str], set[str]] = {
    ("contracts", "detectors"): {"detectors.finding"},
    ("store", "detectors"): {"detectors.finding"},
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = path
    return out


def _imports(path: Path, *, module_level_only: bool) -> list[str]:
    """Warden modules ``path`` imports (absolute imports; TYPE_CHECKING blocks excluded when module-level only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                if not module_level_only:
                    visit(child, top)
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and module_level_only:
                continue
            if isinstance(child, ast.Import):
                found.extend(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append(child.module)
                found.extend(f"{child.module}.{a.name}" for a in child.names)
            visit(child, top)

    visit(tree, True)
    return [m for m in found if m.split(".")[0] in PACKAGES]


def test_packages_depend_only_on_the_layers_below() -> None:
    violations = []
    for module, path in _modules().items():
        pkg = module.split(".")[0]
        for imported in _imports(path, module_level_only=False):
            other = imported.split(".")[0]
            if other == pkg:
                continue
            if other not in ALLOWED[pkg]:
                violations.append(f"{module} imports {imported}")
            narrow = NARROW.get((pkg, other))
            if narrow and not any(imported == n or imported.startswith(n + ".") for n in narrow):
                violations.append(f"{module} imports {imported} (only {sorted(narrow)} allowed)")
    assert violations == []


def test_no_import_cycle() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for imported in _imports(path, module_level_only=True):
            # "from a.b import c" names a.b.c: a module when one exists, else a name inside a.b
            target = imported if imported in modules else imported.rsplit(".", 1)[0]
            if target in modules and target != module:
                graph[module].add(target)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(modules):
        if module not in state:
            walk(module, [module])
    assert cycles == []


def test_the_rules_see_the_imports() -> None:
    """The checker itself finds imports (a checker that finds none would pass anything)."""
    modules = _modules()
    assert "detectors.finding" in _imports(modules["contracts.decision"], module_level_only=True)
    assert any(m.startswith("governance") for m in _imports(modules["api.app"], module_level_only=False))
