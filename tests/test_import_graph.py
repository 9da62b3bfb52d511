"""The import graph of src/ragtune: no circle between modules or packages, and no arrow that
runs upward against the layer order of the architecture:

    types ← documents ← index ← retrieve ← rag ← pipelines ← evaluate/advise ← serve/cli

(tune uses documents, retrieve and rag, and takes its answer metrics from evaluate).

Every import counts, also one inside a function: an import deferred to call time is still a
dependency. Run it as a script to print the graph and every violation:

    .venv/bin/python tests/test_import_graph.py
"""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# The layer of each part of the package: a module may import its own layer and those below.
# models (embedders, generators, the bundled model registry) and documents need only the
# base; the KnowledgeBase facade sits on the pipelines it delegates to; tune scores its
# evaluation samples with evaluate's metrics and never reaches serve; testing is for tests.
LAYERS: dict[str, int] = {
    "_version": 0, "errors": 0, "types": 0, "config": 0, "components": 0,
    "documents": 1, "models": 1,
    "index": 2,
    "retrieve": 3,
    "rag": 4,
    "pipelines": 5,
    "knowledge_base": 6, "display": 6,
    "evaluate": 7, "advise": 8, "tune": 8,
    "serve": 9, "cli": 9,
    "testing": 10, "__init__": 10, "__main__": 10,
}

# Edges known to break the rules while the code is being reorganised (importer, imported):
# left out of the checks, and a warning says when one is no longer there to remove it.
KNOWN: set[tuple[str, str]] = set()


def module_names(src: Path = SRC) -> dict[str, Path]:
    """Every module of the ``ragtune`` package by dotted name (a package by its own name)."""
    out: dict[str, Path] = {}
    for path in sorted((src / "ragtune").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(tree: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def graph(src: Path = SRC) -> dict[str, set[str]]:
    """module → the ragtune modules it imports (``from pkg import mod`` names ``pkg.mod``)."""
    modules = module_names(src)
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = {t for t in _imported(tree, name, path.name == "__init__.py")
                   if t in modules and t != name}
        # ``from ragtune.index import stores`` imports the submodule, not the package
        edges[name] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
    return edges


def part(module: str) -> str:
    """The part of the package a module belongs to: ``ragtune.index.stores`` → ``index``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def package_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the parts of the package (index, retrieve, ...)."""
    out: dict[str, set[str]] = {}
    for source, targets in edges.items():
        out.setdefault(part(source), set()).update(
            part(t) for t in targets if part(t) != part(source))
    return out


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every broken rule, one line each, naming the modules."""
    found: list[str] = []
    for source in sorted(edges):
        for target in sorted(edges[source]):
            if (source, target) in KNOWN:
                continue
            low, high = part(source), part(target)
            if low not in LAYERS or high not in LAYERS:
                missing = low if low not in LAYERS else high
                found.append(f"{missing}: not in LAYERS (tests/test_import_graph.py); "
                             f"give it a layer")
            elif LAYERS[high] > LAYERS[low]:
                found.append(f"upward: {source} (layer {LAYERS[low]}, {low}) imports "
                             f"{target} (layer {LAYERS[high]}, {high})")
    pruned = {s: {t for t in ts if (s, t) not in KNOWN} for s, ts in edges.items()}
    found += [f"module circle: {' ⇄ '.join(group)}" for group in cycles(pruned)]
    found += [f"package circle: {' ⇄ '.join(group)}"
              for group in cycles(package_edges(pruned))]
    return sorted(set(found))


def test_the_import_graph_has_no_circle_and_no_upward_arrow() -> None:
    edges = graph()
    assert len(edges) > 50, f"only {len(edges)} modules found under {SRC}"
    for source, target in sorted(KNOWN):
        if target not in edges.get(source, set()):
            warnings.warn(f"{source} no longer imports {target}: remove it from KNOWN",
                          stacklevel=1)
    problems = violations(edges)
    assert not problems, "the import graph breaks the architecture:\n  " + "\n  ".join(problems)


def test_the_checks_catch_a_circle_and_an_upward_arrow(tmp_path: Path) -> None:
    package = tmp_path / "ragtune"
    (package / "index").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "types.py").write_text("from ragtune.index import stores\n")
    (package / "index" / "__init__.py").write_text("")
    (package / "index" / "stores.py").write_text(
        "def f():\n    from . import reader\n")
    (package / "index" / "reader.py").write_text("from ragtune.index.stores import f\n")
    problems = violations(graph(tmp_path))
    assert "upward: ragtune.types (layer 0, types) imports ragtune.index.stores " \
           "(layer 2, index)" in problems
    assert "module circle: ragtune.index.reader ⇄ ragtune.index.stores" in problems
    assert "package circle: index ⇄ types" not in problems  # types → index only


def main() -> None:
    edges = graph()
    for source in sorted(edges):
        if edges[source]:
            print(f"{source} -> {', '.join(sorted(edges[source]))}")
    print()
    for source, targets in sorted(package_edges(edges).items()):
        print(f"[{source}] -> {', '.join(sorted(targets)) or '-'}")
    problems = violations(edges)
    print(f"\n{len(problems)} violation(s)" + "".join(f"\n  {p}" for p in problems))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
