"""The layout rule of docs/architecture.md's "How the code is laid out": the parts import in one direction."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "features", "estimators")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, top_level_only):
    """Modules of this project that `path` imports (resolving relative imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _modules():
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def test_features_and_estimators_never_import_the_benchmark_package():
    offenders = {name: sorted(i for i in _imports(path, top_level_only=False) if i.startswith("benchmark"))
                 for name, path in _modules().items() if not name.startswith("benchmark")}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_import_circles_even_through_imports_inside_functions():
    modules = _modules()
    graph = {name: {i for i in _imports(path, top_level_only=False) if i in modules and i != name}
             for name, path in modules.items()}
    # a package's __init__ re-exporting its modules is not a circle with them
    for name in graph:
        graph[name] = {i for i in graph[name] if not name.startswith(i + ".")}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_benchmark_is_in_subpackages_named_for_what_they_hold():
    top = sorted(p.name for p in (ROOT / "benchmark").iterdir() if p.suffix == ".py" or
                 (p.is_dir() and (p / "__init__.py").exists()))
    assert top == ["__init__.py", "__main__.py", "api.py", "cli", "config.py", "data", "errors.py", "execution",
                   "reporting"]


def test_the_parts_of_benchmark_import_down_the_readme_list_only():
    order = ["benchmark.cli", "benchmark.api", "benchmark.reporting", "benchmark.execution", "benchmark.data"]
    upward = []
    for name, path in _modules().items():
        part = next((p for p in order if name.startswith(p + ".") or name == p), None)
        if part is None:
            continue
        above = order[: order.index(part)]
        upward += [(name, i) for i in _imports(path, top_level_only=False)
                   if any(i == p or i.startswith(p + ".") for p in above)]
    assert upward == []
