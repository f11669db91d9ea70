"""The architecture, checked from the source: every module under bot/, tracing/, storage/ and bench/ is parsed with
`ast` (nothing is imported) and its imports must keep the plan the README draws.

1. No import cycles among modules: none through module-level imports, and no import inside a function or under
   `if TYPE_CHECKING:` that closes one (a cycle such an import only dodges is still a cycle in the design).
2. `storage` imports neither `tracing` nor `bot`; `tracing` never imports `bot`.
3. bot/ and bench/ import from `tracing` and `storage` only names listed in their `__all__`, and only from the
   package itself (`from tracing import X`).
4. No module imports a `_private` name (function, class, constant or module) of another of our modules.
5. Inside `tracing`, wings import only those before them: errors < chain < labels < trace < risk < monitor <
   investigator (the package's `__init__` sits above them all).

An import's edge goes to the module that defines what it imports (`from a.b import c` is an edge to `a.b.c` when
that is a module, else to `a.b`); the parent packages Python initialises on the way are not edges, or every
package `__init__` that re-exports its modules would be in a cycle with them. Imports under `if TYPE_CHECKING:`
are dependencies all the same and count for every rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "tracing", "storage", "bench")
WINGS = ("errors", "chain", "labels", "trace", "risk", "monitor", "investigator")

# Exceptions, each with its reason; everything not listed here must pass.
KNOWN_CYCLES: set[frozenset[str]] = set()
KNOWN_PRIVATE_IMPORTS = {
    # The compiled walk's C extension is private to its wrapper, the only module that imports it.
    ("tracing.trace.compiled", "tracing.trace._walk"),
}
KNOWN_DEEP_IMPORTS: set[tuple[str, str]] = set()
"""(importer, module): none left; bot and bench reach `tracing` and `storage` through their `__init__` only."""


@dataclass(frozen=True, slots=True)
class Import:
    importer: str
    target: str
    """The module imported from (or the module imported)."""
    name: str | None
    """The name imported from `target` (None for `import target` or a submodule import)."""
    line: int
    lazy: bool
    """Inside a function: runs when the function does, not when the module is imported."""
    type_checking: bool

    @property
    def what(self) -> str:
        return f"{self.target}.{self.name}" if self.name else self.target

    def __str__(self) -> str:
        what = self.what
        kind = " (inside a function)" if self.lazy else " (TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.importer}:{self.line} imports {what}{kind}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


@cache
def extensions() -> frozenset[str]:
    """Compiled modules (the C walk): importable, not parsed."""
    return frozenset(
        f"{_module_name(path.parent / '__init__.py')}.{path.name.split('.')[0]}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.c")
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, lazy: bool, type_checking: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, lazy, type_checking
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, True, type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), lazy, True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), lazy, type_checking)
        else:
            yield from _walk(child, lazy, type_checking)


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _package_of(module: str) -> str:
    return module if modules()[module].name == "__init__.py" else module.rpartition(".")[0]


@cache
def imports() -> tuple[Import, ...]:
    known = set(modules()) | extensions()
    found: list[Import] = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, lazy, type_checking in _walk(tree, False, False):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _ours(alias.name):
                        found.append(Import(module, alias.name, None, node.lineno, lazy, type_checking))
                continue
            base = node.module or ""
            if node.level:
                package = _package_of(module).split(".")
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if not _ours(base):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    found.append(Import(module, submodule, None, node.lineno, lazy, type_checking))
                else:
                    found.append(Import(module, base, alias.name, node.lineno, lazy, type_checking))
    return tuple(found)


def _graph(edges: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules()}
    for edge in edges:
        if edge.target in graph and edge.target != edge.importer:
            graph[edge.importer].add(edge.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for child in graph[node] - seen:
            seen.add(child)
            todo.append(child)
    return False


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "tracing" and len(parts) > 1 else None


@cache
def _all_of(package: str) -> frozenset[str]:
    tree = ast.parse(modules()[package].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return frozenset(ast.literal_eval(node.value))
    return frozenset()


def _problems(found: list[str]) -> str:
    return "\n  " + "\n  ".join(sorted(set(found)))


# -- the rules ---------------------------------------------------------------------------------------------------


def test_the_sources_are_all_seen() -> None:
    """The parser finds every package and the imports that tie them together (a guard for the rules below)."""
    assert {"bot.core", "tracing", "tracing.chain.address", "storage.db", "bench.common"} <= set(modules())
    assert any(i.importer == "tracing.chain.address" and i.target == "tracing.errors" for i in imports())


def test_no_import_cycles() -> None:
    module_level = _graph([i for i in imports() if not i.lazy and not i.type_checking])
    cycles = [c for c in _cycles(module_level) if c not in KNOWN_CYCLES]
    found = [" ↔ ".join(sorted(c)) + " (module-level imports)" for c in cycles]
    for dodge in (i for i in imports() if (i.lazy or i.type_checking) and i.target in module_level):
        if _reaches(module_level, dodge.target, dodge.importer):
            if frozenset({dodge.importer, dodge.target}) not in KNOWN_CYCLES:
                found.append(f"{dodge}, which imports {dodge.importer} back: a cycle only dodged")
    assert not found, "import cycles:" + _problems(found)


def test_data_flows_one_way_bot_tracing_storage() -> None:
    forbidden = {"storage": ("tracing", "bot"), "tracing": ("bot",)}
    found = [str(i) for i in imports() if i.target.split(".")[0] in forbidden.get(i.importer.split(".")[0], ())]
    assert not found, "imports against the flow bot → tracing → storage:" + _problems(found)


def test_bot_and_bench_use_only_the_public_surface() -> None:
    found = []
    for i in imports():
        if i.importer.split(".")[0] not in ("bot", "bench") or i.target.split(".")[0] not in ("tracing", "storage"):
            continue
        package = i.target.split(".")[0]
        if i.target != package:
            if (i.importer, i.target) not in KNOWN_DEEP_IMPORTS:
                found.append(f"{i}: import from `{package}` itself")
        elif i.name is None or i.name not in _all_of(package):
            found.append(f"{i}: not in {package}.__all__")
    assert not found, "imports past the public surface:" + _problems(found)


def test_no_private_name_crosses_modules() -> None:
    found = []
    for i in imports():
        name = i.what.rpartition(".")[2]
        private = name.startswith("_") and not name.startswith("__")
        if private and i.target != i.importer and (i.importer, i.what) not in KNOWN_PRIVATE_IMPORTS:
            found.append(str(i))
    assert not found, "private names imported from another module:" + _problems(found)


def test_tracing_wings_import_only_those_before_them() -> None:
    rank = {wing: n for n, wing in enumerate(WINGS)}
    assert {_wing(m) for m in modules() if _wing(m)} <= set(rank), "a tracing wing missing from WINGS"
    found = [
        f"{i}: {_wing(i.importer)} may not import {_wing(i.target)}"
        for i in imports()
        if (wing := _wing(i.importer)) is not None
        and (target := _wing(i.target)) is not None
        and rank[target] > rank[wing]
    ]
    assert not found, "tracing wings importing upward:" + _problems(found)
